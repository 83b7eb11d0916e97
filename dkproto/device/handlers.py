"""The one handler decorator, and the dispatch every device side shares.

A device program answers the control requests that are its own (class and vendor requests,
the odd standard one) with handlers registered by :func:`control_request`, facedancer style::

    class Echo(FfsDevice):                                  # or SimDevice, CapturedDevice...
        @control_request(type="vendor", recipient="device", number=0x01, direction="in")
        def get_version(self, req: ControlRequest) -> bytes:
            return b"\\x00\\x01"                              # cut to wLength

A handler gets ``(device, request)``: on a class it is a method; on one object it is a
function registered with the same decorator bound to that object,
``@device.control_request(type=..., number=...)``. An IN handler returns the data stage; an
OUT handler gets ``req.data`` and returns ``None`` (or the byte count). Raising
:class:`~dkproto.errors.PipeStalledError` STALLs the request, as the host sees it
(kUSBHostReturnPipeStalled).

:meth:`RequestHandlers.handle_control` is the dispatch: the handler for the request, else the
device's :class:`~dkproto.device.standard.StandardResponder` for the requests it answers
(standard ones, and a hub's class GET_DESCRIPTOR), else :meth:`RequestHandlers.on_unhandled`,
which logs the decorator that would handle the request and STALLs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dkproto.device.request import ControlRequest
from dkproto.errors import BadArgumentError, PipeStalledError
from dkproto.schema.enums import Recipient, RequestType

if TYPE_CHECKING:
    from dkproto.device.standard import StandardResponder

__all__ = ["Handler", "RequestHandlers", "RequestKey", "control_request", "request_key", "suggest_handler"]

log = logging.getLogger("dkproto.device")

#: ``(type, recipient, bRequest, device-to-host)``: what a handler is registered for.
RequestKey = tuple[int, int, int, bool]
#: A handler: ``(device, request) -> IN data, or None / a byte count for OUT``.
Handler = Callable[[Any, ControlRequest], "bytes | int | None"]
H = TypeVar("H", bound=Callable[..., Any])

_MARK = "__dk_requests__"


def request_key(req: ControlRequest) -> RequestKey:
    """The key a request is dispatched by."""
    return (req.bmRequestType >> 5) & 3, req.bmRequestType & 0x1F, req.bRequest, req.is_in


def _keys(type: str, recipient: str, number: int, direction: str | None) -> list[RequestKey]:
    if type not in ("standard", "class", "vendor") or recipient.upper() not in Recipient.__members__ \
            or direction not in (None, "in", "out"):
        raise BadArgumentError(f"control_request: bad type/recipient/direction {type!r}/{recipient!r}/{direction!r}")
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 0xFF:
        raise BadArgumentError(f"control_request: bRequest {number!r} is not in 0..255")
    dirs = ("in", "out") if direction is None else (direction,)
    return [(RequestType[type.upper()], Recipient[recipient.upper()], number, d == "in") for d in dirs]


def control_request(
    *,
    type: str = "vendor",
    recipient: str = "device",
    number: int,
    direction: str | None = None,
) -> Callable[[H], H]:
    """Register a method as the handler of one control request (stack them for several).

    Args:
        type: ``standard``, ``class`` or ``vendor`` (bmRequestType bits 6..5).
        recipient: ``device``, ``interface``, ``endpoint`` or ``other`` (bits 4..0).
        number: ``bRequest``.
        direction: ``in`` or ``out``; ``None`` matches both.

    Raises:
        BadArgumentError: a value outside those.
    """
    keys = _keys(type, recipient, number, direction)

    def mark(fn: H) -> H:
        setattr(fn, _MARK, [*getattr(fn, _MARK, ()), *keys])
        return fn

    return mark


class RequestHandlers:
    """Mixin of every device side: handlers by request, the standard responder, the STALL.

    Subclasses decorate methods with :func:`control_request` (collected when the class is
    made, inherited and overridable by name) and set :attr:`responder`.
    """

    #: answers standard requests (and a hub's class GET_DESCRIPTOR); None: they are unhandled
    responder: StandardResponder | None = None
    _class_handlers: ClassVar[dict[RequestKey, str]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table: dict[RequestKey, str] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                for key in getattr(value, _MARK, ()):
                    table[key] = name
        cls._class_handlers = table

    def control_request(self, *, type: str = "vendor", recipient: str = "device", number: int,
                        direction: str | None = None) -> Callable[[H], H]:
        """:func:`control_request` for this object only: the function gets ``(device, request)``.

        Registered on the object, it takes precedence over a method for the same request.
        """
        mark = control_request(type=type, recipient=recipient, number=number, direction=direction)

        def register(fn: H) -> H:
            table: dict[RequestKey, Handler] = self.__dict__.setdefault("_dk_instance_handlers", {})
            for key in getattr(mark(fn), _MARK):
                table[key] = fn
            return fn

        return register

    def handler_for(self, req: ControlRequest) -> Callable[[ControlRequest], bytes | int | None] | None:
        """The handler registered for ``req`` (bound to this device), or None."""
        key = request_key(req)
        fn: Handler | None = self.__dict__.get("_dk_instance_handlers", {}).get(key)
        if fn is not None:
            return lambda r: fn(self, r)
        name = self._class_handlers.get(key)
        method: Callable[[ControlRequest], bytes | int | None] | None = getattr(self, name) if name else None
        return method

    def handle_control(self, req: ControlRequest) -> bytes | int | None:
        """Answer one control request: IN data (cut to ``wLength``), or for OUT None / a count.

        Raises:
            PipeStalledError: the request STALLs.
            BadArgumentError: an IN handler returned something other than bytes or None.
        """
        handler = self.handler_for(req)
        if handler is not None:
            result = handler(req)
        elif self.responder is not None and self.responder.answers(req):
            result = self.responder.respond(req)
        else:
            result = self.on_unhandled(req)
        if req.is_in:
            if result is not None and not isinstance(result, (bytes, bytearray, memoryview)):
                raise BadArgumentError(f"{self.device_name}: the answer to {req.describe()} is "
                                       f"{type(result).__name__}, not bytes (an IN request returns its data)")
            return bytes(result or b"")[: req.wLength]
        return result

    @property
    def device_name(self) -> str:
        """How logs and errors name this device."""
        return str(getattr(self, "name", "") or type(self).__name__)

    def on_unhandled(self, req: ControlRequest) -> bytes | int | None:
        """A request nobody answers: log the decorator that would handle it, and STALL."""
        log.warning("%s: unhandled %s: STALL. To handle it, add to %s:\n%s", self.device_name, req.describe(),
                    type(self).__name__, suggest_handler(req))
        raise PipeStalledError(f"{self.device_name}: {req.type} request 0x{req.bRequest:02x} not handled (STALL)")


def suggest_handler(req: ControlRequest) -> str:
    """The decorator and method that would handle ``req`` (for the unhandled-request log)."""
    return (f"    @control_request(type={req.type!r}, recipient={req.recipient!r}, number=0x{req.bRequest:02x}, "
            f"direction={'in' if req.is_in else 'out'!r})\n"
            f"    def handle_0x{req.bRequest:02x}(self, req): ...")
