"""The lab's initramfs: module closure from modules.dep and the newc cpio writer (pure parts)."""

from __future__ import annotations

import gzip
import io
import stat
from pathlib import Path

import pytest

from dkproto.errors import NotFoundError
from dkproto.lab.guest_init import INIT_SCRIPT, MARK
from dkproto.lab.initramfs import (
    BASE_MODULES,
    BOOT_MODULES,
    CpioWriter,
    InitramfsManifest,
    iter_entries,
    module_closure,
    module_name,
    parse_modules_dep,
    write_initramfs,
)

# Lines of the Debian 6.1 modules.dep (as depmod writes them: deepest dependency last).
MODULES_DEP = """\
kernel/drivers/usb/common/usb-common.ko:
kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko
kernel/drivers/hid/hid.ko:
kernel/drivers/hid/usbhid/usbhid.ko: kernel/drivers/hid/hid.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/fs/configfs/configfs.ko:
kernel/drivers/usb/gadget/udc/udc-core.ko: kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/gadget/libcomposite.ko: kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/function/usb_f_hid.ko: kernel/drivers/usb/gadget/libcomposite.ko kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/common/usb-common.ko kernel/fs/configfs/configfs.ko
kernel/drivers/usb/gadget/udc/dummy_hcd.ko: kernel/drivers/usb/gadget/udc/udc-core.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
"""


def test_module_name_normalises_dashes_and_suffixes() -> None:
    assert module_name("kernel/drivers/hid/hid-generic.ko") == "hid_generic"
    assert module_name("usb-storage") == "usb_storage"
    assert module_name("foo.ko.xz") == "foo"


def test_parse_modules_dep() -> None:
    table = parse_modules_dep(MODULES_DEP)
    assert table["usbhid"][0] == "kernel/drivers/hid/usbhid/usbhid.ko"
    assert table["usb_common"][1] == []
    assert len(table) == 9


def test_closure_lists_dependencies_first_and_once() -> None:
    order = module_closure(MODULES_DEP, ["usb_f_hid", "usbhid", "dummy-hcd"])
    names = [module_name(p) for p in order]
    assert len(names) == len(set(names))
    for mod, deps in parse_modules_dep(MODULES_DEP).values():
        for dep in deps:
            assert order.index(dep) < order.index(mod), f"{dep} must load before {mod}"
    assert set(names) == {"usb_common", "usbcore", "hid", "usbhid", "configfs", "udc_core", "libcomposite",
                          "usb_f_hid", "dummy_hcd"}


def test_closure_of_an_unknown_module_names_it() -> None:
    with pytest.raises(NotFoundError, match="'no_such_mod'"):
        module_closure(MODULES_DEP, ["usbhid", "no_such_mod"])


def test_boot_modules_are_carried() -> None:
    assert set(BOOT_MODULES) <= set(BASE_MODULES)
    assert {"dummy_hcd", "9p", "overlay", "xhci_pci"} <= set(BOOT_MODULES)


def test_cpio_round_trip_and_alignment() -> None:
    raw = io.BytesIO()
    w = CpioWriter(raw)
    w.mkdir("bin")
    w.add("bin/busybox", b"\x7fELF" + b"x" * 13, stat.S_IFREG | 0o755)
    w.symlink("bin/sh", "busybox")
    w.add("init", b"#!/bin/sh\n", stat.S_IFREG | 0o755)
    w.close()
    data = raw.getvalue()
    assert len(data) % 4 == 0
    assert data[:6] == b"070701"
    entries = list(iter_entries(data))
    assert [e[0] for e in entries] == ["bin", "bin/busybox", "bin/sh", "init"]
    assert stat.S_ISDIR(entries[0][1]) and stat.S_ISLNK(entries[2][1])
    assert entries[1][2] == b"\x7fELF" + b"x" * 13 and entries[2][2] == b"busybox"
    assert entries[1][1] & 0o777 == 0o755
    assert data.endswith(b"\0") and b"TRAILER!!!" in data


def test_cpio_reader_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="offset 0"):
        list(iter_entries(b"x" * 200))


def test_manifest_digest_changes_with_content_and_directories_are_complete() -> None:
    a = InitramfsManifest(kernel_version="6.1.0-56-amd64", modules=["kernel/fs/9p/9p.ko"],
                          texts={"init": (b"a", 0o755)})
    b = InitramfsManifest(kernel_version="6.1.0-56-amd64", modules=["kernel/fs/9p/9p.ko"],
                          texts={"init": (b"b", 0o755)})
    assert a.digest() != b.digest() and a.digest() == InitramfsManifest(
        kernel_version="6.1.0-56-amd64", modules=["kernel/fs/9p/9p.ko"], texts={"init": (b"a", 0o755)}).digest()
    dirs = a.directories()
    for d in ("lib", "lib/modules", "lib/modules/6.1.0-56-amd64/kernel/fs/9p", "proc", "sys", "dev"):
        assert d in dirs
    assert dirs.index("lib") < dirs.index("lib/modules")


def test_write_initramfs_from_a_tree(tmp_path: Path) -> None:
    ver = "6.1.0-test"
    mods = tmp_path / "lib" / "modules" / ver
    (mods / "kernel" / "fs").mkdir(parents=True)
    (mods / "kernel" / "fs" / "a.ko").write_bytes(b"module a")
    (mods / "modules.dep").write_text("kernel/fs/a.ko:\n")
    bb = tmp_path / "busybox"
    bb.write_bytes(b"static busybox")
    bb.chmod(0o755)
    m = InitramfsManifest(kernel_version=ver, modules=["kernel/fs/a.ko"], files={"bin/busybox": str(bb)},
                          texts={"init": (INIT_SCRIPT.encode(), 0o755)})
    out = tmp_path / "initrd.img"
    size = write_initramfs(m, tmp_path, out)
    assert size == out.stat().st_size
    entries = {name: (mode, data) for name, mode, data in iter_entries(gzip.decompress(out.read_bytes()))}
    assert entries[f"lib/modules/{ver}/kernel/fs/a.ko"][1] == b"module a"
    assert entries[f"lib/modules/{ver}/modules.dep"][1] == b"kernel/fs/a.ko:\n"
    assert entries["bin/busybox"][0] & 0o111
    assert entries["init"][1].startswith(b"#!/bin/busybox sh")


def test_init_script_speaks_the_markers_the_host_reads() -> None:
    for word in ("ready", "done", "fail"):
        assert f"{MARK}{word}" in INIT_SCRIPT
    assert "cache=loose" in INIT_SCRIPT and "lowerdir=/host" in INIT_SCRIPT
