//! What every EDI mapping (X12 and EDIFACT) repeats: the route's settings, the identity of a
//! document for `source_transaction`, and the error for an interchange that holds nothing to map.
//!
//! ```ignore
//! let route = edi::Route::load()?;                      // site, utc-offset, item-qualifier, location
//! // One interchange or several back to back, as gateways batch them (`edifact::parse_all` for
//! // EDIFACT); a syntax error anywhere is malformed-input.
//! for interchange in x12::parse_all(&msg.payload)? {
//!     for (_, set) in interchange.transaction_sets() {
//!         let identity = edi::source_transaction(&interchange.control_number, &set.control_number, Some(number));
//!         ...
//!     }
//! }
//! edi::mapped(events, "inventory line") // an error when the interchanges held none
//! ```

use std::fmt;

use crate::canonical::{CanonicalEvent, EventData, InventoryBalance, Quantity};
use crate::timestamp::{self, UtcOffset};
use crate::{MapError, config};

/// Why an interchange (EDIFACT or X12) was refused; says which segment and what is wrong.
/// A mapping passes it on with `?`: it becomes a `malformed-input` [`MapError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where: `UNA`, `ISA header`, or `segment 24 (UNT) at line 24`.
    pub location: String,
    /// What is wrong.
    pub reason: String,
}

impl SyntaxError {
    /// The error at `location` (see [`SyntaxError::location`]) for `reason`.
    pub fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

impl std::error::Error for SyntaxError {}

impl From<SyntaxError> for MapError {
    fn from(error: SyntaxError) -> Self {
        MapError::malformed(error.to_string())
    }
}

/// The text of an EDI payload (EDIFACT or X12): a UTF-8 byte-order mark dropped, then UTF-8
/// when valid, otherwise Latin-1 (both standards' classic character sets are single-byte).
/// Borrowed exactly when the payload is UTF-8; a copy when it was decoded.
///
/// A payload in UTF-16 (what Windows tools save as "Unicode" text) is decoded first: it shows
/// by its byte-order mark, or by a NUL beside the first character (an envelope starts with the
/// ASCII letters of `ISA`, `UNA` or `UNB`, never with a NUL). UTF-16 that does not decode is an
/// error naming the offset.
pub fn payload_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, SyntaxError> {
    use encoding_rs::{Encoding, UTF_16BE, UTF_16LE};
    let utf16 = match (Encoding::for_bom(bytes), bytes) {
        (Some((encoding, bom)), _) if encoding == UTF_16LE || encoding == UTF_16BE => {
            Some((encoding, bom, "as its byte-order mark says"))
        }
        (None, [first, 0, ..]) if *first != 0 => Some((UTF_16LE, 0, "as its first bytes show")),
        (None, [0, second, ..]) if *second != 0 => Some((UTF_16BE, 0, "as its first bytes show")),
        _ => None,
    };
    let Some((encoding, start, why)) = utf16 else {
        return Ok(crate::text::utf8_or_latin1(bytes));
    };
    crate::text::decode(encoding, &bytes[start..])
        .map(std::borrow::Cow::Owned)
        .map_err(|offset| {
            SyntaxError::new(
                "payload",
                format!(
                    "the payload is not valid {} ({why}): the bytes at offset {} are not a {} character",
                    encoding.name(),
                    start + offset,
                    encoding.name()
                ),
            )
        })
}

/// The route configuration keys EDI mappings share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `site` (required): the site code of every event.
    pub site: String,
    /// `utc-offset` (default `+00:00`): the offset of dates and times without a zone.
    pub utc_offset: UtcOffset,
    /// `utc-offset` as written, for [`crate::x12::timestamp`].
    pub utc_offset_text: String,
    /// `item-qualifier`: the product id qualifier to take the item number from, when set.
    pub item_qualifier: Option<String>,
    /// `location`: where the goods are when the document names no party for it.
    pub location: Option<String>,
    /// `test-interchanges` (default `refuse`): whether interchanges the sender marks as a
    /// test (`ISA15` `T`, `UNB` 0035 `1`) are mapped (`map`, on a route that takes a partner's
    /// test traffic) or refused.
    pub map_tests: bool,
}

impl Route {
    /// Reads the keys; a missing `site` or an unreadable `utc-offset` is an `other` error naming
    /// the key, for the operator to fix.
    pub fn load() -> Result<Self, MapError> {
        let site = config::require("site")?;
        let utc_offset_text = config::get("utc-offset").unwrap_or_else(|| "+00:00".to_owned());
        let utc_offset = timestamp::parse_offset(&utc_offset_text)
            .map_err(|e| MapError::other(format!("route config 'utc-offset': {e}")))?;
        Ok(Self {
            site,
            utc_offset,
            utc_offset_text,
            item_qualifier: config::get("item-qualifier").filter(|q| !q.trim().is_empty()),
            location: config::get("location").filter(|l| !l.trim().is_empty()),
            map_tests: map_tests()?,
        })
    }

