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

__all__ = ["parse", "path"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Deeper documents are refused before they are parsed: the parser recurses once per level, and a
# component's stack ends (a trap, not a RecursionError) near 2,000. The JavaScript kit's limit.
_MAX_DEPTH = 512
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


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
        document = json.loads(source, object_pairs_hook=_pairs)
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
    for match in _NESTING.finditer(source):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                raise MapError.malformed(
                    f"not valid JSON: arrays and objects nested deeper than {_MAX_DEPTH}"
                )
        elif token in "]}":
            depth -= 1


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
