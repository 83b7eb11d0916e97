"""dkproto's pytest plugin (registered as ``pytest11: dkproto``): options, markers, fixtures.

Re-exports only; the hooks live in :mod:`dkproto.pytest_plugin.hooks`, the lab tier's
proxies and fixtures in :mod:`dkproto.pytest_plugin.lab`, the hardware-in-the-loop markers,
fixtures, record and replay in :mod:`dkproto.pytest_plugin.hil` (``docs/hil.md``).
"""

from dkproto.pytest_plugin.hil import dk_driver, dk_mode, dk_transport, dk_url, dk_usb_device, dk_user_client
from dkproto.pytest_plugin.hooks import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)
from dkproto.pytest_plugin.lab import lab_capture, lab_definitions, lab_gadget, lab_session_items

__all__ = [
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
]
