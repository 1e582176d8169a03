//! Outbound plugin: orchestrates a quality hold across the systems of record (see README.md for
//! the three APIs). For a hold placed, in this order:
//!
//! 1. `erp`: the batch's unrestricted stock to blocked stock (transfer posting, movement 344);
//! 2. `wms`: a shipment release block on the lot, so no shipment with it leaves;
//! 3. `notify`: a webhook for the plant's quality team and customer service.
//!
//! A hold released undoes 1 (movement 343, blocked to unrestricted) and 2, and notifies.
//!
//! The ERP identifies a batch by material and batch: a hold that names an item without a lot
//! blocks shipments of every lot of the item in the WMS and says in the notification that the
//! ERP stock was not changed; a hold naming no item (a lot alone, a supplier, a location) cannot
//! be orchestrated (`incomplete-event`).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::posting::*;
use millrace_sdk::prelude::*;

/// The targets, as the host's configuration names them.
const ERP: &str = "erp";
const WMS: &str = "wms";
const NOTIFY: &str = "notify";

/// The poster exported to the host.
pub struct HoldOrchestration;

impl Poster for HoldOrchestration {
    fn render(event: &Event) -> Result<Vec<Request>, RenderError> {
        let EventData::QualityHold(hold) = &event.data else {
            return Ok(Vec::new());
        };
        let item = hold.scope.item.as_deref().ok_or_else(|| {
            RenderError::incomplete(format!(
                "hold {} names no item (scope: {}); the ERP and the WMS block stock of an item",
                hold.hold_id,
                scope_text(&hold.scope)
            ))
        })?;
        let site = &event.envelope.site;
        let plant =
            config::get_non_blank(&format!("plant.{site}"))?.unwrap_or_else(|| site.clone());
        let placed = hold.action == HoldAction::Placed;
        let mut requests = Vec::new();
        let mut actions = Vec::new();
        match hold.scope.lot.as_deref() {
            Some(lot) => {
                requests.push(erp_transfer(event, hold, item, lot, &plant)?);
                actions.push(if placed {
                    format!("ERP: stock of batch {lot} of {item} in plant {plant} blocked (344)")
                } else {
                    format!("ERP: blocked stock of batch {lot} of {item} in plant {plant} released (343)")
                });
            }
            None => actions.push(format!(
                "ERP: not changed, the hold names no batch; {} the stock of {item} in plant \
                 {plant} in the ERP by hand",
                if placed { "block" } else { "release" }
            )),
        }
        requests.push(wms_block(event, hold, item));
        let lots = match hold.scope.lot.as_deref() {
            Some(lot) => format!("lot {lot} of {item}"),
            None => format!("every lot of {item}"),
        };
        actions.push(if placed {
            format!("WMS: shipment release blocked for {lots}")
        } else {
            format!("WMS: shipment release block lifted for {lots}")
        });
        requests.push(notification(event, hold, &plant, actions));
        Ok(requests)
    }

    fn interpret(event: &Event, request: &Request, response: &Response) -> Verdict {
        if request.target == ERP {
            // The ERP answers as for any goods movement (see erp-postings).
            return material_document_verdict(event, response);
        }
        if let Some(verdict) = response.access_problem() {
            return verdict;
        }
        if response.is_transient() {
            return Verdict::try_again(response.summary());
        }
        let refused = || {
            Verdict::rejected(
                response
                    .error_message()
                    .unwrap_or_else(|| format!("HTTP {}", response.status)),
            )
        };
        let code = response.json_str("/error/code").unwrap_or_default();
        match request.target.as_str() {
            // A block is confirmed by its id: the one made (`blockId` of a 2xx), the one that
            // exists already for this hold and lot (409 BLOCK_EXISTS); a lift by the ids it
            // lifted (`released`, a 2xx); a release finding no active block (404
            // NO_ACTIVE_BLOCK) has nothing left to undo. Nothing else confirms: an OData-style
            // `error` in a 2xx is refused, a 2xx naming no block (a proxy's page, an active
            // block in answer to a release) is tried again, and any other 404 or 409 (an
            // unknown SKU, a proxy's page, another hold's id) is refused.
            WMS => {
                let release = request.path.ends_with("/release");
                let block = if release {
                    released(response)
                } else {
                    response
                        .json_str("/blockId")
                        .map(|block| block.trim().to_owned())
                        .filter(|block| !block.is_empty())
                };
                match (response.status, block) {
                    (200..=299, Some(block)) if !response.error_reported() => {
                        Verdict::posted(block)
                    }
                    (200..=299, _) => response.success_without(if release {
                        "the blocks it lifted (released)"
                    } else {
                        "a block id"
                    }),
                    (409, Some(block)) if !release && code == "BLOCK_EXISTS" => {
                        Verdict::posted(block)
                    }
                    (404, _) if release && code == "NO_ACTIVE_BLOCK" => Verdict::posted(""),
                    // Another user is changing the block: not now.
                    (409, _) if code == "BLOCK_LOCKED" => Verdict::try_again(response.summary()),
                    _ => refused(),
                }
            }
            // A notification is taken by any 2xx but a page (a proxy's or a sign-in page:
            // the request never reached the service, try again) or an `error` body (refused,
            // as the ERP's and the WMS's are).
            _ if response.is_success() => {
                if is_page(response) || response.error_reported() {
                    response.success_without(
                        "an answer of the notification service (a web page came back)",
                    )
                } else {
                    Verdict::posted(
                        response
                            .json_str("/notificationId")
                            .map(|id| id.trim().to_owned())
                            .unwrap_or_default(),
                    )
                }
            }
            _ => refused(),
        }
    }
}

