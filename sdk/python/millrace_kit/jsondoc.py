"""JSON payloads, read strictly: ``jsondoc.parse(text.utf8(message.payload))``.

Gives the document as ``json.loads`` does (dicts, lists, text, ``int``, ``float``, ``bool``,
``None``), but refuses with ``MapError.malformed`` naming the JSON path what ``json.loads`` lets
through and a mapping must not map:

- a key named twice in one object (``json.loads`` keeps the last, so ``"event": "placed",
  "event": "released"`` would map as released): ``$.data.scope.lots: the key is given twice in
  one object; ...``;
- text holding an unpaired surrogate escape (``"L\\ud800"``), which no WIT string can carry (it
  would trap the call at the boundary): ``$.data.scope.lots[0]: text holds \\ud800 ...``.

Text that is not JSON gives ``not valid JSON: line 5, column 3: Expecting ',' delimiter``.
"""

import json
import re

from .errors import MapError
from .text import require_unicode

__all__ = ["parse", "path"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
    try:
        document = json.loads(source, object_pairs_hook=_pairs)
    except json.JSONDecodeError as error:
        raise MapError.malformed(
            f"not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise MapError.malformed("not valid JSON: nested too deeply") from None
    _check(document)
    return document


def path(parent, key):
    """The JSON path of ``key`` (an object key or a list index) under ``parent``:
    ``$.data.ncr``, ``$.lots[1]``, ``$["odd key"]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _NAME.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def _check(document):
    # In document order, without recursion (a deeply nested document cannot exhaust the stack).
    stack = [(document, "$")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            require_unicode(value, where)
        elif isinstance(value, dict):
            if isinstance(value, _Duplicated):
                raise MapError.malformed(
                    f"{path(where, value.key)}: the key is given twice in one object; "
                    "a JSON object must name each key once"
                )
            for key in value:
                require_unicode(key, f"{where} (a key)")
            stack.extend((v, path(where, k)) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, path(where, n)) for n, v in reversed(list(enumerate(value))))
