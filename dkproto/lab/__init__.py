"""The dkproto lab: a real Linux USB bus in a QEMU virtual machine.

Host side: :func:`prepare` (kernel + initramfs, cached) and :func:`run` (boot, run a command
in the host's own environment inside the VM, return its status and output).
Guest side (inside the VM): :class:`~dkproto.lab.gadget.Gadget` (configfs gadgets and their
device-side controls), :mod:`dkproto.lab.ffs` (FunctionFS devices in Python) and
:mod:`dkproto.lab.usbip` (captured descriptor sets as live USB/IP devices), both device sides
on :mod:`dkproto.device`; example device programs are in ``devices/lab/``.
See ``docs/lab.md``.
"""

from dkproto.lab.devices import DeviceDefinition, load_definitions
from dkproto.lab.kernel import LabImage, cache_root, prepare
from dkproto.lab.vm import LabBootError, LabResult, LabTimeoutError, run

__all__ = [
    "DeviceDefinition",
    "LabBootError",
    "LabImage",
    "LabResult",
    "LabTimeoutError",
    "cache_root",
    "load_definitions",
    "prepare",
    "run",
]
