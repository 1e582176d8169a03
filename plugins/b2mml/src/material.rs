//! `MaterialInformation`: each `MaterialLot` with a quantity becomes an `inventory-balance`.
//! When the quantities sit on the lot's `MaterialSubLot`s (containers, bins, pallets of the lot),
//! the lot's balance is their sum per location, and a sub-lot whose status blocks it (for
//! example `NotValid` or a quarantine) counts as blocked stock.
//! Lots without a quantity (status or property updates) and material definitions or classes
//! (master data) carry no stock figure and map to nothing.

use std::borrow::Cow;
use std::collections::HashMap;

use millrace_sdk::decimal::{self, Decimal};
use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::context::Context;
use crate::{quantity, xml};

/// Lot status (B2MML free text, matched ignoring case, spaces, `-` and `_`, so `On Hold`,
/// `on_hold` and `OnHold` are one status) → whether the stock is blocked.
const STATUSES: &[(&str, bool)] = &[
    ("Valid", false),
    ("Released", false),
    ("Available", false),
    ("Approved", false),
    ("Unrestricted", false),
    ("Blocked", true),
    ("NotValid", true),
    ("Invalid", true),
    ("Quarantine", true),
    ("Quarantined", true),
    ("InQuarantine", true),
    ("Hold", true),
    ("OnHold", true),
    ("QualityHold", true),
    ("Rejected", true),
    ("Expired", true),
];

