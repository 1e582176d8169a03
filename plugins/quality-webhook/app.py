"""quality-webhook: a SaaS quality platform's nonconformance webhooks to quality-hold events.

See README.md for the payload, the field mapping and the route configuration.
"""

import re
import unicodedata

from millrace_kit import MapError, config, events, jsondoc, log, malformed_at, text, timestamps

#: Webhook event types mapped, and the hold action each one is.
ACTIONS = {
    "nonconformance.hold_placed": "placed",
    "nonconformance.hold_released": "released",
}

#: The platform's disposition codes, written as the canonical (kebab-case) dispositions.
DISPOSITIONS = {
    "use_as_is": "use-as-is",
    "rework": "rework",
    "repair": "repair",
    "scrap": "scrap",
    "return_to_supplier": "return-to-supplier",
}


def map(message):
    body = _parse(message.payload)
    kind = jsondoc.text(body, "$", "event")
    action = ACTIONS.get(kind)
    if action is None:
        raise MapError.unsupported(
            f"$.event: '{kind}' is not mapped; this plugin maps {' and '.join(ACTIONS)}"
        )
    delivery = _identifier(body, "$", "id")
    occurred_at = _occurred_at(body)

    ncr = jsondoc.object_at(jsondoc.object_at(body, "$", "data"), "$.data", "ncr")
    path = "$.data.ncr"
    number = _identifier(ncr, path, "number")
    site = _site(ncr, path)

    scope = jsondoc.object_at(ncr, path, "scope")
    spath = f"{path}.scope"
    item = _identifier(scope, spath, "part_number", required=False)
    location = _identifier(scope, spath, "location", required=False)
    supplier = _supplier(scope, spath)
    lots = _lots(scope, spath)
    if not (item or location or supplier or lots):
        raise MapError.rejected(
            f"{spath}: the hold names no part, lot, location or supplier, so nothing can be held"
        )

    # Only the hold id, its scope and placed/released are required: a hold lost to a missing
    # or new informational value would leave stock available that must be blocked.
    reason = _reason(ncr, path, action, number)
    disposition = _disposition(ncr, path, number)

    log.debug("nonconformance hold", ncr=number, action=action, lots=len(lots))
    # One event per lot: a consumer blocks or frees stock by item and lot, and a hold on three
    # lots is three stock keys. Without lots the hold is on the part, location or supplier.
    return [
        events.event(
            "quality-hold",
            site=site,
            occurred_at=occurred_at,
            source_transaction=delivery,
            data={
                "hold_id": number,
                "action": action,
                "scope": {"item": item, "lot": lot, "location": location, "supplier": supplier},
                "reason": reason,
                "disposition": disposition,
            },
        )
        for lot in (lots or [None])
    ]


#: Characters no key of an event may hold (the host refuses the controls): C0 and C1 controls
#: (a tab, a line break, NUL), bidirectional controls (they make one key read as another) and
#: characters that show nothing (zero-width spaces and joiners, the byte-order mark, the soft
#: hyphen): every control (category Cc) and format character (Cf).
_INVISIBLE = ("Cc", "Cf")

#: Spaces a key may not hold: every space but the ASCII one (NBSP, thin space, ideographic
#: space; categories Zs, Zl, Zp). `L2026\u00a00211` looks like `L2026 0211` and is no lot the
#: ERP or the WMS knows.
_SPACES = ("Zs", "Zl", "Zp")

#: The white space trimmed from the ends of an identifier: ASCII only; any other space at an end
#: is refused as it is inside.
_ASCII_SPACE = " \t\n\r\f\v"


def _identifier(parent, path, key, required=True):
    """The identifier at ``key`` of ``parent`` (as ``jsondoc.text`` reads it: missing, blank or
    another JSON type refused naming the path), checked by :func:`_key` as sent, before the
    kit's trimming could drop a non-ASCII space at its ends."""
    if jsondoc.text(parent, path, key, required=required) is None:
        return None
    return _key(parent[key], jsondoc.path(path, key))


