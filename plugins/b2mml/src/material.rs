//! `MaterialInformation`: each `MaterialLot` with a quantity becomes an `inventory-balance`.
//! Lots without a quantity (status or property updates) and material definitions or classes
//! (master data) carry no stock figure and map to nothing.

use millrace_sdk::decimal::{self, Decimal};
use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::document::Context;
use crate::{quantity, xml};

/// Lot status (B2MML free text, matched case-insensitively) → whether the stock is blocked.
const STATUSES: &[(&str, bool)] = &[
    ("Valid", false),
    ("Released", false),
    ("Available", false),
    ("Approved", false),
    ("Unrestricted", false),
    ("Blocked", true),
    ("Quarantine", true),
    ("Quarantined", true),
    ("Hold", true),
    ("OnHold", true),
    ("On Hold", true),
    ("Rejected", true),
    ("Expired", true),
];

/// Maps every `MaterialLot` of a `MaterialInformation`.
pub(crate) fn map(
    information: Node<'_, '_>,
    context: &Context<'_, '_>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    for lot in xml::children(information, "MaterialLot") {
        let id = xml::require(lot, "ID")?;
        let amounts = quantity::amounts(lot)?;
        let Some(amount) = quantity::single(lot, &amounts, |_| false)? else {
            log::info(
                "material lot without a stock quantity; no balance",
                &[("lot", id), ("line", &xml::line(lot).to_string())],
            );
            continue;
        };
        if amount.value < Decimal::ZERO {
            return Err(MapError::rejected(format!(
                "{}: lot {id} has a negative quantity",
                xml::at(lot)
            )));
        }
        let item = xml::require(lot, "MaterialDefinitionID")?;
        let location = xml::location(lot).ok_or_else(|| {
            MapError::rejected(format!(
                "{}: lot {id} has a Quantity but no StorageLocation or Location; a balance needs a location",
                xml::at(lot)
            ))
        })?;
        let blocked = match xml::child(lot, "Status") {
            None => false,
            Some(status) => is_blocked(status)?,
        };
        let zero = decimal::quantity(Decimal::ZERO, &amount.uom);
        events.push(CanonicalEvent {
            site: context.route.site(lot)?,
            occurred_at: context.occurred_at(
                lot,
                vec![xml::child(information, "PublishedDate")],
                "MaterialInformation/PublishedDate",
            )?,
            source_sequence: None,
            source_transaction: context.document_id.clone(),
            data: EventData::InventoryBalance(InventoryBalance {
                item: item.to_owned(),
                location,
                lot: Some(id.to_owned()),
                on_hand: amount.quantity(),
                allocated: zero.clone(),
                blocked: if blocked { amount.quantity() } else { zero },
            }),
        });
    }
    Ok(())
}

/// Whether a lot `Status` means blocked stock; an unknown status is rejected rather than guessed.
fn is_blocked(status: Node<'_, '_>) -> Result<bool, MapError> {
    let Some(value) = xml::own_text(status) else {
        return Ok(false);
    };
    STATUSES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, blocked)| *blocked)
        .ok_or_else(|| {
            MapError::rejected(format!(
                "{}: lot status '{value}' is not known; known: {}",
                xml::at(status),
                STATUSES
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}
