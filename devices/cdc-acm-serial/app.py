"""Example app: open the CDC-ACM port, set 115200 8N1, write a line, read what comes back."""

from __future__ import annotations

import os
from typing import Any


def main(service: Any) -> int:
    """``service`` is the running CDCACMSerial; ``open_port()`` is what opening the tty does."""
    with service.open_port() as port:
        port.set_line(115200, 8, 1)
        port.write(b"hello from the app\r\n")
        data = port.read(256, float(os.environ.get("READ_TIMEOUT", "2")))
        print(f"read back: {data!r}")
    return 0
