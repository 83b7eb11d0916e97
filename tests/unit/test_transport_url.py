"""URL grammar of every built-in scheme: what parses, and errors that quote the grammar."""

from __future__ import annotations

import pytest

from dkproto.errors import BadArgumentError, URLError
from dkproto.ioreturn import IOReturn
from dkproto.transport import open_transport, register_scheme, schemes
from dkproto.transport.hid import HIDTransport
from dkproto.transport.serial import SerialTransport
from dkproto.transport.sim import SimTransport
from dkproto.transport.spy import SpyTransport
from dkproto.transport.url import QueryOptions, parse_url, parse_vid_pid
from dkproto.transport.usb import GRAMMAR as USB_GRAMMAR
from dkproto.transport.usb import USBTransport


def test_builtin_schemes_listed() -> None:
    assert {"usb", "hid", "serial", "sim", "spy"} <= set(schemes())


@pytest.mark.parametrize("url, expect", [
    ("usb://1d6b:0104", {"idVendor": 0x1D6B, "idProduct": 0x0104, "bus": None, "interface": None}),
    ("usb://0x1D6B:0x0104?interface=2&alt=1", {"idVendor": 0x1D6B, "interface": 2, "alt": 1}),
    ("usb://3/17", {"bus": 3, "address": 17, "idVendor": None}),
    ("usb://1209:0001?serial=AB%2012&index=1&config=1&detach=0",
     {"serial": "AB 12", "index": 1, "config": 1, "detach": False}),
])
def test_usb_url_parses(url: str, expect: dict[str, object]) -> None:
    t = open_transport(url)
    assert isinstance(t, USBTransport) and not t.is_open
    for key, value in expect.items():
        assert getattr(t, key) == value, key


@pytest.mark.parametrize("url, problem", [
    ("usb://zz", "neither VID:PID nor BUS/ADDRESS"),
    ("usb://1d6b:0104?interfce=0", "unknown option(s) interfce"),
    ("usb://1d6b:0104?interface=x", "is not an integer"),
    ("usb://1d6b:0104?interface=300", "out of range"),
    ("usb://1d6b:0104?alt=1", "alt= needs interface="),
    ("usb://0/5", "BUS must be 1..255"),
    ("usb://1d6b:0104?interface=1&interface=2", "given twice"),
    ("usb://1d6b:0104#frag", "fragments"),
    ("usb://1d6b:0104?detach=maybe", "not a boolean"),
])
def test_usb_url_errors_quote_grammar(url: str, problem: str) -> None:
    with pytest.raises(URLError) as info:
        open_transport(url)
    assert problem in str(info.value)
    assert USB_GRAMMAR in str(info.value)
    assert info.value.ioreturn == IOReturn.kIOReturnBadArgument
    assert isinstance(info.value, BadArgumentError)


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(URLError, match=r"unknown scheme 'ftp'.*usb"):
        open_transport("ftp://x")
    with pytest.raises(URLError, match="no 'SCHEME://'"):
        open_transport("/dev/ttyACM0")


def test_hid_urls() -> None:
    t = open_transport("hid:///dev/hidraw3")
    assert isinstance(t, HIDTransport) and t.path == "/dev/hidraw3"
    t = open_transport("hid://046d:c52b?interface=2&usage_page=0xff00&usage=1")
    assert isinstance(t, HIDTransport)
    assert (t.idVendor, t.idProduct, t.interface, t.usage_page, t.usage) == (0x046D, 0xC52B, 2, 0xFF00, 1)
    with pytest.raises(URLError, match=r"expected hid:///dev/hidrawN"):
        open_transport("hid://hidraw3")
    with pytest.raises(URLError, match="unknown option"):
        open_transport("hid:///dev/hidraw0?interface=1")


def test_serial_urls() -> None:
    t = open_transport("serial:///dev/ttyACM0?baudrate=115200&parity=E&stopbits=2&bytesize=7&rtscts=1")
    assert isinstance(t, SerialTransport)
    assert t.port_name == "/dev/ttyACM0"
    assert t.settings == {"baudrate": 115200, "parity": "E", "stopbits": 2, "bytesize": 7, "rtscts": True}
    t = open_transport("serial+loop://?logging=debug&baudrate=9600")
    assert isinstance(t, SerialTransport)
    assert t.port_name == "loop://?logging=debug" and t.settings == {"baudrate": 9600}
    t = open_transport("serial://1d6b:0104?interface=2")
    assert isinstance(t, SerialTransport) and t.usb_match and t.usb_match["idVendor"] == 0x1D6B
    with pytest.raises(URLError, match="three slashes"):
        open_transport("serial://dev/ttyACM0")
    with pytest.raises(URLError, match=r"stopbits='3' is not one of"):
        open_transport("serial:///dev/ttyACM0?stopbits=3")
    with pytest.raises(URLError, match=r"unknown option\(s\) baud_rate"):
        open_transport("serial:///dev/ttyACM0?baud_rate=9600")


def test_sim_and_spy_urls() -> None:
    assert isinstance(open_transport("sim://loopback"), SimTransport)
    spy = open_transport("spy+sim://loopback?spy_log=my.log")
    assert isinstance(spy, SpyTransport) and isinstance(spy.inner, SimTransport)
    assert spy.logger.name == "my.log"
    with pytest.raises(URLError, match="no profile, module or file named 'nosuch'"):
        open_transport("sim://nosuch")
    with pytest.raises(URLError, match=r"expected spy\+ANY"):
        open_transport("spy://x")


def test_register_scheme_and_plus_fallback() -> None:
    class Custom(SimTransport):
        @classmethod
        def from_url(cls, url: str) -> Custom:
            t = cls(SimTransport.from_url("sim://loopback").device, url)
            return t

    register_scheme("custom-test", Custom)
    assert isinstance(open_transport("custom-test://anything"), Custom)
    assert isinstance(open_transport("custom-test+x://anything"), Custom)  # A+B goes to A


def test_parse_helpers() -> None:
    assert parse_vid_pid("1d6b:0104") == (0x1D6B, 0x104)
    assert parse_vid_pid("1d6b") is None
    parsed = parse_url("x://a/b?k=1&f=0", "G")
    assert (parsed.authority, parsed.path, parsed.query) == ("a", "/b", {"k": "1", "f": "0"})
    opts = QueryOptions(parsed, "G")
    assert opts.int("k") == 1 and opts.bool("f") is False
    opts.finish()
    with pytest.raises(URLError, match="KEY=VALUE"):
        parse_url("x://a?=&&", "G")
