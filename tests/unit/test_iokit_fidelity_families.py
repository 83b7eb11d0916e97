"""DriverKit fidelity of the memory, USB host, HID and serial mirrors (issue 12, items 6, 7, 8, 10).

Each test names its source: xnu ``iokit/DriverKit/*.iig`` and ``iokit/Kernel/IOUserServer.cpp``
(apple-oss-distributions/xnu), the USBDriverKit / HIDDriverKit / SerialDriverKit headers and
documentation, AppleUSBDescriptorParsing (IOUSBHost), IOHIDFamily ``HIDDriverKit/IOUserHIDEventService.cpp``,
or a section of ``docs/reference/driverkit.md``. Behaviour dkproto could not confirm is marked so.
"""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from dkproto.errors import BadArgumentError, DkError, NotFoundError, StateError, UnsupportedError
from dkproto.iokit import IOService, ServiceState, create_action, start_service
from dkproto.iokit.family import add_publish_handler, remove_publish_handler
from dkproto.iokit.hid import (
    HIDEvent,
    IOHIDDigitizerStylusData,
    IOHIDDigitizerTouchData,
    IOHIDReportType,
    IOUserHIDDevice,
    IOUserHIDEventDriver,
    IOUserHIDEventService,
    kIOHIDEventDriverHandlesReport,
)
from dkproto.iokit.memory import (
    IOBufferMemoryDescriptor,
    IODMACommand,
    IODMACommandSpecification,
    IOMemoryDescriptor,
    kIOMemoryDirectionIn,
    kIOMemoryDirectionInOut,
    kIOMemoryDisableCopyOnWrite,
    kIOMemoryMapCacheModeInhibit,
    kIOMemoryMapFixedAddress,
    kIOMemoryMapReadOnly,
    view_address,
)
from dkproto.iokit.serial import IOUserSerial, SerialPortInterface
from dkproto.iokit.usb_host import (
    IOUSBGetEndpointDirection,
    IOUSBGetNextAssociatedDescriptorWithType,
    IOUSBGetNextDescriptor,
    IOUSBGetNextEndpointDescriptor,
    IOUSBGetNextInterfaceDescriptor,
    attach_device,
    kIOUSBAbortSynchronous,
    kIOUSBGetEndpointDescriptorCurrentPolicy,
    kIOUSBGetEndpointDescriptorOriginal,
    kIOUSBHostPortStatusConnectedSpeedMask,
    kIOUSBHostPortStatusConnectedSpeedPhase,
    kIOUSBHostPortStatusEnabled,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport.sim import SimTransport, loopback_device

# ---- item 6: memory ------------------------------------------------------------------------------


def test_buffer_address_range_addresses_the_bytes() -> None:
    """IOBufferMemoryDescriptor.iig GetAddressRange: the address of the buffer (not an id())."""
    buf = IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 16, 0)
    seg = buf.get_address_range()
    assert seg.length == 16
    ctypes.memmove(seg.address, b"hello", 5)
    assert buf.read_bytes(0, 5) == b"hello"
    assert bytes(view_address(seg.address, 5)) == b"hello"


def test_create_accepts_only_direction_bits_and_sets_length_to_capacity() -> None:
    """xnu IOUserServer.cpp IOBufferMemoryDescriptor::Create_Impl: options other than the direction
    bits are kIOReturnBadArgument; IOBufferMemoryDescriptor.cpp initWithPhysicalMask ends with
    setLength(_capacity); a zero capacity allocates nothing (kIOReturnNoMemory)."""
    with pytest.raises(BadArgumentError):
        IOBufferMemoryDescriptor.create(kIOMemoryDisableCopyOnWrite, 8)
    assert IOBufferMemoryDescriptor.create(kIOMemoryDirectionIn, 8).get_length() == 8
    with pytest.raises(DkError) as exc:
        IOBufferMemoryDescriptor.create(kIOMemoryDirectionIn, 0)
    assert exc.value.ioreturn == IOReturn.kIOReturnNoMemory


