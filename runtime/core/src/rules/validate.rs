//! Validation of every canonical event before it is published.
//!
//! A plugin is code from a vendor or another plant; the host does not trust what it returns.
//! An event that breaks a rule here makes the whole raw message go to the dead letters with
//! the rule named, never a partial publish.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::canonical::{EventData, MappedEvent, MovementType, Quantity};

/// Longest identifier (item, location, lot, order...) accepted.
const MAX_KEY_LEN: usize = 256;
/// Longest free text (reason, disposition) accepted.
const MAX_TEXT_LEN: usize = 4096;
/// Longest decimal text accepted.
const MAX_DECIMAL_LEN: usize = 40;

/// An event that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} ({kind}): {field} {problem}")]
pub struct InvalidEvent {
    /// Position of the event in the plugin's output, from 0.
    pub index: usize,
    /// Event kind.
    pub kind: &'static str,
    /// The field, e.g. `data.good_quantity.amount`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Characters that show nothing: zero-width spaces and joiners, word joiner and invisible
/// operators, the byte-order mark, the soft hyphen, and the other format characters (Unicode
/// category Cf: bidirectional controls, Arabic and Syriac marks, tag characters...).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Bidirectional controls (marks, embeddings, overrides, isolates): they reorder how text is
/// shown, so a key holding one reads as another (`LOT-\u{202E}1A` shows as `LOT-A1`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The first character of `key` that makes it read as another key: an invisible (format)
/// character, or a space other than the ASCII one (`WH1\u{A0}RCV` shows as `WH1 RCV`). The
/// joiners U+200C and U+200D stay allowed between two non-ASCII characters, where scripts
/// (Persian, the Indic ones) and emoji sequences need them to be written at all.
fn look_alike(key: &str) -> Option<char> {
    if key.is_ascii() {
        // Every key of most sources: nothing here is ASCII.
        return None;
    }
    let mut before = None;
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        let joins_scripts = matches!(c, '\u{200C}' | '\u{200D}')
            && before.is_some_and(|b: char| !b.is_ascii())
            && chars.peek().is_some_and(|next| !next.is_ascii());
        if (is_invisible(c) && !joins_scripts) || (c.is_whitespace() && !c.is_ascii()) {
            return Some(c);
        }
        before = Some(c);
    }
    None
}

struct Check<'a> {
    index: usize,
    kind: &'static str,
    errors: &'a mut Vec<InvalidEvent>,
}

