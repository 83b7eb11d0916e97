"""HID end to end in the lab VM: gadgets on dummy_hcd, usbhid/hidraw, hidapi, `dkproto hid`.

Run with ``python -m pytest --lab tests/lab/test_hid.py``.

* input reports written on the device side (``/dev/hidgN``) are read and decoded through the
  API (:class:`dkproto.hid.device.HidDevice`) and through ``dkproto hid watch``;
* output reports (``write``) reach the device side;
* feature reports (GET_REPORT/SET_REPORT) go both ways with a FunctionFS HID device
  (``devices/lab/ffs-hid-ups.json``, ``devices/lab/hid_ups.py``), since Linux 6.1's configfs
  ``hid`` function answers GET_REPORT with zeros and refuses SET_REPORT(Feature);
* the descriptor read live through hidapi parses to the same layouts as the kernel's own
  parse in ``/sys/kernel/debug/hid/*/rdesc``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from corpus_path import HID_SETS

from dkproto.errors import DkError, DkTimeoutError
from dkproto.hid import parse
from dkproto.hid.codec import DescriptorCodec
from dkproto.hid.device import HidDevice, enumerate_devices
from dkproto.hid.rdesc import compare, parse_rdesc

pytestmark = pytest.mark.lab

DEVICES = Path(__file__).resolve().parents[2] / "devices" / "lab"


def definition_descriptor(name: str) -> bytes:
    """The report descriptor a gadget definition serves (independent of what the host reads)."""
    spec = json.loads((DEVICES / f"{name}.json").read_text())
    if name == "ffs-hid-ups":  # the FunctionFS example program next to the definition
        from dkproto.lab.devices import load_definition
        from dkproto.lab.gadget import load_program

        return bytes(load_program("hid_ups.py:UPS_REPORT_DESCRIPTOR", load_definition(DEVICES / f"{name}.json")))
    return bytes.fromhex(spec["functions"]["hid.0"]["attrs"]["report_desc"]["hex"])


def hidraw(g: Any, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = g.host_nodes("hidraw")
        if nodes:
            return nodes[0]
        time.sleep(0.1)
    raise AssertionError(f"no hidraw node for {g.name}: usbhid did not bind")


def wait_opened(proc: subprocess.Popen[str], node: str, timeout: float = 20.0) -> None:
    """Wait until a process has the hidraw node open (reports sent before that are not seen)."""
    real = os.path.realpath(node)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                try:
                    if os.readlink(fd) == real:
                        return
                except OSError:
                    continue
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{proc.args} never opened {node}")


def dk(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dkproto", *args], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------- input


def test_input_reports_decode_through_the_api(lab_gadget: Any) -> None:
    g = lab_gadget("hid-mouse")
    node = hidraw(g)
    codec = DescriptorCodec(parse(definition_descriptor("hid-mouse")))
    wanted = [
        {"Button 1": 1, "X": -5, "Y": 3},
        {"Button 2": 1, "Button 5": 1, "X": 2047, "Y": -2047, "Wheel": -127, "AC Pan": 127},
        {},
    ]
    with HidDevice(node) as dev:
        assert dev.descriptor.data == definition_descriptor("hid-mouse")  # hid_get_report_descriptor
        for values in wanted:
            report = codec.build(values, report_id=1)
            g.send_report(report)
            raw = dev.read(2000)
            assert raw == report
            v = codec.decode(raw)
            got = dev.codec.decode(raw)
            assert dict(got) == dict(v) and got.report_id == 1
            for k, x in values.items():
                assert got[k] == x
        g.send_report(codec.build({"X": 7}, report_id=1))
        assert dev.read_values(2000)["X"] == 7
        with pytest.raises(DkTimeoutError):
            dev.read(100)


def test_watch_shows_decoded_reports_changes_and_rate(lab_gadget: Any) -> None:
    g = lab_gadget("hid-mouse")
    node = hidraw(g)
    codec = DescriptorCodec(parse(definition_descriptor("hid-mouse")))
    reports = [codec.build(v, report_id=1) for v in ({"X": -5, "Y": 3}, {"X": -5, "Y": 3}, {"X": 9, "Button 1": 1})]
    proc = subprocess.Popen([sys.executable, "-m", "dkproto", "hid", "watch", node, "--count", "3", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_opened(proc, node)
        for r in reports:
            g.send_report(r)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["values"] for x in lines] == [dict(codec.decode(r)) for r in reports]
    assert all(x["report_id"] == 1 for x in lines)
    assert "X" in lines[0]["changed"] and lines[1]["changed"] == []
    assert sorted(lines[2]["changed"]) == ["Button 1", "X", "Y"]
    assert lines[0]["t"] <= lines[1]["t"] <= lines[2]["t"] and lines[2]["rate"] > 0

    # the text form marks changed values with '*'
    proc = subprocess.Popen([sys.executable, "-m", "dkproto", "hid", "watch", node, "--count", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_opened(proc, node)
        g.send_report(reports[0])
        time.sleep(0.05)
        g.send_report(reports[2])
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    first, second = out.splitlines()[:2]
    assert "[1] " in first and "X=-5" in first and "Y=3" in first
    assert "X=9*" in second and "Button 1=1*" in second and "Wheel=0 " in second and "reports/s" in second


# --------------------------------------------------------------------------------------- output


def test_output_reports_reach_the_gadget(lab_gadget: Any) -> None:
    g = lab_gadget("hid-keyboard")
    node = hidraw(g)
    g.drain_reports()  # the kernel's own LED report at bind
    with HidDevice(node) as dev:
        sent = dev.write_values(0, {"Caps Lock": 1, "Scroll Lock": 1})
        assert sent == bytes([0b110])  # Caps Lock is LED usage 2 (bit 1), Scroll Lock usage 3 (bit 2)
        assert g.read_report(timeout=2.0) == sent
    r = dk("hid", "write", node, "0", "Num Lock=1")
    assert r.returncode == 0, r.stderr
    assert g.read_report(timeout=2.0) == bytes([0b001])
    r = dk("hid", "write", node, "0", "Num Lock=2")
    assert r.returncode == 1 and "outside the logical range 0..1" in r.stderr and "Traceback" not in r.stderr


def test_output_report_with_an_id_reaches_the_gadget(lab_gadget: Any) -> None:
    g = lab_gadget("hid-gamepad")
    node = hidraw(g)
    g.drain_reports()
    with HidDevice(node) as dev:
        key = dev.codec.codec("output", 5).keys[0]
        sent = dev.write_values(5, {key: [1, 2, 3]})
        assert sent[:4] == bytes([5, 1, 2, 3]) and len(sent) == 32
        assert g.read_report(timeout=2.0) == sent


# -------------------------------------------------------------------------------------- feature


def test_feature_reports_both_ways_through_functionfs(lab_gadget: Any) -> None:
    g = lab_gadget("ffs-hid-ups")
    node = hidraw(g)
    ffs = g.ffs()
    codec = DescriptorCodec(parse(definition_descriptor("ffs-hid-ups")))
    c6 = codec.codec("feature", 6)
    ffs.hid.features[6] = c6.build({"Remaining Capacity": 80, "Run Time To Empty": 1234})
    with HidDevice(node) as dev:
        raw = dev.get_feature(6)  # GET_REPORT(Feature, 6)
        assert raw == ffs.hid.features[6]
        v = dev.get_feature_values(6)
        assert (v["Remaining Capacity"], v["Run Time To Empty"]) == (80, 1234)
        sent = dev.set_feature_values(6, {"Remaining Capacity": 42, "Run Time To Empty": 600})  # SET_REPORT
        deadline = time.monotonic() + 2.0
        while ffs.hid.features[6] != sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ffs.hid.features[6] == sent == c6.build({"Remaining Capacity": 42, "Run Time To Empty": 600})
        assert dev.get_feature_values(6)["Run Time To Empty"] == 600
    r = dk("hid", "set-feature", node, "6", "Remaining Capacity=55", "Run Time To Empty=7")
    assert r.returncode == 0, r.stderr
    assert ffs.hid.features[6] == c6.build({"Remaining Capacity": 55, "Run Time To Empty": 7})
    r = dk("hid", "get-feature", node, "6", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["values"] == {"Remaining Capacity": 55, "Run Time To Empty": 7}


# ---------------------------------------------------------------------------- descriptor vs kernel


def _debugfs_rdesc(vid: int, pid: int) -> str:
    base = Path("/sys/kernel/debug/hid")
    if not base.exists():
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"], check=False)
    tag = f"0003:{vid:04X}:{pid:04X}."
    found = sorted(p for p in base.iterdir() if p.name.startswith(tag))
    assert found, f"no {tag}* in {base}: {[p.name for p in base.iterdir()]}"
    return (found[-1] / "rdesc").read_text()


@pytest.mark.parametrize("name", ["hid-mouse", "hid-keyboard", "hid-gamepad", "hid-multitouch", "ffs-hid-ups"])
def test_live_descriptor_agrees_with_the_kernels_parse(lab_gadget: Any, name: str) -> None:
    g = lab_gadget(name)
    node = hidraw(g)
    with HidDevice(node) as dev:
        live = dev.report_descriptor_bytes()
    assert live == definition_descriptor(name)
    info = [i for i in enumerate_devices() if i.path == node]
    assert info and info[0].bus_type == "usb"
    dump = parse_rdesc(_debugfs_rdesc(info[0].vendor_id, info[0].product_id))
    rd = parse(live)
    assert dump.reports, "the kernel parsed no report"
    assert compare(rd, dump) == []
    r = dk("hid", "parse", node, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["reports"]) == len(rd.reports)


def test_list_shows_the_gadget(lab_gadget: Any) -> None:
    g = lab_gadget("hid-mouse")
    node = hidraw(g)
    r = dk("hid", "list")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith(node))
    assert "1d6b:0105" in line and "Generic Desktop / Mouse" in line and "'hid-mouse'" in line
    with HidDevice("1d6b:0105:dklab-hid-mouse") as dev:  # open by VID:PID:serial
        assert dev.path == node


# ------------------------------------------------------------------- the whole corpus, live


def _corpus_items() -> list[Path]:
    return list(HID_SETS)


def _definition(tmp: Path, index: int, name: str, data: bytes) -> Path:
    """A gadget definition serving one report descriptor (wrapped like the oracle: 1209:7xxx)."""
    spec = {
        "name": f"rd-{name}"[:60],
        "kind": "gadget",
        "description": f"report descriptor {name}",
        "device": {"idVendor": "0x1209", "idProduct": f"0x{0x7000 + index:04x}", "bcdDevice": "0x0100",
                   "bcdUSB": "0x0200"},
        "strings": {"manufacturer": "dkproto lab", "product": name[:60], "serialnumber": f"rd{index}"},
        "functions": {"hid.0": {"attrs": {"protocol": 0, "subclass": 0, "report_length": 64,
                                          "report_desc": {"hex": data.hex()}}}},
        "configs": [{"MaxPower": 100, "configuration": "HID", "functions": ["hid.0"]}],
        "modules": ["usbhid", "hid_generic"],
    }
    path = tmp / f"rd-{index}.json"
    path.write_text(json.dumps(spec))
    return path


def _rdesc_under(g: Any, timeout: float = 10.0) -> str:
    """The debugfs rdesc of the HID device under a gadget's host-side USB device."""
    deadline = time.monotonic() + timeout
    base = Path("/sys/kernel/debug/hid")
    while time.monotonic() < deadline:
        dev = g.host_sysfs(optional=True)
        if dev is not None:
            for p in dev.rglob("0003:1209:*"):
                if (base / p.name / "rdesc").exists():
                    return (base / p.name / "rdesc").read_text()
        time.sleep(0.1)
    raise AssertionError(f"no HID device (debugfs rdesc) under {g.name}")


