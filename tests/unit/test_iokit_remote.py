"""The app side from another process: io_service_open over a Unix socket."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from test_iokit_dispatch import Service

from dkproto.errors import BadArgumentError, NoDeviceError, NotPermittedError
from dkproto.iokit import (
    RemoteService,
    UserClientServer,
    io_connect_call_scalar_method,
    io_service_close,
    io_service_open,
    start_service,
)

APP = textwrap.dedent("""
    import sys, threading
    from dkproto.iokit import *
    from dkproto.errors import BadArgumentError
    svc = RemoteService(sys.argv[1], bytes.fromhex(sys.argv[2]))
    c = io_service_open(svc, 0)
    print("add", io_connect_call_scalar_method(c, 0, [40, 2], 1))
    print("rev", io_connect_call_struct_method(c, 1, b"abcd", 4))
    try:
        io_connect_call_scalar_method(c, 0, [1], 1)
    except BadArgumentError as e:
        print("bad", hex(e.ioreturn))
    port = io_notification_port_create(); ev = threading.Event(); got = []
    io_notification_port_set_dispatch_queue(port, IODispatchQueue("app"))
    io_connect_call_async_scalar_method(c, 4, port, async_reference(lambda r, s, a, b: (got.append((r, int(s), a, b)), ev.set()), 7), [2])
    ev.wait(5); print("async", got)
    big = io_connect_call_method(c, 2, input_struct=b"z" * 5000, output_struct_cnt=kIOConnectMethodVarOutputSize)
    print("big", len(big.struct_output))
    io_service_close(c)
    print("closed")
""")


def test_call_from_another_process() -> None:
    svc = start_service(Service(), None)
    server = UserClientServer(svc)
    try:
        out = subprocess.run([sys.executable, "-c", APP, server.address, server.authkey.hex()],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines == ["add [42]", "rev b'dcba'", "bad 0xe00002c2", "async [(7, 0, 10, 11)]", "big 5000", "closed"]
        assert svc.get_clients() == []  # IOServiceClose terminated the user client
    finally:
        server.close()
        svc.terminate()
        svc.wait_terminated(5)


def test_remote_in_process_and_app_death() -> None:
    svc = start_service(Service(), None)
    server = UserClientServer(svc)
    try:
        rs = RemoteService(server.address, server.authkey)
        c = io_service_open(rs, 0)
        assert io_connect_call_scalar_method(c, 0, [1, 2], 1) == [3]
        with pytest.raises(BadArgumentError):
            io_connect_call_scalar_method(c, 99)
        assert len(svc.get_clients()) == 1
        io_service_close(c)
        assert svc.get_clients() == []
        die = ("import sys, os\nfrom dkproto.iokit import *\n"
               "c = io_service_open(RemoteService(sys.argv[1], bytes.fromhex(sys.argv[2])), 0)\n"
               "print(io_connect_call_scalar_method(c, 0, [1, 2], 1), flush=True)\nos._exit(0)\n")
        out = subprocess.run([sys.executable, "-c", die, server.address, server.authkey.hex()],
                             capture_output=True, text=True, timeout=60)  # the app dies without IOServiceClose
        assert out.stdout.strip() == "[3]", out.stderr
        import time

        for _ in range(100):
            if not svc.get_clients():
                break
            time.sleep(0.05)
        assert svc.get_clients() == []  # the kernel closed what it left open
    finally:
        server.close()
        svc.terminate()
        svc.wait_terminated(5)


def test_wrong_key_and_missing_server() -> None:
    svc = start_service(Service(), None)
    server = UserClientServer(svc)
    try:
        with pytest.raises(NotPermittedError):
            io_service_open(RemoteService(server.address, b"wrong"), 0)
    finally:
        server.close()
        svc.terminate()
        svc.wait_terminated(5)
    with pytest.raises(NoDeviceError):
        io_service_open(RemoteService("/nonexistent/socket", b"k"), 0)


def test_remote_gate_not_permitted() -> None:
    svc = Service()
    svc.dext_entitlements = {"com.apple.developer.driverkit": True}
    svc.properties["CFBundleIdentifier"] = "com.example.dext"
    start_service(svc, None)
    server = UserClientServer(svc)
    try:
        with pytest.raises(NotPermittedError) as e:
            io_service_open(RemoteService(server.address, server.authkey), 0)
        assert e.value.ioreturn == 0xE00002E2
        ok = io_service_open(RemoteService(server.address, server.authkey), 0, app_entitlements={
            "com.apple.developer.driverkit.userclient-access": ["com.example.dext"]})
        io_service_close(ok)
    finally:
        server.close()
        svc.terminate()
        svc.wait_terminated(5)