impl Check<'_> {
    fn fail(&mut self, field: &str, problem: String) {
        self.errors.push(InvalidEvent {
            index: self.index,
            kind: self.kind,
            field: field.into(),
            problem,
        });
    }

    fn key(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(field, "is empty".into());
        } else if value.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
            self.fail(
                field,
                format!(
                    "{value:?} has no visible character (only zero-width or format characters)"
                ),
            );
        } else if let Some(c) = value.chars().find(|&c| is_bidi_control(c)) {
            self.fail(
                field,
                format!(
                    "{value:?} holds the bidirectional control U+{:04X}: a key must read as it compares",
                    u32::from(c)
                ),
            );
        } else if let Some(c) = look_alike(value) {
            let what = if c.is_whitespace() {
                "the space"
            } else {
                "the invisible character"
            };
            self.fail(
                field,
                format!(
                    "{value:?} holds {what} U+{:04X}: a key must read as it compares (the mapping \
                     should drop it, or write a space as U+0020)",
                    u32::from(c)
                ),
            );
        } else if value.trim() != value {
            self.fail(
                field,
                format!(
                    "{value:?} starts or ends with white space: a key must read as it compares \
                     (the mapping should trim it)"
                ),
            );
        } else if value.len() > MAX_KEY_LEN {
            self.fail(
                field,
                format!("is {} bytes long, the limit is {MAX_KEY_LEN}", value.len()),
            );
        } else if value.chars().any(char::is_control) {
            self.fail(field, format!("{value:?} holds a control character"));
        }
    }

    fn opt_key(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.key(field, value);
        }
    }

    fn text(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(field, "is empty".into());
        } else if value.len() > MAX_TEXT_LEN {
            self.fail(
                field,
                format!("is {} bytes long, the limit is {MAX_TEXT_LEN}", value.len()),
            );
        }
    }

    fn timestamp(&mut self, field: &str, value: &str) {
        if OffsetDateTime::parse(value, &Rfc3339).is_err() {
            self.fail(
                field,
                format!("{value:?} is not an RFC 3339 timestamp (e.g. 2026-03-02T06:15:00+01:00)"),
            );
        }
    }

    /// An RFC 3339 timestamp, and (with a clock) not later than the clock allows.
    fn occurred_at(&mut self, value: &str, clock: Option<Clock>) {
        let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) else {
            return self.timestamp("occurred_at", value);
        };
        let Some(clock) = clock else { return };
        let ahead = at - clock.now;
        if ahead > clock.max_ahead {
            // Hours, or days past two of them.
            let span = |seconds: i64| match seconds.div_euclid(3600) {
                hours @ ..48 => format!("{hours}h"),
                hours => format!("{} days", hours / 24),
            };
            self.fail(
                "occurred_at",
                format!(
                    "{value:?} is {} after this host's clock ({}), more than the route's \
                     limits.max_ahead ({}): a source clock set wrong, or a date read wrong",
                    span(ahead.whole_seconds()),
                    clock.now.format(&Rfc3339).unwrap_or_default(),
                    span(i64::try_from(clock.max_ahead.as_secs()).unwrap_or(i64::MAX)),
                ),
            );
        }
    }

    fn date(&mut self, field: &str, value: &str) {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        // RFC 3339's full-date has a year of four digits: `[year]` also takes a sign
        // (`+2026-01-01`, `-0001-12-31`).
        let four_digit_year = value
            .get(..4)
            .is_some_and(|y| y.bytes().all(|b| b.is_ascii_digit()));
        if !four_digit_year || time::Date::parse(value, &format).is_err() {
            self.fail(
                field,
                format!("{value:?} is not an RFC 3339 date (e.g. 2026-03-02)"),
            );
        }
    }

    fn quantity(&mut self, field: &str, q: &Quantity, negative_allowed: bool) {
        if !is_decimal(&q.amount) {
            self.fail(
                &format!("{field}.amount"),
                format!(
                    "{:?} is not an exact decimal (digits with an optional `.` and fraction, e.g. 12.50)",
                    q.amount
                ),
            );
        } else if significant_digits(&q.amount) > MAX_SIGNIFICANT_DIGITS {
            self.fail(
                &format!("{field}.amount"),
                format!(
                    "{:?} has more than {MAX_SIGNIFICANT_DIGITS} significant digits, the most an exact quantity holds",
                    q.amount
                ),
            );
        } else if !negative_allowed && q.amount.starts_with('-') {
            self.fail(
                &format!("{field}.amount"),
                format!("{:?} is negative", q.amount),
            );
        }
        let uom_ok = (1..=3).contains(&q.uom.len())
            && q.uom
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !uom_ok {
            self.fail(
                &format!("{field}.uom"),
                format!(
                    "{:?} is not a UN/ECE Recommendation 20 unit code (2 or 3 capitals or digits, e.g. EA, KGM, C62)",
                    q.uom
                ),
            );
        }
    }
}

/// The most significant digits a quantity may have: what every reader's exact decimal holds
/// (`rust_decimal`, in the projection and the Rust SDK, keeps 28 to 29). A longer amount was
/// published and then read as zero by the projection.
const MAX_SIGNIFICANT_DIGITS: usize = 28;

/// The digits of decimal text `s` without leading zeros of its whole part and trailing zeros of
/// its fraction (`0012.500` has 3).
fn significant_digits(s: &str) -> usize {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    int.trim_start_matches('0').len() + frac.trim_end_matches('0').len()
}

/// True for `-?digits(.digits)?` of bounded length.
pub fn is_decimal(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_DECIMAL_LEN {
        return false;
    }
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// The host's clock and how far after it an event may be dated (a route's
/// `limits.max_ahead`).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, by the host's clock.
    pub now: OffsetDateTime,
    /// How far after `now` an event's `occurred_at` may be.
    pub max_ahead: std::time::Duration,
}

/// Checks every event of one plugin call against the rules that need no clock; returns every
/// broken rule.
pub fn validate(events: &[MappedEvent]) -> Result<(), Vec<InvalidEvent>> {
    check(events, None)
}

/// [`validate`], and no event dated more than `clock.max_ahead` after `clock.now`.
pub fn validate_at(events: &[MappedEvent], clock: Clock) -> Result<(), Vec<InvalidEvent>> {
    check(events, Some(clock))
}

