"""``read_descriptor_set(transport)``: a whole descriptor set through control transfers only.

Served by ``sim://`` (every corpus set, and two full devices: a high-speed hub with a BOS, hub
descriptor, device qualifier, other-speed configuration and strings in two LANGIDs, and a HID
device with its report descriptor), watched through ``spy+``, and broken by a wrapper that
shortens, lengthens or refuses answers. The live path (``read.read_device``) is run here on
``sim://`` standing in for ``usb://BUS/ADDRESS``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from usb_corpus import SLUGS, set_path

import dkproto.transport
from dkproto.device import ControlRequest, control_request
from dkproto.errors import DecodeError, DkTimeoutError, NoDeviceError, NotPermittedError, PipeStalledError
from dkproto.transport import open_transport
from dkproto.transport.base import Transport, TransportWrapper
from dkproto.transport.sim import SimDevice, SimTransport
from dkproto.transport.usb import UsbDeviceInfo
from dkproto.usb import (
    DescriptorSet,
    from_bytes,
    load,
    parse,
    render_hex,
    render_json,
    render_text,
    to_json,
)
from dkproto.usb import read as read_mod
from dkproto.usb.read import read_descriptor_set

RENDERERS = (render_text, render_json, render_hex)


def same_set(read: DescriptorSet, served: DescriptorSet) -> None:
    """Everything but ``source`` and ``meta`` is identical, the three renderings included."""
    assert read.to_bytes() == served.to_bytes()
    assert read.bos_bytes() == served.bos_bytes()
    assert [n.to_bytes() for n in read.extras] == [n.to_bytes() for n in served.extras]
    assert {k: n.raw for k, n in read.strings.items()} == {k: n.raw for k, n in served.strings.items()}
    assert read.hid_report_descriptors == served.hid_report_descriptors
    assert [str(e) for e in read.errors] == [str(e) for e in served.errors]
    assert [str(w) for w in read.warnings] == [str(w) for w in served.warnings]
    read.source, read.meta = served.source, served.meta
    for render in RENDERERS:
        assert render(read) == render(served), render.__name__


# -- every corpus set over sim://FILE ---------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_every_corpus_set_reads_back_through_sim(slug: str) -> None:
    path = set_path(slug)
    served = load(path)
    read = read_descriptor_set(open_transport(f"sim://{path}"))
    assert read.source == f"sim://{path}"
    # what only the read says: the pieces the file does not hold (no strings, no hub descriptor...)
    assert set(read.meta) <= {"bos_error", "hub_descriptor_error", "strings_error", "hid_report_errors"}
    before = {r.__name__: r(read) for r in RENDERERS}
    same_set(read, served)
    # renderings differ only where source and meta are shown: the title line, JSON's keys
    text = before["render_text"].splitlines()
    assert text[0] == f"# sim://{path}" and text[1:] == render_text(served).splitlines()[1:]
    hexed = before["render_hex"].splitlines()
    assert hexed[0] == f"# dkproto descriptors: sim://{path}"
    assert hexed[1:] == render_hex(served).splitlines()[1:]


def test_the_requests_made_are_the_ones_the_set_justifies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dkproto.spy")
    transport = open_transport("spy+sim://descriptors/hackrf-one.json")
    read_descriptor_set(transport)
    assert not transport.is_open  # opened here, closed here
    log = transport.inner.device.log  # type: ignore[attr-defined]
    # device, configuration head and whole, qualifier (bcdUSB 2.00: STALL, none), string 0 (STALL)
    assert [(r.bmRequestType, r.bRequest, r.wValue, r.wIndex, r.wLength) for r in log] == [
        (0x80, 6, 0x0100, 0, 18), (0x80, 6, 0x0200, 0, 9), (0x80, 6, 0x0200, 0, 32),
        (0x80, 6, 0x0600, 0, 10), (0x80, 6, 0x0300, 0, 255)]
    spied = [r.getMessage() for r in caplog.records if "> control_transfer" in r.getMessage()]
    assert len(spied) == len(log) and "wValue=0x100" in spied[0]


# -- full devices ---------------------------------------------------------------------------------

HUB_DEVICE = bytes.fromhex("12011002090002406b1d010100010102" "0301")
HUB_CONFIG = bytes.fromhex("0902190001010400e0" "090400000109000005" "0705810301000c")
HUB_BOS = bytes.fromhex("050f0c0001" "07100206000000")
HUB_CLASS = bytes.fromhex("092904e000326400ff")
QUALIFIER = bytes.fromhex("0a060002090001400100")
OTHER_SPEED = bytes.fromhex("0907190001010000e0" "090400000109000006" "070581030100ff")
TEXTS = {1: "dkproto", 2: "sim hub", 3: "0042", 4: "hub config", 5: "hub interface", 6: "full speed"}


def string(text: str) -> bytes:
    body = text.encode("utf-16-le")
    return bytes([2 + len(body), 3]) + body


def hub_set() -> DescriptorSet:
    strings = {(0, 0): bytes.fromhex("06030904" "0704")}
    for langid in (0x0409, 0x0407):
        strings.update({(langid, i): string(f"{t} {langid:04x}") for i, t in TEXTS.items()})
    return parse(HUB_DEVICE + HUB_CONFIG, HUB_BOS, strings=strings,
                 extras=[HUB_CLASS, QUALIFIER, OTHER_SPEED], source="hub")


RDESC = bytes.fromhex("05010902a1010901a100050919012903150025019503750181029505750181010501093009311581"
                      "257f750895028106c0c0")
HID_DEVICE = bytes.fromhex("12011001000000084d2a010000010000" "0001")
HID_CONFIG = (bytes.fromhex("090222000101008032" "090400000103010200" "09211101000122")
              + len(RDESC).to_bytes(2, "little") + bytes.fromhex("0705810304000a"))


def hid_set() -> DescriptorSet:
    return parse(HID_DEVICE + HID_CONFIG, source="mouse", hid_report_descriptors={0: RDESC})


def test_a_high_speed_hub_reads_whole() -> None:
    served = hub_set()
    assert served.ok and len(served.extras) == 3 and served.langids() == [0x0409, 0x0407]
    device = SimDevice.from_set(served, name="hub")
    read = read_descriptor_set(SimTransport(device))
    assert read.meta == {}  # nothing missing
    same_set(read, served)
    assert read.string(6, 0x0407) == "full speed 0407"  # named by the other-speed configuration only
    requests = [(r.bmRequestType, r.wValue >> 8) for r in device.log]
    assert requests[:7] == [(0x80, 1), (0x80, 2), (0x80, 2), (0x80, 0x0F), (0x80, 0x0F), (0xA0, 0x29),
                            (0xA0, 0x29)]
    assert requests[7:10] == [(0x80, 6), (0x80, 7), (0x80, 7)]
    assert requests[10:] == [(0x80, 3)] * (1 + 2 * 6)  # string 0, then 6 strings in 2 LANGIDs


# A SuperSpeed root hub as Linux's xHCI driver presents it (bcdUSB 3.00, one interrupt IN with its
# companion) and its 12-byte SuperSpeed hub descriptor (0x2A, USB 3.2 §10.15.2.1): 4 ports.
SS_HUB_DEVICE = bytes.fromhex("12010003090003096b1d030006010302" "0101")
SS_HUB_CONFIG = bytes.fromhex("09021f00010100e000" "090400000109000000" "0705810304000c" "063000000200")
SS_HUB_CLASS = bytes.fromhex("0c2a0409000a00000000" "0000")


class XhciRootHub(SimDevice):
    """``usb://2/1`` in the lab: GetHubDescriptor STALLs unless it asks for 0x2A with a wLength of
    at least 12 (xhci_hub_control), and answers 15 bytes cut to wLength (rh_call_control)."""

    def __init__(self) -> None:
        super().__init__(None, name="xhci-ss-root-hub",
                         descriptor_set=parse(SS_HUB_DEVICE + SS_HUB_CONFIG, extras=[SS_HUB_CLASS]))

    @control_request(type="class", recipient="device", number=0x06, direction="in")
    def get_hub_descriptor(self, req: ControlRequest) -> bytes:
        if req.wValue != 0x2A00 or req.wLength < 12:
            raise PipeStalledError("Wrong hub descriptor type for USB 3.0 roothub")
        return SS_HUB_CLASS + b"\0\0\0"


@pytest.mark.parametrize("device", [XhciRootHub, lambda: SimDevice.from_set(
    parse(SS_HUB_DEVICE + SS_HUB_CONFIG, extras=[SS_HUB_CLASS]), name="ss-hub")], ids=["xhci-root-hub", "sim"])
def test_a_superspeed_hub_descriptor_is_read_in_one_request(device: Callable[[], SimDevice]) -> None:
    sim = device()
    read = read_descriptor_set(SimTransport(sim))
    assert read.errors == [] and "hub_descriptor_error" not in read.meta
    (hub,) = [n for n in read.extras if n.key in ("hub", "superspeed_hub")]
    assert hub.key == "superspeed_hub" and hub["bNbrPorts"] == 4 and hub.raw == SS_HUB_CLASS
    asked = [(r.wValue, r.wLength) for r in sim.log if r.bmRequestType == 0xA0]
    assert asked == [(0x2A00, 12)]  # its one size, at once: a 2-byte head STALLs on an xHCI root hub
    assert "SuperSpeed Hub Descriptor:" in render_text(read)


def test_a_hub_set_without_its_descriptor_stalls_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sim = SimDevice.from_set(parse(HUB_DEVICE + HUB_CONFIG), name="hub")
    read = read_descriptor_set(SimTransport(sim))
    assert read.meta["hub_descriptor_error"] == "hub descriptor request stalled" and read.extras == []
    assert caplog.records == []  # the set lacks it: nothing to add, nothing logged


def test_a_hid_device_reads_its_report_descriptor() -> None:
    served = hid_set()
    assert served.ok
    device = SimDevice.from_set(served, name="mouse", report_descriptors={0: RDESC})
    read = read_descriptor_set(SimTransport(device))
    same_set(read, served)
    assert read.hid_report_descriptors == {0: RDESC}
    (last,) = [r for r in device.log if r.bmRequestType == 0x81]
    assert (last.wValue, last.wIndex, last.wLength) == (0x2200, 0, len(RDESC))
    assert f"interface 0: {len(RDESC)} bytes" in render_text(read)


def test_report_descriptors_reload_from_json_and_hex() -> None:
    served = hid_set()
    for text in (render_json(served), render_hex(served)):
        again = from_bytes(text.encode())
        assert again.hid_report_descriptors == {0: RDESC} and again.to_bytes() == served.to_bytes()
    assert "hid_report_descriptors" not in to_json(load(set_path(SLUGS[0])))  # only when there are some
    with pytest.raises(DecodeError, match="interface number is 0..255"):
        from_bytes(b"[hid report 256]\n05 01")
    with pytest.raises(DecodeError, match="needs an object with interface"):
        from_bytes(b'{"descriptors_hex": "", "hid_report_descriptors": [{"interface": "0", "hex": "00"}]}')


def test_an_open_transport_stays_open() -> None:
    transport = SimTransport(SimDevice.from_set(hid_set(), report_descriptors={0: RDESC})).open()
    read_descriptor_set(transport, source="given", meta={"k": 1})
    assert transport.is_open
    transport.close()


# -- faults -------------------------------------------------------------------------------------


class Faulty(TransportWrapper):
    """Changes the answer to (or raises for) the control requests ``rule`` picks: ``rule(wValue,
    wIndex, wLength, answer) -> bytes`` or raises."""

    scheme = "faulty"

    def __init__(self, inner: Transport, rule: Callable[[int, int, int, bytes], bytes]) -> None:
        super().__init__(inner)
        self.rule = rule
        self.count = 0

    def _call(self, op: str, args: dict[str, Any], fn: Callable[[], Any]) -> Any:
        if op != "control_transfer":
            return fn()
        self.count += 1
        try:
            answer = fn()
        except PipeStalledError:
            answer = None
        out = self.rule(args["wValue"], args["wIndex"], args["data_or_wLength"], answer)
        if out is None:
            raise PipeStalledError("stall")
        return out


def faulty(served: DescriptorSet, rule: Callable[[int, int, int, bytes], bytes], **kw: Any) -> Faulty:
    return Faulty(SimTransport(SimDevice.from_set(served, **kw)), rule)


def test_short_and_long_answers_are_complaints_naming_the_request() -> None:
    def rule(wValue: int, wIndex: int, wLength: int, answer: bytes) -> bytes:
        if wValue == 0x0100:
            return answer + b"\0\0"  # 20 bytes for 18 asked
        if wValue == 0x0200 and wLength > 9:
            return answer[:-3]  # a short configuration
        return answer

    read = read_descriptor_set(faulty(hub_set(), rule))
    rules = {(e.descriptor, e.rule) for e in read.errors}
    assert ("GET_DESCRIPTOR(Device 0, wLength 18)", "read") in rules
    assert ("GET_DESCRIPTOR(Configuration 0, wLength 25)", "read") in rules
    messages = [str(e) for e in read.errors if e.rule == "read"]
    assert messages == [
        ("GET_DESCRIPTOR(Device 0, wLength 18): 20 bytes answered, more than the wLength 18 asked: the 2 "
         "bytes past it are dropped"),
        ("GET_DESCRIPTOR(Configuration 0, wLength 25): short read: 22 bytes answered, the descriptor has 25; "
        "the 22 bytes are kept")]
    assert read.to_bytes() == (HUB_DEVICE + HUB_CONFIG)[:-3]  # nothing made up, nothing dropped silently
    assert any(e.rule == "wTotalLength" for e in read.errors)  # and the walker says what it means


def test_string_requests_are_bounded_by_the_langids_present() -> None:
    langids = [0x0400 + i for i in range(126)]
    zero = bytes([254, 3]) + b"".join(x.to_bytes(2, "little") for x in langids)

    def rule(wValue: int, wIndex: int, wLength: int, answer: bytes) -> bytes:
        if wValue == 0x0300:
            return zero + zero  # 126 LANGIDs, then as many again past wLength (dropped)
        return answer

    transport = faulty(hub_set(), rule)
    read = read_descriptor_set(transport)
    strings = [k for k in read.strings if k != (0, 0)]
    assert {lang for lang, _ in strings} == {0x0407, 0x0409}  # the two of the 126 the device has
    # device, configuration x2, BOS x2, hub x2, qualifier, other-speed x2, string 0, 126 x 6 strings
    assert transport.count == 10 + 1 + 126 * 6
    # string 0 was longer than asked (kept up to wLength 255), so its bLength 254 disagrees too
    assert [e.rule for e in read.errors] == ["bLength", "read"]


def test_duplicate_langids_are_read_once() -> None:
    def rule(wValue: int, wIndex: int, wLength: int, answer: bytes) -> bytes:
        return bytes.fromhex("0a03090409040704 0904".replace(" ", "")) if wValue == 0x0300 else answer

    transport = faulty(hub_set(), rule)
    read = read_descriptor_set(transport)
    assert transport.count == 10 + 1 + 2 * 6 and read.string(1, 0x0409) == "dkproto 0409"


def test_optional_pieces_that_fail_are_noted_and_the_rest_is_read() -> None:
    def rule(wValue: int, wIndex: int, wLength: int, answer: bytes) -> bytes:
        if wValue >> 8 == 0x0F:
            raise DkTimeoutError("BOS timed out")
        if wValue >> 8 == 0x29:
            return None  # type: ignore[return-value]  # STALL
        if wValue == 0x0302 and wIndex == 0x0409:
            return None  # type: ignore[return-value]  # one string STALLs: left out
        if wValue == 0x0305 and wIndex == 0x0407:
            raise DkTimeoutError("string timed out")
        return answer

    read = read_descriptor_set(faulty(hub_set(), rule))
    assert read.meta == {"bos_error": "BOS timed out",
                         "hub_descriptor_error": "hub descriptor request stalled",
                         "strings_error": "string 5 (LANGID 0x0407): string timed out"}
    assert read.bos is None
    assert [n.key for n in read.extras] == ["device_qualifier", "other_speed_configuration"]
    assert read.string(2, 0x0409) is None and read.string(3, 0x0409) == "0042 0409"
    assert read.string(4, 0x0407) == "hub config 0407" and read.string(6, 0x0407) is None  # none after it
    assert read.ok


def test_no_device_is_raised_at_any_step() -> None:
    for kind in (0x01, 0x0F, 0x03, 0x22):
        def rule(wValue: int, wIndex: int, wLength: int, answer: bytes, kind: int = kind) -> bytes:
            if wValue >> 8 == kind:
                raise NoDeviceError("gone")
            return answer

        served = hid_set() if kind == 0x22 else hub_set()
        with pytest.raises(NoDeviceError):
            read_descriptor_set(faulty(served, rule, report_descriptors={0: RDESC}))


def test_hid_report_stall_is_noted() -> None:
    no_report = parse(HID_DEVICE + HID_CONFIG, source="mouse")  # the device serves no report descriptor
    read = read_descriptor_set(SimTransport(SimDevice.from_set(no_report, name="mouse")))
    assert read.hid_report_descriptors == {}
    (note,) = read.meta["hid_report_errors"]
    assert note.startswith("interface 0: ") and "STALL" in note


# -- the live path: read.read_device over the transport ---------------------------------------------


class Live(UsbDeviceInfo):
    """A device of the USB transport's enumeration whose sysfs folder is a test folder."""

    folder: Path = Path("/nonexistent")

    @property
    def sysfs_path(self) -> Path:
        return self.folder


