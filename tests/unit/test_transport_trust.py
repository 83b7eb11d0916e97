"""Trust: transports and the poke/serial commands refuse bad input with one line and its IOReturn;
``sim://`` calls nothing it should not; ``spy+`` output reaches stderr."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_in_process import cli

from dkproto.errors import BadArgumentError, NotPermittedError, URLError
from dkproto.ioreturn import IOReturn
from dkproto.transport import open_transport
from dkproto.transport.mock import MockTransport
from dkproto.transport.sim import SimDevice, SimTransport, loopback_device

BAD_ARG = f"[kIOReturnBadArgument (0x{int(IOReturn.kIOReturnBadArgument):08x})]"


# ---- control transfers: every field checked in the base, for every transport -------------------------

@pytest.mark.parametrize(("args", "says"), [
    ((0x40, 1, 0, 0, bytes(65536)), "65,536 bytes of OUT data do not fit wLength (16-bit, at most 65,535)"),
    ((0x40, 1, 0, 0, 12), "an OUT request (bmRequestType 0x40) takes its data stage as bytes, not int 12"),
    ((0x40, 1, 0, 0, "text"), "takes its data stage as bytes, not str"),
    ((0x80, 6, 0x100, 0, 65536), "wLength 65536 is not an integer 0..0xFFFF"),
    ((0x80, 6, 0x100, 0, b"\x12"), "an IN request (bmRequestType 0x80) takes wLength (an int), not bytes"),
    ((0x100, 6, 0, 0, 0), "bmRequestType 256 is not an integer 0..0xFF"),
    ((0x80, -1, 0, 0, 0), "bRequest -1 is not an integer 0..0xFF"),
    ((0x80, 6, 0x10000, 0, 0), "wValue 65536 is not an integer 0..0xFFFF"),
    ((0x80, 6, 0, True, 0), "wIndex True is not an integer"),
    ((0x80, 6, 0, 0, 0, -5), "timeout -5 is not an integer >= 0"),
])
def test_control_transfer_fields_checked(args: tuple[Any, ...], says: str) -> None:
    seen: list[Any] = []
    transports = [SimTransport(loopback_device(), "sim://loopback"), MockTransport(seen.append),
                  open_transport("spy+sim://loopback")]
    for t in transports:
        with t, pytest.raises(BadArgumentError) as info:
            t.control_transfer(*args)
        assert says in str(info.value), type(t).__name__
        assert info.value.ioreturn == IOReturn.kIOReturnBadArgument
    assert seen == []  # refused before the back end saw it


def test_control_transfer_edges_pass() -> None:
    with SimTransport(loopback_device(), "sim://loopback") as t:
        assert t.control_transfer(0x40, 0x01, 0xFFFF, 0xFFFF, bytearray(65535)) == 65535  # type: ignore[arg-type]
        assert len(bytes(t.control_transfer(0xC0, 0x02, 0, 0, 65535))) == 65535  # type: ignore[arg-type]
        assert t.control_transfer(0x00, 0x09, 1, 0, None) == 0


def test_write_refuses_an_int() -> None:
    with SimTransport(loopback_device(), "sim://loopback") as t, pytest.raises(BadArgumentError, match="not int 5"):
        t.write(0x02, 5)  # type: ignore[arg-type]


# ---- sim:// only serves profiles, descriptor files and SimDevices -------------------------------------

@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"dk_trust_sim_{uuid.uuid4().hex[:8]}"  # one module per test: its MARK is this test's
    (tmp_path / f"{name}.py").write_text(
        "from pathlib import Path\n"
        "from dkproto.transport.sim import SimDevice, loopback_device\n"
        "MARK = Path(__file__).with_name('called')\n"
        "def side_effect():\n    MARK.write_text('x')\n    return loopback_device()\n"
        "def make() -> SimDevice:\n    return loopback_device()\n"
        "def make_broken() -> SimDevice:\n    raise RuntimeError('factory boom')\n"
        "INSTANCE = loopback_device()\n"
        "class Sub(SimDevice):\n"
        "    def __init__(self):\n        super().__init__(loopback_device().device_descriptor)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("attr", ["side_effect", "MARK", "nothing_here"])
def test_sim_refuses_other_attributes_before_calling(user_module: str, tmp_path: Path, attr: str) -> None:
    with pytest.raises(URLError, match="not a SimDevice, a SimDevice subclass or a function annotated"):
        open_transport(f"sim://{user_module}:{attr}")
    assert not (tmp_path / "called").exists()


@pytest.mark.parametrize("attr", ["make", "INSTANCE", "Sub"])
def test_sim_serves_simdevices(user_module: str, attr: str) -> None:
    with open_transport(f"sim://{user_module}:{attr}") as t:
        assert bytes(t.control_transfer(0x80, 6, 0x100, 0, 18))[:2] == b"\x12\x01"
        assert isinstance(t.device, SimDevice)  # type: ignore[attr-defined]


def test_sim_factory_raising_points_at_it(user_module: str) -> None:
    with pytest.raises(Exception, match=r"dk_trust_sim_\w+\.py:10: make_broken\(\) raised RuntimeError: factory boom"):
        open_transport(f"sim://{user_module}:make_broken")


@pytest.mark.parametrize("url", ["sim://sys:exit", "sim://json:loads", "sim://os:getcwd",
                                 "sim://dkproto.transport.sim:SimDevice", "sim://no_such_module_xyz:x"])
def test_cli_sim_module_attr_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["ctrl", url, "0x80", "6", "0x100", "0", "18"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"dkproto: bad transport URL '{url}'") and BAD_ARG in err


def test_sim_unreadable_file_is_not_permitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "descriptors"
    f.write_bytes(bytes(18))
    f.chmod(0)
    if os.geteuid() == 0:  # root reads a mode-0 file: have open() answer as the kernel does for a user
        real_open = os.open

        def denied(path: object, *args: object, **kw: object) -> int:
            if os.fspath(path) == str(f):  # type: ignore[arg-type]
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "open", denied)
    with pytest.raises(NotPermittedError):
        SimDevice.from_file(f)


def test_sim_directory_is_bad_argument(tmp_path: Path) -> None:
    with pytest.raises(BadArgumentError, match="is a directory"):
        SimDevice.from_file(tmp_path)


# ---- URL options and command-line numbers --------------------------------------------------------------

@pytest.mark.parametrize(("url", "says"), [
    ("usb://1d6b:0104?interface=x", "option interface='x' is not an integer"),
    ("usb://1d6b:0104?interface=256", "option interface=256 is out of range 0..255"),
    ("serial:///dev/ttyX?baudrate=abc", "option baudrate='abc' is not an integer"),
    ("serial+loop://?parity=Q", "option parity='Q' is not one of"),
    ("sim://loopback?interface=-1", "out of range"),
    ("hid://1d6b:0104?usage_page=0x10000", "out of range"),
])
def test_url_options_of_wrong_type(url: str, says: str) -> None:
    with pytest.raises(URLError, match=says.replace("(", r"\(").replace(".", r"\.")):
        open_transport(url)


@pytest.mark.parametrize(("args", "says"), [
    (["ctrl", "sim://loopback", "0x80", "6", "0x100", "0", "99999999"], "wLength: 99999999 is out of range"),
    (["ctrl", "sim://loopback", "0x40", "1", "0", "0", "zz"], "DATA: 'zz' is not hex bytes"),
    (["ctrl", "sim://loopback", "0x40", "1", "0", "0", "00" * 65536], "do not fit wLength"),
    (["ctrl", "sim://loopback", "0x1ff", "1", "0", "0"], "bmRequestType: 511 is out of range"),
    (["read", "sim://loopback", "0x02"], "EP: 0x02 is an OUT endpoint"),
    (["write", "sim://loopback", "0x02", "0g"], "DATA: '0g' is not hex bytes"),
    (["serial", "expect", "serial+loop://", "(", "--regex"],
     "PATTERN '(' is not a regular expression: missing ), unterminated subpattern at position 0"),
])
def test_cli_bad_numbers_and_data(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(args, capsys)
    assert code == 1 and says in err and err.count("\n") == 1 and BAD_ARG in err


# ---- spy+ output reaches stderr in every verb ------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["ctrl", "spy+sim://loopback", "0x80", "6", "0x100", "0", "18"],
    ["write", "spy+sim://loopback", "0x02", "41 42"],
    ["serial", "send", "spy+serial+loop://", "41", "--read", "100"],
    ["serial", "expect", "spy+serial+loop://", "hi", "--send", "hi", "-t", "500"],
])
def test_spy_reaches_stderr(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(args, capsys)
    assert code == 0, err
    assert " > open" in err and " > close" in err
    assert "\n0000  " in err  # the hex dump of the bytes moved


def test_spy_uses_logging_when_configured(caplog: pytest.LogCaptureFixture,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level("INFO", logger="dkproto.spy")
    with open_transport("spy+sim://loopback") as t:
        t.control_transfer(0x80, 6, 0x100, 0, 2)
    assert "control_transfer" in caplog.text and "control_transfer" not in capsys.readouterr().err


def test_no_python_traceback_for_sys_exit_profile() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "dkproto", "ctrl", "sim://sys:exit", "0x80", "6", "0x100", "0",
                          "18"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1 and "sys.exit is a builtin_function_or_method" in out.stderr
