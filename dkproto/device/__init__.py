"""Being a USB device: the one seam of dkproto's device sides.

``sim://`` (:mod:`dkproto.transport.sim`), the lab's FunctionFS devices (:mod:`dkproto.lab.ffs`)
and its USB/IP server (:mod:`dkproto.lab.usbip`) are built on the same four pieces:

* :class:`ControlRequest`: one SETUP packet and its OUT data stage;
* :func:`control_request`: the one handler decorator (on a method, or bound to one device
  object as ``device.control_request(...)``), dispatched by :class:`RequestHandlers`;
* STALL is :class:`~dkproto.errors.PipeStalledError` (kUSBHostReturnPipeStalled): a handler
  raises it, the host sees a stalled request;
* :class:`StandardResponder`: the standard requests, answered from a
  :class:`dkproto.usb.DescriptorSet` (:func:`set_from_parts` and :func:`load_set` make one).

See ``docs/transports.md`` (``sim://``) and ``docs/lab.md`` (FunctionFS, USB/IP).
"""

from dkproto.device.descriptors import (
    US_ENGLISH,
    langid_list,
    load_set,
    set_from_json,
    set_from_parts,
    split_descriptors,
    string_descriptor,
)
from dkproto.device.handlers import (
    Handler,
    RequestHandlers,
    RequestKey,
    control_request,
    request_key,
    suggest_handler,
)
from dkproto.device.request import SETUP_SIZE, ControlRequest
from dkproto.device.standard import StandardResponder

__all__ = [
    "SETUP_SIZE",
    "US_ENGLISH",
    "ControlRequest",
    "Handler",
    "RequestHandlers",
    "RequestKey",
    "StandardResponder",
    "control_request",
    "langid_list",
    "load_set",
    "request_key",
    "set_from_json",
    "set_from_parts",
    "split_descriptors",
    "string_descriptor",
    "suggest_handler",
]