def live(folder: Path | None = None) -> Live:
    dev = Live(bus=1, address=7, port_numbers=(2,), idVendor=0x1D6B, idProduct=0x0101, speed=3)
    if folder is not None:
        object.__setattr__(dev, "folder", folder)
    return dev


def test_read_device_reads_through_the_usb_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    urls: list[str] = []

    def fake_open(url: str) -> Transport:
        urls.append(url)
        return SimTransport(SimDevice.from_set(hub_set()))

    monkeypatch.setattr(dkproto.transport, "open_transport", fake_open)
    read = read_mod.read_device(live())
    assert urls == ["usb://1/7"]
    assert read.source == "usb:001:007"
    assert list(read.meta.items()) == [("bus", 1), ("address", 7), ("port_path", "1-2"), ("speed", 3),
                                       ("read_from", "libusb")]
    same_set(read, hub_set())


def test_read_device_falls_back_to_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refused(url: str) -> Transport:
        raise NotPermittedError(f"opening {url}: LIBUSB_ERROR_ACCESS")

    monkeypatch.setattr(dkproto.transport, "open_transport", refused)
    (tmp_path / "descriptors").write_bytes(HUB_DEVICE + HUB_CONFIG)
    read = read_mod.read_device(live(tmp_path))
    expected = f"sysfs {tmp_path / 'descriptors'} (libusb: opening usb://1/7: LIBUSB_ERROR_ACCESS)"
    assert read.meta["read_from"] == expected
    assert read.to_bytes() == HUB_DEVICE + HUB_CONFIG and read.ok
    with pytest.raises(NotPermittedError, match="cannot read descriptors"):
        read_mod.read_device(live())

    def gone(url: str) -> Transport:
        raise NoDeviceError("gone")

    monkeypatch.setattr(dkproto.transport, "open_transport", gone)
    with pytest.raises(NoDeviceError):
        read_mod.read_device(live(tmp_path))


def test_iter_live_reads_each_device_of_the_usb_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live path is dkproto.usb.read's (what ``dkproto dump`` without FILE uses): the USB
    transport's enumeration, each device read through its URL, one set per device."""
    import dkproto.transport.usb
    from dkproto.cli import dump
    from dkproto.usb import read as read_module

    found = [Live(bus=1, address=7, port_numbers=(2,), idVendor=0x1D6B, idProduct=0x0101, speed=3),
             Live(bus=1, address=8, port_numbers=(3,), idVendor=0x1D6B, idProduct=0x0101, speed=3)]
    monkeypatch.setattr(dkproto.transport.usb, "find_devices", lambda **kw: found)

    def fake_open(url: str) -> Transport:
        if url == "usb://1/8":
            raise NoDeviceError("gone")
        return SimTransport(SimDevice.from_set(hub_set()))

    monkeypatch.setattr(dkproto.transport, "open_transport", fake_open)
    first, second = read_module.iter_live()
    assert first.source == "usb://1/7" and first.meta["read_from"] == "libusb" and first.ok
    assert second.source == "usb://1/8" and [e.rule for e in second.errors] == ["read"]
    assert dump.iter_live is read_module.iter_live  # one implementation
