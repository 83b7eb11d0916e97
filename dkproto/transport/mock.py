"""``MockTransport(handler)``: a transport whose every call goes to one function (unit tests).

Modelled on httpx's ``MockTransport``: the handler gets a :class:`MockRequest` and returns the
response (bytes for IN, a byte count or ``None`` for OUT) or raises a
:class:`~dkproto.errors.DkError` to simulate a fault::

    def handler(req):
        if req.op == "control_transfer" and req.bRequest == 0x02:
            return b"\\x01\\x02"
        raise PipeStalledError("not supported")

    t = MockTransport(handler).open()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from dkproto.transport.base import DEFAULT_TIMEOUT_MS, Transport, TransportInfo

__all__ = ["MockHandler", "MockRequest", "MockTransport"]


@dataclass(frozen=True, kw_only=True)
class MockRequest:
    """One call on a :class:`MockTransport`.

    Attributes:
        op: ``control_transfer``, ``read``, ``write``, ``get_report``, ``set_report``,
            ``set_configuration``, ``claim_interface``, ``release_interface``,
            ``set_alternate_setting``, ``clear_halt`` or ``reset``.
        endpoint: bEndpointAddress for read/write/clear_halt (0 for control).
        bmRequestType, bRequest, wValue, wIndex: the setup packet (control_transfer).
        length: bytes asked for (IN).
        data: bytes sent (OUT).
        timeout: milliseconds.
        args: other arguments by name (report_type, report_id, bInterfaceNumber...).
    """

    op: str
    endpoint: int = 0
    bmRequestType: int = 0
    bRequest: int = 0
    wValue: int = 0
    wIndex: int = 0
    length: int = 0
    data: bytes = b""
    timeout: int = DEFAULT_TIMEOUT_MS
    args: dict[str, Any] | None = None


MockHandler = Callable[[MockRequest], Any]


class MockTransport(Transport):
    """A transport that hands every call to ``handler`` (and records it in ``requests``).

    Args:
        handler: called with a :class:`MockRequest`; returns the result or raises DkError.
        info: what ``info`` reports (a default ``mock://`` one otherwise).
    """

    scheme: ClassVar[str] = "mock"

    def __init__(self, handler: MockHandler, info: TransportInfo | None = None) -> None:
        super().__init__()
        self.handler = handler
        self._info = info or TransportInfo(url="mock://", scheme="mock")
        self.requests: list[MockRequest] = []

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    @property
    def info(self) -> TransportInfo:
        return self._info

    def _ask(self, request: MockRequest) -> Any:
        self._require_open(request.op)
        self.requests.append(request)
        return self.handler(request)

    def control_transfer(self, bmRequestType: int, bRequest: int, wValue: int = 0, wIndex: int = 0,
                         data_or_wLength: bytes | int | None = None,
                         timeout: int = DEFAULT_TIMEOUT_MS) -> bytes | int:
        is_in = bool(bmRequestType & 0x80)
        data = b"" if is_in or data_or_wLength is None else bytes(data_or_wLength)
        length = int(data_or_wLength or 0) if is_in else len(data)
        result = self._ask(MockRequest(op="control_transfer", bmRequestType=bmRequestType, bRequest=bRequest,
                                       wValue=wValue, wIndex=wIndex, length=length, data=data, timeout=timeout))
        if is_in:
            return bytes(result or b"")[:length]
        return len(data) if result is None else int(result)

    def read(self, endpoint: int, length: int, timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        result = self._ask(MockRequest(op="read", endpoint=endpoint, length=length, timeout=timeout))
        return bytes(result or b"")[:length]

    def write(self, endpoint: int, data: bytes, timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        result = self._ask(MockRequest(op="write", endpoint=endpoint, data=bytes(data), timeout=timeout))
        return len(data) if result is None else int(result)

    def get_report(self, report_type: int, report_id: int, length: int,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> bytes:
        result = self._ask(MockRequest(op="get_report", length=length, timeout=timeout,
                                       args={"report_type": report_type, "report_id": report_id}))
        return bytes(result or b"")[:length]

    def set_report(self, report_type: int, report_id: int, data: bytes,
                   timeout: int = DEFAULT_TIMEOUT_MS) -> int:
        result = self._ask(MockRequest(op="set_report", data=bytes(data), timeout=timeout,
                                       args={"report_type": report_type, "report_id": report_id}))
        return len(data) if result is None else int(result)

    def set_configuration(self, bConfigurationValue: int) -> None:
        self._ask(MockRequest(op="set_configuration", args={"bConfigurationValue": bConfigurationValue}))

    def claim_interface(self, bInterfaceNumber: int) -> None:
        self._ask(MockRequest(op="claim_interface", args={"bInterfaceNumber": bInterfaceNumber}))

    def release_interface(self, bInterfaceNumber: int) -> None:
        self._ask(MockRequest(op="release_interface", args={"bInterfaceNumber": bInterfaceNumber}))

    def set_alternate_setting(self, bInterfaceNumber: int, bAlternateSetting: int) -> None:
        self._ask(MockRequest(op="set_alternate_setting", args={"bInterfaceNumber": bInterfaceNumber,
                                                                "bAlternateSetting": bAlternateSetting}))

    def clear_halt(self, endpoint: int) -> None:
        self._ask(MockRequest(op="clear_halt", endpoint=endpoint))

    def reset(self) -> None:
        self._ask(MockRequest(op="reset"))
