"""Example app for the vendor bulk driver (``dkproto run devices/vendor-bulk/driver.py --app ...``).

``main(service)`` runs in-process; run as a script (``--process``), it reaches the driver over
the Unix socket named by DKPROTO_UC_ADDRESS/DKPROTO_UC_KEY, like a separate app would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import client

from dkproto.iokit import RemoteService, io_service_close, io_service_open


def main(service: Any) -> int:
    """Write, read back, both ways, synchronously and asynchronously; print what happened."""
    conn = io_service_open(service, 0, app_entitlements={
        "com.apple.developer.driverkit.userclient-access": ["org.dkproto.example.vendor-bulk"]})
    try:
        n = client.write(conn, b"hello, dext")
        back = client.read(conn, 512)
        print(f"sync: wrote {n}, read back {back!r}")
        calls = client.AsyncCalls(conn)
        rd = calls.read(64)
        wr = calls.write(b"async bytes")
        assert wr["done"].wait(5) and rd["done"].wait(5), "async completions did not arrive"
        print(f"async: wrote {wr['args'][0]} (result {wr['result']:#x}), "
              f"read {client.unpack_read(rd)!r} (result {rd['result']:#x})")
        calls.close()
        print(f"stats: {client.stats(conn)}")
        return 0
    finally:
        io_service_close(conn)


if __name__ == "__main__":
    sys.exit(main(RemoteService(os.environ["DKPROTO_UC_ADDRESS"], bytes.fromhex(os.environ["DKPROTO_UC_KEY"]))))
