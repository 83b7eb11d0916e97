"""Gadgets inside the lab: build a configfs gadget from a definition, bind it, and drive it.

Runs inside the lab VM (as root, configfs at ``/sys/kernel/config``). A :class:`Gadget` is the
device side of one emulated device; the host side is the ordinary Linux USB stack on the
``dummy_hcd`` bus that pairs with the gadget's UDC.

Device-side controls: :meth:`Gadget.send_report` / :meth:`Gadget.read_report` (``/dev/hidgN``),
:meth:`Gadget.serial` (``/dev/ttyGSN``, the other end of ``/dev/ttyACMN``),
:meth:`Gadget.unplug` / :meth:`Gadget.replug` (UDC unbind and bind) and, for FunctionFS
functions, the device object returned by :meth:`Gadget.ffs` (stall, delay, drop: see
:mod:`dkproto.lab.ffs`).
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import logging
import os
import select
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dkproto.errors import (
    BadArgumentError,
    DkTimeoutError,
    ExclusiveAccessError,
    NoDeviceError,
    NotFoundError,
    StateError,
)
from dkproto.lab.devices import DeviceDefinition, attr_bytes

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Gadget", "free_udcs", "in_lab", "load_modules"]

CONFIGFS = Path("/sys/kernel/config/usb_gadget")
UDC_CLASS = Path("/sys/class/udc")
FFS_ROOT = Path("/dev/ffs")


def in_lab() -> bool:
    """True inside the lab VM (the guest agent sets ``DKPROTO_LAB=1``)."""
    return os.environ.get("DKPROTO_LAB") == "1"


def load_modules(names: list[str] | tuple[str, ...]) -> None:
    """``modprobe`` kernel modules inside the VM (no-op for loaded ones)."""
    for name in names:
        if Path("/sys/module", name.replace("-", "_")).exists():
            continue
        res = subprocess.run(["modprobe", name], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise NotFoundError(f"modprobe {name} failed in the lab: {res.stderr.strip()}")


def load_program(program: str, definition: DeviceDefinition | None = None) -> Any:
    """The callable named by an ffs function's ``program``: ``pkg.module:attr`` or ``file.py:attr``.

    A ``.py`` path is relative to the definition file.
    """
    target, _, attr = program.partition(":")
    if target.endswith(".py"):
        path = definition.resolve(target) if definition is not None else Path(target)
        spec = importlib.util.spec_from_file_location(f"dkproto_lab_program_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise NotFoundError(f"cannot load FunctionFS program {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr or "device")
    except AttributeError:
        raise NotFoundError(f"FunctionFS program {program!r}: no attribute {attr!r}") from None


def _gadgets_using() -> dict[str, str]:
    used = {}
    if CONFIGFS.is_dir():
        for g in CONFIGFS.iterdir():
            try:
                udc = (g / "UDC").read_text().strip()
            except OSError:
                continue
            if udc:
                used[udc] = g.name
    return used


def free_udcs() -> list[str]:
    """UDCs (``dummy_udc.N``) no gadget is bound to, in order."""
    if not UDC_CLASS.is_dir():
        return []
    used = _gadgets_using()
    names = sorted((p.name for p in UDC_CLASS.iterdir()), key=lambda n: (len(n), n))
    return [n for n in names if n not in used]


def _write(path: Path, data: bytes | str) -> None:
    if isinstance(data, str):
        data = data.encode()
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise BadArgumentError(f"configfs refused {data[:40]!r} for {path}: {exc.strerror}") from exc


class Gadget:
    """One configfs gadget made from a :class:`~dkproto.lab.devices.DeviceDefinition`.

    Use as a context manager (``with Gadget(defn) as g:``): it is created and bound on entry,
    unbound and removed on exit.

    Args:
        definition: a ``gadget`` definition.
        udc: the UDC to bind to (default: the first free one).
        instance: the configfs directory name (default: the definition name).
    """

    def __init__(self, definition: DeviceDefinition, *, udc: str | None = None, instance: str | None = None):
        if definition.kind != "gadget":
            raise BadArgumentError(f"{definition.name}: a {definition.kind} device is not a gadget")
        self.definition = definition
        self.name = instance or definition.name
        self.path = CONFIGFS / self.name
        self._udc = udc
        self._bound_udc: str | None = None
        self._ffs: dict[str, Any] = {}
        self._ffs_mounts: list[Path] = []
        self._images: list[Path] = []
        self._created = False
        self.log = logging.getLogger(f"dkproto.lab.Gadget({self.name})")

    # -- lifecycle ------------------------------------------------------------------------------------

    def create(self) -> None:
        """Make the configfs tree (device fields, strings, functions, configurations)."""
        load_modules(["libcomposite", *self.definition.modules])
        if self.path.exists():
            raise ExclusiveAccessError(f"gadget {self.name} already exists in configfs")
        spec = self.definition.spec
        self.path.mkdir()
        self._created = True
        for key, value in spec["device"].items():
            _write(self.path / key, str(value))
        strings = spec.get("strings", {})
        if strings:
            sdir = self.path / "strings" / "0x409"
            sdir.mkdir(exist_ok=True)
            for key, value in strings.items():
                _write(sdir / key, value)
        for fname, fspec in spec["functions"].items():
            fdir = self.path / "functions" / fname
            fdir.mkdir()
            for akey, aval in fspec.get("attrs", {}).items():
                if isinstance(aval, dict) and "image_mib" in aval:
                    aval = self._image(f"{fname}-{akey.replace('/', '-')}", int(aval["image_mib"]))
                _write(fdir / akey, attr_bytes(aval, self.definition, f"{fname}.{akey}"))
            for step in fspec.get("steps", []):
                if "mkdir" in step:
                    (fdir / step["mkdir"]).mkdir(parents=True, exist_ok=True)
                elif "write" in step:
                    _write(fdir / step["write"], attr_bytes(step["value"], self.definition, step["write"]))
                else:
                    os.symlink(fdir / step["to"], fdir / step["symlink"])
        for i, cfg in enumerate(spec["configs"], 1):
            cdir = self.path / "configs" / f"c.{i}"
            cdir.mkdir()
            _write(cdir / "MaxPower", str(cfg.get("MaxPower", 100)))
            if "bmAttributes" in cfg:
                _write(cdir / "bmAttributes", str(cfg["bmAttributes"]))
            if cfg.get("configuration"):
                (cdir / "strings" / "0x409").mkdir(exist_ok=True)
                _write(cdir / "strings" / "0x409" / "configuration", cfg["configuration"])
            for fn in cfg["functions"]:
                os.symlink(self.path / "functions" / fn, cdir / fn)
        for fname, fspec in spec["functions"].items():
            if fname.startswith("ffs."):
                self._start_ffs(fname, fspec)

    def _image(self, label: str, mib: int) -> str:
        """A fresh zero-filled backing file (in the VM's RAM) for a mass-storage LUN."""
        d = Path("/run/dklab-images")
        d.mkdir(exist_ok=True)
        path = d / f"{self.name}-{label}.img"
        with open(path, "wb") as f:
            f.truncate(mib * 1024 * 1024)
        self._images.append(path)
        return str(path)

    def _start_ffs(self, fname: str, fspec: dict[str, Any]) -> None:
        inst = fname.partition(".")[2]
        mount = FFS_ROOT / f"{self.name}.{inst}"
        mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "functionfs", inst, str(mount)], check=True)
        self._ffs_mounts.append(mount)
        factory = load_program(str(fspec["program"]), self.definition)
        device = factory(mount)
        device.start()
        self._ffs[fname] = device

    def bind(self, udc: str | None = None, *, wait: float = 10.0) -> str:
        """Bind the gadget to a UDC (plug it in) and wait until the host has configured it.

        Returns:
            The UDC name.
        """
        if self._bound_udc:
            raise StateError(f"gadget {self.name}: bind() while bound to {self._bound_udc}")
        udc = udc or self._udc
        if udc is None:
            free = free_udcs()
            if not free:
                raise ExclusiveAccessError("no free UDC in the lab (boot with more: dklab.udcs=N)")
            udc = free[0]
        _write(self.path / "UDC", udc)
        self._udc = self._bound_udc = udc
        if wait:
            self.wait_configured(wait)
        return udc

    def unbind(self) -> None:
        """Unbind from the UDC: the host sees a disconnect."""
        if self._bound_udc:
            _write(self.path / "UDC", "\n")
            self._bound_udc = None

    def unplug(self, *, wait: float = 5.0) -> None:
        """Unplug the device (UDC unbind) and wait until the host has seen the disconnect.

        :meth:`replug` plugs it back on the same UDC.
        """
        self.unbind()
        deadline = time.monotonic() + wait
        while wait and self.host_sysfs(optional=True) is not None:
            if time.monotonic() > deadline:
                raise DkTimeoutError(f"gadget {self.name}: the host still sees the device {wait} s after unplug")
            time.sleep(0.02)

    def replug(self, *, wait: float = 10.0) -> None:
        """Plug the device back in (UDC bind) and wait until it is configured."""
        self.bind(self._udc, wait=wait)

    def remove(self) -> None:
        """Unbind and tear the configfs tree down (in the reverse order of creation).

        Does nothing to a tree this object did not create.
        """
        if not self._created:
            return
        if self._bound_udc:
            try:
                self.unplug(wait=5.0)  # the next test must not see this device going away
            except DkTimeoutError:
                self.log.warning("the host still sees %s after unbind", self.name)
        for device in self._ffs.values():
            device.stop()
        self._ffs.clear()
        for mount in self._ffs_mounts:
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        self._ffs_mounts.clear()
        if not self.path.exists():
            return
        images, self._images = self._images, []
        for cdir in sorted((self.path / "configs").iterdir()):
            for link in cdir.iterdir():
                if link.is_symlink():
                    link.unlink()
            if (cdir / "strings" / "0x409").exists():
                (cdir / "strings" / "0x409").rmdir()
            cdir.rmdir()
        for fdir in sorted((self.path / "functions").iterdir()):
            self._remove_function_tree(fdir)
        if (self.path / "strings" / "0x409").exists():
            (self.path / "strings" / "0x409").rmdir()
        self.path.rmdir()
        self._created = False
        for image in images:
            image.unlink(missing_ok=True)

    def _remove_function_tree(self, fdir: Path) -> None:
        fspec = self.definition.spec["functions"].get(fdir.name, {})
        steps = fspec.get("steps", [])
        for step in reversed(steps):
            if "symlink" in step:
                p = fdir / step["symlink"]
                if p.is_symlink():
                    p.unlink()
        for step in reversed(steps):
            if "mkdir" in step:
                p = fdir / step["mkdir"]
                try:
                    p.rmdir()
                except OSError:
                    pass
        fdir.rmdir()

    def __enter__(self) -> Self:
        try:
            self.create()
            self.bind()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()

    # -- state ---------------------------------------------------------------------------------------

    @property
    def udc(self) -> str | None:
        """The UDC the gadget is bound to, or ``None``."""
        return self._bound_udc

    def state(self) -> str:
        """The UDC state (``configured``, ``not attached``...)."""
        if not self._udc:
            return "not attached"
        return (UDC_CLASS / self._udc / "state").read_text().strip()

    def wait_configured(self, timeout: float = 10.0) -> None:
        """Wait until the host side has configured the device and its drivers have bound."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state() == "configured":
                dev = self.host_sysfs(optional=True)
                if dev is not None and self._drivers_bound(dev):
                    return
            time.sleep(0.05)
        raise DkTimeoutError(f"gadget {self.name} on {self._udc}: not configured by the host after {timeout:.0f} s "
                             f"(UDC state {self.state()!r})")

    #: Interface classes whose host driver is loaded in the lab: wait for it to bind (HID,
    #: CDC data/control, mass storage, audio, video). Other interfaces only need to exist.
    DRIVEN_CLASSES = frozenset({0x01, 0x02, 0x03, 0x08, 0x0E})

    @classmethod
    def _drivers_bound(cls, dev: Path) -> bool:
        interfaces = [p for p in dev.iterdir() if p.name.startswith(dev.name + ":")]
        try:
            want = int((dev / "bNumInterfaces").read_text())
        except (OSError, ValueError):
            return False
        if not interfaces or len(interfaces) < want:
            return False  # interfaces appear one by one once SET_CONFIGURATION is done
        for intf in interfaces:
            try:
                klass = int((intf / "bInterfaceClass").read_text(), 16)
            except (OSError, ValueError):
                return False
            if klass in cls.DRIVEN_CLASSES and not (intf / "driver").exists():
                return False
            if klass == 0x03 and not any(intf.glob("*/hidraw/hidraw*")):
                return False
        return True

    def host_sysfs(self, *, optional: bool = False) -> Path | None:
        """The host-side sysfs directory of the device (``/sys/bus/usb/devices/B-1``)."""
        if self._udc and self._udc.startswith("dummy_udc."):
            n = self._udc.rpartition(".")[2]
            for roothub in Path(f"/sys/devices/platform/dummy_hcd.{n}").glob("usb*"):
                for dev in roothub.glob(f"{roothub.name[3:]}-*"):
                    if ":" not in dev.name and (dev / "idVendor").exists():
                        return dev
        if optional:
            return None
        raise NoDeviceError(f"gadget {self.name}: no host-side device (not bound or not enumerated)")

    def host_address(self) -> tuple[int, int]:
        """(busnum, devnum) of the host-side device, for pyusb/libusb matching."""
        dev = self.host_sysfs()
        assert dev is not None
        return int((dev / "busnum").read_text()), int((dev / "devnum").read_text())

    def host_nodes(self, subsystem: str) -> list[str]:
        """Host-side ``/dev`` nodes of a class under the device: ``hidraw``, ``tty``, ``block``..."""
        dev = self.host_sysfs()
        assert dev is not None
        found: set[str] = set()
        for p in dev.rglob(subsystem):
            if p.name == subsystem and p.is_dir():
                found.update(f"/dev/{child.name}" for child in p.iterdir() if child.is_dir())
        return sorted(found)

    # -- device-side controls ----------------------------------------------------------------------------

    def _function(self, prefix: str, function: str | None) -> Path:
        names = [f for f in self.definition.spec["functions"] if f.startswith(prefix + ".")]
        if function is not None:
            if function not in names:
                raise NotFoundError(f"gadget {self.name} has no function {function!r} (has {', '.join(names)})")
            return self.path / "functions" / function
        if not names:
            raise NotFoundError(f"gadget {self.name} has no {prefix} function")
        return self.path / "functions" / str(names[0])

    def hidg(self, function: str | None = None) -> str:
        """The device-side ``/dev/hidgN`` of a ``hid`` function (the first by default)."""
        fdir = self._function("hid", function)
        major_minor = (fdir / "dev").read_text().strip()
        uevent = Path(f"/sys/dev/char/{major_minor}/uevent").read_text()
        for line in uevent.splitlines():
            if line.startswith("DEVNAME="):
                return "/dev/" + line.partition("=")[2]
        raise NotFoundError(f"no /dev node for {fdir.name} ({major_minor})")

    def send_report(self, report: bytes, function: str | None = None, timeout: float = 2.0) -> None:
        """Send one HID input report to the host (write ``/dev/hidgN``)."""
        fd = os.open(self.hidg(function), os.O_WRONLY | os.O_NONBLOCK)
        try:
            _, w, _ = select.select([], [fd], [], timeout)
            if not w:
                raise DkTimeoutError(f"gadget {self.name}: the host did not take the input report in {timeout} s")
            os.write(fd, report)
        finally:
            os.close(fd)

    def read_report(self, function: str | None = None, timeout: float = 2.0, size: int = 4096) -> bytes:
        """Read one output report the host sent (``/dev/hidgN``).

        Raises:
            DkTimeoutError: none came within ``timeout`` seconds.
        """
        fd = os.open(self.hidg(function), os.O_RDONLY | os.O_NONBLOCK)
        try:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                raise DkTimeoutError(f"gadget {self.name}: no output report from the host in {timeout} s")
            try:
                return os.read(fd, size)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    raise DkTimeoutError(f"gadget {self.name}: no output report") from exc
                raise
        finally:
            os.close(fd)

    def drain_reports(self, function: str | None = None, quiet: float = 0.2) -> list[bytes]:
        """Read and return every output report already sent (e.g. the LED report that the
        kernel's keyboard driver sends when it binds), until none comes for ``quiet`` s."""
        out = []
        while True:
            try:
                out.append(self.read_report(function, timeout=quiet))
            except DkTimeoutError:
                return out

    def tty(self, function: str | None = None) -> str:
        """The device-side ``/dev/ttyGSN`` of an ``acm`` (or ``gser``) function."""
        try:
            fdir = self._function("acm", function)
        except NotFoundError:
            fdir = self._function("gser", function)
        return f"/dev/ttyGS{int((fdir / 'port_num').read_text())}"

    def serial(self, function: str | None = None, **kwargs: Any) -> Any:
        """The device end of the serial line, as an open ``serial.Serial`` (pyserial)."""
        import serial

        kwargs.setdefault("timeout", 2.0)
        return serial.Serial(self.tty(function), **kwargs)

    def ffs(self, function: str | None = None) -> Any:
        """The running FunctionFS device object of an ``ffs`` function (see :mod:`dkproto.lab.ffs`)."""
        names = list(self._ffs)
        if function is None and names:
            return self._ffs[names[0]]
        if function in self._ffs:
            return self._ffs[function]
        raise NotFoundError(f"gadget {self.name} has no running ffs function {function!r}")
