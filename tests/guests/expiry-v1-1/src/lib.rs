//! A test plugin built against `millrace:mapping@1.1.0`: the payload `<item> <lot> <kg>
//! <expiry>` becomes a receipt movement carrying the lot's expiry date, the field 1.1.0 added.
#![allow(unsafe_code, missing_docs)] // the wit-bindgen export glue

wit_bindgen::generate!({
    path: "../../../wit/mapping@1.1.0",
    world: "mapper",
});

use millrace::mapping::canonical::{EventData, InventoryMovement, MovementType, Quantity};
use millrace::mapping::host::get_config;

struct Receipt;

impl Guest for Receipt {
    fn map(input: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
        let text = String::from_utf8(input.payload)
            .map_err(|_| MapError::MalformedInput("not UTF-8".into()))?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [item, lot, kg, expiry] = fields[..] else {
            return Err(MapError::MalformedInput(format!(
                "expected `<item> <lot> <kg> <expiry>`, got {} fields",
                fields.len()
            )));
        };
        Ok(vec![CanonicalEvent {
            site: get_config("site").unwrap_or_else(|| "TEST".into()),
            occurred_at: "2026-03-02T06:00:00Z".into(),
            source_sequence: None,
            source_transaction: None,
            data: EventData::InventoryMovement(InventoryMovement {
                movement_type: MovementType::Receipt,
                item: item.into(),
                quantity: Quantity {
                    amount: kg.into(),
                    uom: "KGM".into(),
                },
                from_location: None,
                to_location: Some("GR-01".into()),
                lot: Some(lot.into()),
                serials: Vec::new(),
                stock_status: None,
                reference_document: None,
                expiry_date: Some(expiry.into()),
            }),
        }])
    }
}

export!(Receipt);
