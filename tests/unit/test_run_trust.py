"""Trust: a user's driver, app or Info.plist that misbehaves ends in one line with an IOReturn (never a
traceback, a stall or a silent exit 0); user-client arguments are refused, not wrapped; nothing is
left in the temp folder."""

from __future__ import annotations

import os
import plistlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_in_process import cli

from dkproto.errors import BadArgumentError, DecodeError, DkError
from dkproto.iokit import (
    IOService,
    IOUserClient,
    ServiceState,
    UserClientServer,
    external_method,
    io_connect_call_method,
    io_service_close,
    io_service_open,
    start_service,
)
from dkproto.iokit.connect import MAX_OUTPUT_STRUCT, RemoteService
from dkproto.iokit.matching import score_personality
from dkproto.iokit.personality import Personality, load_entitlements, load_info_plist
from dkproto.iokit.runner import load_driver_module, run_driver
from dkproto.iokit.status import user_code_error
from dkproto.ioreturn import IOReturn
from dkproto.transport.sim import SimTransport, loopback_device

ROOT = Path(__file__).resolve().parents[2]
VB = ROOT / "devices" / "vendor-bulk"
PLIST = plistlib.loads((VB / "Info.plist").read_bytes())
BAD = f"[kIOReturnError (0x{int(IOReturn.kIOReturnError):08x})]"

DRIVER_HEAD = """\
from dkproto.iokit import IOService


class VendorBulkDriver(IOService):
    def start(self, provider):
        super().start(provider)
        self.register_service()
"""


def make_driver(tmp_path: Path, body: str = DRIVER_HEAD, plist: dict[str, Any] | None = None) -> Path:
    (tmp_path / "Info.plist").write_bytes(plistlib.dumps(plist or PLIST))
    path = tmp_path / "driver.py"
    path.write_text(body)
    return path


def sim() -> SimTransport:
    return SimTransport(loopback_device(), "sim://loopback")


# ---- the user's own code -------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "line", "text"), [
    ("def f(:\n", 1, "importing the driver raised SyntaxError"),
    ("import dkproto_no_such_module_xyz\n", 1, "raised ModuleNotFoundError: No module named"),
    ("x = 1\nraise RuntimeError('at import')\n", 2, "importing the driver raised RuntimeError: at import"),
    ("import sys\nsys.exit(0)\n", 2, "importing the driver called sys.exit(0)"),
])
def test_driver_that_does_not_import(tmp_path: Path, source: str, line: int, text: str) -> None:
    path = make_driver(tmp_path, source)
    with pytest.raises(DkError) as info:
        load_driver_module(path)
    assert info.value.ioreturn == IOReturn.kIOReturnError
    assert f"driver.py:{line}: " in str(info.value) and text in str(info.value)
    assert not any(getattr(m, "__file__", None) == str(path) for m in list(sys.modules.values()))


def test_driver_start_raising_points_at_its_line(tmp_path: Path) -> None:
    path = make_driver(tmp_path, DRIVER_HEAD.replace("self.register_service()", "raise RuntimeError('boom')"))
    with pytest.raises(DkError, match=r"driver\.py:7: start\(\) raised RuntimeError: boom") as info:
        run_driver(path, sim())
    assert type(info.value) is DkError and info.value.ioreturn == IOReturn.kIOReturnError


def test_driver_stop_raising_does_not_stall_and_is_reported(tmp_path: Path) -> None:
    path = make_driver(tmp_path, DRIVER_HEAD + "\n    def stop(self, provider):\n        raise RuntimeError('stop boom')\n")
    running = run_driver(path, sim())
    t0 = time.monotonic()
    with pytest.raises(DkError, match=r"driver\.py:10: stop\(\) raised RuntimeError: stop boom"):
        running.stop()
    assert time.monotonic() - t0 < 3
    assert running.driver.state is ServiceState.FREED and running.nub.state is ServiceState.FREED
    running.stop()  # reported once


def test_free_raising_still_frees(tmp_path: Path) -> None:
    class Leaky(IOService):
        def free(self) -> None:
            raise ValueError("free boom")

    svc = start_service(Leaky(), None)
    svc.terminate()
    assert svc.wait_terminated(2) and svc.state is ServiceState.FREED
    assert [(m, str(e)) for m, e in svc.terminate_errors] == [("free", "free boom")]


def test_user_code_error_shapes(tmp_path: Path) -> None:
    user = tmp_path / "app.py"
    user.write_text("def main():\n    raise KeyError('k')\n")
    ns: dict[str, Any] = {}
    exec(compile(user.read_text(), str(user), "exec"), ns)  # noqa: S102
    try:
        ns["main"]()
    except KeyError as exc:
        err = user_code_error(exc, "running the app", user)
    assert str(err).endswith("app.py:2: main() raised KeyError: 'k' (running the app)")
    kept = user_code_error(BadArgumentError("nope"), "starting X", user)
    assert kept.ioreturn == IOReturn.kIOReturnBadArgument and "nope" in str(kept)


