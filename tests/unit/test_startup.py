"""Start-up: what ``dkproto dump FILE`` and ``dkproto --help`` import, and the lazy pieces that keep it so.

The time is measured by ``benchmarks/bench_startup.py`` (docs/performance.md, ## Start-up); these
tests pin the behaviour behind it: the set of modules a command loads (a module that comes back
on the dump path is caught here, not by a timer), and that the lazy packages, the entry-point
pre-check and the usb.ids reader give what the eager code gave.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pytest

from dkproto import _entry_points, usbids
from dkproto.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
USB_FILE = str(ROOT / "descriptors" / "hackrf-one.json")

#: Run ``dkproto ARGS`` in a fresh interpreter, its output to /dev/null; print the modules loaded.
_PROBE = """
import json, os, sys
from dkproto.cli import main
sys.stdout = open(os.devnull, "w")
try:
    main(sys.argv[1:])
    status = 0
except SystemExit as exc:
    status = exc.code or 0
sys.stdout = sys.__stdout__
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def _modules_of(*args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DKPROTO_")}
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == 0, proc.stderr
    return set(result["modules"])


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


#: Never on the path of ``dkproto dump FILE``: the transports and the device side (a file needs
#: no device), the other areas and commands, the back ends; importlib.metadata (its scan of the
#: installed packages' entry points) and importlib.resources, each as slow to import as a dump.
NOT_ON_THE_DUMP_PATH = (
    "dkproto.transport.base", "dkproto.transport.registry", "dkproto.transport.usb", "dkproto.device",
    "dkproto.usb.read", "dkproto.usb.enumerate", "dkproto.hid", "dkproto.iokit", "dkproto.lab",
    "dkproto.session", "dkproto.capture", "dkproto.pytest_plugin",
    *(f"dkproto.cli.{m}" for m in ("ls", "lab", "hid", "poke", "serial", "match", "capture", "run", "record")),
    "usb", "usb1", "hid", "serial", "libusb_package",
    "importlib.metadata", "importlib.resources", "email", "zipfile",
)


@pytest.mark.parametrize("fmt", ["text", "json", "hex"])
def test_dump_of_a_file_loads_no_transport_device_or_other_command(fmt: str) -> None:
    modules = _modules_of("dump", "--format", fmt, USB_FILE)
    assert "dkproto.cli.dump" in modules and "dkproto.usb.render" in modules  # it did run
    assert _loaded(modules, NOT_ON_THE_DUMP_PATH) == []


def test_help_imports_the_commands_but_not_their_libraries() -> None:
    modules = _modules_of("--help")
    assert {target.split(":")[0] for target in COMMANDS.values()} <= modules  # each command's help line
    assert _loaded(modules, ("dkproto.iokit", "dkproto.capture", "dkproto.usb", "dkproto.session.importer",
                             "usb", "usb1", "hid", "importlib.metadata", "importlib.resources")) == []


def test_help_lists_every_command_with_its_own_help_line() -> None:
    import click

    from dkproto.cli import cli

    ctx = click.Context(cli, info_name="dkproto")
    listed = cli.get_help(ctx).split("Commands:\n", 1)[1].splitlines()
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)
    for line in listed:
        name, text = line.split(None, 1)
        cmd = cli.get_command(ctx, name)
        assert cmd is not None and cmd.help is not None
        shown = text.removesuffix("...").strip()
        assert shown and " ".join(cmd.help.split()).startswith(shown), (name, text)


# --- the lazy packages ------------------------------------------------------------------------------

_LAZY_PROBE = """
import importlib, json, sys
pkg = importlib.import_module(sys.argv[1])
before = sorted(m for m in sys.modules if m.startswith(sys.argv[1] + "."))
same = {}
for name in pkg.__all__:
    value = getattr(pkg, name)
    home = importlib.import_module(sys.argv[1] + "." + pkg._LAZY[name])
    same[name] = getattr(home, name) is value
ns = {}
exec(f"from {sys.argv[1]} import *", ns)
print(json.dumps({"before": before, "same": same, "star": sorted(k for k in ns if k != "__builtins__"),
                  "dir": sorted(set(pkg.__all__) - set(dir(pkg)))}))
"""


