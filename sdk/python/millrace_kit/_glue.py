"""The component glue: hands the plugin's ``map`` to componentize-py's ``WitWorld`` export and
converts between the kit's plain values and the generated WIT bindings.

Only importable inside a component build (it needs the generated ``wit_world`` package); the
build script's entry module calls :func:`world`.
"""

import dataclasses
import enum
import functools
import typing

from componentize_py_types import Err
from wit_world import WitWorld as _MapperWorld
from wit_world.imports import canonical, types

from . import log
from .errors import MapError, bug
from .text import require_unicode, wit_safe

#: Fields later WIT versions added; a plugin targeting an older version (its plugin.toml `wit`)
#: has them left out and logged, not refused.
_NEWER_FIELDS = {"expiry_date": "millrace:mapping@1.1.0"}

_ERRORS = {
    "malformed-input": types.MapError_MalformedInput,
    "unsupported-document": types.MapError_UnsupportedDocument,
    "rejected-by-rule": types.MapError_RejectedByRule,
    "other": types.MapError_Other,
}


# The bindings' classes never change within an instance: read their type hints and field names
# once, not on every event (typing.get_type_hints evaluates every annotation each time).
_hints = functools.cache(typing.get_type_hints)


@functools.cache
def _field_names(cls):
    return frozenset(f.name for f in dataclasses.fields(cls))


def _kebab(name):
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


# `EventData_QualityHold` -> "quality-hold"
_EVENT_DATA = {
    _kebab(case.__name__.split("_", 1)[1]): case for case in typing.get_args(canonical.EventData)
}


def _warm(hint, seen):
    """Reads the hints and fields of ``hint`` and of every record it holds into the caches."""
    for arg in typing.get_args(hint):
        _warm(arg, seen)
    if dataclasses.is_dataclass(hint) and hint not in seen:
        seen.add(hint)
        _field_names(hint)
        for inner in _hints(hint).values():
            _warm(inner, seen)


def world(map_function):
    """The ``WitWorld`` class componentize-py exports, calling ``map_function(message)``."""
    # At build time, so the component's snapshot holds the caches and no call fills them.
    _warm(canonical.CanonicalEvent, set())

    class WitWorld(_MapperWorld):
        def map(self, input):
            try:
                produced = map_function(input)
                if produced is None:
                    raise TypeError("map() returned None; return a list of events (maybe empty)")
                return [_event(value, f"event {n}") for n, value in enumerate(produced)]
            except MapError as error:  # also text no WIT string can carry: refused, never a trap
                raise Err(_ERRORS[error.kind](wit_safe(error.message))) from None
            except Exception as error:  # a bug: its dead letter says what and where
                raise Err(_ERRORS["other"](wit_safe(bug("map()", error)))) from None

    return WitWorld


def _event(value, where):
    if isinstance(value, canonical.CanonicalEvent):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{where}: expected a dict from events.event(), got {type(value).__name__}")
    value = dict(value)
    kind = value.pop("kind", None)
    case = _EVENT_DATA.get(kind)
    if case is None:
        raise TypeError(f"{where}: unknown event kind {kind!r}; expected one of {sorted(_EVENT_DATA)}")
    data_type = _hints(case)["value"]
    data = _convert(data_type, value.pop("data", None), f"{where}.data")
    value["data"] = case(data)
    return _record(canonical.CanonicalEvent, value, where)


def _record(cls, value, where):
    if not isinstance(value, dict):
        raise TypeError(f"{where}: expected a dict for {cls.__name__}, got {type(value).__name__}")
    hints = _hints(cls)
    names = _field_names(cls)
    newer = sorted(k for k in set(value) - names if k in _NEWER_FIELDS and value[k] is not None)
    if newer:
        log.info(
            f"{', '.join(newer)} not mapped: the plugin's WIT version has no such field; "
            f"target {_NEWER_FIELDS[newer[0]]} in plugin.toml",
            **{k: value[k] for k in newer},
        )
    value = {k: v for k, v in value.items() if not (k in _NEWER_FIELDS and k not in names)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise TypeError(f"{where}: {cls.__name__} has no field {unknown[0]!r}; fields: {sorted(names)}")
    return cls(**{name: _convert(hints[name], value.get(name), f"{where}.{name}") for name in names})


def _convert(hint, value, where):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union and type(None) in args:
        if value is None:
            return None
        inner = next(a for a in args if a is not type(None))
        return _convert(inner, value, where)
    if origin is typing.Union and isinstance(value, args):
        return value
    if value is None:
        if origin is list:
            return []
        raise TypeError(f"{where} is required")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{where}[{n}]") for n, v in enumerate(value)]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        try:
            return hint[str(value).upper().replace("-", "_")]
        except KeyError:
            allowed = [_kebab_enum(m.name) for m in hint]
            raise TypeError(f"{where}: {value!r} is not one of {allowed}") from None
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else _record(hint, value, where)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return require_unicode(value, where)
    raise TypeError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")


def _kebab_enum(name):
    return name.lower().replace("_", "-")