def test_create_alignment() -> None:
    """IOBufferMemoryDescriptor.iig Create: alignment controls the buffer's alignment (0 = none);
    a non-power-of-two is refused (dkproto's check)."""
    for align in (64, 4096):
        assert IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 100, align).get_address_range().address % align == 0
    with pytest.raises(BadArgumentError):
        IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 8, 3)


def test_set_length_above_capacity_refused() -> None:
    """IOBufferMemoryDescriptor.cpp setLength ignores a length above the capacity; dkproto raises
    (stricter) so a prototype cannot go on with the old length."""
    buf = IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 8)
    buf.set_length(3)
    assert buf.get_length() == 3 and buf.get_address_range().length == 3
    with pytest.raises(BadArgumentError):
        buf.set_length(9)


def test_create_mapping_rules() -> None:
    """xnu IOUserServer.cpp CreateMapping_Impl + IOMemoryDescriptor.cpp createMappingInTask/doMap:
    length 0 maps the whole length (so offset>0 with length 0 fails, kIOReturnError); read-only
    option; unknown cache mode kIOReturnBadArgument; IOMemoryMap.iig GetAddress/GetLength/GetOffset."""
    buf = IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 8)
    m = buf.create_mapping(0, 0, 2, 4, 0)
    assert (m.get_offset(), m.get_length()) == (2, 4)
    assert m.get_address() == buf.get_address_range().address + 2
    m.view()[:] = b"wxyz"
    assert buf.read_bytes() == b"\0\0wxyz\0\0"
    with pytest.raises(BadArgumentError) as exc:
        buf.create_mapping(0, 0, 2, 0, 0)
    assert exc.value.ioreturn == IOReturn.kIOReturnError
    assert buf.create_mapping(kIOMemoryMapReadOnly).view().readonly
    assert buf.create_mapping(kIOMemoryMapCacheModeInhibit).get_length() == 8
    with pytest.raises(BadArgumentError):
        buf.create_mapping(0x300)
    with pytest.raises(UnsupportedError):
        buf.create_mapping(kIOMemoryMapFixedAddress, 0x1000)
    with pytest.raises(BadArgumentError):  # IOMemoryDescriptor.iig: "Only zero for no alignment is supported"
        buf.create_mapping(0, 0, 0, 0, 16)


def test_read_only_descriptor_maps_read_only() -> None:
    """CreateMapping_Impl: memory the dext may only read (direction Out from the app) maps read-only."""
    md = IOMemoryDescriptor(b"abc", read_only=True)
    assert md.create_mapping().view().readonly and md.create_mapping().view().tobytes() == b"abc"


def test_dma_command_prepare_complete() -> None:
    """IODMACommand.iig Create/PrepareForDMA/CompleteDMA/GetPreparation: one preparation at a time."""
    buf = IOBufferMemoryDescriptor.create(kIOMemoryDirectionIn, 64)
    dma = IODMACommand.create(IOService(), 0, IODMACommandSpecification(maxAddressBits=64))
    with pytest.raises(BadArgumentError):
        IODMACommand.create(IOService(), 1, IODMACommandSpecification())
    flags, segs = dma.prepare_for_dma(0, buf, 8, 16)
    assert flags == kIOMemoryDirectionIn and segs[0].address == buf.get_address_range().address + 8
    assert segs[0].length == 16 and dma.get_preparation()[:2] == (8, 16)
    with pytest.raises(StateError):
        dma.prepare_for_dma(0, buf)
    dma.complete_dma()
    with pytest.raises(StateError):
        dma.complete_dma()


# ---- item 7: USB host ----------------------------------------------------------------------------

# configuration: cfg(9) + iad(8) + if0 alt0(9) + ep 0x81 bulk(7) + ss companion(6) + if1(9) + ep 0x02 bulk(7)
CFG = bytes.fromhex(
    "0902" "3700" "02010080fa"
    "080b00020000ff00"
    "0904000001ffff0000"
    "0705810200020a"
    "063000000000"
    "0904010001ffff0000"
    "0705020200020a")


