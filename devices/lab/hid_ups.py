"""The ``ffs-hid-ups`` lab device: FunctionFS HID with any report descriptor, feature reports answered.

An example device program for the HID lab tests. Built on the lab's FunctionFS framework (:class:`dkproto.lab.ffs.FfsHidDevice`, which answers
GET_REPORT/SET_REPORT, unlike Linux 6.1's configfs ``hid`` function). :class:`DescriptorHidDevice`
serves a given report descriptor and starts with every feature report the descriptor declares
present (zeros, report ID byte first when IDs are used), so the host's GET_REPORT(Feature) for
any ID is answered; SET_REPORT(Feature) replaces the stored bytes (``device.hid.features``).

``ups_device`` is the factory named by ``devices/lab/ffs-hid-ups.json`` (``"program":
"hid_ups.py:ups_device"``): the UPS report
descriptor of the corpus (``hid/ups-power-device-hidtools-issue25.json``: Power Device page,
29 feature reports with IDs, units such as volts and seconds).
"""

from __future__ import annotations

import os

from dkproto.hid.parser import parse
from dkproto.lab.ffs import FfsHidDevice

__all__ = ["UPS_REPORT_DESCRIPTOR", "DescriptorHidDevice", "ups_device"]

# Corpus item hid/ups-power-device-hidtools-issue25.json (from bentiss/hid-tools tests; see the
# corpus README for provenance). Data only.
UPS_REPORT_DESCRIPTOR = bytes.fromhex(
    "05840904a1010924a1000902a1005500650085017501950515002501058509d00944094509420b61008400b183750395"
    "010900b10375019505058509d00944094509420b61008400818375039501090081038502750195040584096909650962"
    "0b4b008500b183750495010900b1037501950405840969096509620b4b0085008183950175040900810309737508850f"
    "b18309738183c0850615005500650095017508058525640966b1837520660110270065cd1d0968b18365007508058525"
    "64096681837520660110270065cd1d0968818306ffff8522650025647508094db18205857520660110270065cd1d0968"
    "8183850775086500058426ff000935b183850815000b29008500b18385097520058466011015ff270065cd1d0957b182"
    "850a55016601100956b182850c7508150026ff00650055000585092cb1032564850c098db1030983b1030967b10326ff"
    "0085100b89008500b103058409fdb10309feb10309ffb103850b0925b103091fb103851006ffff09f0b1030584851f09"
    "5ab182095a8182c00918a1000919850bb1030920a181092126ff00850bb103091fb1030902a100850c096c2501b103c0"
    "c00920a18226ff00850b0921b103850d091fb1030902a100850d096cb103c0c0c0091ea184850b091fb103850d094266"
    "01f0b18309436621d17510550726ff7fb1838512750826ff006721d1f0000940b18255006500c00916a100850b0917b1"
    "03091ca100850b091db103850e6721d1f00055070930b18385130953b18226ff7f75100954b182750826ff00c0c05500"
    "650006ffff0918a10085150919b103091aa18185160990b1828515091bb10385180994b182660110751827ffffff0085"
    "170992b1035504851a0991b1825500650005840902a10006ffff7508250185190993b18309938183c0c0091aa1827508"
    "26ff00851b0990b1828515091bb103851d0994b182660110751827ffffff00851c0992b1035504851e0991b182550005"
    "840902a10006ffff7508250185210993b18309938183c0c0c005840910a1000912a1008520750826ff00095ab182c0c0"
    "c0"
)


class DescriptorHidDevice(FfsHidDevice):
    """A FunctionFS HID device serving ``report_descriptor``, all its feature reports present.

    Args:
        mount: the FunctionFS mount point.
        report_descriptor: the report descriptor to serve.
    """

    def __init__(self, mount: str | os.PathLike[str], report_descriptor: bytes) -> None:
        super().__init__(mount, report_descriptor=report_descriptor)
        rd = parse(report_descriptor)
        for r in rd.reports_of("feature"):
            self.hid.features[r.id] = (bytes([r.id]) if r.id else b"") + bytes(r.data_size)
        self.layouts = rd


def ups_device(mount: str | os.PathLike[str]) -> DescriptorHidDevice:
    """The UPS of the corpus on FunctionFS (factory for ``devices/lab/ffs-hid-ups.json``)."""
    return DescriptorHidDevice(mount, UPS_REPORT_DESCRIPTOR)
