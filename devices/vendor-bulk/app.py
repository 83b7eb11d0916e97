"""Example app for the vendor bulk driver (``dkproto run devices/vendor-bulk/driver.py --app ...``).

As a real app, it finds the driver by matching (``client.open_driver``: IOServiceGetMatchingServices,
IOIteratorNext, IOServiceOpen); the service ``dkproto run`` hands to ``main`` is not used. Run as a
script (``--process``) it is another process and matches the driver's process's services.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import client

from dkproto.iokit import io_service_close


def main(service: Any = None) -> int:
    """Write, read back, then a read started before its write; print what happened."""
    conn = client.open_driver()
    vb = client.VendorBulk(conn)
    try:
        n = vb.write(b"hello, dext")
        print(f"wrote {n}, read back {vb.read(512)!r}")
        rd = vb.read_async(64)  # pending until the write below loops back
        wr = vb.write_async(b"async bytes")
        written, got = wr.wait(5)[0], rd.wait(5)[0]
        print(f"async: wrote {written} (result {wr.result:#x}), read {got}: {vb.copy_read_data()!r} "
              f"(result {rd.result:#x})")
        print(f"stats: {vb.stats()}")
        return 0
    finally:
        vb.close()
        io_service_close(conn)


if __name__ == "__main__":
    sys.exit(main())