@pytest.mark.parametrize("package", ["dkproto.transport", "dkproto.usb"])
def test_a_lazy_package_loads_nothing_until_asked_and_exports_the_same_objects(package: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _LAZY_PROBE, package], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    found = json.loads(proc.stdout)
    assert found["before"] == []
    assert found["same"] and all(found["same"].values()), found["same"]
    module = __import__(package, fromlist=["__all__"])
    assert found["star"] == sorted(module.__all__)
    assert found["dir"] == []


@pytest.mark.parametrize("package", ["dkproto.transport", "dkproto.usb"])
def test_a_lazy_package_says_which_name_it_lacks(package: str) -> None:
    module = __import__(package, fromlist=["__all__"])
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        _ = module.no_such_name


def test_submodules_the_eager_init_loaded_are_still_attributes() -> None:
    import dkproto.transport
    import dkproto.usb

    assert dkproto.transport.base.Transport is dkproto.transport.Transport
    assert dkproto.usb.walker.walk is dkproto.usb.walk


def test_dump_iter_live_is_the_readers_and_can_be_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    import dkproto.cli.dump as dump_mod
    from dkproto.usb.read import iter_live

    assert dump_mod.iter_live is iter_live
    monkeypatch.setattr(dump_mod, "iter_live", lambda *a: iter(()))
    assert list(dump_mod._live_reader()(None, None, None, None)) == []


# --- the transport registry scans entry points only when it must -------------------------------------


def test_opening_a_built_in_scheme_scans_no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from dkproto.transport import open_transport, registry

    def scan() -> dict[str, metadata.EntryPoint]:
        raise AssertionError("entry points scanned")

    monkeypatch.setattr(registry, "_entry_points", scan)
    with open_transport(f"sim://{USB_FILE}") as t:
        assert t.info.scheme == "sim"


def test_an_unknown_scheme_still_lists_every_scheme() -> None:
    from dkproto.errors import URLError
    from dkproto.transport import open_transport, schemes

    for url in ("nope://x", "no scheme at all"):
        with pytest.raises(URLError) as info:
            open_transport(url)
        assert f"SCHEME one of {', '.join(schemes())} (wrappers stack" in str(info.value)


# --- the entry-point pre-check -------------------------------------------------------------------------


@contextmanager
def _sys_path(*entries: str) -> Iterator[None]:
    saved = sys.path[:]
    sys.path[:] = list(entries)
    try:
        yield
    finally:
        sys.path[:] = saved


def _dist(folder: Path, name: str, entry_points: bytes | None) -> None:
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (info / "entry_points.txt").write_bytes(entry_points)


def _reference(group: str) -> list[tuple[str, str]]:
    return sorted((ep.name, ep.value) for ep in metadata.entry_points(group=group))


def test_a_group_nobody_declares_needs_no_importlib_metadata(tmp_path: Path) -> None:
    _dist(tmp_path, "alpha", b"[console_scripts]\nalpha = alpha:main\n")
    _dist(tmp_path, "beta", None)
    (tmp_path / "gamma-1.0.egg-info").write_text("Name: gamma\n")  # a one-file egg-info
    with _sys_path(str(tmp_path), str(tmp_path / "missing")):
        assert not _entry_points.may_declare("my.plugins")
        assert _entry_points.entry_points("my.plugins") == ()
        assert _reference("my.plugins") == []
        assert _entry_points.may_declare("console_scripts")
        assert sorted((e.name, e.value) for e in _entry_points.entry_points("console_scripts")) \
            == _reference("console_scripts") == [("alpha", "alpha:main")]


@pytest.mark.parametrize("case", ["declared", "not ascii", "zip", "egg"])
def test_anything_unusual_goes_to_importlib_metadata(tmp_path: Path, case: str) -> None:
    entries = [str(tmp_path)]
    if case == "declared":
        _dist(tmp_path, "alpha", b"[my.plugins]\nx = alpha.x\n")
    elif case == "not ascii":
        _dist(tmp_path, "alpha", "[console_scripts]\nx = caf\u00e9:main\n".encode())
    elif case == "zip":
        archive = tmp_path / "bundle.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("alpha-1.0.dist-info/entry_points.txt", "[my.plugins]\nx = alpha.x\n")
            z.writestr("alpha-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n")
        entries.append(str(archive))
    else:
        (tmp_path / "alpha-1.0-py3.11.egg").mkdir()
        entries.append(str(tmp_path / "alpha-1.0-py3.11.egg"))
    with _sys_path(*entries):
        assert _entry_points.may_declare("my.plugins")
        assert sorted((e.name, e.value) for e in _entry_points.entry_points("my.plugins")) == _reference("my.plugins")