    /// Refuses an interchange its sender marked as a test (`test`, with the mark as written,
    /// e.g. `ISA15 is T`), unless the route maps them (`test-interchanges = "map"`): a
    /// partner's onboarding and re-tests come over the same channel, and their shipments,
    /// stock and receipts must not become the plant's. `unsupported-document`, so the dead
    /// letter keeps it and says how to take it.
    pub fn admit(&self, test: bool, mark: &str) -> Result<(), MapError> {
        if test && !self.map_tests {
            return Err(MapError::unsupported(format!(
                "a test interchange ({mark}): its sender marks it as a test, not business; this \
                 route refuses test interchanges (route config 'test-interchanges' = \"map\" \
                 maps them, on a route meant for a partner's test traffic)"
            )));
        }
        Ok(())
    }

    /// One event of the route's site per record in `data` (balances, movements,
    /// commitments of one document), each happening at `occurred_at` and carrying the
    /// document's `transaction` ([`source_transaction`]).
    pub fn events<'s, D: Into<EventData>>(
        &'s self,
        occurred_at: &'s str,
        transaction: &'s str,
        data: impl IntoIterator<Item = D> + 's,
    ) -> impl Iterator<Item = CanonicalEvent> + 's {
        data.into_iter().map(move |record| {
            CanonicalEvent::new(&self.site, occurred_at, record).with_transaction(transaction)
        })
    }
}

/// The route's `test-interchanges` setting: true for `map`, false for `refuse` or none.
fn map_tests() -> Result<bool, MapError> {
    match config::get("test-interchanges").as_deref().map(str::trim) {
        None | Some("") | Some("refuse") => Ok(false),
        Some("map") => Ok(true),
        Some(other) => Err(MapError::other(format!(
            "route config 'test-interchanges' is '{other}': it takes refuse (the default) or map"
        ))),
    }
}

/// The `source_transaction` of a document: who sent the interchange (`qualifier/id`, or the id
/// when the interchange gives no qualifier), its control references from the outside in
/// (interchange, group when there is one, transaction set or message), then the document's own
/// number (the one a clerk searches for) when it has one: `ZZ/ACME:000000120:1:1202:WR-5512`.
///
/// Every level is in it because a control number is unique only within the one above it: an
/// interchange control number per sender (`ISA13`, `UNB` 0020), a set or message reference per
/// group or interchange. Two partners that both start counting at 1, or two groups of one
/// interchange, never share an identity, so the host's idempotency ledger (which keys on it)
/// never takes one partner's document for a resend of another's.
pub fn source_transaction(sender: (&str, &str), controls: &[&str], number: Option<&str>) -> String {
    let (qualifier, id) = (sender.0.trim(), sender.1.trim());
    let mut identity = if qualifier.is_empty() {
        id.to_owned()
    } else {
        format!("{qualifier}/{id}")
    };
    let number = number.map(str::trim).filter(|n| !n.is_empty());
    for part in controls.iter().map(|c| c.trim()).chain(number) {
        identity.push(':');
        identity.push_str(part);
    }
    identity
}

/// The error for an interchange that holds no `what` to map: `malformed-input`, because an
/// EDI document without one is not a document of its type.
pub fn holds_nothing(what: &str) -> MapError {
    MapError::malformed(format!("the interchange holds no {what}"))
}

/// The events mapped from an interchange, or the [`holds_nothing`] error for `what` when there
/// are none.
pub fn mapped(events: Vec<CanonicalEvent>, what: &str) -> Result<Vec<CanonicalEvent>, MapError> {
    if events.is_empty() {
        Err(holds_nothing(what))
    } else {
        Ok(events)
    }
}

/// The stock balances of one report, one per item, lot and place. A warehouse that reports one
/// line per pallet or licence plate names one item, lot and place in several lines; the stock
/// there is their sum, while two balances of one place would each set it (the last one
/// winning). So a line's balance is added to the one before it of the same place, in one unit.
#[derive(Debug, Default)]
pub struct Balances {
    /// Each balance with where its first line is, for errors.
    balances: Vec<(InventoryBalance, String)>,
}