def _key(value, where):
    """``value`` (text or ``None``) without ASCII white space at its ends, refused naming its
    JSON path ``where`` when it holds a character no key may hold: an identifier (hold id, part,
    lot, location, supplier, delivery id, site code) with a tab, a zero-width space or an NBSP
    in it is no identifier a consumer can look up, and the host would refuse a control without
    naming the field the platform sent."""
    if value is None:
        return None
    value = value.strip(_ASCII_SPACE)
    for character in value:
        if character == " " or character.isascii() and character.isprintable():
            continue
        category = unicodedata.category(character)
        if category in _INVISIBLE:
            raise MapError.malformed(
                f"{where}: {value!r} holds the character U+{ord(character):04X}, which no "
                "identifier may hold (a control, bidirectional or invisible character)"
            )
        if category in _SPACES:
            raise MapError.malformed(
                f"{where}: {value!r} holds the character U+{ord(character):04X}, which no "
                "identifier may hold (a space other than the ASCII space: it looks like one "
                "and is not)"
            )
    return value


def _parse(payload):
    source = text.utf8(payload)
    if not source.strip():
        raise MapError.malformed("empty payload")
    # Strict: a key given twice (`"event"` placed, then released) or an unpaired surrogate
    # escape (`"L\\ud800"`, no WIT string can carry it) is refused naming its JSON path.
    body = jsondoc.parse(_without_rows(source))
    if not isinstance(body, dict):
        raise MapError.malformed(f"$: expected a JSON object, got {jsondoc.type_name(body)}")
    return body


#: A JSON string, any (what the reader passes over: a string may hold brackets), and one a row
#: may hold: its escapes but a surrogate's, which the kit refuses naming its path.
_ANY_STRING = r'"(?:[^"\\]|\\.)*"'
_ROW_STRING = r'"(?:[^"\\\x00-\x1f]|\\[^u]|\\u(?![dD][89a-fA-F])[0-9a-fA-F]{4})*"'
#: A JSON number of at most 100 digits (a longer one is refused by the kit).
_NUMBER = r"-?(?:0|[1-9]\d{0,99})(?:\.\d{1,100})?(?:[eE][+-]?\d{1,3})?"
_SCALAR = rf"(?:{_ROW_STRING}|{_NUMBER}|true|false|null)"

#: A string, kept as it is, or a run of rows: arrays of scalars that are elements of an array
#: (after `[` or `,`, never a member's value such as `lots`), made one empty array. One
#: substitution in C with no call per match (the groups of the branch that did not match are
#: empty), and one match for a run of rows: the repetitions are possessive, so the engine keeps
#: no state per row.
_ROW = re.compile(
    rf"(?P<keep>{_ANY_STRING})"
    rf"|(?P<before>[\[,]\s*)(?P<open>\[)\s*(?:{_SCALAR}(?:\s*,\s*{_SCALAR})*+)?\s*(?P<close>\])"
    rf"(?:\s*,\s*\[\s*(?:{_SCALAR}(?:\s*,\s*{_SCALAR})*+)?\s*\])*+",
    re.ASCII,
)
_KEEP_OR_EMPTY = r"\g<keep>\g<before>\g<open>\g<close>"
#: Whether the text may hold an array in an array.
_NESTED_ARRAY = re.compile(r"\[\s*\[")


def _without_rows(source):
    """The webhook with every run of rows of an array (`"measurements": [[0, 0.5, "ok"], ...]`)
    made one empty row: nothing this plugin reads is an array of arrays, and
    150,000 rows of three values were 40 MB of objects, past the 64 MiB a call may use (a lost
    hold leaves stock available). The document's shape (nesting, JSON types where this plugin
    reads) and its errors (invalid JSON, an unpaired surrogate, a long number: such a row is
    kept) are unchanged; a string is never changed."""
    if not _NESTED_ARRAY.search(source):
        return source
    return _ROW.sub(_KEEP_OR_EMPTY, source)


#: The reason carried when the platform gives none.
NO_REASON = "no reason given by the quality platform"

#: The disposition carried when the platform sends one this plugin does not know.
UNKNOWN = "unknown"


def _reason(ncr, path, action, number):
    """The release reason for a release (else the hold's own reason), the hold reason for a
    placement; a missing reason is logged and carried as :data:`NO_REASON`."""
    candidates = [(ncr, path)]
    if action == "released":
        release = ncr.get("release")
        if isinstance(release, dict):
            candidates.insert(0, (release, f"{path}.release"))
        elif release is not None:
            # A release in a new shape: its reason is not read; logged, never silently passed over.
            log.warn("release is not an object; its reason is not read", ncr=number,
                     path=f"{path}.release", got=jsondoc.type_name(release))
    for parent, where in candidates:
        value = parent.get("reason")
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is not None and not isinstance(value, str):
            log.warn("hold reason is not text; carried as not given", ncr=number, path=f"{where}.reason",
                     got=jsondoc.type_name(value))
    log.warn("hold without a reason; mapped with a placeholder reason", ncr=number, action=action)
    return NO_REASON