fn check(events: &[MappedEvent], clock: Option<Clock>) -> Result<(), Vec<InvalidEvent>> {
    let mut errors = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let mut c = Check {
            index,
            kind: event.data.kind(),
            errors: &mut errors,
        };
        if !crate::config::is_token(&event.site) || event.site.len() > 64 {
            c.fail(
                "site",
                format!(
                    "{:?} is not a site code (1 to 64 letters, digits, `-` or `_`)",
                    event.site
                ),
            );
        }
        c.occurred_at(&event.occurred_at, clock);
        c.opt_key("source_transaction", event.source_transaction.as_deref());
        validate_data(&mut c, &event.data);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn validate_data(c: &mut Check<'_>, data: &EventData) {
    match data {
        EventData::InventoryMovement(m) => {
            c.key("data.item", &m.item);
            c.quantity(
                "data.quantity",
                &m.quantity,
                m.movement_type == MovementType::Adjustment,
            );
            c.opt_key("data.from_location", m.from_location.as_deref());
            c.opt_key("data.to_location", m.to_location.as_deref());
            c.opt_key("data.lot", m.lot.as_deref());
            c.opt_key("data.reference_document", m.reference_document.as_deref());
            if let Some(expiry) = &m.expiry_date {
                c.date("data.expiry_date", expiry);
            }
            for (i, s) in m.serials.iter().enumerate() {
                c.key(&format!("data.serials[{i}]"), s);
            }
            if m.from_location.is_none() && m.to_location.is_none() {
                c.fail(
                    "data.from_location",
                    "and data.to_location are both missing: a movement needs at least one".into(),
                );
            }
        }
        EventData::InventoryBalance(b) => {
            c.key("data.item", &b.item);
            c.key("data.location", &b.location);
            c.opt_key("data.lot", b.lot.as_deref());
            c.quantity("data.on_hand", &b.on_hand, true);
            c.quantity("data.allocated", &b.allocated, false);
            c.quantity("data.blocked", &b.blocked, false);
        }
        EventData::WorkOrderStatus(w) => {
            c.key("data.work_order", &w.work_order);
            c.opt_key("data.operation", w.operation.as_deref());
            c.opt_key("data.item", w.item.as_deref());
            for (field, q) in [
                ("data.planned_quantity", &w.planned_quantity),
                ("data.completed_quantity", &w.completed_quantity),
                ("data.scrapped_quantity", &w.scrapped_quantity),
            ] {
                if let Some(q) = q {
                    c.quantity(field, q, false);
                }
            }
        }
        EventData::MaterialConsumption(m) => {
            c.key("data.work_order", &m.work_order);
            c.opt_key("data.operation", m.operation.as_deref());
            c.key("data.item", &m.item);
            c.opt_key("data.lot", m.lot.as_deref());
            c.quantity("data.quantity", &m.quantity, false);
            c.opt_key("data.location", m.location.as_deref());
        }
        EventData::ProductionCompletion(p) => {
            c.key("data.work_order", &p.work_order);
            c.opt_key("data.operation", p.operation.as_deref());
            c.key("data.item", &p.item);
            c.opt_key("data.lot", p.lot.as_deref());
            c.quantity("data.good_quantity", &p.good_quantity, false);
            c.quantity("data.scrap_quantity", &p.scrap_quantity, false);
            c.opt_key("data.location", p.location.as_deref());
        }
        EventData::QualityHold(h) => {
            c.key("data.hold_id", &h.hold_id);
            c.text("data.reason", &h.reason);
            let s = &h.scope;
            c.opt_key("data.scope.item", s.item.as_deref());
            c.opt_key("data.scope.lot", s.lot.as_deref());
            c.opt_key("data.scope.location", s.location.as_deref());
            c.opt_key("data.scope.supplier", s.supplier.as_deref());
            if s.item.is_none() && s.lot.is_none() && s.location.is_none() && s.supplier.is_none() {
                c.fail(
                    "data.scope",
                    "is empty: name an item, lot, location or supplier".into(),
                );
            }
            if let Some(d) = &h.disposition {
                c.text("data.disposition", d);
            }
        }
        EventData::SupplierCommitment(s) => {
            c.key("data.supplier", &s.supplier);
            c.key("data.item", &s.item);
            c.opt_key("data.purchase_order", s.purchase_order.as_deref());
            for (i, b) in s.buckets.iter().enumerate() {
                c.date(&format!("data.buckets[{i}].date"), &b.date);
                if let Some(end) = &b.end_date {
                    c.date(&format!("data.buckets[{i}].end_date"), end);
                }
                c.quantity(&format!("data.buckets[{i}].quantity"), &b.quantity, false);
            }
            if let Some(q) = &s.cumulative_received {
                c.quantity("data.cumulative_received", q, false);
            }
        }
        EventData::ShipmentNotice(n) => {
            c.key("data.shipment_id", &n.shipment_id);
            c.key("data.supplier", &n.supplier);
            c.timestamp("data.ship_date", &n.ship_date);
            if let Some(t) = &n.expected_delivery {
                c.timestamp("data.expected_delivery", t);
            }
            if n.lines.is_empty() {
                c.fail(
                    "data.lines",
                    "is empty: a ship notice needs at least one line".into(),
                );
            }
            for (i, l) in n.lines.iter().enumerate() {
                c.key(&format!("data.lines[{i}].item"), &l.item);
                c.quantity(&format!("data.lines[{i}].quantity"), &l.quantity, false);
                c.opt_key(&format!("data.lines[{i}].lot"), l.lot.as_deref());
                c.opt_key(
                    &format!("data.lines[{i}].purchase_order"),
                    l.purchase_order.as_deref(),
                );
                c.opt_key(
                    &format!("data.lines[{i}].package_id"),
                    l.package_id.as_deref(),
                );
                for (j, s) in l.serials.iter().enumerate() {
                    c.key(&format!("data.lines[{i}].serials[{j}]"), s);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::ProductionCompletion;

    fn completion(amount: &str, uom: &str, at: &str) -> MappedEvent {
        MappedEvent {
            site: "PLANT1".into(),
            occurred_at: at.into(),
            source_sequence: None,
            source_transaction: None,
            data: EventData::ProductionCompletion(ProductionCompletion {
                work_order: "WO-1".into(),
                operation: None,
                item: "FG-1".into(),
                lot: None,
                good_quantity: Quantity {
                    amount: amount.into(),
                    uom: uom.into(),
                },
                scrap_quantity: Quantity {
                    amount: "0".into(),
                    uom: "EA".into(),
                },
                location: None,
            }),
        }
    }

    /// What a plugin returns as a date or a key reads as what it is: a signed or longer year
    /// is no RFC 3339 date, a key of zero-width characters is empty, a key with a
    /// right-to-left override reads as another key.
    #[test]
    fn dates_and_keys_are_what_they_look_like() {
        let problems = |check: &dyn Fn(&mut Check<'_>)| {
            let mut errors = Vec::new();
            check(&mut Check {
                index: 0,
                kind: "test",
                errors: &mut errors,
            });
            errors.into_iter().map(|e| e.problem).collect::<Vec<_>>()
        };
        for good in ["2026-01-02", "0001-12-31", "2024-02-29"] {
            assert_eq!(
                problems(&|c| c.date("d", good)),
                Vec::<String>::new(),
                "{good}"
            );
        }
        for bad in [
            "+2026-01-01",
            "-2026-01-01",
            "-0001-12-31",
            "+002026-01-01",
            "2026-02-30",
            "2026-1-02",
        ] {
            assert_eq!(
                problems(&|c| c.date("d", bad)),
                [format!("{bad:?} is not an RFC 3339 date (e.g. 2026-03-02)")],
                "{bad}"
            );
        }
        for good in [
            "LOT-1",
            "Łódź 7",
            "👩\u{200D}🔧 kit",
            "می\u{200C}خواهم",
            "WH1 RCV 01",
        ] {
            assert_eq!(
                problems(&|c| c.key("k", good)),
                Vec::<String>::new(),
                "{good}"
            );
        }
        assert_eq!(
            problems(&|c| c.key("k", "\u{200B}\u{FEFF} ")),
            [
                "\"\\u{200b}\\u{feff} \" has no visible character (only zero-width or format characters)"
            ]
        );
        // A key that reads as another: an invisible character inside it, a space that is not
        // U+0020, a joiner beside ASCII, white space at its ends.
        for (bad, problem) in [
            ("RM\u{200B}-200", "the invisible character U+200B"),
            ("WH1\u{00A0}RCV", "the space U+00A0"),
            ("WH1\u{2009}RCV", "the space U+2009"),
            ("LOT\u{00AD}1", "the invisible character U+00AD"),
            ("A\u{200D}B", "the invisible character U+200D"),
            ("LOT-1\u{E0041}", "the invisible character U+E0041"),
        ] {
            assert_eq!(
                problems(&|c| c.key("k", bad)),
                [format!(
                    "{bad:?} holds {problem}: a key must read as it compares (the mapping should \
                     drop it, or write a space as U+0020)"
                )],
                "{bad}"
            );
        }
        for bad in [" LOT-1", "LOT-1 ", "LOT-1\t"] {
            assert_eq!(
                problems(&|c| c.key("k", bad)),
                [format!(
                    "{bad:?} starts or ends with white space: a key must read as it compares (the \
                     mapping should trim it)"
                )],
                "{bad}"
            );
        }
        assert_eq!(
            problems(&|c| c.key("k", "LOT-\u{202E}1A")),
            [
                "\"LOT-\\u{202e}1A\" holds the bidirectional control U+202E: a key must read as it compares"
            ]
        );
    }

    /// An amount every reader holds exactly: a longer one was published and read as zero by the
    /// projection.
    #[test]
    fn an_amount_has_at_most_28_significant_digits() {
        assert_eq!(significant_digits("0012.500"), 3);
        assert_eq!(significant_digits("-0.000"), 0);
        let longest = format!("{}.{}", "9".repeat(20), "9".repeat(8));
        assert_eq!(
            validate(&[completion(&longest, "KGM", "2026-03-02T06:15:00+01:00")]),
            Ok(())
        );
        let too_long = "9".repeat(29);
        let errors = validate(&[completion(&too_long, "KGM", "2026-03-02T06:15:00+01:00")])
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "data.good_quantity.amount");
        assert!(
            errors[0]
                .problem
                .contains("more than 28 significant digits"),
            "{}",
            errors[0].problem
        );
    }

    #[test]
    fn decimals() {
        for ok in ["0", "12", "12.50", "-3.5", "0.001"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", "1,5", "1e3", ".5", "5.", "--1", "1.2.3", " 1", "NaN"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn good_event_passes() {
        assert_eq!(
            validate(&[completion("12.5", "KGM", "2026-03-02T06:15:00+01:00")]),
            Ok(())
        );
    }

    #[test]
    fn an_event_dated_past_the_clock_allows_is_invalid() {
        let clock = Clock {
            now: OffsetDateTime::parse("2026-12-01T06:00:00Z", &Rfc3339).unwrap(),
            max_ahead: std::time::Duration::from_secs(24 * 3600),
        };
        for ok in [
            "2026-12-01T06:00:00Z",
            "2026-12-02T06:00:00Z",
            "2026-12-02T20:00:00+14:00",
            "1999-12-31T23:59:59Z",
        ] {
            assert_eq!(
                validate_at(&[completion("1", "EA", ok)], clock),
                Ok(()),
                "{ok}"
            );
        }
        for (ahead, span) in [
            ("2026-12-02T06:00:01Z", "24h"),
            ("2099-12-31T00:00:00Z", "26692 days"),
        ] {
            let errors = validate_at(&[completion("1", "EA", ahead)], clock).unwrap_err();
            let text = errors[0].to_string();
            assert!(
                text.starts_with("event 0 (production-completion): occurred_at")
                    && text.contains(&format!(
                        "is {span} after this host's clock (2026-12-01T06:00:00Z)"
                    ))
                    && text.contains("limits.max_ahead (24h)"),
                "{text}"
            );
            assert_eq!(
                validate(&[completion("1", "EA", ahead)]),
                Ok(()),
                "no clock, no rule"
            );
        }
    }

    #[test]
    fn every_broken_rule_is_named() {
        let errors = validate(&[
            completion("12.5", "KGM", "2026-03-02T06:15:00+01:00"),
            completion("-1", "kilo", "yesterday"),
        ])
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("event 1 (production-completion): occurred_at"),
            "{text:?}"
        );
        assert!(
            text[1].contains("data.good_quantity.amount \"-1\" is negative"),
            "{text:?}"
        );
        assert!(
            text[2].contains("data.good_quantity.uom \"kilo\""),
            "{text:?}"
        );
    }
}
