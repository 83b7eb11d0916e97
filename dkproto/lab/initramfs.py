"""The lab's initramfs: which kernel modules go in, and a pure-Python ``cpio`` (newc) writer.

The initramfs holds busybox, the guest ``/init`` script and only the kernel modules the lab
needs (and their dependencies, read from ``modules.dep``), so it stays a few megabytes and
builds in about a second. The module closure and the archive format are pure functions,
tested in ``tests/unit/test_lab_initramfs.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dkproto.errors import NotFoundError

__all__ = [
    "BASE_MODULES",
    "BOOT_MODULES",
    "CpioWriter",
    "InitramfsManifest",
    "module_closure",
    "module_name",
    "parse_modules_dep",
]

#: Modules loaded by ``/init`` at every boot (in this order, dependencies first by modprobe).
BOOT_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "overlay",
    "configfs",
    "xhci_pci",
    "usbhid",
    "hid_generic",
    "dummy_hcd",
    "libcomposite",
)

#: Every module the initramfs carries: the boot set plus what the built-in devices need and
#: the host-side class drivers that bind to them. Device definitions may name more (their
#: ``modules`` list); :func:`dkproto.lab.kernel.prepare` adds those.
BASE_MODULES: tuple[str, ...] = BOOT_MODULES + (
    "uhid",
    "usbmon",
    "cdc_acm",
    "ftdi_sio",
    "usbserial",
    "usb_storage",
    "uas",
    "sd_mod",
    "vhci_hcd",
    "usbip_host",
    "usb_f_hid",
    "usb_f_acm",
    "usb_f_serial",
    "usb_f_ss_lb",
    "usb_f_fs",
    "usb_f_mass_storage",
    "usb_f_uac2",
    "usb_f_uvc",
    "usb_f_midi",
    "usb_f_printer",
    "snd_usb_audio",
    "uvcvideo",
    "loop",
)


def module_name(path: str) -> str:
    """The canonical module name of a ``.ko`` path or a name: basename, no suffix, ``-`` as ``_``."""
    base = path.rsplit("/", 1)[-1]
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, tuple[str, list[str]]]:
    """Parse ``modules.dep``.

    Returns:
        module name -> (its path relative to ``/lib/modules/VERSION``, paths of its direct
        dependencies, in the order depmod wrote them).
    """
    table: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, _, deps = line.partition(":")
        path = path.strip()
        table[module_name(path)] = (path, deps.split())
    return table


def module_closure(modules_dep: str, wanted: Iterable[str]) -> list[str]:
    """The paths of ``wanted`` modules and all their dependencies, dependencies first.

    Args:
        modules_dep: text of ``modules.dep``.
        wanted: module names (``-`` and ``_`` are equivalent).

    Raises:
        NotFoundError: a wanted module is not in ``modules.dep`` (built in or absent).
    """
    table = parse_modules_dep(modules_dep)
    by_path = {path: name for name, (path, _) in table.items()}
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        path, deps = table[name]
        for dep in reversed(deps):  # depmod lists the deepest dependency last
            visit(by_path.get(dep, module_name(dep)))
        order.append(path)

    for want in wanted:
        name = module_name(want)
        if name not in table:
            raise NotFoundError(f"kernel module {want!r} is not in modules.dep (built in, or not in this kernel)")
        visit(name)
    return order


@dataclass(kw_only=True, slots=True)
class InitramfsManifest:
    """What goes into the initramfs: files copied from the host or the kernel tree, and text.

    Attributes:
        kernel_version: the ``uname -r`` of the guest kernel.
        modules: module paths relative to ``/lib/modules/VERSION``.
        files: archive path -> host path of a file to copy (busybox).
        texts: archive path -> (content, mode) of generated files (``/init``).
    """

    kernel_version: str
    modules: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    texts: dict[str, tuple[bytes, int]] = field(default_factory=dict)

    def digest(self) -> str:
        """A short hash of the manifest, so a changed module set or init script rebuilds the image."""
        h = hashlib.sha256(self.kernel_version.encode())
        for path in sorted(self.modules):
            h.update(b"m" + path.encode())
        for name in sorted(self.files):
            h.update(b"f" + name.encode() + self.files[name].encode())
        for name in sorted(self.texts):
            h.update(b"t" + name.encode() + self.texts[name][0])
        return h.hexdigest()[:12]

    def directories(self) -> list[str]:
        """Every directory the archive needs, parents before children."""
        dirs: set[str] = {"dev", "proc", "sys", "root", "host", "rw", "tmp", "etc", "bin", "sbin"}
        paths = list(self.files) + list(self.texts)
        paths += [f"lib/modules/{self.kernel_version}/{m}" for m in self.modules]
        for path in paths:
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return sorted(dirs, key=lambda d: (d.count("/"), d))


class CpioWriter:
    """Writes a ``newc`` (SVR4, no CRC) cpio archive, the format the kernel unpacks.

    The format is eight-hex-digit header fields after the magic ``070701``, the NUL-terminated
    name, padding to four bytes, the data, padding to four bytes; ``TRAILER!!!`` ends it
    (``Documentation/driver-api/early-userspace/buffer-format.rst``).
    """

    def __init__(self, out: io.BufferedIOBase | io.BytesIO) -> None:
        self._out = out
        self._ino = 1
        self._pos = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._pos += len(data)

    def _pad(self) -> None:
        self._write(b"\0" * (-self._pos % 4))

    def add(self, name: str, data: bytes = b"", mode: int = stat.S_IFREG | 0o644) -> None:
        """Add one entry (file, directory or symlink, by ``mode``)."""
        name_b = name.strip("/").encode() + b"\0" if name != "TRAILER!!!" else b"TRAILER!!!\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        self._ino += 1
        self._write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self._write(name_b)
        self._pad()
        self._write(data)
        self._pad()

    def mkdir(self, name: str) -> None:
        self.add(name, b"", stat.S_IFDIR | 0o755)

    def symlink(self, name: str, target: str) -> None:
        self.add(name, target.encode(), stat.S_IFLNK | 0o777)

    def close(self) -> None:
        self.add("TRAILER!!!", b"", 0)


def iter_entries(archive: bytes) -> Iterator[tuple[str, int, bytes]]:
    """Read back a newc archive: (name, mode, data) per entry, stopping at the trailer.

    Used by the tests and by ``dkproto lab prepare --check``.
    """
    pos = 0
    while pos + 110 <= len(archive):
        if archive[pos : pos + 6] != b"070701":
            raise ValueError(f"offset {pos}: no newc magic")
        fields = [int(archive[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_start = pos + 110
        name = archive[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize
        data_start += -data_start % 4
        data = archive[data_start : data_start + size]
        pos = data_start + size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return
        yield name, mode, data


def write_initramfs(manifest: InitramfsManifest, kernel_tree: Path, out_path: Path) -> int:
    """Build the gzip-compressed initramfs for ``manifest``.

    Args:
        kernel_tree: the unpacked kernel package (holding ``lib/modules/VERSION``).
        out_path: where to write the image.

    Returns:
        The image size in bytes.
    """
    raw = io.BytesIO()
    cpio = CpioWriter(raw)
    for d in manifest.directories():
        cpio.mkdir(d)
    for name, host_path in manifest.files.items():
        src = Path(host_path)
        cpio.add(name, src.read_bytes(), stat.S_IFREG | (src.stat().st_mode & 0o777))
    for name, (content, mode) in manifest.texts.items():
        cpio.add(name, content, stat.S_IFREG | mode)
    mod_root = kernel_tree / "lib" / "modules" / manifest.kernel_version
    for rel in manifest.modules:
        cpio.add(f"lib/modules/{manifest.kernel_version}/{rel}", (mod_root / rel).read_bytes())
    for extra in ("modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin",
                  "modules.symbols", "modules.symbols.bin", "modules.builtin", "modules.builtin.bin",
                  "modules.builtin.alias.bin", "modules.softdep", "modules.order", "modules.devname"):
        p = mod_root / extra
        if p.exists():
            cpio.add(f"lib/modules/{manifest.kernel_version}/{extra}", p.read_bytes())
    cpio.close()
    data = gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(out_path)
    return len(data)