def test_cli_run_stop_raising_one_line_exit_1(tmp_path: Path) -> None:
    path = make_driver(tmp_path, DRIVER_HEAD + "\n    def stop(self, provider):\n        raise RuntimeError('stop boom')\n")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "dkproto", "run", str(path), "--device", "sim://loopback"],
                         input="", capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert time.monotonic() - t0 < 15
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"dkproto: driver.py:10: stop() raised RuntimeError: stop boom (stopping VendorBulkDriver) {BAD}" \
        in out.stderr.splitlines()


def test_cli_run_app_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    driver = make_driver(tmp_path)
    app = tmp_path / "app.py"
    app.write_text("def main(service):\n    raise RuntimeError('app boom')\n")
    code, _, err = cli(["run", str(driver), "--device", "sim://loopback", "--app", str(app)], capsys)
    assert code == 1 and "Traceback" not in err
    assert "app.py:2: main() raised RuntimeError: app boom (running the app)" in err
    code, _, err = cli(["run", str(driver), "--device", "sim://loopback", "--app", str(app), "--traceback"], capsys)
    assert code == 1 and "Traceback" in err and err.rstrip().endswith(BAD)
    app.write_text("import sys\ndef main(service):\n    sys.exit(3)\n")
    code, _, err = cli(["run", str(driver), "--device", "sim://loopback", "--app", str(app)], capsys)
    assert code == 3 and "app.py:3: main() called sys.exit(3)" in err and "VendorBulkDriver freed" in err
    app.write_text("x = (\n")
    code, _, err = cli(["run", str(driver), "--device", "sim://loopback", "--app", str(app)], capsys)
    assert code == 1 and "app.py:1: importing the app raised SyntaxError" in err


def test_cli_run_driver_start_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    driver = make_driver(tmp_path, DRIVER_HEAD.replace("self.register_service()", "raise RuntimeError('boom')"))
    code, _, err = cli(["run", str(driver), "--device", "sim://loopback"], capsys)
    assert code == 1
    assert err.strip().splitlines()[-1].endswith(f"driver.py:7: start() raised RuntimeError: boom "
                                                 f"(starting VendorBulkDriver) {BAD}")
    (tmp_path / "driver.py").write_text("import sys\nsys.exit()\n")
    code, _, err = cli(["run", str(driver), "--device", "sim://loopback"], capsys)
    assert code == 1 and "driver.py:2: importing the driver called sys.exit(None)" in err


# ---- Info.plist and entitlements: wrong types are refused, naming the key --------------------------

@pytest.mark.parametrize(("key", "value", "says"), [
    ("idProductMask", "0xff00", "idProductMask is a string ('0xff00'), must be an integer 0..0xFFFF"),
    ("idVendor", "4617", "idVendor is a string ('4617'), must be an integer 0..0xFFFF or '*'"),
    ("idProduct", 1.5, "idProduct is a real (1.5)"),
    ("idProductArray", [1, "2"], "idProductArray[1] is a string ('2')"),
    ("idProductArray", 7, "idProductArray is an integer (7), must be an array"),
    ("bcdDevice", -1, "bcdDevice -1 is out of range"),
    ("bcdDeviceLow", "1", "bcdDeviceLow is a string"),
    ("bcdDeviceHigh", True, "bcdDeviceHigh is a boolean (True)"),
    ("bInterfaceNumber", 256, "bInterfaceNumber 256 is out of range, must be an integer 0..0xFF or '*'"),
    ("bInterfaceClass", "255", "bInterfaceClass is a string"),
    ("bConfigurationValue", [1], "bConfigurationValue is an array"),
    ("IOProviderClass", 3, "IOProviderClass is an integer (3), must be a string"),
    ("IOClass", {}, "IOClass is a dictionary, must be a string"),
    ("IOUserClass", b"x", "IOUserClass is data"),
    ("IOProbeScore", "1000", "IOProbeScore is a string ('1000'), must be a 32-bit integer"),
    ("IOMatchCategory", 1, "IOMatchCategory is an integer"),
    ("UserClientProperties", "x", "UserClientProperties is a string ('x'), must be a dictionary"),
    ("UserClientProperties", {"IOUserClass": 1}, "UserClientProperties/IOUserClass is an integer"),
    ("IOPropertyMatch", [], "IOPropertyMatch is an array, must be a dictionary"),
    ("DeviceUsagePairs", [1], "DeviceUsagePairs[0] is an integer (1), must be a dictionary"),
])
def test_info_plist_key_of_wrong_type(tmp_path: Path, key: str, value: Any, says: str) -> None:
    d = {**PLIST, "IOKitPersonalities": {"P": {**PLIST["IOKitPersonalities"]["VendorBulkDriver"], key: value}}}
    (tmp_path / "Info.plist").write_bytes(plistlib.dumps(d))
    with pytest.raises(DecodeError) as info:
        load_info_plist(tmp_path / "Info.plist")
    assert says in str(info.value) and "IOKitPersonalities/P" in str(info.value)
    assert info.value.ioreturn == IOReturn.kIOReturnBadArgument


