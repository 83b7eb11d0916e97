"""The DriverKit mirror: IOService, matching, IOUSBHost*, IOUserClient, HID and serial families.

Apple's class names, snake_case methods whose docstrings name the Apple symbol (see
``docs/porting.md``). Submodules:

- :mod:`~dkproto.iokit.service` ``IOService`` lifecycle, properties, ``start_service``
- :mod:`~dkproto.iokit.queue`, :mod:`~dkproto.iokit.action` ``IODispatchQueue``, ``OSAction``
- :mod:`~dkproto.iokit.memory` memory descriptors
- :mod:`~dkproto.iokit.user_client` ``IOUserClient``, ``@external_method``, dispatch checks
- :mod:`~dkproto.iokit.connect` the app side (``io_service_get_matching_services``, ``io_service_open``,
  ``io_connect_call_*``)
- :mod:`~dkproto.iokit.personality`, :mod:`~dkproto.iokit.matching` Info.plist and matching
- :mod:`~dkproto.iokit.status` IOReturn <-> exception mapping helpers
- :mod:`~dkproto.iokit.family` the family registry that matching and the runner iterate
- :mod:`~dkproto.iokit.usb_host` (+ :mod:`~dkproto.iokit.usb_matching`), :mod:`~dkproto.iokit.hid`,
  :mod:`~dkproto.iokit.serial`, :mod:`~dkproto.iokit.resources` the families; importing this
  package registers them all
"""

from __future__ import annotations

from dkproto.iokit.action import OSAction, create_action
from dkproto.iokit.connect import (
    IOConnect,
    IOIterator,
    IONotificationPort,
    MethodResult,
    RemoteService,
    UserClientServer,
    async_reference,
    io_connect_call_async_method,
    io_connect_call_async_scalar_method,
    io_connect_call_async_struct_method,
    io_connect_call_method,
    io_connect_call_scalar_method,
    io_connect_call_struct_method,
    io_connect_map_memory64,
    io_iterator_next,
    io_notification_port_create,
    io_notification_port_destroy,
    io_notification_port_set_dispatch_queue,
    io_object_release,
    io_service_close,
    io_service_get_matching_service,
    io_service_get_matching_services,
    io_service_matching,
    io_service_name_matching,
    io_service_open,
    kIOConnectMethodVarOutputSize,
    kIOMainPortDefault,
)
from dkproto.iokit.family import Family, families, register_family, unregister_family
from dkproto.iokit.hid import (
    HIDEvent,
    IOHIDInterface,
    IOHIDReportType,
    IOUserHIDDevice,
    IOUserHIDEventDriver,
    IOUserHIDEventService,
)
from dkproto.iokit.memory import IOBufferMemoryDescriptor, IODMACommand, IOMemoryDescriptor, IOMemoryMap
from dkproto.iokit.queue import IODispatchQueue
from dkproto.iokit.resources import IOUserResources
from dkproto.iokit.serial import IOUserSerial, SerialPort, SerialPortInterface, SerialRing
from dkproto.iokit.service import IOService, ServiceState, start_service
from dkproto.iokit.status import check_ioreturn, ioreturn_of, is_stall, is_timeout
from dkproto.iokit.usb_host import (
    IOUSBHostDevice,
    IOUSBHostInterface,
    IOUSBHostPipe,
    tIOUSBHostConnectionSpeed,
)
from dkproto.iokit.user_client import (
    IOUserClient,
    IOUserClientMethodArguments,
    IOUserClientMethodDispatch,
    describe_dispatch_table,
    external_method,
    kIOUserClientVariableStructureSize,
)

__all__ = [
    "Family",
    "HIDEvent",
    "IOBufferMemoryDescriptor",
    "IOConnect",
    "IODMACommand",
    "IODispatchQueue",
    "IOHIDInterface",
    "IOHIDReportType",
    "IOIterator",
    "IOMemoryDescriptor",
    "IOMemoryMap",
    "IONotificationPort",
    "IOService",
    "IOUSBHostDevice",
    "IOUSBHostInterface",
    "IOUSBHostPipe",
    "IOUserClient",
    "IOUserClientMethodArguments",
    "IOUserClientMethodDispatch",
    "IOUserHIDDevice",
    "IOUserHIDEventDriver",
    "IOUserHIDEventService",
    "IOUserResources",
    "IOUserSerial",
    "MethodResult",
    "OSAction",
    "RemoteService",
    "SerialPort",
    "SerialPortInterface",
    "SerialRing",
    "ServiceState",
    "UserClientServer",
    "async_reference",
    "check_ioreturn",
    "create_action",
    "describe_dispatch_table",
    "external_method",
    "families",
    "io_connect_call_async_method",
    "io_connect_call_async_scalar_method",
    "io_connect_call_async_struct_method",
    "io_connect_call_method",
    "io_connect_call_scalar_method",
    "io_connect_call_struct_method",
    "io_connect_map_memory64",
    "io_iterator_next",
    "io_notification_port_create",
    "io_notification_port_destroy",
    "io_notification_port_set_dispatch_queue",
    "io_object_release",
    "io_service_close",
    "io_service_get_matching_service",
    "io_service_get_matching_services",
    "io_service_matching",
    "io_service_name_matching",
    "io_service_open",
    "ioreturn_of",
    "is_stall",
    "is_timeout",
    "kIOConnectMethodVarOutputSize",
    "kIOMainPortDefault",
    "kIOUserClientVariableStructureSize",
    "register_family",
    "start_service",
    "tIOUSBHostConnectionSpeed",
    "unregister_family",
]
