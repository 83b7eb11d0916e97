"""dkproto's pytest plugin (registered as ``pytest11: dkproto``): options, markers, fixtures.

Re-exports only; the hooks live in :mod:`dkproto.pytest_plugin.hooks`.
"""

from dkproto.pytest_plugin.hooks import pytest_addoption, pytest_collection_modifyitems, pytest_configure

__all__ = ["pytest_addoption", "pytest_collection_modifyitems", "pytest_configure"]
