"""Canonical events in the same JSON form the fixtures use.

A mapping returns a list of plain dicts::

    events.event(
        "quality-hold", site="PLANT1", occurred_at="2026-03-02T06:15:00+01:00",
        source_transaction="evt_01HX...",
        data={"hold_id": "NCR-1", "action": "placed", "scope": {"lot": "L1"}, "reason": "..."},
    )

Field names are the WIT names in snake_case, enum values the WIT names (``"quality-inspection"``),
an absent option is ``None`` or left out, a list is a list, a quantity is
``events.quantity(amount, "KGM")``. The kit's glue checks each event against the WIT types when it
hands it to the host, so a misspelt field fails loudly (a trap naming the field), never silently.
"""

from . import decimals

__all__ = ["KINDS", "event", "quantity", "compact"]

#: The event kinds of millrace:mapping@1.0.0, as `kind` values.
KINDS = (
    "inventory-movement",
    "inventory-balance",
    "work-order-status",
    "material-consumption",
    "production-completion",
    "quality-hold",
    "supplier-commitment",
    "shipment-notice",
)


def event(kind, *, site, occurred_at, data, source_sequence=None, source_transaction=None):
    """One canonical event of ``kind`` (one of :data:`KINDS`) with its ``data`` record."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {KINDS}")
    if source_sequence is not None and (
        not isinstance(source_sequence, int) or not 0 <= source_sequence < 2**64
    ):
        raise ValueError(f"source_sequence {source_sequence!r} is not an unsigned 64-bit integer")
    return compact(
        {
            "kind": kind,
            "site": site,
            "occurred_at": occurred_at,
            "source_sequence": source_sequence,
            "source_transaction": source_transaction,
            "data": data,
        }
    )


def quantity(amount, uom):
    """A quantity: ``amount`` (``Decimal``, ``int`` or decimal text, never ``float``) written in
    the normalised WIT decimal form, with a UN/ECE Recommendation 20 unit code."""
    return {"amount": decimals.to_wit(amount), "uom": uom}


def compact(value):
    """``value`` with every ``None`` dict entry removed, recursively: the fixtures' JSON form,
    where an absent option is omitted."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    return value