@pytest.mark.parametrize(("doc", "says"), [
    (b"not a plist at all", "not a property list"),
    (plistlib.dumps([1, 2]), "top level is not a dictionary"),
    (plistlib.dumps({"IOKitPersonalities": [1]}), "IOKitPersonalities is an array, must be a dictionary"),
    (plistlib.dumps({"IOKitPersonalities": {"P": 5}}), "personality is not a dictionary"),
    (plistlib.dumps({"CFBundleIdentifier": 5, "IOKitPersonalities": {}}), "CFBundleIdentifier is an integer"),
])
def test_info_plist_shape(tmp_path: Path, doc: bytes, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Info.plist").write_bytes(doc)
    code, _, err = cli(["match", str(tmp_path / "Info.plist"), str(ROOT / "descriptors" / "hackrf-one.json")],
                       capsys)
    assert code == 1 and says in err and err.count("\n") == 1 and "kIOReturnBadArgument" in err


def test_entitlements_and_direct_personalities_are_not_coerced(tmp_path: Path) -> None:
    ents = tmp_path / "x.entitlements"
    ents.write_bytes(plistlib.dumps({"com.apple.developer.driverkit.transport.usb": [{"idVendor": 1},
                                                                                     {"idProductMask": "ff"}]}))
    with pytest.raises(DecodeError, match=r"entry \[1\]: idProductMask is a string \('ff'\)"):
        load_entitlements(ents)
    from dkproto.iokit.matching import candidates_for, device_from_dict

    cand = candidates_for(device_from_dict({"idVendor": 0x1209, "idProduct": 1}))[0]
    for props in ({"idVendor": "0x1209", "idProduct": 1}, {"idVendor": 0x1209, "idProduct": 1, "idProductMask": "x"}):
        r = score_personality(Personality("P", {"IOProviderClass": "IOUSBHostDevice", "IOUserClass": "X", **props}),
                              cand)
        assert not r.matched and "is a string" in r.reasons[-1]


@pytest.mark.parametrize(("doc", "says"), [
    ('{"idVendor": "4617", "idProduct": 1}', "idVendor is '4617', must be an integer 0..0xFFFF"),
    ('{"idVendor": 1e400, "idProduct": 1}', "idVendor is inf"),
    ('{"idVendor": 1, "idProduct": 1, "interfaces": [5]}', "interfaces[0]: is int, must be an object"),
    (('{"idVendor": 1, "idProduct": 1, "interfaces": [{"bInterfaceNumber": 0, "bInterfaceClass": 3, '
      '"hid_usages": [[1]]}]}'), "hid_usages must be a list of [usage page, usage] integer pairs"),
])
def test_device_dict_of_wrong_type(tmp_path: Path, doc: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dev.json").write_text(doc)
    code, _, err = cli(["match", str(VB / "Info.plist"), str(tmp_path / "dev.json")], capsys)
    assert code == 1 and says in err and "dev.json: device dict" in err and err.count("\n") == 1


# ---- the user client: arguments are refused, never wrapped or coerced ---------------------------------

class EchoClient(IOUserClient):
    @external_method(0)
    def echo(self, reference: Any, args: Any) -> None:
        args.scalar_output[:len(args.scalar_input)] = list(args.scalar_input)
        args.structure_output = args.structure_input_bytes()


class EchoService(IOService):
    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        self.register_service()

    def new_user_client(self, client_type: int) -> IOUserClient:
        if client_type == 7:
            raise RuntimeError("no such type")
        return start_service(EchoClient(), self)  # type: ignore[return-value]


@pytest.fixture
def echo() -> Any:
    svc = start_service(EchoService(), None)
    conn = io_service_open(svc, 0)
    yield svc, conn
    io_service_close(conn)
    svc.terminate()
    svc.wait_terminated(2)


@pytest.mark.parametrize(("kw", "says"), [
    ({"input": [-1]}, "input scalar [0] = -1 is outside uint64_t"),
    ({"input": [0, 1 << 64]}, "input scalar [1] = 18446744073709551616 is outside uint64_t"),
    ({"input": [1.0]}, "input scalar [0] must be an int"),
    ({"input": 5}, "input scalars must be a sequence of ints, not int"),
    ({"input_struct": 12345}, "the input structure must be bytes-like, not int"),
    ({"input_struct": "text"}, "the input structure must be bytes-like, not str"),
    ({"output_cnt": -1}, "outputCnt -1 is outside 0..16"),
    ({"output_cnt": True}, "outputCnt must be an int"),
    ({"output_struct_cnt": MAX_OUTPUT_STRUCT + 1}, f"outputStructCnt {MAX_OUTPUT_STRUCT + 1} is outside"),
    ({"output_struct_cnt": -2}, "outputStructCnt -2 is outside"),
])
def test_call_method_refuses_bad_arguments(echo: Any, kw: dict[str, Any], says: str) -> None:
    _, conn = echo
    with pytest.raises(BadArgumentError) as info:
        io_connect_call_method(conn, 0, **kw)
    assert says in str(info.value) and info.value.ioreturn == IOReturn.kIOReturnBadArgument


def test_call_method_accepts_the_edges(echo: Any) -> None:
    _, conn = echo
    r = io_connect_call_method(conn, 0, [0, (1 << 64) - 1], memoryview(b"ab"),  # type: ignore[arg-type]
                               output_cnt=2, output_struct_cnt=2)
    assert r.scalar_output == [0, (1 << 64) - 1] and r.struct_output == b"ab"


def test_open_with_new_user_client_raising(echo: Any) -> None:
    svc, _ = echo
    with pytest.raises(DkError, match=r"test_run_trust\.py:\d+: new_user_client\(\) raised RuntimeError: no such"):
        io_service_open(svc, 7)


def test_remote_refuses_bad_arguments_and_survives(echo: Any, tmp_path: Path, monkeypatch: Any) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    svc, _ = echo
    server = UserClientServer(svc)
    try:
        conn = io_service_open(RemoteService(server.address, server.authkey), 0)
        with pytest.raises(BadArgumentError):
            io_connect_call_method(conn, 0, [-1])
        reply = conn._remote.request(("call", 1))  # type: ignore[union-attr]  # a malformed request
        assert reply[0] == "err" and reply[1] == int(IOReturn.kIOReturnBadArgument)
        assert io_connect_call_method(conn, 0, [5], output_cnt=1).scalar_output == [5]
        io_service_close(conn)
    finally:
        server.close()
    assert list(tmp_path.iterdir()) == []


# ---- nothing left behind: temp folders, sockets, processes -----------------------------------------

#: Runs the command after it with SIGINT back to its default. A test run started in the background by
#: a shell (``cmd &``) has SIGINT ignored, children inherit that, and Python then never turns SIGINT
#: into KeyboardInterrupt: the Ctrl-C these tests send would be lost.
SIGINT_DEFAULT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "os.execvp(sys.argv[1], sys.argv[1:])"]


def run_in_tmpdir(tmp_path: Path, app_source: str | None) -> tuple[subprocess.Popen[str], Path]:
    """``dkproto run vendor-bulk --app APP --process`` with TMPDIR a fresh folder (APP: the example's)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    app = VB / "app.py"
    if app_source is not None:
        app = tmp_path / "app.py"
        app.write_text(app_source)
    proc = subprocess.Popen([*SIGINT_DEFAULT, sys.executable, "-m", "dkproto", "run", str(VB / "driver.py"), "--device",
                             "sim://loopback", "--app", str(app), "--process"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ, TMPDIR=str(tmpdir)))
    return proc, tmpdir


@pytest.mark.parametrize(("source", "status"), [(None, 0), ("import sys\nsys.exit(4)\n", 4)])
def test_process_run_leaves_nothing(tmp_path: Path, source: str | None, status: int) -> None:
    proc, tmpdir = run_in_tmpdir(tmp_path, source)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    if status:
        assert "dkproto: " in err and "the app process exited with status 4 [kIOReturnError" in err
    assert list(tmpdir.iterdir()) == []


def test_process_run_leaves_nothing_after_ctrl_c(tmp_path: Path) -> None:
    source = ("import signal, sys, time\nsignal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
              "print(sys.argv[0], flush=True)\ntime.sleep(60)\n")
    proc, tmpdir = run_in_tmpdir(tmp_path, source)
    assert proc.stdout is not None and proc.stdout.readline().strip().endswith("app.py")
    assert [p.name[:11] for p in tmpdir.iterdir()] == ["dkproto-uc-"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; stopping the driver" in err and "Traceback" not in err
    assert list(tmpdir.iterdir()) == []
    out = subprocess.run(["pgrep", "-f", str(tmp_path / "app.py")], capture_output=True, text=True,
                         check=False)
    assert out.stdout == ""


def test_an_app_process_ignoring_sigint_is_killed(monkeypatch: Any) -> None:
    from dkproto.cli import run as run_mod

    monkeypatch.setattr(run_mod, "APP_GRACE_S", 0.3)
    script = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    t0 = time.monotonic()
    run_mod._end_process(proc)
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - t0 < 3
    proc.stdout.close()
