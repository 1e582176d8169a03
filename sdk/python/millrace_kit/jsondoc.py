"""JSON payloads, read strictly: ``jsondoc.parse(text.utf8(message.payload))``.

Gives the document as ``json.loads`` does (dicts, lists, text, ``int``, ``float``, ``bool``,
``None``), but refuses with ``MapError.malformed`` naming the JSON path what ``json.loads`` lets
through and a mapping must not map:

- a key named twice in one object (``json.loads`` keeps the last, so ``"event": "placed",
  "event": "released"`` would map as released): ``$.data.scope.lots: the key is given twice in
  one object; ...``;
- text holding an unpaired surrogate escape (``"L\\ud800"``), which no WIT string can carry (it
  would trap the call at the boundary): ``$.data.scope.lots[0]: text holds \\ud800 ...``.

Text that is not JSON gives ``not valid JSON: line 5, column 3: Expecting ',' delimiter``; a
document nested deeper than 512 arrays and objects, or a number too long for Python's integers,
is refused the same way (either would otherwise trap the call: the interpreter's stack is small).
"""

import json
import re

from .errors import MapError
from .text import require_unicode, unpaired_surrogate

__all__ = ["parse", "path", "text", "object_at", "type_name", "check_depth"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Deeper documents are refused before they are parsed: the parser recurses once per level, and a
# component's stack ends (a trap, not a RecursionError) near 2,000. The JavaScript kit's limit.
_MAX_DEPTH = 512
# The depth check reads the document's structure: escapes out, then text out (what is left of a
# string has no backslash, so `"[^"]*"` is one string), then all but the brackets. Each is one
# pass in C with no state per character (a pattern matching a string with its escapes keeps
# state per character or escape: a 300 KB string ran a component out of memory).
_ESCAPE = re.compile(r"\\.", re.S)
_TEXT = re.compile(r'"[^"]*"')
_NOT_NESTING = re.compile(r"[^\[\]{}]+")


class _Duplicated(dict):
    """An object that names ``key`` twice; refused once its path is known (objects are built
    inside out, before their path is)."""

    key = None


def _pairs(pairs):
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                value = _Duplicated(value)
                value.key = key
                break
            seen.add(key)
    return value


def parse(source):
    """Parses JSON text (see the module's documentation), or raises ``MapError.malformed``."""
    check_depth(source)
    try:
        document = json.loads(source, object_pairs_hook=_pairs, parse_constant=_not_a_number)
    except json.JSONDecodeError as error:
        raise MapError.malformed(
            f"not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise MapError.malformed("not valid JSON: nested too deeply") from None
    except ValueError as error:
        # A number longer than Python converts to an int (4,300 digits by default); the
        # interpreter's advice after its `;` is for a developer, not for the publisher.
        reason = str(error).split(";")[0]
        raise MapError.malformed(f"not valid JSON: a number: {reason}") from None
    _check(document)
    return document


def check_depth(source):
    """Refuses text whose arrays and objects nest deeper than ``_MAX_DEPTH`` (text in strings
    does not count)."""
    depth = 0
    for bracket in _NOT_NESTING.sub("", _TEXT.sub("", _ESCAPE.sub("", source))):
        if bracket in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                raise MapError.malformed(
                    f"not valid JSON: arrays and objects nested deeper than {_MAX_DEPTH}"
                )
        else:
            depth -= 1


def _not_a_number(constant):
    raise MapError.malformed(f"not valid JSON: {constant} is not a JSON number")


def text(parent, path_, key, required=True):
    """The text at ``key`` of the dict ``parent`` (whose JSON path is ``path_``), stripped: a
    missing, null or blank value is ``MapError.malformed`` naming the path when ``required``,
    else ``None``; any other JSON type is refused, never passed into an event (where it would
    trap the call): ``$.to_bin: expected text, got a number``."""
    value = parent.get(key)
    where = path(path_, key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MapError.malformed(f"{where}: required field is missing")
        return None
    if not isinstance(value, str):
        raise MapError.malformed(f"{where}: expected text, got {type_name(value)}")
    return value.strip()


def object_at(parent, path_, key, required=True):
    """The object (dict) at ``key`` of ``parent``, as :func:`text` reads text."""
    value = parent.get(key)
    where = path(path_, key)
    if value is None:
        if required:
            raise MapError.malformed(f"{where}: required field is missing")
        return None
    if not isinstance(value, dict):
        raise MapError.malformed(f"{where}: expected an object, got {type_name(value)}")
    return value


def type_name(value):
    """A JSON value's type for an error: ``null``, ``a boolean``, ``a number``, ``text``,
    ``a list``, ``an object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text" if value.strip() else "empty text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def path(parent, key):
    """The JSON path of ``key`` (an object key or a list index) under ``parent``:
    ``$.data.ncr``, ``$.lots[1]``, ``$["odd key"]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _NAME.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def _where(place):
    """The JSON path of ``place``, a chain ``(parent_place, key)`` from the root (``None``)."""
    keys = []
    while place is not None:
        place, key = place
        keys.append(key)
    where = "$"
    for key in reversed(keys):
        where = path(where, key)
    return where


def _check(document):
    # In document order, without recursion (a deeply nested document cannot exhaust the stack).
    # Each value's place is kept as a chain of keys and written out as a path only for an error,
    # so a valid document costs no path text.
    stack = [(document, None)]
    while stack:
        value, place = stack.pop()
        if isinstance(value, str):
            if unpaired_surrogate(value) is not None:
                require_unicode(value, _where(place))
        elif isinstance(value, dict):
            if isinstance(value, _Duplicated):
                raise MapError.malformed(
                    f"{_where((place, value.key))}: the key is given twice in one object; "
                    "a JSON object must name each key once"
                )
            for key in value:
                if unpaired_surrogate(key) is not None:
                    require_unicode(key, f"{_where(place)} (a key)")
            stack.extend((v, (place, k)) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, (place, n)) for n, v in reversed(list(enumerate(value))))
