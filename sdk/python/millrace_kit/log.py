"""Structured logs to the host log, tagged by the host with the route and plugin version.

``log.info("mapped hold", ncr="NCR-2026-0142", lots="3")``: keyword arguments become fields.
"""

from . import host
from .text import wit_safe

__all__ = ["trace", "debug", "info", "warn", "error"]


def _write(level, message, fields):
    # wit_safe: a value quoted from a payload must never trap the call it only reports on.
    host.log(level, wit_safe(message), [(wit_safe(k), wit_safe(v)) for k, v in fields.items()])


def trace(message, **fields):
    """Very detailed tracing."""
    _write("trace", message, fields)


def debug(message, **fields):
    """Details useful when debugging a mapping."""
    _write("debug", message, fields)


def info(message, **fields):
    """Normal operation."""
    _write("info", message, fields)


def warn(message, **fields):
    """Something unexpected that the mapping handled."""
    _write("warn", message, fields)


def error(message, **fields):
    """Something failed."""
    _write("error", message, fields)
