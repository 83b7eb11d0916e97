"""The hardware-in-the-loop tier of dkproto's pytest plugin (``dkproto.pytest_plugin.hil``), run
with pytester: options and their environment fallbacks, the device markers and fixtures,
skip reasons, ``--dk-hw``, record then replay against a ``sim://`` device, and a replay that
diverges from its recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dkproto.pytest_plugin.hil import recording_name

pytest_plugins = ["pytester"]

#: A sim:// device that can be "unplugged": with BENCH_UNPLUGGED set, opening it raises
#: NoDeviceError, as a USB device that is not attached does. Proves a replay opens no device.
BENCH = '''
import os
from dkproto.errors import NoDeviceError
from dkproto.transport.sim import SimDevice, loopback_device

OPENED = []

def make() -> SimDevice:
    if os.environ.get("BENCH_UNPLUGGED"):
        raise NoDeviceError("bench device unplugged")
    OPENED.append(1)
    return loopback_device()
'''

ECHO = '''
import pytest

@pytest.mark.dk_device("sim://bench:make")
def test_echo(dk_transport, dk_mode):
    assert dk_transport.write(0x02, b"abc") == 3
    assert dk_transport.read(0x81, 64) == b"abc"
    assert dk_transport.control_transfer(0x40, 0x01, 0, 0, b"stored") == 6
    assert dk_transport.control_transfer(0xC0, 0x02, 0, 0, 64) == b"stored"
    print("MODE", dk_mode)
'''

MISSING = "1209:fff7"  # a pid.codes test ID no machine here has


@pytest.fixture()
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("DKPROTO_URL", "DKPROTO_HW", "DKPROTO_RECORD_DIR", "DKPROTO_REPLAY_DIR", "DKPROTO_REPLAY_STRICT",
                "DKPROTO_RECORD", "DKPROTO_REPLAY", "BENCH_UNPLUGGED"):
        monkeypatch.delenv(var, raising=False)
    pytester.makepyfile(bench=BENCH)
    pytester.syspathinsert()
    return pytester


# ---- options, markers, skips -------------------------------------------------------------------

def test_options_and_markers_are_registered(bench: pytest.Pytester) -> None:
    res = bench.runpytest("--help")
    res.stdout.fnmatch_lines(["*--dk-url=URL*", "*--dk-hw*", "*--dk-record=DIR*", "*--dk-replay=DIR*",
                              "*--dk-replay-strict=MODE*"])
    res = bench.runpytest("--markers")
    res.stdout.fnmatch_lines(["*@pytest.mark.dk_device(URL_OR_VID_PID*usb://VID:PID*",
                              "*@pytest.mark.dk_hid(URL_OR_VID_PID*hid://VID:PID*",
                              "*@pytest.mark.dk_serial(URL_OR_VID_PID*", "*@pytest.mark.dk_recordings(DIR)*"])


def test_a_missing_device_skips_with_a_reason_naming_it(bench: pytest.Pytester) -> None:
    bench.makepyfile(test_missing=f'''
import pytest

@pytest.mark.dk_device("{MISSING}")
def test_usb(dk_transport):
    raise AssertionError("must not run")

@pytest.mark.dk_hid("{MISSING}")
def test_hid(dk_url):
    raise AssertionError("must not run")

@pytest.mark.dk_serial("/dev/ttyDKNOPE0")
def test_serial():
    raise AssertionError("must not run")
''')
    res = bench.runpytest("-rs")
    res.assert_outcomes(skipped=3)
    res.stdout.fnmatch_lines([
        f"*dk_device usb://{MISSING}: no such device attached (run with --dk-hw to fail instead, "
        "or --dk-replay DIR)*",
        f"*dk_hid hid://{MISSING}: no such device attached*",
    ])
    res.stdout.fnmatch_lines(["*dk_serial serial:///dev/ttyDKNOPE0: no such device attached*"])


@pytest.mark.parametrize("how", ["option", "env"])
def test_dk_hw_makes_a_missing_device_fail(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                           how: str) -> None:
    bench.makepyfile(test_missing=f'''
import pytest

@pytest.mark.dk_device("{MISSING}")
def test_usb(dk_transport):
    raise AssertionError("must not run")
''')
    if how == "env":
        monkeypatch.setenv("DKPROTO_HW", "1")
    res = bench.runpytest(*(["--dk-hw"] if how == "option" else []))
    res.assert_outcomes(errors=1)
    res.stdout.fnmatch_lines([f"*dk_device usb://{MISSING}: no such device attached (--dk-hw)*"])
    assert "must not run" not in res.stdout.str()


@pytest.mark.parametrize("how", ["option", "env"])
def test_dk_url_overrides_the_marker(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    bench.makepyfile(test_url=f'''
import pytest

@pytest.mark.dk_device("{MISSING}")
def test_url(dk_url, dk_transport):
    assert dk_url == "sim://loopback"
    assert dk_transport.info.idVendor == 0x1209 and dk_transport.is_open
''')
    if how == "env":
        monkeypatch.setenv("DKPROTO_URL", "sim://loopback")
    res = bench.runpytest(*(["--dk-url", "sim://loopback"] if how == "option" else []))
    res.assert_outcomes(passed=1)


def test_bare_ids_and_urls_in_markers(bench: pytest.Pytester) -> None:
    bench.makepyfile(test_urls='''
import pytest
from dkproto.pytest_plugin.hil import target_url

pytestmark = pytest.mark.dk_hid("1209:fff7")

@pytest.mark.dk_device("sim://loopback")
def test_url_kept(request, dk_url):
    assert dk_url == "sim://loopback" == target_url(request.node)

@pytest.mark.dk_device("sim://hid-keyboard")
def test_the_test_marker_wins_over_the_module_marker(dk_url):
    assert dk_url == "sim://hid-keyboard"

@pytest.mark.dk_device("not a device")
def test_bad_spec(dk_url):
    pass

def test_module_marker(dk_url):
    assert dk_url == "hid://1209:fff7"
''')
    bench.makepyfile(test_nomark='''
def test_no_device_named(dk_url):
    pass

def test_not_a_hardware_test(dk_mode):
    assert dk_mode is None
''')
    res = bench.runpytest("-rs")
    res.assert_outcomes(passed=3, skipped=1, errors=2)
    res.stdout.fnmatch_lines(["*dk_hid hid://1209:fff7: no such device attached*"])
    res.stdout.fnmatch_lines(["*dk_device('not a device'): not a transport URL (SCHEME://...) nor a VID:PID*"])
    res.stdout.fnmatch_lines(["*test_no_device_named uses a dk_* fixture but names no device: mark it*"])


def test_fixtures_give_the_transport_the_usb_nub_the_driver_and_its_user_client(bench: pytest.Pytester) -> None:
    vb = Path(__file__).resolve().parents[2] / "devices" / "vendor-bulk"
    bench.makepyfile(test_fixtures=f'''
import sys
import pytest
from dkproto.iokit import IOUSBHostDevice, ServiceState

sys.path.insert(0, {str(vb)!r})
import client

@pytest.mark.dk_device("sim://loopback")
def test_usb_device(dk_usb_device, dk_transport):
    assert isinstance(dk_usb_device, IOUSBHostDevice) and dk_usb_device.transport is dk_transport
    assert dk_usb_device.properties["idVendor"] == 0x1209 and len(dk_usb_device.interfaces) == 1

@pytest.mark.dk_device("1209:0001", driver={str(vb / "driver.py")!r})
def test_driver(dk_driver, dk_user_client):
    assert type(dk_driver.driver).__name__ == "VendorBulkDriver"
    assert dk_driver.driver.state is ServiceState.STARTED
    assert client.write(dk_user_client, b"ping") == 4
    assert client.read(dk_user_client, 64) == b"ping"

@pytest.mark.dk_device("sim://loopback")
def test_no_driver_beside_the_test(dk_driver):
    pass
''')
    res = bench.runpytest("--dk-url", "sim://loopback", "-k", "driver")
    res.assert_outcomes(passed=1, errors=1)
    res.stdout.fnmatch_lines(["*dk_driver: no driver file driver.py*"])
    res = bench.runpytest("-k", "usb_device")
    res.assert_outcomes(passed=1)


def test_recording_names() -> None:
    assert recording_name("devices/vendor-bulk/test_vendor_bulk.py::test_echo[64]") == \
        "devices_vendor-bulk_test_vendor_bulk.py__test_echo_64.jsonl"
    assert recording_name("t.py::C::test[a/b c]") == "t.py__C__test_a_b_c.jsonl"
    long = recording_name("t.py::test[" + "x" * 300 + "]")
    assert len(long) == 150 + len(".jsonl") and long != recording_name("t.py::test[" + "x" * 299 + "y]")


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--dk-record", "a", "--dk-replay", "b"], {}, "*--dk-record and --dk-replay*exclude each other*"),
    (["--dk-record", "a"], {"DKPROTO_RECORD": "x.jsonl"}, "*DKPROTO_RECORD is set*and so is --dk-record*"),
    ([], {"DKPROTO_REPLAY_DIR": "a", "DKPROTO_REPLAY": "x.jsonl"}, "*DKPROTO_REPLAY is set*--dk-replay*"),
    ([], {"DKPROTO_REPLAY_STRICT": "loose"}, "*DKPROTO_REPLAY_STRICT='loose': expected one of exact, order, endpoints*"),
    (["--dk-replay-strict", "loose"], {}, "*--dk-replay-strict: invalid choice: 'loose'*"),
])
def test_options_that_do_not_go_together(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                         args: list[str], env: dict[str, str], message: str) -> None:
    bench.makepyfile(test_x="def test_x():\n    pass\n")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    res = bench.runpytest(*args)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([message])


# ---- record and replay -------------------------------------------------------------------------

def _record(bench: pytest.Pytester, rec: Path, *extra: str) -> pytest.RunResult:
    res = bench.runpytest("-s", "--dk-record", str(rec), *extra)
    res.assert_outcomes(passed=1)
    return res


def test_record_then_replay_without_the_device(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    bench.makepyfile(test_echo=ECHO)
    rec = bench.path / "recordings"
    res = _record(bench, rec)
    res.stdout.fnmatch_lines(["*MODE record", "*dkproto hil: 1 test(s) recorded into recordings*"])
    path = rec / "test_echo.py__test_echo.jsonl"
    assert sorted(p.name for p in rec.iterdir()) == [path.name]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == "dkproto-session"
    ops = [e["op"] for e in lines[1:]]
    assert ops[0] == "open" and lines[1]["url"] == "sim://bench:make"
    assert {"write", "read", "control", "close"} <= set(ops)

    monkeypatch.setenv("BENCH_UNPLUGGED", "1")  # the device is gone: a live run skips...
    bench.runpytest().assert_outcomes(skipped=1)
    res = bench.runpytest("-s", "--dk-replay", str(rec))  # ...a replay passes without it
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*MODE replay", "*dkproto hil: 1 test(s) replayed from recordings*"])
    monkeypatch.setenv("DKPROTO_REPLAY_DIR", str(rec))  # the environment fallback
    bench.runpytest().assert_outcomes(passed=1)
    monkeypatch.delenv("DKPROTO_REPLAY_DIR")
    for strict in ("exact", "order", "endpoints"):
        bench.runpytest("--dk-replay", str(rec), "--dk-replay-strict", strict).assert_outcomes(passed=1)


def test_record_dir_from_the_environment(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    bench.makepyfile(test_echo=ECHO)
    monkeypatch.setenv("DKPROTO_RECORD_DIR", "envrec")
    bench.runpytest().assert_outcomes(passed=1)
    assert (bench.path / "envrec" / "test_echo.py__test_echo.jsonl").is_file()


def test_a_changed_recorded_byte_fails_the_replay_at_that_transfer(bench: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bench.makepyfile(test_echo=ECHO)
    rec = bench.path / "recordings"
    _record(bench, rec)
    path = rec / "test_echo.py__test_echo.jsonl"
    lines = path.read_text().splitlines()
    (n, write), = [(i, json.loads(line)) for i, line in enumerate(lines) if '"op":"write"' in line]
    assert write["data"] == b"abc".hex()
    lines[n] = lines[n].replace('"data":"616263"', '"data":"616264"')  # the recording wrote b"abd"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("BENCH_UNPLUGGED", "1")
    res = bench.runpytest("--dk-replay", str(rec))
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    res.stdout.fnmatch_lines([
        "*replay mismatch (recording recordings/test_echo.py__test_echo.jsonl, strict=order, "
        "the test was at test_echo.py:5)*",
        f"*{path.name}*",
    ])
    assert "616264" in out or "abd" in out  # what the recording expected...
    assert "616263" in out or "abc" in out  # ...and what came
    assert "dkproto/transport/replay.py" not in out  # no traceback into dkproto
    assert "1 test(s) replayed from recordings (1 failed)" in out


def test_a_missing_recording_skips_or_fails_with_dk_hw(bench: pytest.Pytester) -> None:
    bench.makepyfile(test_echo=ECHO)
    (bench.path / "empty").mkdir()
    res = bench.runpytest("-rs", "--dk-replay", "empty")
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines([
        "*dk_device sim://bench:make: no recording empty/test_echo.py__test_echo.jsonl (record it with "
        "--dk-record DIR where the device is attached)*"])
    res.stdout.fnmatch_lines(["*dkproto hil: 1 test(s) had no recording in empty*"])
    res = bench.runpytest("--dk-replay", "empty", "--dk-hw")
    res.assert_outcomes(errors=1)
    res.stdout.fnmatch_lines(["*no recording empty/test_echo.py__test_echo.jsonl (--dk-hw)*"])


def test_committed_recordings_replay_when_the_device_is_missing(bench: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bench.makepyfile(test_echo="import pytest\npytestmark = pytest.mark.dk_recordings('committed')\n" + ECHO)
    _record(bench, bench.path / "committed")
    res = bench.runpytest("-s")  # the device is attached: live, no replay
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*MODE live"])
    monkeypatch.setenv("BENCH_UNPLUGGED", "1")
    res = bench.runpytest("-s")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*MODE replay", "*dkproto hil: 1 test(s) replayed from committed*"])
    bench.runpytest("--dk-hw").assert_outcomes(errors=1)  # --dk-hw wants the hardware itself
    (bench.path / "committed" / "test_echo.py__test_echo.jsonl").unlink()
    res = bench.runpytest("-rs")
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["*no such device attached*"])


def test_the_driver_fixtures_record_and_replay(bench: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    vb = Path(__file__).resolve().parents[2] / "devices" / "vendor-bulk"
    bench.makepyfile(test_vb=f'''
import sys
import pytest

sys.path.insert(0, {str(vb)!r})
import client

@pytest.mark.dk_device("sim://bench:make", driver={str(vb / "driver.py")!r})
def test_vendor_bulk(dk_user_client):
    assert client.write(dk_user_client, b"hello, dext") == 11
    assert client.read(dk_user_client, 512) == b"hello, dext"
    assert client.stats(dk_user_client) == (11, 11)
''')
    rec = bench.path / "rec"
    _record(bench, rec)
    monkeypatch.setenv("BENCH_UNPLUGGED", "1")
    bench.runpytest("--dk-replay", str(rec)).assert_outcomes(passed=1)
