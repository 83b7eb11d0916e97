"""IOUSBHostDevice / Interface / Pipe over the in-process sim:// transport (pure; the lab proves usb://)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dkproto.errors import (
    BadArgumentError,
    ExclusiveAccessError,
    NoDeviceError,
    NotFoundError,
    NotOpenError,
    PipeStalledError,
)
from dkproto.iokit import IOBufferMemoryDescriptor, IOService, ServiceState, create_action, start_service
from dkproto.iokit.usb_host import (
    IOUSBHostDevice,
    IOUSBHostInterface,
    attach_device,
    kIOUSBAbortSynchronous,
    tIOUSBHostConnectionSpeed,
)
from dkproto.ioreturn import IOReturn
from dkproto.transport.sim import SimTransport, loopback_device


class Driver(IOService):
    """Collects CompleteAsyncIO callbacks."""

    def __init__(self) -> None:
        super().__init__()
        self.completions: list[tuple] = []
        self.event = threading.Event()
        self.stopped = threading.Event()

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        assert isinstance(provider, IOUSBHostInterface)
        provider.open(self)
        self.interface = provider

    def stop(self, provider: IOService | None) -> None:
        self.interface.close(self)
        self.stopped.set()
        super().stop(provider)

    def CompleteAsyncIO(self, action, status, actual, timestamp):
        self.completions.append((status, actual, timestamp, threading.current_thread().name))
        self.event.set()


@pytest.fixture()
def sim():
    device = loopback_device()
    dev = attach_device(SimTransport(device, "sim://loopback"))
    yield device, dev
    if dev.state is ServiceState.STARTED:
        dev.terminate()
        dev.wait_terminated(5)


def test_nubs_published(sim) -> None:
    device, dev = sim
    assert dev.state is ServiceState.STARTED and dev.is_registered
    assert dev.properties["idVendor"] == device.idVendor and dev.properties["USBSpeed"] == 3
    assert dev.get_speed() == tIOUSBHostConnectionSpeed.kIOUSBHostConnectionSpeedHigh
    (intf,) = dev.copy_interfaces()
    assert intf.get_provider() is dev and intf.is_registered
    assert intf.properties["bInterfaceClass"] == 0xFF and intf.properties["bConfigurationValue"] == 1
    assert [hex(int(e["bEndpointAddress"])) for e in intf.endpoint_descriptors()] == ["0x81", "0x2"]
    dd = dev.copy_device_descriptor()
    assert dd["bLength"] == 18 and dd["idVendor"] == device.idVendor
    cfg = dev.copy_configuration_descriptor(0)
    assert len(cfg) == int.from_bytes(cfg[2:4], "little")
    assert dev.copy_configuration_descriptor_with_value(1) == cfg
    with pytest.raises(NotFoundError) as e:
        dev.copy_configuration_descriptor_with_value(7)
    assert e.value.ioreturn == IOReturn.kIOUSBConfigNotFound
    assert dev.copy_current_configuration_descriptor() == cfg
    info = dev.matching_info()
    assert info.idVendor == device.idVendor and info.configurations[1][0].bInterfaceClass == 0xFF


def test_sessions_required(sim) -> None:
    _, dev = sim
    intf = dev.interfaces[0]
    with pytest.raises(NotOpenError):
        intf.copy_pipe(0x81)
    a, b = start_service(IOService(), None), start_service(IOService(), None)
    intf.open(a)
    with pytest.raises(ExclusiveAccessError):
        intf.open(b)
    with pytest.raises(NotFoundError) as e:
        intf.copy_pipe(0x83)
    assert e.value.ioreturn == IOReturn.kIOUSBEndpointNotFound
    pipe = intf.copy_pipe(0x81)
    assert intf.copy_pipe(0x81) is pipe
    intf.close(a)
    with pytest.raises(NotOpenError):
        pipe.io(IOBufferMemoryDescriptor.create(0, 8), 8, 100)
    dev.open(a)
    with pytest.raises(ExclusiveAccessError):
        dev.open(b)
    dev.open(intf)  # interfaces may hold sessions beside the client
    with pytest.raises(NotOpenError):
        dev.device_request(b, 0x80, 0, 0, 0, 2, IOBufferMemoryDescriptor.create(0, 2))
    buf = IOBufferMemoryDescriptor.create(0, 2)
    assert dev.device_request(a, 0x80, 0, 0, 0, 2, buf) == 2  # GET_STATUS
    dev.close(a)


def test_sync_io_and_device_request(sim) -> None:
    _, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    out, inp = drv.interface.copy_pipe(0x02), drv.interface.copy_pipe(0x81)
    assert out.io(IOBufferMemoryDescriptor.with_bytes(b"ping"), 4, 1000) == 4
    buf = IOBufferMemoryDescriptor.create(0, 64)
    assert inp.io(buf, 64, 1000) == 4 and buf.read_bytes(0, 4) == b"ping"
    with pytest.raises(BadArgumentError):
        inp.io(buf, 65, 1000)  # longer than the buffer
    # vendor requests of the loopback profile: 0x01 stores, 0x02 returns
    n = drv.interface.device_request(0x40, 0x01, 0, 0, 3, IOBufferMemoryDescriptor.with_bytes(b"abc"))
    assert n == 3
    back = IOBufferMemoryDescriptor.create(0, 16)
    assert drv.interface.device_request(0xC0, 0x02, 0, 0, 16, back) == 3 and back.read_bytes(0, 3) == b"abc"


def test_async_io_completion_shape(sim) -> None:
    _, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    out, inp = drv.interface.copy_pipe(0x02), drv.interface.copy_pipe(0x81)
    action = create_action(drv, "CompleteAsyncIO")
    buf = IOBufferMemoryDescriptor.create(0, 64)
    inp.async_io(buf, 64, action, 2000)
    assert drv.completions == []  # never inline
    out.io(IOBufferMemoryDescriptor.with_bytes(b"pong!"), 5, 1000)
    assert drv.event.wait(5)
    status, actual, ts, thread = drv.completions[0]
    assert (status, actual) == (0, 5) and ts > 0 and buf.read_bytes(0, 5) == b"pong!"
    assert "Driver.Default" in thread  # delivered on the driver's queue


def test_abort_completes_with_error(sim) -> None:
    _, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    inp = drv.interface.copy_pipe(0x81)
    inp.async_io(IOBufferMemoryDescriptor.create(0, 64), 64, create_action(drv, "CompleteAsyncIO"), 0)
    inp.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnAborted)
    assert drv.event.wait(5)
    assert drv.completions[0][0] == IOReturn.kIOReturnAborted
    drv.event.clear()
    inp.async_io(IOBufferMemoryDescriptor.create(0, 64), 64, create_action(drv, "CompleteAsyncIO"), 0)
    inp.abort(kIOUSBAbortSynchronous, IOReturn.kIOReturnNotResponding)  # withError is what completes
    assert drv.event.wait(5)
    assert drv.completions[1][0] == IOReturn.kIOReturnNotResponding


def test_interrupt_timeout_rule_and_select_alternate(sim) -> None:
    _, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    pipe = drv.interface.copy_pipe(0x81)
    pipe.transfer_type = 3  # pretend interrupt
    with pytest.raises(BadArgumentError, match="interrupt endpoints"):
        pipe.io(IOBufferMemoryDescriptor.create(0, 8), 8, 100)
    drv.interface.select_alternate_setting(0)
    with pytest.raises(NotOpenError):  # SelectAlternateSetting closes pipes
        pipe.io(IOBufferMemoryDescriptor.create(0, 8), 8, 0)
    with pytest.raises(NotFoundError):
        drv.interface.select_alternate_setting(5)


def test_stall_and_clear(sim) -> None:
    device, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    out = drv.interface.copy_pipe(0x02)
    device.stall(0x02)
    with pytest.raises(PipeStalledError) as e:
        out.io(IOBufferMemoryDescriptor.with_bytes(b"x"), 1, 1000)
    assert e.value.ioreturn in (IOReturn.kUSBHostReturnPipeStalled, IOReturn.kIOUSBPipeStalled)
    out.clear_stall(True)
    assert out.io(IOBufferMemoryDescriptor.with_bytes(b"x"), 1, 1000) == 1


def test_unplug_terminates_device_interfaces_and_driver(sim) -> None:
    device, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    inp = drv.interface.copy_pipe(0x81)
    inp.async_io(IOBufferMemoryDescriptor.create(0, 64), 64, create_action(drv, "CompleteAsyncIO"), 0)
    device.unplug()
    assert drv.event.wait(5)
    assert drv.completions[0][0] == IOReturn.kIOReturnNoDevice
    assert dev.wait_terminated(5)
    assert drv.stopped.is_set() and drv.state is ServiceState.FREED
    assert dev.interfaces[0].state is ServiceState.FREED
    with pytest.raises(NoDeviceError):
        dev.copy_descriptor(1, 18, 5)


def test_watch_detects_unplug(sim) -> None:
    device, dev = sim
    drv = start_service(Driver(), dev.interfaces[0])
    dev.watch(0.05)
    device.unplug()
    assert dev.wait_terminated(5)
    assert drv.state is ServiceState.FREED


def test_async_device_request(sim) -> None:
    _, dev = sim
    got: list[tuple] = []
    ev = threading.Event()

    class C(IOService):
        def CompleteAsyncDeviceRequest(self, action, status, n):
            got.append((status, n))
            ev.set()

    c = start_service(C(), None)
    dev.open(c)
    buf = IOBufferMemoryDescriptor.create(0, 2)
    dev.async_device_request(c, 0x80, 0, 0, 0, 2, buf, create_action(c, "CompleteAsyncDeviceRequest"))
    assert ev.wait(5) and got == [(0, 2)]
    ev.clear()
    dev.async_device_request(c, 0xC0, 0x77, 0, 0, 2, buf, create_action(c, "CompleteAsyncDeviceRequest"))
    assert ev.wait(5) and got[1][0] in (IOReturn.kUSBHostReturnPipeStalled, IOReturn.kIOUSBPipeStalled)


def test_device_isinstance() -> None:
    assert issubclass(IOUSBHostDevice, IOService) and issubclass(IOUSBHostInterface, IOService)


def test_copy_descriptor_and_device_info_go_through_the_one_reader() -> None:
    """CopyDescriptor's requestType/requestRecipient are GET_DESCRIPTOR's (a hub's class descriptor
    included); ``dkproto match --device`` reads the whole set with read_descriptor_set."""
    from dkproto.iokit.matching import load_devices
    from dkproto.iokit.usb_host import device_info_from_url
    from dkproto.transport.sim import SimDevice
    from dkproto.usb import parse

    hub = bytes.fromhex("092904e000326400ff")
    sim = SimDevice.from_set(parse(bytes.fromhex("12011002090002406b1d0101000101020301")
                                   + bytes.fromhex("0902190001010400e0090400000109000005" "0705810301000c"),
                                   extras=[hub]), name="hub")
    dev = attach_device(SimTransport(sim, "sim://hub"), configure=False)
    try:
        assert dev.copy_descriptor(0x29, 9, request_type=1) == hub
        assert (sim.log[-1].bmRequestType, sim.log[-1].wValue) == (0xA0, 0x2900)
        with pytest.raises(BadArgumentError):
            dev.copy_descriptor(0x29, 9, request_type=4)
    finally:
        dev.terminate()
    path = Path(__file__).resolve().parents[2] / "descriptors" / "hackrf-one.json"
    info = device_info_from_url(f"sim://{path}")
    (from_file,) = load_devices(path)
    assert (info.idVendor, info.idProduct, info.config_order) == (from_file.idVendor, from_file.idProduct,
                                                                  from_file.config_order)
    assert info.configurations == from_file.configurations and info.source == f"sim://{path}"
