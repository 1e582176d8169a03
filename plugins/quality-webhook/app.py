"""quality-webhook: a SaaS quality platform's nonconformance webhooks to quality-hold events.

See README.md for the payload, the field mapping and the route configuration.
"""

import re

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
    delivery = _key(jsondoc.text(body, "$", "id"), "$.id")
    occurred_at = _occurred_at(body)

    ncr = jsondoc.object_at(jsondoc.object_at(body, "$", "data"), "$.data", "ncr")
    path = "$.data.ncr"
    number = _key(jsondoc.text(ncr, path, "number"), f"{path}.number")
    site = _site(ncr, path)

    scope = jsondoc.object_at(ncr, path, "scope")
    spath = f"{path}.scope"
    item = _key(jsondoc.text(scope, spath, "part_number", required=False), f"{spath}.part_number")
    location = _key(jsondoc.text(scope, spath, "location", required=False), f"{spath}.location")
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


#: Characters no key of an event may hold (the host refuses them): C0 and C1 controls (a tab, a
#: line break, NUL), bidirectional controls (they make one key read as another) and characters
#: that show nothing (zero-width spaces and joiners, the byte-order mark, the soft hyphen).
_NOT_IN_A_KEY = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
    "\u200b-\u200d\u2060-\u2064\ufeff\u00ad]"
)


def _key(value, where):
    """``value`` (text or ``None``), refused naming its JSON path ``where`` when it holds a
    character no key may hold: an identifier (hold id, part, lot, location, supplier, delivery
    id) with a tab or NUL in it is no identifier a consumer can look up, and the host would refuse
    the event without naming the field the platform sent."""
    if value is None:
        return None
    found = _NOT_IN_A_KEY.search(value)
    if found:
        raise MapError.malformed(
            f"{where}: {value!r} holds the character U+{ord(found.group()):04X}, which no "
            "identifier may hold (a control, bidirectional or invisible character)"
        )
    return value


def _parse(payload):
    source = text.utf8(payload)
    if not source.strip():
        raise MapError.malformed("empty payload")
    # Strict: a key given twice (`"event"` placed, then released) or an unpaired surrogate
    # escape (`"L\\ud800"`, no WIT string can carry it) is refused naming its JSON path.
    body = jsondoc.parse(source)
    if not isinstance(body, dict):
        raise MapError.malformed(f"$: expected a JSON object, got {jsondoc.type_name(body)}")
    return body


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
        return _key(value.strip() or None, f"{path}.supplier")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MapError.malformed(
            f"{path}.supplier: expected the supplier id as text or an object with an 'id', "
            f"got {jsondoc.type_name(value)}"
        )
    return _key(jsondoc.text(value, f"{path}.supplier", "id"), f"{path}.supplier.id")


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
        _key(lot.strip(), f"{path}.lots[{n}]")
        if lot.strip() not in result:
            result.append(lot.strip())
    return result


def _site(ncr, path):
    """The canonical site of the platform's site code (`site.code`, or `site` as text); without a
    code, the route's `site`. A site of another JSON type (a number, a list, a boolean) is refused,
    never replaced by the route's default: the hold would block stock at the wrong site."""
    record = ncr.get("site")
    where = f"{path}.site"
    default = config.get("site")
    if isinstance(record, dict):
        code = jsondoc.text(record, where, "code", required=default is None)
    elif record is None or isinstance(record, str):
        code = jsondoc.text(ncr, path, "site", required=default is None)
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
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:60(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


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
        return timestamps.rfc3339(timestamps.parse(value))
