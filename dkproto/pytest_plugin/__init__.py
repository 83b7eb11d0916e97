"""dkproto's pytest plugin (registered as ``pytest11: dkproto``): options, markers, fixtures.

Re-exports only; the hooks live in :mod:`dkproto.pytest_plugin.hooks`, the lab tier's
proxies and fixtures in :mod:`dkproto.pytest_plugin.lab`.
"""

from dkproto.pytest_plugin.hooks import (
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)
from dkproto.pytest_plugin.lab import lab_capture, lab_definitions, lab_gadget, lab_session_items

__all__ = [
    "lab_capture",
    "lab_definitions",
    "lab_gadget",
    "lab_session_items",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_terminal_summary",
]
