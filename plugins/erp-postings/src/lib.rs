//! Outbound plugin: posts production completions and material consumptions to the ERP as goods
//! movements against the production order (see README.md for the ERP's API).
//!
//! - `production-completion` → goods receipt for the order, movement type 101
//!   (`GoodsMovementCode` 02); a completion without good quantity (scrap only) is not posted.
//! - `material-consumption` → goods issue to the order, movement type 261
//!   (`GoodsMovementCode` 03).
//! - Every other kind is not posted (no requests).
//!
//! The ERP manages every material in batches and knows a fixed set of units, so an event
//! without a lot or with another unit cannot be posted (`incomplete-event`).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::posting::*;
use millrace_sdk::prelude::*;

/// The target, as the host's configuration names it.
const ERP: &str = "erp";

/// The ERP's goods movement collection.
const GOODS_MOVEMENTS: &str = "/odata/v1/GoodsMovements";

/// The units of measure the ERP is customised for (UN/ECE Recommendation 20 codes, which its
/// `EntryUnit` takes): a case is `XCS` (Rec 20 since revision 17, the Rec 21 code with `X`,
/// as the SDK writes an X12 case) or the older `CS` some sources still send.
const ERP_UNITS: [&str; 10] = [
    "EA", "PCE", "KGM", "GRM", "TNE", "MTR", "LTR", "MTK", "XCS", "CS",
];

/// The poster exported to the host.
pub struct ErpPostings;

impl Poster for ErpPostings {
    fn render(event: &Event) -> Result<Vec<Request>, RenderError> {
        let movement = match &event.data {
            EventData::ProductionCompletion(done) => {
                if is_zero(&done.good_quantity.amount) {
                    return Ok(Vec::new());
                }
                Movement {
                    code: "02",
                    movement_type: "101",
                    reversal_type: "102",
                    text: "MES production completion",
                    order: &done.work_order,
                    operation: done.operation.as_deref(),
                    item: &done.item,
                    lot: done.lot.as_deref(),
                    quantity: &done.good_quantity,
                    location: done.location.as_deref(),
                }
            }
            EventData::MaterialConsumption(used) => {
                // Nothing consumed is nothing to issue: the ERP refuses a zero quantity.
                if is_zero(&used.quantity.amount) {
                    return Ok(Vec::new());
                }
                Movement {
                    code: "03",
                    movement_type: "261",
                    reversal_type: "262",
                    text: "MES material consumption",
                    order: &used.work_order,
                    operation: used.operation.as_deref(),
                    item: &used.item,
                    lot: used.lot.as_deref(),
                    quantity: &used.quantity,
                    location: used.location.as_deref(),
                }
            }
            _ => return Ok(Vec::new()),
        };
        Ok(vec![movement.request(event)?])
    }

    fn interpret(event: &Event, _request: &Request, response: &Response) -> Verdict {
        // The request's ReferenceDocument is the event id; only a material document proves the
        // booking (OData v4 `{"MaterialDocument": ..}` or v2 `{"d": {..}}`).
        material_document_verdict(event, response)
    }
}

/// One goods movement against a production order.
struct Movement<'a> {
    /// `GoodsMovementCode`: 02 goods receipt for an order, 03 goods issue.
    code: &'static str,
    /// `GoodsMovementType`: 101 or 261.
    movement_type: &'static str,
    /// The movement type that reverses it: 102 or 262.
    reversal_type: &'static str,
    /// The header text's first words.
    text: &'static str,
    order: &'a str,
    operation: Option<&'a str>,
    item: &'a str,
    lot: Option<&'a str>,
    quantity: &'a Quantity,
    location: Option<&'a str>,
}

impl Movement<'_> {
    fn request(&self, event: &Event) -> Result<Request, RenderError> {
        let kind = &event.envelope.kind;
        let batch = self.lot.ok_or_else(|| {
            RenderError::incomplete(format!(
                "the {kind} of item {} for order {} has no lot; the ERP manages every material \
                 in batches",
                self.item, self.order
            ))
        })?;
        let unit = &self.quantity.uom;
        if !ERP_UNITS.contains(&unit.as_str()) {
            return Err(RenderError::incomplete(format!(
                "the {kind} of item {} is in unit '{unit}', which the ERP does not know (it \
                 knows {})",
                self.item,
                ERP_UNITS.join(", ")
            )));
        }
        let amount = &self.quantity.amount;
        if decimal::parse(amount, '.').is_ok_and(|d| d.is_sign_negative() && !d.is_zero()) {
            return Err(RenderError::rejected(format!(
                "the {kind} of item {} for order {} has a negative quantity ({amount} {unit}): \
                 a goods movement {} books positive quantities only, and taking it back is a \
                 reversal (movement {}) of the original material document; reverse that \
                 document in the ERP",
                self.item, self.order, self.movement_type, self.reversal_type
            )));
        }
        let site = &event.envelope.site;
        let plant =
            config::get_non_blank(&format!("plant.{site}"))?.unwrap_or_else(|| site.clone());
        // The posting date is the plant's calendar day of the event: its local date with the
        // route's `utc-offset` (and `daylight-saving`), else the date as the source wrote it.
        let day = timestamp::site_date(&event.envelope.time, site)?;
        let header_text = match self.operation {
            Some(operation) => format!("{} {}/{operation}", self.text, self.order),
            None => format!("{} {}", self.text, self.order),
        };
        let mut item = json!({
            "GoodsMovementType": self.movement_type,
            "ManufacturingOrder": self.order,
            "Material": self.item,
            "Plant": plant,
            "Batch": batch,
            "QuantityInEntryUnit": self.quantity.amount,
            "EntryUnit": unit,
        });
        if let Some(operation) = self.operation {
            item["ManufacturingOrderOperation"] = json!(operation);
        }
        if let Some(location) = self.location {
            item["StorageLocation"] = json!(location);
        }
        Ok(Request::post(ERP, GOODS_MOVEMENTS)
            .header("Accept", "application/json")
            .json(json!({
                "GoodsMovementCode": self.code,
                "PostingDate": day,
                "DocumentDate": day,
                "MaterialDocumentHeaderText": header_text,
                "ReferenceDocument": event.envelope.id,
                "Items": [item],
            })))
    }
}

/// Whether decimal text is zero (`0`, `0.000`).
fn is_zero(amount: &str) -> bool {
    decimal::parse(amount, '.').is_ok_and(|d| d.is_zero())
}

millrace_sdk::export_poster!(ErpPostings);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// Every case in fixtures/ passes, as the host's admission runs them.
    #[test]
    fn golden_fixtures() {
        match check_fixtures::<ErpPostings>(env!("CARGO_MANIFEST_DIR")) {
            Ok(passed) => assert_eq!(passed, 52),
            Err(report) => panic!("{report}"),
        }
    }
}
