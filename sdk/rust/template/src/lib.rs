//! Template mapping: one semicolon-separated stock receipt line to one inventory-movement event.
//!
//! Input: `GR-5000012;MAT-100;12.500;KG;WH1-A-01;20260302;061500;L2603-07;20270131`
//! (receipt, item, quantity, unit, bin, date, time, lot, expiry date; the last two may be empty).

use millrace_sdk::prelude::*;
use millrace_sdk::records::Delimited;

const RECEIPT: Delimited = Delimited::new(
    ';',
    &[
        "receipt", "item", "quantity", "unit", "bin", "date", "time", "lot", "expires",
    ],
);

/// Source units to UN/ECE Recommendation 20 codes.
const UNITS: [(&str, &str); 4] = [("EA", "EA"), ("PC", "PCE"), ("KG", "KGM"), ("M", "MTR")];

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let site = config::require("site")?;
    let offset = config::get("utc-offset").unwrap_or_else(|| "+00:00".to_owned());
    let text = text::utf8_or_latin1(&msg.payload);
    let record = RECEIPT.read(1, text.trim_end())?;
    let amount = decimal::parse(record.require(2)?, '.').malformed_at(record.name(2))?;
    if amount < Decimal::ZERO {
        return Err(MapError::malformed(format!(
            "quantity: '{}' is negative",
            record.require(2)?
        )));
    }
    let unit = record.require(3)?;
    let uom = UNITS
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(unit))
        .map(|(_, rec20)| *rec20)
        .ok_or_else(|| MapError::malformed(format!("unit: '{unit}' is not known")))?;
    let received_at = timestamp::from_compact(record.require(5)?, record.require(6)?, &offset)
        .malformed_at("date/time")?;
    let expires = record.value(8)?.trim();
    let expiry_date = if expires.is_empty() {
        None
    } else {
        Some(
            timestamp::parse_date(expires)
                .map(timestamp::full_date)
                .malformed_at(record.name(8))?,
        )
    };
    let receipt = record.require(0)?;
    let movement = InventoryMovement {
        to_location: Some(record.require(4)?.to_owned()),
        lot: Some(record.value(7)?.trim().to_owned()).filter(|l| !l.is_empty()),
        stock_status: Some(StockStatus::Unrestricted),
        reference_document: Some(receipt.to_owned()),
        expiry_date,
        ..InventoryMovement::new(
            MovementType::Receipt,
            record.require(1)?,
            decimal::quantity(amount, uom),
        )
    };
    Ok(vec![
        CanonicalEvent::new(site, received_at, movement).with_transaction(receipt),
    ])
}

millrace_sdk::export_mapper!(map);
