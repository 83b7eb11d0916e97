"""The standard-request responder: a device's chapter-9 answers, from a :class:`~dkproto.usb.DescriptorSet`.

One responder serves every device side (``sim://``, the lab's FunctionFS devices and its USB/IP
server). It answers, from the set and its own state:

* GET_DESCRIPTOR to the device: device, configuration *n*, string 0 (the LANGID list) and every
  string in every LANGID the set has, BOS, device qualifier and other-speed configuration *n*
  (from the set's ``extras``); to an interface: the HID class descriptor (0x21) of a HID
  interface and its report descriptor (0x22) when the set carries one or one is given; and, as the class request a hub
  answers (``bmRequestType`` 0xA0), the hub descriptor (0x29 or 0x2A) when the set carries one (a
  hub-class set without one STALLs it quietly: the set lacks it, no handler is missing);
* GET_STATUS (device: self-powered and the remote-wakeup / U1 / U2 / LTM features set;
  interface; endpoint: halted or not), CLEAR_FEATURE / SET_FEATURE (ENDPOINT_HALT,
  DEVICE_REMOTE_WAKEUP, TEST_MODE; U1/U2/LTM_ENABLE and FUNCTION_SUSPEND on a SuperSpeed
  device), GET/SET_CONFIGURATION, GET/SET_INTERFACE, SET_ADDRESS, and SET_SEL /
  SET_ISOCH_DELAY on a SuperSpeed device (``bcdUSB`` >= 0x0300).

Anything else, or a descriptor the set lacks, raises
:class:`~dkproto.errors.PipeStalledError`: the request STALLs. Answers are whole descriptors;
:meth:`dkproto.device.RequestHandlers.handle_control` cuts IN data to ``wLength`` (USB 2.0
§9.4.3: a shorter wLength returns the first wLength bytes).

Interface and endpoint requests refer to the current configuration, or before
SET_CONFIGURATION to the first one (a host opening an unconfigured device sees its first
configuration's interfaces, as ``sim://`` always has).

The set's bytes are taken once, when the responder is made (edit the set first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dkproto.device.descriptors import langid_list
from dkproto.device.request import ControlRequest
from dkproto.errors import PipeStalledError
from dkproto.schema.enums import DescriptorType as DT
from dkproto.schema.enums import StandardRequest as SR
from dkproto.schema.enums import descriptor_type_name

if TYPE_CHECKING:
    from dkproto.usb import DescriptorSet, Node

__all__ = ["StandardResponder"]

# Feature selectors (USB 3.2 table 9-7)
ENDPOINT_HALT = FUNCTION_SUSPEND = 0
DEVICE_REMOTE_WAKEUP, TEST_MODE = 1, 2
U1_ENABLE, U2_ENABLE, LTM_ENABLE = 48, 49, 50
#: device features and their GET_STATUS bits
_STATUS_BITS = {DEVICE_REMOTE_WAKEUP: 1, U1_ENABLE: 2, U2_ENABLE: 3, LTM_ENABLE: 4}
_SUPERSPEED_FEATURES = (U1_ENABLE, U2_ENABLE, LTM_ENABLE)


@dataclass(frozen=True, slots=True)
class _Alternate:
    interface_class: int
    endpoints: frozenset[int]
    hid: bytes | None  # the HID class descriptor, on a HID interface


@dataclass(frozen=True, slots=True)
class _Configuration:
    value: int
    interfaces: dict[int, dict[int, _Alternate]]  # bInterfaceNumber -> bAlternateSetting -> ...

    def endpoints(self) -> frozenset[int]:
        return frozenset(ep for alts in self.interfaces.values() for alt in alts.values() for ep in alt.endpoints)


def _configuration(node: Node) -> _Configuration:
    """What the responder needs of one configuration node: its value, interfaces and endpoints."""
    head = node.own_bytes()
    interfaces: dict[int, dict[int, _Alternate]] = {}
    for iface in node.interfaces:
        raw = iface.own_bytes()
        if len(raw) < 9:
            continue
        endpoints = frozenset(b[2] for b in (c.own_bytes() for c in iface.children if c.role == "endpoint")
                              if len(b) >= 3)
        hid = next((c.own_bytes() for c in iface.children if c.bDescriptorType == DT.HID), None)
        interfaces.setdefault(raw[2], {})[raw[3]] = _Alternate(raw[5], endpoints, hid if raw[5] == 0x03 else None)
    return _Configuration(head[5] if len(head) > 5 else 0, interfaces)


class StandardResponder:
    """Answers the standard requests of one device from a descriptor set (see the module docstring).

    Args:
        descriptor_set: what the device says about itself.
        report_descriptors: HID report descriptors by ``bInterfaceNumber``, over those the set
            carries (``DescriptorSet.hid_report_descriptors``).
        name: names the device in STALL messages.
        self_powered: GET_STATUS(device) bit 0 (a capture does not record it: bus powered).

    Attributes:
        configuration: the ``bConfigurationValue`` set, 0 when unconfigured.
        alternates: ``bInterfaceNumber`` -> ``bAlternateSetting`` set (absent: 0).
        halted: endpoint addresses halted (by SET_FEATURE or the device side).
        address: the address from SET_ADDRESS.
        features: the device features set (DEVICE_REMOTE_WAKEUP 1, U1/U2/LTM_ENABLE 48-50).
    """

    def __init__(self, descriptor_set: DescriptorSet, *, report_descriptors: Mapping[int, bytes] | None = None,
                 name: str = "device", self_powered: bool = False) -> None:
        ds = descriptor_set
        self.descriptor_set = ds
        self.name = name
        self.self_powered = self_powered
        device = ds.device
        self.device = device.to_bytes() if device is not None else b""
        nodes = ds.configurations
        self.configurations = [c.to_bytes() for c in nodes]
        self._configs = [_configuration(c) for c in nodes]
        bos = ds.bos
        self.bos = bos.to_bytes() if bos is not None else b""
        self.qualifier: bytes | None = None
        self.other_speed: list[bytes] = []
        self.hub: dict[int, bytes] = {}
        for extra in ds.extras:
            kind = extra.bDescriptorType
            if kind == DT.DEVICE_QUALIFIER:
                self.qualifier = extra.to_bytes()
            elif kind == DT.OTHER_SPEED_CONFIGURATION:
                self.other_speed.append(extra.to_bytes())
            elif kind in (DT.HUB, DT.SUPERSPEED_HUB):
                self.hub[kind] = extra.to_bytes()
        self.strings = {key: node.to_bytes() for key, node in ds.strings.items() if key[1]}
        zero = ds.strings.get((0, 0))
        self.langids: bytes | None = zero.to_bytes() if zero is not None else (
            langid_list(sorted({lang for lang, _ in self.strings})) if self.strings else None)
        carried: Mapping[int, bytes] = getattr(ds, "hid_report_descriptors", None) or {}
        self.report_descriptors = {int(k): bytes(v) for k, v in {**carried, **(report_descriptors or {})}.items()}
        self.superspeed = len(self.device) >= 4 and int.from_bytes(self.device[2:4], "little") >= 0x0300
        #: a hub (bDeviceClass 9, or an interface of class 9): its class GET_DESCRIPTOR(0x29/0x2A) is ours
        self.is_hub = (len(self.device) > 4 and self.device[4] == 0x09) or any(
            alt.interface_class == 0x09 for c in self._configs for alts in c.interfaces.values()
            for alt in alts.values())
        self.configuration = 0
        self.alternates: dict[int, int] = {}
        self.halted: set[int] = set()
        self.address = 0
        self.features: set[int] = set()
        self.sel = b""
        self.isoch_delay = 0
        self._table: dict[tuple[int, bool], Callable[[ControlRequest], bytes | None]] = {
            (SR.GET_STATUS, True): self._get_status,
            (SR.CLEAR_FEATURE, False): self._clear_feature,
            (SR.SET_FEATURE, False): self._set_feature,
            (SR.SET_ADDRESS, False): self._set_address,
            (SR.GET_DESCRIPTOR, True): self._get_descriptor,
            (SR.GET_CONFIGURATION, True): self._get_configuration,
            (SR.SET_CONFIGURATION, False): self._set_configuration,
            (SR.GET_INTERFACE, True): self._get_interface,
            (SR.SET_INTERFACE, False): self._set_interface,
            (SR.SET_SEL, False): self._set_sel,
            (SR.SET_ISOCH_DELAY, False): self._set_isoch_delay,
        }

    def __repr__(self) -> str:
        return (f"<StandardResponder {self.name} configurations={len(self.configurations)} "
                f"strings={len(self.strings)} configuration={self.configuration}>")

    # -- state --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the Default state (a bus reset or a replug): unconfigured, nothing halted."""
        self.configuration = self.address = 0
        self.alternates.clear()
        self.halted.clear()
        self.features.clear()

    def endpoint_addresses(self) -> set[int]:
        """Every endpoint address of every configuration."""
        return {ep for c in self._configs for ep in c.endpoints()}

    def _current(self) -> _Configuration | None:
        for c in self._configs:
            if c.value == self.configuration:
                return c
        return self._configs[0] if self._configs and not self.configuration else None

    def _current_endpoints(self) -> set[int]:
        config = self._current()
        if config is None:
            return set()
        out: set[int] = set()
        for number, alts in config.interfaces.items():
            alt = alts.get(self.alternates.get(number, 0))
            if alt is not None:
                out |= alt.endpoints
        return out

    def _interface(self, number: int) -> dict[int, _Alternate] | None:
        config = self._current()
        return config.interfaces.get(number) if config is not None else None

    # -- dispatch -----------------------------------------------------------------------------

    def answers(self, req: ControlRequest) -> bool:
        """True for the requests :meth:`respond` is the answer to (answered, or STALLed as a device
        would): every standard request, and a hub's class GET_DESCRIPTOR: any when the set carries
        a hub descriptor, 0x29 and 0x2A on a hub-class set without one (STALLed: the set lacks it,
        so no handler is missing and nothing is logged)."""
        if req.type == "standard":
            return True
        if req.bmRequestType != 0xA0 or req.bRequest != SR.GET_DESCRIPTOR:
            return False
        return bool(self.hub) or (self.is_hub and req.wValue >> 8 in (DT.HUB, DT.SUPERSPEED_HUB))

    def respond(self, req: ControlRequest) -> bytes | None:
        """Answer one request: IN data (whole; the caller cuts it to ``wLength``) or None for OUT.

        Raises:
            PipeStalledError: the request STALLs (unknown, malformed, or about something absent).
        """
        handler = self._table.get((req.bRequest, req.is_in)) if self.answers(req) else None
        if handler is None:
            raise self._stall(req, "not a request this device answers")
        return handler(req)

    def _stall(self, req: ControlRequest, why: str) -> PipeStalledError:
        return PipeStalledError(f"{self.name}: {req.describe()}: {why} (STALL)")

    # -- descriptors --------------------------------------------------------------------------

    def _get_descriptor(self, req: ControlRequest) -> bytes:
        dtype, index = req.wValue >> 8, req.wValue & 0xFF
        recipient = req.bmRequestType & 0x1F
        found: bytes | None = None
        if req.type == "class":
            found = self.hub.get(dtype) if index == 0 else None
        elif recipient == 0:
            found = self._device_descriptor(dtype, index, req.wIndex)
        elif recipient == 1:
            found = self._interface_descriptor(dtype, index, req.wIndex & 0xFF)
        if not found:
            where = f" (LANGID 0x{req.wIndex:04x})" if dtype == DT.STRING and index else ""
            if req.type == "class" and not self.hub:
                where += " (this hub's descriptor set carries none)"
            raise self._stall(req, f"no {descriptor_type_name(dtype)} descriptor {index}{where}")
        return found

    def _device_descriptor(self, dtype: int, index: int, langid: int) -> bytes | None:
        if dtype == DT.DEVICE:
            return self.device
        if dtype == DT.CONFIGURATION:
            return self.configurations[index] if index < len(self.configurations) else None
        if dtype == DT.STRING:
            return self.langids if index == 0 else self.strings.get((langid, index))
        if dtype == DT.BOS:
            return self.bos
        if dtype == DT.DEVICE_QUALIFIER:
            return self.qualifier
        if dtype == DT.OTHER_SPEED_CONFIGURATION:
            return self.other_speed[index] if index < len(self.other_speed) else None
        return None

    def _interface_descriptor(self, dtype: int, index: int, number: int) -> bytes | None:
        if dtype == DT.HID_REPORT:
            return self.report_descriptors.get(number) if index == 0 else None
        alts = self._interface(number)
        if dtype != DT.HID or alts is None:
            return None
        alt = alts.get(self.alternates.get(number, 0)) or alts.get(0)
        return alt.hid if alt is not None else None

    # -- status and features ------------------------------------------------------------------

    def _get_status(self, req: ControlRequest) -> bytes:
        recipient = req.bmRequestType & 0x1F
        if recipient == 0:
            bits = int(self.self_powered) | sum(1 << bit for f, bit in _STATUS_BITS.items() if f in self.features)
            return bits.to_bytes(2, "little")
        if recipient == 1 and self._interface(req.wIndex & 0xFF) is not None:
            return b"\0\0"
        if recipient == 2 and self._endpoint_exists(req.wIndex & 0xFF):
            return bytes([1 if req.wIndex & 0xFF in self.halted else 0, 0])
        raise self._stall(req, "no such recipient")

    def _endpoint_exists(self, address: int) -> bool:
        return address & 0x7F == 0 or address in self._current_endpoints()

    def _feature(self, req: ControlRequest, on: bool) -> None:
        recipient, selector = req.bmRequestType & 0x1F, req.wValue
        if recipient == 2 and selector == ENDPOINT_HALT and self._endpoint_exists(req.wIndex & 0xFF):
            address = req.wIndex & 0xFF
            if address & 0x7F:
                (self.halted.add if on else self.halted.discard)(address)
            return
        if recipient == 0 and (selector == DEVICE_REMOTE_WAKEUP
                               or selector in _SUPERSPEED_FEATURES and self.superspeed):
            (self.features.add if on else self.features.discard)(selector)
            return
        if recipient == 0 and selector == TEST_MODE and on:
            return
        if recipient == 1 and selector == FUNCTION_SUSPEND and self.superspeed \
                and self._interface(req.wIndex & 0xFF) is not None:
            return
        raise self._stall(req, f"feature selector {selector} does not apply")

    def _clear_feature(self, req: ControlRequest) -> None:
        self._feature(req, False)

    def _set_feature(self, req: ControlRequest) -> None:
        self._feature(req, True)

    # -- state changes ------------------------------------------------------------------------

    def _set_address(self, req: ControlRequest) -> None:
        if req.wValue > 127:
            raise self._stall(req, "an address is 0..127")
        self.address = req.wValue

    def _get_configuration(self, req: ControlRequest) -> bytes:
        return bytes([self.configuration])

    def _set_configuration(self, req: ControlRequest) -> None:
        value = req.wValue
        if value and value not in [c.value for c in self._configs]:
            raise self._stall(req, f"no configuration {value}")
        self.configuration = value
        self.alternates.clear()
        self.halted.clear()

    def _get_interface(self, req: ControlRequest) -> bytes:
        number = req.wIndex & 0xFF
        if self._interface(number) is None:
            raise self._stall(req, f"no interface {number}")
        return bytes([self.alternates.get(number, 0)])

    def _set_interface(self, req: ControlRequest) -> None:
        number, alt = req.wIndex & 0xFF, req.wValue
        alts = self._interface(number)
        if alts is None or alt not in alts:
            raise self._stall(req, f"no interface {number} alternate setting {alt}")
        self.alternates[number] = alt
        self.halted -= {ep for a in alts.values() for ep in a.endpoints}

    def _set_sel(self, req: ControlRequest) -> None:
        if not self.superspeed or len(req.data) != 6:
            raise self._stall(req, "SET_SEL is for SuperSpeed devices, with 6 bytes of data")
        self.sel = req.data

    def _set_isoch_delay(self, req: ControlRequest) -> None:
        if not self.superspeed:
            raise self._stall(req, "SET_ISOCH_DELAY is for SuperSpeed devices")
        self.isoch_delay = req.wValue
