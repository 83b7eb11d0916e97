"""Every public package of dkproto pins its exported names: ``__all__``, sorted, one literal list per package.

When a package's exports change on purpose, update its list here (and only its list). A package without
``__all__`` is pinned by what it defines (what ``from package import *`` would give of its own names) until it
gets one; then it moves from :data:`NO_ALL` to :data:`EXPORTS`. A new public package must be added to one of
the two.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import dkproto

#: package -> sorted ``__all__``.
EXPORTS: dict[str, list[str]] = {
    "dkproto": [
        "AbortedError",
        "BadArgumentError",
        "DecodeError",
        "DkError",
        "DkTimeoutError",
        "EncodeError",
        "ExclusiveAccessError",
        "IOReturn",
        "MissingToolError",
        "NoDeviceError",
        "NotFoundError",
        "NotOpenError",
        "NotPermittedError",
        "OverrunError",
        "PipeStalledError",
        "ReplayMismatchError",
        "StateError",
        "URLError",
        "UnsupportedError",
        "__version__",
    ],
    "dkproto.errors": [
        "AbortedError",
        "BadArgumentError",
        "DecodeError",
        "DkError",
        "DkTimeoutError",
        "EncodeError",
        "ExclusiveAccessError",
        "MissingToolError",
        "NoDeviceError",
        "NotFoundError",
        "NotOpenError",
        "NotPermittedError",
        "OverrunError",
        "PipeStalledError",
        "ReplayMismatchError",
        "StateError",
        "URLError",
        "UnsupportedError",
        "error_for_ioreturn",
    ],
    "dkproto.ioreturn": [
        "IOReturn",
        "err_get_code",
        "err_get_sub",
        "err_get_system",
        "err_sub",
        "err_system",
        "iokit_common_err",
        "iokit_family_err",
        "iokit_usb_err",
        "iokit_usbhost_err",
        "iokit_vendor_specific_err",
        "ioreturn_name",
        "sub_iokit_common",
        "sub_iokit_usb",
        "sys_iokit",
    ],
    "dkproto.device": [
        "ControlRequest",
        "Handler",
        "RequestHandlers",
        "RequestKey",
        "SETUP_SIZE",
        "StandardResponder",
        "US_ENGLISH",
        "control_request",
        "langid_list",
        "load_set",
        "request_key",
        "set_from_json",
        "set_from_parts",
        "split_descriptors",
        "string_descriptor",
        "suggest_handler",
    ],
    "dkproto.hid": [
        "Collection",
        "DescriptorCodec",
        "Field",
        "Finding",
        "HidDevice",
        "HidDeviceInfo",
        "Item",
        "ItemType",
        "Report",
        "ReportCodec",
        "ReportDescriptor",
        "ReportValues",
        "Source",
        "enumerate_devices",
        "iter_items",
        "lint",
        "load",
        "parse",
        "parse_items",
    ],
    "dkproto.iokit": [
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
    ],
    "dkproto.lab": [
        "DeviceDefinition",
        "LabBootError",
        "LabImage",
        "LabResult",
        "LabTimeoutError",
        "cache_root",
        "load_definitions",
        "prepare",
        "run",
    ],
    "dkproto.pytest_plugin": [
        "dk_driver",
        "dk_mode",
        "dk_transport",
        "dk_url",
        "dk_usb_device",
        "dk_user_client",
        "lab_capture",
        "lab_definitions",
        "lab_gadget",
        "lab_session_items",
        "pytest_addoption",
        "pytest_collection_modifyitems",
        "pytest_configure",
        "pytest_runtest_makereport",
        "pytest_terminal_summary",
    ],
    "dkproto.capture": [
        "CaptureInfo",
        "DeviceSummary",
        "ExportSummary",
        "Interface",
        "LINKTYPE_USB_LINUX",
        "LINKTYPE_USB_LINUX_MMAPPED",
        "Packet",
        "PcapngReader",
        "PcapngSessionSink",
        "PcapngWriter",
        "UsbmonEncoder",
        "UsbmonPacket",
        "capture_info",
        "export_pcapng",
        "import_pcapng",
        "ioreturn_for_status",
        "read_pcapng",
        "session_packets",
        "status_for_ioreturn",
        "usbmon_packets",
    ],
    "dkproto.session": [
        "DeviceRecord",
        "Event",
        "FORMAT",
        "MAX_DEVICES",
        "MAX_EVENTS",
        "MAX_LINE_BYTES",
        "OPS",
        "Session",
        "SessionError",
        "SessionWriter",
        "VERSION",
        "dumps_session",
        "event_line",
        "load_session",
        "loads_session",
        "make_header",
        "status_name",
    ],
    "dkproto.transport": [
        "DEFAULT_TIMEOUT_MS",
        "HID_REPORT_FEATURE",
        "HID_REPORT_INPUT",
        "HID_REPORT_OUTPUT",
        "Transfer",
        "TransferCallback",
        "Transport",
        "TransportInfo",
        "TransportWrapper",
        "open_transport",
        "register_scheme",
        "schemes",
    ],
    "dkproto.usb": [
        "DescriptorSet",
        "Node",
        "from_bytes",
        "from_hex",
        "from_json",
        "load",
        "load_embedded_example",
        "load_folder",
        "parse",
        "render_as",
        "render_hex",
        "render_json",
        "render_text",
        "to_json",
        "walk",
    ],
}

#: Packages without ``__all__`` (not owned by dkproto.iokit; see the redesign report) -> the public names they
#: define, sorted.
NO_ALL: dict[str, list[str]] = {
    "dkproto.cli": [
        "COMMANDS",
        "EXIT_ERROR",
        "EXIT_USAGE",
        "LazyGroup",
        "cli",
        "internal_error_line",
        "main",
    ],
    "dkproto.data": [],
    "dkproto.schema": [],
}


def _defined_names(module: types.ModuleType) -> list[str]:
    """Public names a module without ``__all__`` defines: not modules, ``__future__`` features, or classes and
    functions imported from elsewhere."""
    def own(v: object) -> bool:
        if isinstance(v, types.ModuleType) or type(v).__module__ == "__future__":
            return False
        return not isinstance(v, (type, types.FunctionType)) or v.__module__ == module.__name__

    return sorted(n for n, v in vars(module).items() if not n.startswith("_") and own(v))


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_exports_are_pinned(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ lists a name twice"
    assert sorted(exported) == EXPORTS[name]


@pytest.mark.parametrize("name", sorted(EXPORTS) + sorted(NO_ALL))
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in EXPORTS.get(name) or NO_ALL[name] if not hasattr(module, n)]
    assert missing == [], f"{name} exports names it does not have"


@pytest.mark.parametrize("name", sorted(NO_ALL))
def test_packages_without_all(name: str) -> None:
    module = importlib.import_module(name)
    assert not hasattr(module, "__all__"), f"{name} now has __all__: move its pin to EXPORTS"
    assert _defined_names(module) == NO_ALL[name]


def test_every_public_package_is_pinned() -> None:
    packages = {f"dkproto.{m.name}" for m in pkgutil.iter_modules(dkproto.__path__)
                if m.ispkg and not m.name.startswith("_")}
    assert sorted(packages - set(EXPORTS) - set(NO_ALL)) == []