def test_descriptor_walk_matches_apple_parsing() -> None:
    """AppleUSBDescriptorParsing (driverkit.md 4.6): IOUSBGetNextDescriptor(cfg, NULL) starts after
    the configuration descriptor; IOUSBGetNextEndpointDescriptor stops at the next interface;
    IOUSBGetNextAssociatedDescriptorWithType returns NULL once the parent's sibling comes first."""
    assert IOUSBGetNextDescriptor(CFG, None) == 9  # the IAD, not the configuration itself
    if0 = IOUSBGetNextInterfaceDescriptor(CFG, None)
    if1 = IOUSBGetNextInterfaceDescriptor(CFG, if0)
    assert (if0, if1) == (17, 39) and IOUSBGetNextInterfaceDescriptor(CFG, if1) is None
    ep = IOUSBGetNextEndpointDescriptor(CFG, if0, None)
    assert ep == 26 and IOUSBGetNextEndpointDescriptor(CFG, if0, ep) is None
    assert IOUSBGetEndpointDirection(CFG[ep:ep + 7]) == 1
    assert IOUSBGetNextAssociatedDescriptorWithType(CFG, if0, None, 48) == 33
    assert IOUSBGetNextAssociatedDescriptorWithType(CFG, if1, None, 48) is None
    # hostile input: a zero bLength or a descriptor running past wTotalLength ends the walk
    assert IOUSBGetNextDescriptor(CFG[:9] + b"\x00\x05", None) is None
    assert IOUSBGetNextDescriptor(bytes.fromhex("09020c00") + bytes(5) + b"\x07\x05\x81", None) is None


@pytest.fixture()
def sim():
    device = loopback_device()
    dev = attach_device(SimTransport(device, "sim://loopback"))
    yield device, dev
    if dev.state is ServiceState.STARTED:
        dev.terminate()
        dev.wait_terminated(5)


def test_interface_iterator(sim) -> None:
    """IOUSBHostDevice.h CreateInterfaceIterator/CopyInterface (NULL at the end)/DestroyInterfaceIterator."""
    _, dev = sim
    ref = dev.create_interface_iterator()
    got = []
    while (intf := dev.copy_interface(ref)) is not None:
        got.append(intf)
    dev.destroy_interface_iterator(ref)
    assert got == dev.interfaces and got
    with pytest.raises(BadArgumentError):
        dev.copy_interface(ref)


def test_port_status_frame_number_idle_policy(sim) -> None:
    """IOUSBHostInterface.iig GetPortStatus (tIOUSBHostPortStatus), GetFrameNumber(frame, time),
    SetIdlePolicy/GetIdlePolicy; no SetIdlePolicy on IOUSBHostDevice (none in USBDriverKit)."""
    _, dev = sim
    intf = dev.interfaces[0]
    status = intf.get_port_status()
    assert status & kIOUSBHostPortStatusEnabled
    assert (status & kIOUSBHostPortStatusConnectedSpeedMask) >> kIOUSBHostPortStatusConnectedSpeedPhase == dev.get_speed()
    f1, t1 = intf.get_frame_number()
    time.sleep(0.003)
    f2, t2 = intf.get_frame_number()
    assert f2 >= f1 + 2 and t2 > t1
    intf.set_idle_policy(250)
    assert intf.get_idle_policy() == 250
    with pytest.raises(BadArgumentError):
        intf.set_idle_policy(-1)
    assert not hasattr(dev, "set_idle_policy")


class Client(IOService):
    def __init__(self) -> None:
        super().__init__()
        self.done: list[tuple[int, int]] = []
        self.event = threading.Event()

    def CompleteAsyncDeviceRequest(self, action, status, n):
        self.done.append((status, n))
        if len(self.done) >= 3:
            self.event.set()