def test_a_finder_that_finds_distributions_goes_to_importlib_metadata(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    class Finder:
        @staticmethod
        def find_distributions(context: object = None) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    with _sys_path(str(tmp_path)):
        assert _entry_points.may_declare("my.plugins")


@pytest.mark.parametrize("group", ["console_scripts", "dkproto.transports", "pytest11", "dkproto.schemas",
                                   "dkproto.no-such-group"])
def test_this_environment_agrees_with_importlib_metadata(group: str) -> None:
    assert sorted((e.name, e.value) for e in _entry_points.entry_points(group)) == _reference(group)
    if not _entry_points.may_declare(group):
        assert _reference(group) == []


# --- usb.ids read as bytes -----------------------------------------------------------------------------

_IDS = (
    "# Version: 2099.01.01\n"
    "#\n"
    "1234  Caf\u00e9 Devices\n"
    "\t0001  Gadget \xff\n"
    "\n"
    "\t00ab  Gizmo\n"
    "abcd  Other\n"
    "C 02  Communications\n"
    "\t02  Abstract (modem)\n"
    "\t\t01  AT-commands (v.25ter)\n"
    "C 09  Hub\n"
    "\t00  Unused\n"
    "\t\t01  Single TT\n"
    "C 09  A second hub line\n"
).encode("utf-8", errors="surrogateescape").replace(b"\xc3\xbf", b"\xff")  # one byte that is not UTF-8


@pytest.fixture
def ids_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "usb.ids"
    monkeypatch.setenv("DKPROTO_USB_IDS", str(path))

    def reset() -> None:
        usbids._data = None
        usbids._classes_at = None
        for f in (usbids.vendor_name, usbids.product_name, usbids.class_name, usbids.subclass_name,
                  usbids.protocol_name):
            f.cache_clear()

    reset()
    yield path
    monkeypatch.delenv("DKPROTO_USB_IDS")
    reset()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_usb_ids_names_from_a_copy(ids_file: Path, newline: bytes) -> None:
    ids_file.write_bytes(_IDS.replace(b"\n", newline))
    assert usbids.version() == "2099.01.01"
    assert usbids.vendor_name(0x1234) == "Caf\u00e9 Devices"
    assert usbids.product_name(0x1234, 0x0001) == "Gadget \ufffd"  # the bad byte replaced
    assert usbids.product_name(0x1234, 0x00AB) == "Gizmo"  # past a blank line
    assert usbids.product_name(0x1234, 0x0002) is None
    assert usbids.vendor_name(0xABCD) == "Other" and usbids.vendor_name(0x0002) is None
    assert usbids.class_name(0x09) == "Hub"  # the first of two lines
    assert usbids.subclass_name(0x02, 0x02) == "Abstract (modem)"
    assert usbids.protocol_name(0x02, 0x02, 0x01) == "AT-commands (v.25ter)"
    assert usbids.protocol_name(0x09, 0x00, 0x01) == "Single TT"
    assert usbids.class_name(0x03) is None and usbids.subclass_name(0x03, 0) is None


def test_usb_ids_missing_copy_names_nothing(ids_file: Path) -> None:
    assert usbids.vendor_name(0x1D6B) is None and usbids.class_name(9) is None and usbids.version() is None


def test_usb_ids_packaged_copy() -> None:
    assert usbids.vendor_name(0x1D6B) == "Linux Foundation"
    assert usbids.product_name(0x1D50, 0x6089) == "Great Scott Gadgets HackRF One SDR"
    assert usbids.class_name(0xFF) == "Vendor Specific Class"
    assert usbids.protocol_name(0x09, 0x00, 0x01) == "Single TT"