impl Balances {
    /// Adds the balance of the line `at` (`segment 7 (LIN) at line 7`).
    pub fn add(&mut self, balance: InventoryBalance, at: String) -> Result<(), MapError> {
        let same_place = |b: &InventoryBalance| {
            b.item == balance.item && b.lot == balance.lot && b.location == balance.location
        };
        let Some((total, first_at)) = self.balances.iter_mut().find(|(b, _)| same_place(b)) else {
            self.balances.push((balance, at));
            return Ok(());
        };
        let units = [
            (&total.on_hand, &balance.on_hand),
            (&total.allocated, &balance.allocated),
            (&total.blocked, &balance.blocked),
        ];
        if let Some((was, is)) = units.iter().find(|(was, is)| was.uom != is.uom) {
            return Err(MapError::malformed(format!(
                "{at}: item {} at {} is counted in {} here and in {} at {first_at}; lines of one \
                 item, lot and place are added up, so they need one unit",
                balance.item, balance.location, is.uom, was.uom
            )));
        }
        let sum = |a: &Quantity, b: &Quantity| -> Result<Quantity, MapError> {
            let parse = |q: &Quantity| crate::decimal::parse(&q.amount, '.').ok();
            parse(a)
                .zip(parse(b))
                .and_then(|(x, y)| x.checked_add(y))
                .map(|amount| crate::decimal::quantity(amount, &a.uom))
                .ok_or_else(|| {
                    MapError::malformed(format!(
                        "{at}: item {} at {}: {} and {} {} are too large to add up",
                        balance.item, balance.location, a.amount, b.amount, a.uom
                    ))
                })
        };
        total.on_hand = sum(&total.on_hand, &balance.on_hand)?;
        total.allocated = sum(&total.allocated, &balance.allocated)?;
        total.blocked = sum(&total.blocked, &balance.blocked)?;
        Ok(())
    }

    /// True when no line gave a balance.
    pub fn is_empty(&self) -> bool {
        self.balances.is_empty()
    }

    /// The balances, in the order their places first came.
    pub fn into_vec(self) -> Vec<InventoryBalance> {
        self.balances.into_iter().map(|(b, _)| b).collect()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn reads_the_route_and_names_documents() {
        config::set_for_tests([
            ("site", "P1"),
            ("utc-offset", "+01:00"),
            ("item-qualifier", "BP"),
        ]);
        let route = Route::load().unwrap();
        assert_eq!(route.site, "P1");
        assert_eq!(route.utc_offset_text, "+01:00");
        assert_eq!(route.item_qualifier.as_deref(), Some("BP"));
        assert_eq!(route.location, None);
        config::set_for_tests([("site", "P1"), ("utc-offset", "CET")]);
        assert!(
            Route::load()
                .unwrap_err()
                .message()
                .contains("'utc-offset'")
        );
        assert_eq!(
            source_transaction(("ZZ", " ACME "), &["1", " 7", "2"], Some(" WR-1 ")),
            "ZZ/ACME:1:7:2:WR-1"
        );
        assert_eq!(
            source_transaction(("", "ACME"), &["1", "2"], Some("")),
            "ACME:1:2"
        );
        assert_eq!(
            holds_nothing("message").message(),
            "the interchange holds no message"
        );
        assert_eq!(mapped(Vec::new(), "message"), Err(holds_nothing("message")));
    }

    #[test]
    fn balances_of_one_place_add_up_in_one_unit() {
        let balance = |lot: &str, on_hand: &str, uom: &str| InventoryBalance {
            lot: Some(lot.to_owned()),
            blocked: crate::decimal::quantity(1.into(), uom),
            ..InventoryBalance::new(
                "MAT-1".to_owned(),
                "WH".to_owned(),
                Quantity::new(on_hand, uom),
            )
        };
        let mut balances = Balances::default();
        balances
            .add(balance("L1", "120", "EA"), "line 1".into())
            .unwrap();
        balances
            .add(balance("L2", "5", "EA"), "line 2".into())
            .unwrap();
        balances
            .add(balance("L1", "80.5", "EA"), "line 3".into())
            .unwrap();
        let error = balances
            .add(balance("L1", "3", "KGM"), "line 4".into())
            .unwrap_err();
        assert_eq!(
            error.message(),
            "line 4: item MAT-1 at WH is counted in KGM here and in EA at line 1; lines of one \
             item, lot and place are added up, so they need one unit"
        );
        let balances = balances.into_vec();
        assert_eq!(balances.len(), 2);
        assert_eq!(balances[0].on_hand, Quantity::new("200.5", "EA"));
        assert_eq!(balances[0].blocked, Quantity::new("2", "EA"));
        assert_eq!(balances[1].on_hand, Quantity::new("5", "EA"));
    }

    #[test]
    fn a_test_interchange_is_refused_unless_the_route_maps_them() {
        config::set_for_tests([("site", "PLANT1")]);
        let route = Route::load().unwrap();
        assert!(route.admit(false, "ISA15 is T").is_ok());
        let refused = route.admit(true, "ISA15 is T").unwrap_err();
        assert_eq!(refused.kind(), "unsupported-document");
        let why = refused.message();
        assert!(why.contains("a test interchange (ISA15 is T)"), "{why}");
        assert!(why.contains("'test-interchanges' = \"map\""), "{why}");
        config::set_for_tests([("site", "PLANT1"), ("test-interchanges", "map")]);
        assert!(Route::load().unwrap().admit(true, "UNB 0035 is 1").is_ok());
        config::set_for_tests([("site", "PLANT1"), ("test-interchanges", "yes")]);
        let wrong = Route::load().unwrap_err();
        assert!(
            wrong.message().contains("'test-interchanges' is 'yes'"),
            "{wrong}"
        );
    }
}