def test_abort_device_requests_for_the_client(sim) -> None:
    """IOUSBHostInterface.iig AbortDeviceRequests(options, withError): pending AsyncDeviceRequest
    calls complete with withError (driverkit.md 1.4: pass kIOReturnAborted)."""
    _, dev = sim
    intf = dev.interfaces[0]
    client = start_service(Client(), None)
    intf.open(client)
    action = create_action(client, "CompleteAsyncDeviceRequest")
    gate = threading.Event()
    dev._control_queue.dispatch_async(gate.wait, 5)  # hold the control queue so requests stay queued
    for _ in range(3):
        intf.async_device_request(0x80, 0x00, 0, 0, 2, IOBufferMemoryDescriptor.create(0, 2), action, 1000)
    intf.abort_device_requests(0, IOReturn.kIOReturnAborted)  # asynchronous: returns at once
    gate.set()
    assert client.event.wait(5)
    assert client.done == [(IOReturn.kIOReturnAborted, 0)] * 3
    intf.abort_device_requests(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)  # nothing pending: returns
    intf.close(client)


def test_pipe_get_descriptors_by_type(sim) -> None:
    """IOUSBHostPipe.h GetDescriptors(descriptors, kIOUSBGetEndpointDescriptorOriginal/CurrentPolicy)
    and AdjustPipe (driverkit.md 4.3)."""
    _, dev = sim
    intf = dev.interfaces[0]
    client = start_service(Client(), None)
    intf.open(client)
    ep = IOUSBGetNextEndpointDescriptor(intf.copy_configuration_descriptor(), intf.get_interface_offset(), None)
    assert ep is not None
    address = intf.copy_configuration_descriptor()[ep + 2]
    pipe = intf.copy_pipe(address)
    d = pipe.get_descriptors(kIOUSBGetEndpointDescriptorOriginal)
    assert int(d.descriptor["bEndpointAddress"]) == address and d.bcdUSB == dev.properties["bcdUSB"]
    assert d.ssCompanionDescriptor is None  # a full/high-speed device has no companions
    assert pipe.get_descriptors(kIOUSBGetEndpointDescriptorCurrentPolicy) == d
    pipe.adjust_pipe(d)
    with pytest.raises(BadArgumentError):
        pipe.get_descriptors(7)
    intf.close(client)


def test_reset_terminates_and_publishes_a_new_device(sim) -> None:
    """IOUSBHostDevice.h Reset (driverkit.md 4.1): this object and its children terminate, the
    device re-enumerates as a new IOUSBHostDevice, published for matching."""
    _, dev = sim
    old_intf = dev.interfaces[0]
    published: list[IOService] = []
    got = threading.Event()

    def handler(root: IOService, nubs: list[IOService]) -> None:
        published.append(root)
        got.set()

    add_publish_handler(handler)
    try:
        dev.reset()
        assert dev.wait_terminated(5) and old_intf.wait_terminated(5)
        assert got.wait(5)
    finally:
        remove_publish_handler(handler)
    new = published[0]
    assert new is not dev and new.state is ServiceState.STARTED and new.interfaces
    assert new.interfaces[0] is not old_intf
    new.terminate()
    new.wait_terminated(5)


# ---- item 8: HID ---------------------------------------------------------------------------------

KEYBOARD_RD = bytes.fromhex(
    "05010906a101050819012903150025017501950391029505910105071ae0002ae7009508810275089501810119002a910026ff00"
    "95068100050c0ac002a1021ac1022ac6029506b103c0c0")
# Generic Desktop Pointer, absolute X/Y 0..32767 (16 bits each) + 3 buttons
TABLET_RD = bytes.fromhex(
    "05010902a1010901a100050919012903150025019503750181029501750581030501093009311500"
    "26ff7f751095028102c0c0")
