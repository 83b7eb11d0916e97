"""The runner after ``IOUSBHostDevice::Reset``: the device nub terminates and a new one is published in
its place (IOUSBHostDevice.h ``Reset``: "the device object is terminated and a new one published";
driverkit.md 4.1); as macOS matches the new nub, the runner matches it again and the driver comes
back. ``RunningDriver`` follows the new objects and ``wait_stopped`` does not end in the gap.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from dkproto.iokit import ServiceState, io_service_close
from dkproto.iokit.family import add_publish_handler, remove_publish_handler, republish_pending
from dkproto.iokit.runner import RunningDriver, run_driver
from dkproto.transport.sim import SimTransport, loopback_device

VB = Path(__file__).resolve().parents[2] / "devices" / "vendor-bulk"
sys.path.insert(0, str(VB))
import client as vb_client


def _until(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _start() -> tuple[RunningDriver, object]:
    sim = loopback_device()
    return run_driver(VB / "driver.py", SimTransport(sim, "sim://loopback")), sim


def test_after_reset_the_driver_is_matched_again_on_the_new_nub() -> None:
    running, sim = _start()
    try:
        old_nub, old_driver, old_provider = running.nub, running.driver, running.provider
        old_nub.reset()  # IOUSBHostDevice::Reset: terminate, re-enumerate, publish a new device
        assert _until(lambda: running.generation == 1), "the driver did not come back after the reset"
        assert running.nub is not old_nub and running.driver is not old_driver
        assert running.provider is not old_provider and running.provider.get_provider() is running.nub
        assert old_nub.state is ServiceState.FREED and old_driver.state is ServiceState.FREED
        assert running.running and running.personality.name == "VendorBulkDriver" and running.match.score == 90000
        assert not republish_pending(old_nub)
        conn = vb_client.open_driver()  # the app finds the new driver by matching
        vb = vb_client.VendorBulk(conn)
        try:
            assert conn.user_client.driver is running.driver
            assert vb.write(b"after reset") == 11 and vb.read(64) == b"after reset"
        finally:
            vb.close()
            io_service_close(conn)
        assert running.wait_stopped(0.2) is False  # the new driver runs
        sim.unplug()
        assert running.wait_stopped(5)
        assert running.driver.state is ServiceState.FREED and running.nub.state is ServiceState.FREED
    finally:
        running.stop()


def test_wait_stopped_does_not_return_because_the_old_nub_ended() -> None:
    running, sim = _start()
    try:
        done: list[bool] = []
        waiter = threading.Thread(target=lambda: done.append(running.wait_stopped(20)))
        waiter.start()
        running.nub.reset()
        assert _until(lambda: running.generation == 1)
        time.sleep(0.3)
        assert waiter.is_alive() and done == []  # the old nub and driver ended, the new ones run
        sim.unplug()
        waiter.join(10)
        assert done == [True]
    finally:
        running.stop()


def test_wait_stopped_with_a_timeout_in_the_gap_waits_for_the_successor() -> None:
    running, _ = _start()
    try:
        old = running.nub
        old.reset()
        assert running.wait_stopped(1.0) is False  # not stopped: the device came back
        assert running.nub is not old and running.running
    finally:
        running.stop()
    assert running.driver.state is ServiceState.FREED


def test_stop_during_a_reset_stops_the_device_that_comes_back() -> None:
    published: list = []

    def seen(root, nubs) -> None:
        published.append(root)

    add_publish_handler(seen)
    try:
        running, _ = _start()
        running.nub.reset()
        running.stop()  # while the device may still be coming back
        assert _until(lambda: bool(published))
        assert published[-1].wait_terminated(5), "the re-published device was left running"
        assert running.driver.state is ServiceState.FREED and not running.running
    finally:
        remove_publish_handler(seen)


def test_a_reset_of_another_device_leaves_this_driver_alone() -> None:
    a, _ = _start()
    b, _ = _start()
    try:
        b_nub, b_driver = b.nub, b.driver
        a.nub.reset()
        assert _until(lambda: a.generation == 1)
        assert (b.generation, b.nub, b.driver) == (0, b_nub, b_driver) and b.running
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("times", [2])
def test_several_resets_in_a_row(times: int) -> None:
    running, _ = _start()
    try:
        for n in range(1, times + 1):
            running.nub.reset()
            assert _until(lambda n=n: running.generation == n)
            assert running.running
    finally:
        running.stop()


def test_the_family_announces_the_gap_until_the_successor_is_published() -> None:
    """``nub_republishing`` (in ``Reset``) to ``nub_published(..., replaces=)``: ``republish_pending``
    covers the gap in which the old nub is gone and the new one not yet matched."""
    from dkproto.iokit.family import predecessor_of

    running, _ = _start()
    try:
        old = running.nub
        old.reset()
        assert republish_pending(old) or running.generation == 1  # announced before the old nub terminates
        assert _until(lambda: not republish_pending(old))
        assert predecessor_of(running.nub) == old.get_registry_entry_id()
    finally:
        running.stop()