def _serve_and_compare(lab_gadget: Any, tmp: Path, named: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Serve each descriptor from a gadget (4 at a time), compare dkproto's parse of what hidapi
    reads back with the kernel's debugfs rdesc. Returns the failures by name."""
    failures: dict[str, Any] = {}
    checked: list[str] = []
    batch = 4  # one gadget per dummy_hcd controller (and Linux's f_hid allows 4 hid functions)
    for start in range(0, len(named), batch):
        gadgets = []
        for k, (name, data) in enumerate(named[start:start + batch]):
            g = lab_gadget(str(_definition(tmp, start + k, name, data)), bind=False)
            g.bind(wait=0)
            gadgets.append((name, data, g))
        for name, data, g in gadgets:
            try:
                rd = parse(data)
                if rd.kernel_error is None:
                    g.wait_configured(30)
                else:
                    # No HID driver will bind: wait for the device, then for its debugfs entry.
                    deadline = time.monotonic() + 30
                    while g.state() != "configured" and time.monotonic() < deadline:
                        time.sleep(0.05)
                dump = parse_rdesc(_rdesc_under(g, 30))
                if rd.kernel_error is None:
                    with HidDevice(hidraw(g)) as dev:
                        live = dev.report_descriptor_bytes()
                    assert live == data, "descriptor read through hidapi differs"
                    rd = parse(live)
                diffs = compare(rd, dump)
                if diffs:
                    failures[name] = diffs[:5]
                checked.append(name)
            except (AssertionError, DkError) as exc:
                failures[name] = str(exc)
            finally:
                g.remove()  # f_hid has 4 minors: the tree must go, not only the binding
    assert len(checked) + len(failures) >= len(named)
    return failures


def test_whole_corpus_live_agrees_with_the_kernel(lab_gadget: Any, tmp_path: Path) -> None:
    """Every corpus descriptor served by a gadget: the bytes read back through hidapi parse to
    the same layouts as the kernel's own parse of them (debugfs rdesc)."""
    items = _corpus_items()
    assert items
    named = [(p.stem, bytes.fromhex(json.loads(p.read_text())["report_descriptor_hex"])) for p in items]
    assert _serve_and_compare(lab_gadget, tmp_path, named) == {}


# Hand-made quirks: what the kernel accepts, refuses or bends, and dkproto's model of it.
_M = "0501 0902 a101 0901 a100 "
QUIRKS = {
    "logical-min-above-max": _M + "0930 1505 2501 7508 9501 8102 c0 c0",  # refused (HID006)
    "pop-underflow": _M + "b4 0930 1500 2501 7508 9501 8102 c0 c0",  # refused (HID012)
    "report-id-zero": _M + "8500 0930 1500 2501 7508 9501 8102 c0 c0",  # refused (HID008)
    "reserved-global-tag": _M + "c501 0930 1500 2501 7508 9501 8102 c0 c0",  # refused (HID018)
    "report-size-zero": _M + "0930 1500 2501 7500 9501 8102 0931 7508 8102 c0 c0",  # accepted in 6.1
    "usage-page-after-usages": _M + "0930 0931 0509 1500 2501 7501 9502 8102 7506 9501 8101 c0 c0",
    "more-usages-than-count": _M + "0930 0931 0938 1581 257f 7508 9502 8106 c0 c0",
    "array-usages-repeat": "0507 0906 a101 1900 2903 1500 2505 7508 9504 8100 c0",
    "push-pop-report-id": "0501 0902 a101 8501 7508 9501 1500 26ff00 a4 8502 7510 0930 8102 b4 0931 8102 c0",
    "extended-usage": "0501 0902 a101 0b38020c00 1581 257f 7508 9501 8106 c0",
    "delimiter": "0501 0902 a101 a901 0930 a900 a901 0931 a900 1500 26ff00 7508 9501 8102 c0",
    "unit-exponent-nibble": "0501 0902 a101 0930 550e 6511 3500 46e803 1500 26ff0f 7510 9501 8102 c0",
    "stray-zero-at-end": _M + "0930 1500 2501 7508 9501 8102 c0 c0 00",
    "long-item": _M + "fe0112ab 0930 1500 2501 7508 9501 8102 c0 c0",  # refused (HID017)
    "end-collection-extra": "0501 0902 a101 0930 1500 2501 7508 9501 8102 c0 c0",  # refused (HID001)
    "usage-range-inverted": "0509 0902 a101 1905 2903 1500 2501 7501 9503 8102 c0",
    "257-fields": "0501 0902 a101 1500 2501 7501 9501" + " 0930 8102" * 257 + " c0",
}


def test_quirks_live_agree_with_the_kernel(lab_gadget: Any, tmp_path: Path) -> None:
    """Malformed and quirky descriptors: the kernel's verdict (refused, or its parse) is dkproto's."""
    named = [(k, bytes.fromhex(v.replace(" ", ""))) for k, v in QUIRKS.items()]
    refused = {k for k, data in named if parse(data).kernel_error is not None}
    assert refused == {"logical-min-above-max", "pop-underflow", "report-id-zero", "reserved-global-tag",
                       "long-item", "end-collection-extra"}
    assert _serve_and_compare(lab_gadget, tmp_path, named) == {}
