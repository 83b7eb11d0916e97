"""Cost of one IOUserClient external-method dispatch against a plain Python call, same run.

    python benchmarks/bench_dispatch.py [--number N] [--repeat R] [--json]

Three ways to run the same method body (two scalars in, one out):

- ``plain``: call the method directly, ``Client.add(client, None, args)`` (the reference);
- ``dispatch``: ``client.external_method(0, args)``: what ``IOUserClient::ExternalMethod``
  does with ``dispatch=NULL``: table look-up, the five ``IOUserClientMethodDispatch`` checks,
  the call, the result conversion (target: within 3x of ``plain``);
- ``app call`` (informational): ``io_connect_call_scalar_method`` in-process: argument
  building, the kernel's 4096/output rules, and a hop onto the user client's dispatch queue
  thread and back, the way a call reaches a dext.

Ratios, not absolute times, are the result (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit

from dkproto.iokit import (
    IOService,
    IOUserClient,
    IOUserClientMethodArguments,
    external_method,
    io_connect_call_scalar_method,
    io_service_close,
    io_service_open,
    start_service,
)


class Client(IOUserClient):
    """The benchmark's user client."""

    @external_method(0, scalar_in=2, scalar_out=1)
    def add(self, reference: object, args: IOUserClientMethodArguments) -> int:
        """Adds two scalars."""
        args.scalar_output[0] = args.scalar_input[0] + args.scalar_input[1]
        return 0


class Service(IOService):
    """Publishes Client as its user client."""

    def start(self, provider: IOService | None) -> None:
        super().start(provider)
        self.properties["UserClientProperties"] = {"IOClass": "IOUserUserClient", "IOUserClass": "Client"}
        self.register_service()

    def new_user_client(self, client_type: int) -> IOUserClient:
        return self.create(self, "UserClientProperties")  # type: ignore[return-value]


def measure(number: int, repeat: int) -> dict[str, float]:
    """Best time per call (ns) for each way, and the ratios against ``plain``."""
    client = start_service(Client(), None)
    args = IOUserClientMethodArguments(selector=0, scalar_input=(40, 2), scalar_input_count=2,
                                       scalar_output=[0], scalar_output_count=1)
    add = Client.add
    ext = client.external_method
    assert ext(0, args) == 0 and args.scalar_output == [42]

    def plain() -> None:
        add(client, None, args)

    def dispatch() -> None:
        ext(0, args)

    # Interleaved repeats, best of each: load from other processes hits both ways alike.
    tp, td = [], []
    for _ in range(repeat):
        tp.append(timeit.timeit(plain, number=number))
        td.append(timeit.timeit(dispatch, number=number))
    t_plain = min(tp) / number * 1e9
    t_disp = min(td) / number * 1e9
    svc = start_service(Service(), None)
    conn = io_service_open(svc, 0)
    n_app = max(1, number // 50)
    t_app = min(timeit.repeat(lambda: io_connect_call_scalar_method(conn, 0, (40, 2), 1), number=n_app,
                              repeat=repeat)) / n_app * 1e9
    io_service_close(conn)
    svc.terminate()
    svc.wait_terminated(5)
    return {"plain_ns": t_plain, "dispatch_ns": t_disp, "app_call_ns": t_app,
            "dispatch_ratio": t_disp / t_plain, "app_call_ratio": t_app / t_plain}


def main(argv: list[str] | None = None) -> int:
    """Run and print the numbers; exit 1 if dispatch is over 3x plain."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args(argv)
    r = measure(ns.number, ns.repeat)
    if ns.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"plain call          {r['plain_ns']:8.0f} ns")
        print(f"external_method     {r['dispatch_ns']:8.0f} ns   {r['dispatch_ratio']:.2f}x plain (target <= 3x)")
        print(f"app call in-process {r['app_call_ns']:8.0f} ns   {r['app_call_ratio']:.1f}x plain (queue hop)")
    return 0 if r["dispatch_ratio"] <= 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
