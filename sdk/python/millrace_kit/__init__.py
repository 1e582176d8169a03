"""millrace_kit: write millrace mapping plugins in Python.

A plugin is a module (``app.py``) with one plain function::

    from millrace_kit import MapError, config, decimals, events, log, malformed_at, text, timestamps

    def map(message):            # message.subject, message.headers, message.payload (bytes)
        ...
        return [events.event("quality-hold", site=..., occurred_at=..., data={...})]

Raise ``MapError.malformed/unsupported/rejected/other(...)`` to refuse a message. The kit's
build script (``sdk/python/build.sh``) generates the WIT bindings and the component glue.

An outbound plugin (``wit = "millrace:outbound@1.0.0"``) defines ``render(event)`` and
``interpret(event, request, response)`` instead; see :mod:`millrace_kit.posting`.
"""

from . import config, decimals, events, jsondoc, log, posting, text, timestamps
from .errors import MapError, malformed_at, rejected_at
from .posting import RenderError

__all__ = [
    "MapError",
    "RenderError",
    "config",
    "decimals",
    "events",
    "jsondoc",
    "log",
    "malformed_at",
    "posting",
    "rejected_at",
    "text",
    "timestamps",
]