/// The blocks a release answer says it lifted: the ids of its `released` list, joined by `,`;
/// none when the list is missing, empty or holds a blank id or one that is neither text nor a
/// number (ids are read as the placement's `blockId` is: `871` as `"871"`).
fn released(response: &Response) -> Option<String> {
    let count = response.json()?.get("released")?.as_array()?.len();
    let ids: Vec<String> = (0..count)
        .map(|index| {
            response
                .json_str(&format!("/released/{index}"))
                .map(|id| id.trim().to_owned())
        })
        .collect::<Option<_>>()?;
    (!ids.is_empty() && ids.iter().all(|id| !id.is_empty())).then(|| ids.join(","))
}

/// Whether the body is a web page (`text/html`, or markup where JSON or nothing was expected):
/// a sign-in page or a proxy's page, not the service's answer.
fn is_page(response: &Response) -> bool {
    response
        .header("content-type")
        .is_some_and(|kind| kind.to_ascii_lowercase().contains("html"))
        || response.text().trim_start().starts_with('<')
}

/// The ERP transfer posting of the whole batch: unrestricted to blocked (344) when the hold is
/// placed, back (343) when it is released.
fn erp_transfer(
    event: &Event,
    hold: &QualityHold,
    item: &str,
    lot: &str,
    plant: &str,
) -> Result<Request, RenderError> {
    let (movement_type, action) = match hold.action {
        HoldAction::Placed => ("344", "placed"),
        HoldAction::Released => ("343", "released"),
    };
    // The ERP's period is the plant's: a hold placed at 22:30 UTC on 31 March is booked on
    // 1 April in Linz (`utc-offset`, `daylight-saving`).
    let day = timestamp::site_date(&event.envelope.time, &event.envelope.site)?;
    Ok(Request::post(ERP, "/odata/v1/GoodsMovements")
        .header("Accept", "application/json")
        .json(json!({
            "GoodsMovementCode": "04",
            "PostingDate": day,
            "DocumentDate": day,
            "MaterialDocumentHeaderText": format!("Quality hold {} {action}", hold.hold_id),
            "ReferenceDocument": event.envelope.id,
            "Items": [{
                "GoodsMovementType": movement_type,
                "Material": item,
                "Plant": plant,
                "Batch": lot,
                "EntireBatchStock": true,
                "QualityNotification": hold.hold_id,
            }],
        })))
}

/// The WMS shipment release block of the hold (every lot of the item when it names none), or
/// its release.
fn wms_block(event: &Event, hold: &QualityHold, item: &str) -> Request {
    let mut body = json!({
        "holdId": hold.hold_id,
        "site": event.envelope.site,
        "sku": item,
    });
    if let Some(lot) = &hold.scope.lot {
        body["lot"] = json!(lot);
    }
    if let Some(location) = &hold.scope.location {
        body["location"] = json!(location);
    }
    body["reason"] = json!(hold.reason);
    let path = match hold.action {
        HoldAction::Placed => {
            body["reasonCode"] = json!("QUALITY_HOLD");
            body["blockedAt"] = json!(event.envelope.time);
            "/api/v2/shipment-release-blocks"
        }
        HoldAction::Released => {
            if let Some(disposition) = &hold.disposition {
                body["disposition"] = json!(disposition);
            }
            body["releasedAt"] = json!(event.envelope.time);
            "/api/v2/shipment-release-blocks/release"
        }
    };
    Request::post(WMS, path).json(body)
}

/// The notification for the plant's quality team and customer service, saying what was done.
fn notification(event: &Event, hold: &QualityHold, plant: &str, actions: Vec<String>) -> Request {
    let action = match hold.action {
        HoldAction::Placed => "placed",
        HoldAction::Released => "released",
    };
    let site = &event.envelope.site;
    let scope = &hold.scope;
    Request::post(NOTIFY, "/hooks/quality-holds").json(json!({
        "type": format!("quality-hold.{action}"),
        "eventId": event.envelope.id,
        "holdId": hold.hold_id,
        "site": site,
        "plant": plant,
        "occurredAt": event.envelope.time,
        "item": scope.item,
        "lot": scope.lot,
        "location": scope.location,
        "supplier": scope.supplier,
        "reason": hold.reason,
        "disposition": hold.disposition,
        "audiences": [format!("plant-quality:{site}"), "customer-service"],
        "actions": actions,
    }))
}

/// The scope's fields that are set, for an error message.
fn scope_text(scope: &HoldScope) -> String {
    let named: Vec<String> = [
        ("lot", &scope.lot),
        ("location", &scope.location),
        ("supplier", &scope.supplier),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
    .collect();
    if named.is_empty() {
        "empty".to_owned()
    } else {
        named.join(", ")
    }
}

millrace_sdk::export_poster!(HoldOrchestration);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// Every case in fixtures/ passes, as the host's admission runs them.
    #[test]
    fn golden_fixtures() {
        match check_fixtures::<HoldOrchestration>(env!("CARGO_MANIFEST_DIR")) {
            Ok(passed) => assert_eq!(passed, 29),
            Err(report) => panic!("{report}"),
        }
    }
}
