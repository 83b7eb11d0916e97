"""Sessions: what a program said to its devices and what they answered, one JSON line per call.

The format (``docs/session-format.md``) is written by ``dkproto.transport.record`` and served
back by ``dkproto.transport.replay``; this package is pure: the model (:class:`Session`,
:class:`Event`, :class:`DeviceRecord`), the hostile-input-safe loader (:func:`load_session`,
:func:`loads_session`) and the :class:`SessionWriter`.
"""

from dkproto.session.format import (
    FORMAT,
    MAX_DEVICES,
    MAX_EVENTS,
    MAX_LINE_BYTES,
    OPS,
    VERSION,
    DeviceRecord,
    Event,
    Session,
    SessionError,
    dumps_session,
    event_line,
    load_session,
    loads_session,
    status_name,
)
from dkproto.session.writer import SessionWriter, make_header

__all__ = [
    "FORMAT",
    "MAX_DEVICES",
    "MAX_EVENTS",
    "MAX_LINE_BYTES",
    "OPS",
    "VERSION",
    "DeviceRecord",
    "Event",
    "Session",
    "SessionError",
    "SessionWriter",
    "dumps_session",
    "event_line",
    "load_session",
    "loads_session",
    "make_header",
    "status_name",
]