# Digitizer Touch Screen: one Finger collection with Tip Switch, Contact ID, X, Y (8 bits each)
TOUCH_RD = bytes.fromhex(
    "050d0904a1010922a102094215002501750195018102750195078103"
    "0951150026ff00750895018102"
    "050109300931750895028102c0c0")


class Dev(IOUserHIDDevice):
    def __init__(self, rd: bytes) -> None:
        super().__init__()
        self.rd = rd
        self.sets: list[tuple[int, int, bytes]] = []

    def new_device_description(self):
        return {"VendorID": 0x1209, "ProductID": 2, "Transport": "Virtual"}

    def new_report_descriptor(self) -> bytes:
        return self.rd

    def set_report(self, report, report_type, options, completion_timeout, action):
        self.sets.append((report_type, options & 0xFF, report.read_bytes()))
        self.complete_report(action, 0, report.get_length())
        return 0


def _wait(svc: IOUserHIDEventService, n: int) -> list[HIDEvent]:
    deadline = time.monotonic() + 5
    while len(svc.events) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return svc.events


def test_event_service_base_decodes_nothing_and_handle_start_runs_before_open() -> None:
    """IOHIDFamily HIDDriverKit/IOUserHIDEventService.cpp: Start calls handleStart before opening
    the interface; the base handleReport is empty (decoding is IOUserHIDEventDriver's, driverkit.md 5.1)."""
    dev = start_service(Dev(KEYBOARD_RD), None)
    seen: list[object] = []

    class Base(IOUserHIDEventService):
        def handle_start(self, provider):
            seen.append(provider._client)  # who has the interface open while handleStart runs
            return True

    svc = start_service(Base(), dev.hid_interface)
    assert seen == [None] and dev.hid_interface._client is svc
    dev.handle_report(1, bytes([0, 0, 4, 0, 0, 0, 0, 0]))
    time.sleep(0.1)
    assert svc.events == []
    assert dev.hid_interface.last_reports[(0, 0)][1][2] == 4  # processReport saw it


def test_handles_report_property_skips_process_report() -> None:
    """IOUserHIDEventService.iig SetProperties / IOHIDEventServiceKeys.h kIOHIDEventDriverHandlesReport:
    with it set, handleReport gets the report before any processing (no processReport)."""
    dev = start_service(Dev(KEYBOARD_RD), None)
    got = threading.Event()

    class Raw(IOUserHIDEventService):
        def handle_start(self, provider):
            self.set_properties({kIOHIDEventDriverHandlesReport: True})
            return True

        def handle_report(self, timestamp, report, report_length, report_type=0, report_id=0):
            self.raw = bytes(report)
            got.set()

    svc = start_service(Raw(), dev.hid_interface)
    dev.handle_report(1, bytes([0, 0, 5, 0, 0, 0, 0, 0]))
    assert got.wait(5) and svc.raw[2] == 5
    assert dev.hid_interface.last_reports == {}


def test_absolute_pointer_dispatch() -> None:
    """IOHIDEventService dispatchAbsolutePointerEvent(ts, IOFixed x, y in 0..1, buttons, ...)
    (driverkit.md 5.4), called from IOUserHIDEventDriver::handleAbsolutePointerReport."""
    dev = start_service(Dev(TABLET_RD), None)
    svc = start_service(IOUserHIDEventDriver(), dev.hid_interface)
    dev.handle_report(9, bytes([0b001]) + (32767).to_bytes(2, "little") + (0).to_bytes(2, "little"))
    ev = _wait(svc, 1)[0]
    assert ev == HIDEvent("absolute_pointer", 9, x=1 << 16, y=0, buttons=1)