/// Maps every `MaterialLot` of a `MaterialInformation`.
pub(crate) fn map(
    information: Node<'_, '_>,
    context: &Context<'_, '_>,
    events: &mut Vec<CanonicalEvent>,
) -> Result<(), MapError> {
    // Only a BOD id identifies a resend: a MaterialInformation/ID may name the report, not
    // this issue of it, and a balance re-reported under it must not be dropped as a resend.
    let transaction = context.document_id.clone();
    // Looked up once: among the lots, finding it again for each would be quadratic.
    let published = xml::child(information, "PublishedDate");
    for lot in xml::children(information, "MaterialLot") {
        let id = &*xml::require(lot, "ID")?;
        let amounts = quantity::amounts(lot)?;
        let own = quantity::single(lot, &amounts, |_| false)?;
        let lot_blocked = match xml::child(lot, "Status") {
            None => false,
            Some(status) => is_blocked(status)?,
        };
        let mut parts = Vec::new();
        sub_lots(lot, id, lot_blocked, xml::lot_location(lot)?, &mut parts)?;
        let balances = if parts.is_empty() {
            let Some(amount) = own else {
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
            let location = xml::lot_location(lot)?.ok_or_else(|| {
                MapError::rejected(format!(
                    "{}: lot {id} has a Quantity but no StorageLocation or Location; a balance needs a location",
                    xml::at(lot)
                ))
            })?;
            vec![Balance {
                location,
                uom: amount.uom.clone(),
                on_hand: amount.value,
                blocked: if lot_blocked {
                    amount.value
                } else {
                    Decimal::ZERO
                },
            }]
        } else {
            let balances = per_location(lot, id, &parts)?;
            if let Some(amount) = own {
                // Sub-lots at several places may add up past the largest decimal: then they
                // differ from any lot quantity.
                let total = decimal::checked_sum(parts.iter().map(|p| p.amount.value));
                if amount.uom != parts[0].amount.uom || Some(amount.value) != total {
                    log::warn(
                        "material lot quantity differs from the sum of its sub-lots; the sub-lots are mapped",
                        &[
                            ("lot", id),
                            ("lot_quantity", &decimal::to_wit(amount.value)),
                            (
                                "sub_lots",
                                &total.map_or_else(
                                    || "past the largest decimal".to_owned(),
                                    decimal::to_wit,
                                ),
                            ),
                        ],
                    );
                }
            }
            balances
        };
        let item = xml::require(lot, "MaterialDefinitionID")?;
        let occurred_at =
            context.occurred_at(lot, vec![published], "MaterialInformation/PublishedDate")?;
        let site = context.route.site(lot)?;
        for balance in &balances {
            // A balance sets the stock of its lot at its place: the same lot listed twice in
            // one document would give two balances of one key and one time, the last winning.
            // (Sub-lots of one lot at one place are added up: that is one balance.)
            let key = (
                site.clone(),
                item.to_string(),
                balance.location.clone(),
                id.to_owned(),
            );
            let seen = context.balances.borrow().get(&key).copied();
            if let Some(first) = seen {
                return Err(MapError::rejected(format!(
                    "{}: lot {id} of item {item} at {} is listed again (first at line {first}); a \
                     balance sets the lot's stock there, so the second would replace the first: \
                     list a lot once (its sub-lots may break it down)",
                    xml::at(lot),
                    balance.location
                )));
            }
            context.balances.borrow_mut().insert(key, xml::line(lot));
        }
        for balance in balances {
            events.push(CanonicalEvent {
                site: site.clone(),
                occurred_at: occurred_at.clone(),
                source_sequence: None,
                source_transaction: transaction.clone(),
                data: EventData::InventoryBalance(InventoryBalance {
                    item: item.to_string(),
                    location: balance.location,
                    lot: Some(id.to_owned()),
                    on_hand: decimal::quantity(balance.on_hand, &balance.uom),
                    allocated: decimal::quantity(Decimal::ZERO, &balance.uom),
                    blocked: decimal::quantity(balance.blocked, &balance.uom),
                }),
            });
        }
    }
    Ok(())
}

/// The stock of one lot at one location.
struct Balance {
    location: String,
    uom: String,
    on_hand: Decimal,
    blocked: Decimal,
}

/// One sub-lot that holds stock: its amount, where it is and whether it is blocked.
struct Part<'a, 'input> {
    node: Node<'a, 'input>,
    amount: quantity::Amount,
    location: Option<String>,
    blocked: bool,
}

/// Collects the sub-lots under `owner` that hold the stock: a sub-lot whose own sub-lots carry
/// quantities is broken down by them, else its own quantity counts. Status and location are
/// inherited from the enclosing sub-lot or lot; a blocked lot blocks all its sub-lots.
fn sub_lots<'a, 'input>(
    owner: Node<'a, 'input>,
    lot: &str,
    blocked: bool,
    location: Option<String>,
    parts: &mut Vec<Part<'a, 'input>>,
) -> Result<(), MapError> {
    // A lot's sub-lots; a sub-lot's own are `MaterialSubLot` too up to V0600, in V07
    // `MaterialSubLotChild`.
    for sub in xml::nested(owner, "MaterialSubLot", "MaterialSubLotChild") {
        let sub_blocked = blocked
            || match xml::child(sub, "Status") {
                None => false,
                Some(status) => is_blocked(status)?,
            };
        let sub_location = xml::lot_location(sub)?.or_else(|| location.clone());
        let before = parts.len();
        sub_lots(sub, lot, sub_blocked, sub_location.clone(), parts)?;
        if parts.len() > before {
            continue;
        }
        let amounts = quantity::amounts(sub)?;
        let Some(amount) = quantity::single(sub, &amounts, |_| false)? else {
            continue;
        };
        if amount.value < Decimal::ZERO {
            return Err(MapError::rejected(format!(
                "{}: sub-lot {} of lot {lot} has a negative quantity",
                xml::at(sub),
                xml::text(sub, "ID").unwrap_or(Cow::Borrowed("(no ID)"))
            )));
        }
        parts.push(Part {
            node: sub,
            amount,
            location: sub_location,
            blocked: sub_blocked,
        });
    }
    Ok(())
}

/// Sums the sub-lots of a lot per location, in the order the locations first appear.
fn per_location(
    lot: Node<'_, '_>,
    id: &str,
    parts: &[Part<'_, '_>],
) -> Result<Vec<Balance>, MapError> {
    let mut balances: Vec<Balance> = Vec::new();
    // The index in `balances` of each location's.
    let mut at: HashMap<String, usize> = HashMap::new();
    for part in parts {
        let location = part.location.clone().ok_or_else(|| {
            MapError::rejected(format!(
                "{}: sub-lot {} of lot {id} has a Quantity but neither it nor {} names a \
                 StorageLocation or Location; a balance needs a location",
                xml::at(part.node),
                xml::text(part.node, "ID").unwrap_or(Cow::Borrowed("(no ID)")),
                xml::at(lot)
            ))
        })?;
        let blocked = if part.blocked {
            part.amount.value
        } else {
            Decimal::ZERO
        };
        match at.get(&location).and_then(|index| balances.get_mut(*index)) {
            Some(balance) if balance.uom != part.amount.uom => {
                return Err(MapError::rejected(format!(
                    "{}: sub-lots of lot {id} at {location} are counted in {} and {}; one \
                     balance needs one unit",
                    xml::at(part.node),
                    balance.uom,
                    part.amount.uom
                )));
            }
            Some(balance) => {
                let past = || {
                    MapError::malformed(format!(
                        "{}: its quantity {} takes the stock of lot {id} at {location} past the \
                         largest decimal number",
                        xml::at(part.node),
                        decimal::to_wit(part.amount.value)
                    ))
                };
                balance.on_hand =
                    decimal::checked_sum([balance.on_hand, part.amount.value]).ok_or_else(past)?;
                balance.blocked =
                    decimal::checked_sum([balance.blocked, blocked]).ok_or_else(past)?;
            }
            None => {
                at.insert(location.clone(), balances.len());
                balances.push(Balance {
                    location,
                    uom: part.amount.uom.clone(),
                    on_hand: part.amount.value,
                    blocked,
                });
            }
        }
    }
    Ok(balances)
}

/// Whether a lot `Status` means blocked stock; an unknown status is rejected rather than guessed.
fn is_blocked(status: Node<'_, '_>) -> Result<bool, MapError> {
    let Some(value) = xml::own_text(status) else {
        return Ok(false);
    };
    let plain = |text: &str| -> String {
        text.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    STATUSES
        .iter()
        .find(|(name, _)| plain(name) == plain(&value))
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
