"""Fixtures shared by the lab tests (they run inside the lab VM; see docs/lab.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

DEVICES = Path(__file__).resolve().parents[2] / "devices"


@pytest.fixture()
def example_gadget() -> Iterator[Callable[[str], Any]]:
    """Factory: bind the gadget of an example prototype (``devices/<name>/gadget.json``); every
    gadget made is removed after the test (a test may remove one itself first: an unplug)."""
    from dkproto.lab.devices import load_definition
    from dkproto.lab.gadget import Gadget

    made: list[Any] = []

    def make(name: str) -> Any:
        g = Gadget(load_definition(DEVICES / name / "gadget.json"), instance=f"ex-{name}-{len(made)}")
        made.append(g)
        g.create()
        g.bind(wait=15.0)
        return g

    yield make
    for g in reversed(made):
        g.remove()
