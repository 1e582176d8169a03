//! Version 2.0.0 of the misbehave test plugin's well-behaved mapping: `ok <n>` gives the same
//! production completion as version 1.0.0 plus its location `FG-02`, so a shadow run of it
//! beside 1.0.0 differs in exactly one field.

use millrace_sdk::prelude::*;

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let text = text::latin1(&msg.payload);
    let mut words = text.split_whitespace();
    match words.next() {
        Some("ok") => {
            let n: u64 = match words.next() {
                Some(word) => word
                    .parse()
                    .map_err(|_| MapError::malformed(format!("'{word}' is not a number")))?,
                None => 1,
            };
            Ok(vec![CanonicalEvent {
                site: config::get("site").unwrap_or_else(|| "TEST".to_owned()),
                occurred_at: "2026-01-01T00:00:00Z".to_owned(),
                source_sequence: Some(n),
                source_transaction: None,
                data: EventData::ProductionCompletion(ProductionCompletion {
                    work_order: format!("WO-{n}"),
                    operation: None,
                    item: "ITEM-1".to_owned(),
                    lot: None,
                    good_quantity: Quantity {
                        amount: n.to_string(),
                        uom: "EA".to_owned(),
                    },
                    scrap_quantity: Quantity {
                        amount: "0".to_owned(),
                        uom: "EA".to_owned(),
                    },
                    location: Some("FG-02".to_owned()),
                }),
            }])
        }
        other => Err(MapError::malformed(format!(
            "unknown command '{}'",
            other.unwrap_or_default()
        ))),
    }
}

millrace_sdk::export_mapper!(map);
