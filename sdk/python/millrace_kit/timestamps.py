"""RFC 3339 timestamps and dates, the forms the host validates.

``parse`` reads an RFC 3339 / ISO 8601 timestamp that carries an offset (JSON sources);
``from_compact`` builds one from the date, time and offset fields legacy sources carry;
``rfc3339`` writes one (``Z`` for a zero offset, seconds always, fractions only when present).

A ``datetime`` holds microseconds; ``parse`` returns a :class:`Timestamp`, a ``datetime`` that
also keeps the fraction's digits as sent (up to nanoseconds), and ``rfc3339`` writes them back, so
``rfc3339(parse("...T09:41:27.123456789Z"))`` loses no digit.
"""

import datetime
import re

__all__ = ["Timestamp", "parse", "parse_date", "from_compact", "rfc3339", "full_date"]

# ASCII digits only: `\d` alone also matches other scripts' digits (Arabic-Indic, Devanagari...),
# which RFC 3339 does not allow.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_OFFSET = re.compile(r"[Zz]|([+-])(\d{2}):?(\d{2})?", re.ASCII)


class Timestamp(datetime.datetime):
    """An aware ``datetime`` from :func:`parse` that keeps the digits of the fraction of a second
    as sent (``fraction``, e.g. ``"123456789"``; ``datetime`` itself holds only microseconds).
    A value derived from it (``replace``, arithmetic, ``astimezone``) has no ``fraction``: its
    microseconds are what :func:`rfc3339` writes."""

    #: The fraction's digits as sent, or None (then the microseconds are written).
    fraction = None


def parse(text):
    """Parses an RFC 3339 timestamp with an offset, e.g. ``2026-03-02T06:15:00.250+01:00``, to an
    aware ``datetime``. A timestamp without an offset is refused: its moment is unknown."""
    if not isinstance(text, str):
        raise TypeError(f"expected a timestamp as text, got {type(text).__name__}")
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"'{text}' is not an RFC 3339 timestamp with an offset")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
    try:
        moment = Timestamp(
            year, month, day, hour, minute, second, micros, _offset(match.group(8), text)
        )
    except ValueError:
        raise ValueError(f"'{text}' is not a valid date and time") from None
    moment.fraction = fraction[1:] or None
    return moment


def parse_date(text):
    """Parses ``YYYY-MM-DD`` or ``YYYYMMDD`` to a ``datetime.date``."""
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text or "", re.ASCII)
    try:
        if match is None:
            raise ValueError
        return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise ValueError(f"'{text}' is not a valid date (expected YYYY-MM-DD)") from None


def from_compact(date, time, offset):
    """Builds RFC 3339 text from ``YYYYMMDD``, ``HHMMSS`` (or ``HHMM``) and ``+HH:MM`` fields:
    ``from_compact("20260302", "061500", "+01:00")`` is ``2026-03-02T06:15:00+01:00``."""
    day = parse_date(date)
    match = re.fullmatch(r"(\d{2}):?(\d{2})(?::?(\d{2}))?", time or "", re.ASCII)
    try:
        if match is None:
            raise ValueError
        hour, minute, second = (int(g or 0) for g in match.groups())
        moment = datetime.time(hour, minute, second)
    except ValueError:
        raise ValueError(f"'{time}' is not a valid time (expected HHMMSS)") from None
    return rfc3339(datetime.datetime.combine(day, moment, _offset(offset, offset)))


def rfc3339(moment):
    """Writes an aware ``datetime`` as RFC 3339 text: ``2026-03-02T06:15:00+01:00``, ``Z`` for
    a zero offset, the fraction of a second only when not zero, without trailing zeros: the
    digits as sent for a :class:`Timestamp` from :func:`parse` (up to nanoseconds), else the
    microseconds."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{moment} has no UTC offset; RFC 3339 needs one")
    digits = getattr(moment, "fraction", None) or f"{moment.microsecond:06d}"
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits.strip("0"):
        text = f"{text}.{digits.rstrip('0')}"
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def full_date(day):
    """Writes a ``datetime.date`` as RFC 3339 ``full-date`` text, ``YYYY-MM-DD``."""
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def _offset(text, original):
    match = _OFFSET.fullmatch(text or "")
    if match is None:
        raise ValueError(f"'{original}' has no valid UTC offset (expected Z or +HH:MM)")
    if match.group(1) is None:
        return datetime.timezone.utc
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"'{original}' has no valid UTC offset (expected Z or +HH:MM)")
    delta = datetime.timedelta(hours=hours, minutes=minutes)
    return datetime.timezone(-delta if match.group(1) == "-" else delta)