def _disposition(ncr, path, number):
    """The canonical disposition; a code this plugin does not know (the platform added one, or
    sends it in a new shape) is logged and carried as :data:`UNKNOWN`, never refused."""
    value = ncr.get("disposition")
    if value == {}:
        return None  # an empty object: no disposition yet
    if isinstance(value, dict):
        if "code" not in value:
            # An object in a new shape (the code renamed): a disposition was given, but not one
            # this plugin can read; logged and carried as unknown, not dropped as "none".
            log.warn("disposition object without a code; carried as unknown", ncr=number,
                     path=f"{path}.disposition", keys=", ".join(value))
            return UNKNOWN
        value = value.get("code")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    known = DISPOSITIONS.get(value.strip()) if isinstance(value, str) else None
    if known is None:
        log.warn(
            "unknown disposition; carried as unknown",
            ncr=number,
            path=f"{path}.disposition",
            disposition=value if isinstance(value, str) else jsondoc.type_name(value),
            known=", ".join(DISPOSITIONS),
        )
        return UNKNOWN
    return known


def _supplier(scope, path):
    """The supplier id: `supplier.id`, or `supplier` itself when the platform sends plain text."""
    value = scope.get("supplier")
    if isinstance(value, str):
        return _key(value.strip(_ASCII_SPACE) or None, f"{path}.supplier")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MapError.malformed(
            f"{path}.supplier: expected the supplier id as text or an object with an 'id', "
            f"got {jsondoc.type_name(value)}"
        )
    return _identifier(value, f"{path}.supplier", "id")


def _lots(scope, path):
    lots = scope.get("lots")
    if lots is None:
        return []
    if not isinstance(lots, list):
        raise MapError.malformed(f"{path}.lots: expected a list of lot numbers, got {jsondoc.type_name(lots)}")
    result = []
    for n, lot in enumerate(lots):
        if not isinstance(lot, str) or not lot.strip():
            raise MapError.malformed(f"{path}.lots[{n}]: expected a lot number, got {jsondoc.type_name(lot)}")
        lot = _key(lot, f"{path}.lots[{n}]")
        if lot not in result:
            result.append(lot)
    return result


def _site(ncr, path):
    """The canonical site of the platform's site code (`site.code`, or `site` as text); without a
    code, the route's `site`. A site of another JSON type (a number, a list, a boolean) is refused,
    never replaced by the route's default: the hold would block stock at the wrong site."""
    record = ncr.get("site")
    where = f"{path}.site"
    default = config.get("site")
    if isinstance(record, dict):
        code = _identifier(record, where, "code", required=default is None)
    elif record is None or isinstance(record, str):
        code = _identifier(ncr, path, "site", required=default is None)
    else:
        raise MapError.malformed(
            f"{where}: expected the site code as text or an object with a 'code', "
            f"got {jsondoc.type_name(record)}"
        )
    site = (config.get(f"site.{code}") if code else None) or default or code
    if not site or not all(c.isascii() and (c.isalnum() or c in "-_") for c in site):
        raise MapError.other(
            f"site '{site}' (for platform site code '{code}') may hold only letters, digits, "
            "'-' and '_'; set the route config key 'site.<code>' or 'site'"
        )
    return site


#: An RFC 3339 time whose second is 60: a leap second (`2016-12-31T23:59:60Z`).
_LEAP_SECOND = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:60(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)

#: The digits of a fraction of a second beyond the nanosecond, which RFC 3339 allows and a
#: canonical timestamp does not keep (`.123456789123` is `.123456789`, cut as b2mml cuts it).
_BEYOND_NANOSECONDS = re.compile(r"(?<=:\d{2}\.\d{9})\d+(?=[Zz+-])", re.ASCII)


def _occurred_at(body):
    """`$.occurred_at`, RFC 3339 with an offset. A leap second (second 60) is refused naming it:
    a canonical timestamp cannot hold second 60, and moving the hold to another second would
    write a time the platform never sent."""
    value = jsondoc.text(body, "$", "occurred_at")
    if _LEAP_SECOND.fullmatch(value):
        raise MapError.malformed(
            f"$.occurred_at: '{value}' is a leap second (second 60), which a canonical timestamp "
            "cannot hold"
        )
    with malformed_at("$.occurred_at"):
        return timestamps.rfc3339(timestamps.parse(_BEYOND_NANOSECONDS.sub("", value, count=1)))
