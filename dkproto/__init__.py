"""dkproto: prototype macOS DriverKit drivers in Python against real USB, HID and serial devices.

The public API is re-exported here; see ``docs/`` for the guides.
"""

from dkproto.errors import (
    AbortedError,
    BadArgumentError,
    DecodeError,
    DkError,
    DkTimeoutError,
    EncodeError,
    ExclusiveAccessError,
    MissingToolError,
    NoDeviceError,
    NotFoundError,
    NotOpenError,
    NotPermittedError,
    OverrunError,
    PipeStalledError,
    ReplayMismatchError,
    StateError,
    UnsupportedError,
    URLError,
)
from dkproto.ioreturn import IOReturn

__version__ = "0.1.0"

__all__ = [
    "AbortedError",
    "BadArgumentError",
    "DecodeError",
    "DkError",
    "DkTimeoutError",
    "EncodeError",
    "ExclusiveAccessError",
    "IOReturn",
    "MissingToolError",
    "NoDeviceError",
    "NotFoundError",
    "NotOpenError",
    "NotPermittedError",
    "OverrunError",
    "PipeStalledError",
    "ReplayMismatchError",
    "StateError",
    "URLError",
    "UnsupportedError",
    "__version__",
]
