"""Template mapping: a JSON stock receipt to one inventory-movement event.

Input: {"receipt": "GR-1", "item": "MAT-100", "quantity": "12.5", "unit": "KG",
        "to_bin": "WH1-A-01", "received_at": "2026-03-02T06:15:00+01:00"}
"""

from millrace_kit import MapError, config, decimals, events, jsondoc, malformed_at, text, timestamps

# Source units to UN/ECE Recommendation 20 codes.
UNITS = {"EA": "EA", "PC": "PCE", "KG": "KGM", "M": "MTR"}


def map(message):
    # Not json.loads: it keeps the last of a key given twice and lets unpaired surrogate escapes
    # through; jsondoc refuses both, naming the JSON path.
    doc = jsondoc.parse(text.utf8(message.payload))
    if not isinstance(doc, dict):
        raise MapError.malformed("$: expected a JSON object")

    def field(name, required=True):
        # Text or refused naming its path: a number or an object passed into an event would
        # trap the call.
        return jsondoc.text(doc, "$", name, required)

    with malformed_at("$.quantity"):
        amount = decimals.parse(field("quantity"))
    unit = UNITS.get(field("unit").upper())
    if unit is None:
        raise MapError.malformed(f"$.unit: unknown unit '{field('unit')}'")
    with malformed_at("$.received_at"):
        received = timestamps.rfc3339(timestamps.parse(field("received_at")))

    return [
        events.event(
            "inventory-movement",
            site=config.require("site"),
            occurred_at=received,
            source_transaction=field("receipt"),
            data={
                "movement_type": "receipt",
                "item": field("item"),
                "quantity": events.quantity(amount, unit),
                "to_location": field("to_bin", required=False),
                "stock_status": "unrestricted",
                "reference_document": field("receipt"),
                # Carried when plugin.toml targets millrace:mapping@1.1.0; logged on 1.0.0.
                "expiry_date": field("expires", required=False),
            },
        )
    ]