def test_digitizer_touch_dispatch() -> None:
    """IOUserHIDEventService.cpp dispatchDigitizerTouchEvent(ts, touchData, count), from
    IOUserHIDEventDriver::handleDigitizerReport; NULL data or count 0 is kIOReturnBadArgument."""
    dev = start_service(Dev(TOUCH_RD), None)
    svc = start_service(IOUserHIDEventDriver(), dev.hid_interface)
    dev.handle_report(3, bytes([1, 7, 255, 0]))
    ev = _wait(svc, 1)[0]
    assert ev.kind == "digitizer_touch"
    t = ev.contacts[0]
    assert isinstance(t, IOHIDDigitizerTouchData)
    assert (t.identifier, t.x, t.y, t.touch, t.inRange, t.touchChanged) == (7, 1 << 16, 0, 1, 1, 1)
    assert svc.dispatch_digitizer_touch_event(1, [], 0) == IOReturn.kIOReturnBadArgument
    assert svc.dispatch_digitizer_stylus_event(1, None) == IOReturn.kIOReturnBadArgument
    assert svc.dispatch_digitizer_stylus_event(1, IOHIDDigitizerStylusData(tip=1)) == IOReturn.kIOReturnSuccess


def test_set_led_sends_output_report() -> None:
    """HIDDriverKit IOUserHIDEventDriver SetLED(uint32_t usage, bool on): LED page 0x08 usages."""
    dev = start_service(Dev(KEYBOARD_RD), None)
    svc = start_service(IOUserHIDEventDriver(), dev.hid_interface)
    svc.set_led(2, True)   # Caps Lock
    svc.set_led(1, True)   # Num Lock
    svc.set_led(2, False)
    assert [s[2] for s in dev.sets] == [b"\x02", b"\x03", b"\x01"]
    assert all(s[0] == IOHIDReportType.kIOHIDReportTypeOutput for s in dev.sets)
    with pytest.raises(NotFoundError):
        svc.set_led(0x4B, True)


# ---- item 10: serial -----------------------------------------------------------------------------

def test_base_start_creates_no_queues_and_port_needs_them() -> None:
    """SerialDriverKit IOUserSerial: the driver calls ConnectQueues; dkproto's base Start does not."""
    s = start_service(IOUserSerial(), None)
    assert s.queues is None
    with pytest.raises(DkError) as exc:
        s.open_port()
    assert exc.value.ioreturn == IOReturn.kIOReturnNotReady


def test_connect_queues_nine_arguments_and_interface_mapping() -> None:
    """SerialDriverKit IOUserSerial ConnectQueues(ifmd, rxqmd, txqmd, in_rxqmd, in_txqmd, in_rxqoffset,
    in_txqoffset, in_rxqlogsz, in_txqlogsz): NULL inputs get 16 KiB buffers whatever the log size;
    the driver reads SerialPortInterface through a mapping of ifmd (layout order [unconfirmed])."""
    s = start_service(IOUserSerial(), None)
    own_tx = IOBufferMemoryDescriptor.create(kIOMemoryDirectionInOut, 64 + 1024)
    ifmd, rxqmd, txqmd = s.connect_queues(None, own_tx, 0, 64, 5, 10)
    assert rxqmd.get_length() == 16384 and txqmd is own_tx
    spi = SerialPortInterface.from_address(ifmd.create_mapping().get_address())
    assert (spi.rxqlogsz, spi.txqlogsz, spi.rxqoffset, spi.txqoffset) == (14, 10, 0, 64)
    # the driver produces RX through the mapping, as a dext does; the system side sees it
    rx = rxqmd.create_mapping().view()
    rx[0:3] = b"abc"
    spi.rxPI = 3
    assert s.queues is not None and s.queues.rx.get() == b"abc" and spi.rxCI == 3
    # the system writes TX at txqoffset; the driver consumes at txCI
    assert s.queues.tx.put(b"xyz") == 3 and spi.txPI == 3
    assert own_tx.read_bytes(64, 3) == b"xyz"
    with pytest.raises(BadArgumentError):
        s.connect_queues(None, own_tx, 0, 64, 0, 11)  # 64 + 2**11 > 1088 bytes
    with pytest.raises(BadArgumentError):
        s.connect_queues(None, own_tx, 0, 0, 0, 0)  # a driver buffer needs its log size
