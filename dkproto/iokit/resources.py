"""``IOUserResources``: the nub a dext with no device matches on (driverkit.md 3.3, 5.1).

A virtual device (an ``IOUserHIDDevice`` that makes up its reports) or a root driver names
``IOProviderClass`` ``IOUserResources`` and ``IOResourceMatch`` ``IOKit``: it matches as soon as
IOKit is up, without any hardware. The module registers the family
(:mod:`~dkproto.iokit.family`): ``dkproto match`` lists the nub when a personality names it, and
``dkproto run`` starts such a driver on a fresh nub when no device is given.
"""

from __future__ import annotations

from typing import Any

from dkproto.iokit.family import Family, register_family
from dkproto.iokit.matching import Candidate, MatchResult
from dkproto.iokit.personality import Personality
from dkproto.iokit.service import IOService, start_service

__all__ = ["IOUserResources", "kIOResourceMatchKey", "kIOResourcesIOKit"]

kIOResourceMatchKey = "IOResourceMatch"
#: The one resource published here: IOKit itself.
kIOResourcesIOKit = "IOKit"


class IOUserResources(IOService):
    """``IOUserResources``: the resources nub; it publishes the ``IOKit`` resource."""

    def __init__(self) -> None:
        super().__init__()
        self.properties[kIOResourceMatchKey] = kIOResourcesIOKit


def _score(p: Personality, c: Candidate, keys: dict[str, Any], res: MatchResult) -> int | None:
    """``IOResourceMatch`` must be absent or ``IOKit``; score ``IOProbeScore``."""
    want = p.properties.get(kIOResourceMatchKey)
    if want is not None and want != kIOResourcesIOKit:
        res.reasons.append(f"IOResourceMatch {want!r}: only 'IOKit' is published here")
        return None
    res.reasons.append("IOUserResources always matches (IOResourceMatch IOKit)")
    return p.io_probe_score


def _standalone() -> list[Candidate]:
    """The nub ``dkproto match`` lists beside the devices."""
    return [Candidate(IOUserResources.__name__, {kIOResourceMatchKey: kIOResourcesIOKit}, "IOUserResources")]


def _publish(transport: Any, watch: float | None) -> tuple[IOService, list[IOService]]:
    """The runner's hook (no transport): a started, registered resources nub."""
    nub = start_service(IOUserResources(), None)
    nub.register_service()
    return nub, [nub]


register_family(Family(IOUserResources, score=_score, standalone=_standalone, publish=_publish))
