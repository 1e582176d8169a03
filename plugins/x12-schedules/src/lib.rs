//! millrace mapping plugin for X12 delivery schedules: 830 planning schedules and 862 shipping
//! schedules.
//!
//! Every `LIN` item loop becomes one canonical `supplier-commitment` with its `FST` buckets, at
//! the site its ship-to is mapped to (else the route's). The
//! field mapping and the route configuration keys are documented in this plugin's README.md.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use millrace_sdk::canonical::{CommitmentLevel, ScheduleBucket, SupplierCommitment};
use millrace_sdk::prelude::*;
use millrace_sdk::timestamp::Date;
use millrace_sdk::x12::{self, Group, Interchange, Segment, TransactionSet};

fn map(msg: RawMessage) -> Result<Vec<CanonicalEvent>, MapError> {
    let route = edi::Route::load()?;
    let item_qualifier = route.item_qualifier.as_deref();
    let mut events = Vec::new();
    // A file may batch several interchanges; each is mapped as if it came alone.
    for interchange in x12::parse_all(&msg.payload)? {
        route.admit(interchange.is_test(), "ISA15 is T")?;
        for (group, set) in interchange.transaction_sets() {
            if set.id != "830" && set.id != "862" {
                return Err(MapError::unsupported(format!(
                    "transaction set {} {} (segment {}) is neither an 830 planning schedule nor an 862 shipping schedule",
                    set.id, set.control_number, set.position
                )));
            }
            let schedule = Schedule::read(group, set, &route.utc_offset_text)?;
            check_summary(set)?;
            // The envelope identity, then the schedule's own reference (BFR02 / BSS02).
            let transaction = interchange.source_transaction(set, schedule.number);
            let commitments =
                schedule.commitments(&interchange, set, item_qualifier, &route.site)?;
            for (site, commitment) in commitments {
                events.push(
                    CanonicalEvent::new(site, &schedule.issued_at, commitment)
                        .with_transaction(&transaction),
                );
            }
        }
    }
    edi::mapped(events, "schedule with a LIN item")
}

/// Segments that exist only inside a `LIN` item loop of the 830 and 862 (the item's unit, its
/// buckets and their details, resource authorisations, cumulatives), never in the header.
const LOOP_ONLY: &[&str] = &[
    "UIT", "PO3", "PO4", "PRS", "SLN", "QTY", "SDP", "FST", "SDQ", "JIT", "ATH", "SHP",
];

/// The header facts of one schedule.
struct Schedule<'a> {
    /// The schedule's own reference (`BFR02` / `BSS02`), or its release number (`BFR03`).
    number: Option<&'a str>,
    issued_at: String,
    purchase_order: Option<String>,
    header: Vec<&'a Segment<'a>>,
}

impl<'a> Schedule<'a> {
    fn read(group: &Group, set: &'a TransactionSet<'a>, offset: &str) -> Result<Self, MapError> {
        let header: Vec<&Segment> = set.segments.iter().take_while(|s| s.id != "LIN").collect();
        // A segment of the item loop before the first LIN belongs to no item: its buckets,
        // unit or cumulative would be dropped.
        if let Some(stray) = header.iter().find(|s| LOOP_ONLY.contains(&s.id.as_ref())) {
            return Err(MapError::malformed(format!(
                "{}: {} comes before the first LIN; it belongs to a LIN item loop, so no item \
                 would take it and it would be dropped (the set's segments are out of order)",
                stray.at(),
                stray.id
            )));
        }
        let (begin, date_element, po_element) = if set.id == "830" {
            ("BFR", 8, 11)
        } else {
            ("BSS", 3, 10)
        };
        let head = set.beginning(begin, header.iter().copied())?;
        // BFR01/BSS01, the purpose: a cancellation or deletion withdraws a schedule, which a
        // commitment event cannot say; mapping it would publish the withdrawn demand as live.
        x12::refuse_withdrawn(head, 1, "the schedule")?;
        // BFR05 / BSS11, what the quantities are: actual discrete ones are buckets; cumulative
        // (C) or net change (D) quantities read as buckets would count demand several times.
        let quantities = if set.id == "830" { 5 } else { 11 };
        // BFR05 is mandatory in the 830 (BSS11 is optional in the 862, and absent it means
        // actual quantities): a blank one leaves the buckets' meaning unknown, so no reading of
        // them is safe.
        if set.id == "830" && head.trimmed(quantities).is_empty() {
            return Err(MapError::malformed(format!(
                "{}, BFR05: the schedule quantity qualifier is missing; it is mandatory in an 830 \
                 and says whether the FST quantities are actual (A), cumulative (C) or net \
                 change (D): ask the partner to send it (A for discrete buckets)",
                head.at()
            )));
        }
        if !matches!(head.trimmed(quantities), "" | "A") {
            return Err(MapError::unsupported(format!(
                "{}, {begin}{quantities:02}: schedule quantity qualifier '{}' is not A (actual \
                 discrete quantities), the only quantities read as buckets (C cumulative and D \
                 net change would count demand again)",
                head.at(),
                head.trimmed(quantities)
            )));
        }
        let date = head.trimmed(date_element);
        // The schedule is issued on its own date; the group's time is used when it was sent the
        // same day, else midnight. The day is compared as a date: BFR08 may be written YYMMDD
        // while GS04 is CCYYMMDD (`260714` and `20260714` are one day).
        let same_day = match (x12::date(date), x12::date(&group.date)) {
            (Ok(issued), Ok(sent)) => issued == sent,
            _ => false,
        };
        let time = if same_day { group.time.as_ref() } else { "" };
        let issued_at = x12::timestamp(date, time, offset).malformed_at(format!(
            "{}, {begin}{date_element:02} schedule date",
            head.at()
        ))?;
        let purchase_order = Some(head.trimmed(po_element))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let number = [2, 3]
            .iter()
            .map(|n| head.trimmed(*n))
            .find(|n| !n.is_empty());
        Ok(Self {
            number,
            issued_at,
            purchase_order,
            header,
        })
    }

    fn commitments(
        &self,
        interchange: &Interchange,
        set: &TransactionSet,
        item_qualifier: Option<&str>,
        route_site: &str,
    ) -> Result<Vec<(String, SupplierCommitment)>, MapError> {
        let mut loops: Vec<Vec<&Segment>> = Vec::new();
        let mut summary: Option<&Segment> = None;
        for segment in set.segments.iter().skip(self.header.len()) {
            // The CTT summary ends the set (SE follows): what comes after it would be dropped,
            // a LIN loop with its demand above all.
            if let Some(ctt) = summary {
                return Err(MapError::malformed(format!(
                    "{}: {} follows the CTT summary ({}); a schedule ends with CTT, so it would \
                     be dropped (the set's segments are out of order)",
                    segment.at(),
                    segment.id,
                    ctt.at()
                )));
            }
            if segment.id == "LIN" {
                loops.push(vec![segment]);
            } else if segment.id == "CTT" {
                summary = Some(segment);
            } else if let Some(current) = loops.last_mut() {
                current.push(segment);
            }
        }
        let header_supplier = supplier(&self.header)?;
        // A party named twice with different ids is refused, never the first one taken.
        let header_ship_to = x12::agreed_party(self.header.iter().copied(), &["ST"])?;
        // Each commitment with its site, its ship-to and where its loop starts.
        let mut commitments: Vec<(String, Option<String>, SupplierCommitment, String)> = Vec::new();
        for segments in &loops {
            let commitment = self.commitment(
                segments,
                header_supplier.as_deref(),
                interchange,
                item_qualifier,
            )?;
            let ship_to = x12::agreed_party(segments.iter().copied(), &["ST"])?
                .or_else(|| header_ship_to.clone());
            let site = ship_to
                .as_deref()
                .and_then(|id| config::get(&format!("ship-to.{id}")))
                .map(|site| site.trim().to_owned())
                .filter(|site| !site.is_empty())
                .unwrap_or_else(|| route_site.to_owned());
            let at = segments.first().map(|lin| lin.at()).unwrap_or_default();
            // The projection keeps one schedule per site, supplier and item, the newer
            // replacing the older: two in one document would lose one.
            if let Some((_, other, _, first_at)) = commitments.iter().find(|(s, _, c, _)| {
                *s == site && c.supplier == commitment.supplier && c.item == commitment.item
            }) {
                let ship_tos = match (other, &ship_to) {
                    (Some(a), Some(b)) if a != b => format!(
                        " for ship-to {a} and {b}: map each to its site with route config \
                         'ship-to.<id>'"
                    ),
                    _ => String::new(),
                };
                return Err(MapError::malformed(format!(
                    "{at}: item {} of supplier {} is scheduled at site {site} again (first at \
                     {first_at}){ship_tos}; one schedule per site, supplier and item is kept, so \
                     the second would replace the first",
                    commitment.item, commitment.supplier
                )));
            }
            commitments.push((site, ship_to, commitment, at));
        }
        Ok(commitments
            .into_iter()
            .map(|(site, _, commitment, _)| (site, commitment))
            .collect())
    }

    fn commitment(
        &self,
        segments: &[&Segment],
        header_supplier: Option<&str>,
        interchange: &Interchange,
        item_qualifier: Option<&str>,
    ) -> Result<SupplierCommitment, MapError> {
        let Some(lin) = segments.first() else {
            return Err(MapError::malformed("an empty LIN loop".to_owned()));
        };
        let item = item(lin, item_qualifier)?;
        let pairs = lin.pairs(2);
        let purchase_order = pairs
            .iter()
            .find(|(q, _)| *q == "PO" || *q == "ON")
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| self.purchase_order.clone());
        let uit = segments.iter().find(|s| s.id == "UIT").ok_or_else(|| {
            MapError::malformed(format!(
                "{}: the item loop has no UIT segment giving its unit of measure",
                lin.at()
            ))
        })?;
        let unit_code = uit.component(1, 1);
        let uom = x12::unit_to_rec20(unit_code).ok_or_else(|| {
            MapError::malformed(format!(
                "{}, UIT01 unit: '{unit_code}' is not a known X12 unit of measure",
                uit.at()
            ))
        })?;
        let supplier = supplier(segments)?
            .or_else(|| header_supplier.map(str::to_owned))
            // A schedule is sent by the buyer to the supplier: the receiver is the supplier.
            .unwrap_or_else(|| interchange.receiver.to_string());
        let mut sent = Vec::new();
        for fst in segments.iter().filter(|s| s.id == "FST") {
            sent.push((fst.at(), bucket(fst, uom)?));
        }
        let overlapping = overlaps(&sent);
        if !overlapping.is_empty() {
            log::warn(
                "buckets of one item overlap: each is published as sent, so a sum over the \
                 overlapped days counts their demand twice (read them by level, see the README)",
                &[("item", &item), ("overlaps", &overlapping.join("; "))],
            );
        }
        let mut buckets: Vec<ScheduleBucket> = sent.into_iter().map(|(_, b)| b).collect();
        buckets.sort_by(|a, b| a.date.cmp(&b.date));
        // The cumulative the buyer received (050) before one counted from a start (051) or
        // shipped (011): a schedule may send several.
        let cumulatives = || {
            segments
                .iter()
                .filter(|s| s.id == "SHP" && s.trimmed(1) == "02")
        };
        let cumulative_received = ["050", "051"]
            .iter()
            .find_map(|q| cumulatives().find(|s| s.trimmed(3) == *q))
            .or_else(|| cumulatives().next())
            .map(|shp| {
                let amount = decimal::parse(shp.element(2), '.')
                    .malformed_at(format!("{}, SHP02 cumulative quantity", shp.at()))?;
                if amount.is_sign_negative() && !amount.is_zero() {
                    return Err(MapError::malformed(format!(
                        "{}, SHP02 cumulative quantity: '{}' is negative; a cumulative received \
                         quantity counts what arrived",
                        shp.at(),
                        shp.trimmed(2)
                    )));
                }
                Ok(decimal::quantity(amount, uom))
            })
            .transpose()?;
        Ok(SupplierCommitment {
            supplier,
            item,
            purchase_order,
            buckets,
            cumulative_received,
        })
    }
}

/// The item of a `LIN`: the id with the route's `item-qualifier`, else the buyer's part number
/// (`BP`, then `IN`), else the vendor's (`VP`), else the first id that names the item
/// ([`x12::is_item_qualifier`]). A qualifier without its id (or an id without its qualifier) is
/// refused: skipping it would take another party's number as the item.
fn item(lin: &Segment, item_qualifier: Option<&str>) -> Result<String, MapError> {
    let elements: Vec<&str> = lin.elements().skip(1).collect();
    for (index, pair) in elements.chunks(2).enumerate() {
        let qualifier = pair[0].trim();
        let id = pair.get(1).map_or("", |id| id.trim());
        let n = 2 * index + 2;
        let missing = match (qualifier.is_empty(), id.is_empty()) {
            (false, true) => format!("qualifier '{qualifier}' has no product id"),
            (true, false) => format!("product id '{id}' has no qualifier"),
            _ => continue,
        };
        return Err(MapError::malformed(format!(
            "{}, LIN{n:02}/LIN{:02}: {missing}; X12 sends both or neither, and with one missing \
             the item cannot be told (another id of the LIN would be taken as the item)",
            lin.at(),
            n + 1
        )));
    }
    let ranked: Vec<&str> = item_qualifier
        .into_iter()
        .chain(["BP", "IN", "VP"])
        .collect();
    lin.pair_value(2, &ranked)
        .or_else(|| {
            lin.pairs(2)
                .into_iter()
                .find(|(q, _)| x12::is_item_qualifier(q))
                .map(|(_, v)| v.to_owned())
        })
        .ok_or_else(|| MapError::malformed(format!("{}: LIN has no product id", lin.at())))
}

/// The buckets, by their `FST` segment, whose days overlap another's (a bucket without an end is
/// its one day), each described for the warning, in the order sent. One sweep in date order: a
/// bucket overlaps an earlier-starting one exactly when it starts by the latest end so far, and
/// then it overlaps the bucket with that end too.
fn overlaps(buckets: &[(String, ScheduleBucket)]) -> Vec<String> {
    fn span(b: &ScheduleBucket) -> (&str, &str) {
        (&b.date, b.end_date.as_deref().unwrap_or(&b.date))
    }
    let mut order: Vec<usize> = (0..buckets.len()).collect();
    order.sort_by_key(|&i| span(&buckets[i].1).0);
    let mut overlapping = vec![false; buckets.len()];
    let mut latest: Option<(usize, &str)> = None;
    for i in order {
        let (start, end) = span(&buckets[i].1);
        if let Some((j, latest_end)) = latest {
            if start <= latest_end {
                overlapping[i] = true;
                overlapping[j] = true;
            }
            if end <= latest_end {
                continue;
            }
        }
        latest = Some((i, end));
    }
    buckets
        .iter()
        .zip(overlapping)
        .filter(|(_, overlapping)| *overlapping)
        .map(|((at, bucket), _)| {
            let (start, end) = span(bucket);
            let level = match bucket.level {
                CommitmentLevel::Firm => "firm",
                CommitmentLevel::Forecast => "forecast",
            };
            format!("{at} ({start}..{end}, {level} {})", bucket.quantity.amount)
        })
        .collect()
}

/// The supplier among `N1` parties: `SU` supplier, `SF` ship from or `VN` vendor, by its id
/// (`N104`) or else its name; one of them named twice with different ids is an error.
fn supplier(segments: &[&Segment]) -> Result<Option<String>, MapError> {
    x12::agreed_party(segments.iter().copied(), &["SU", "SF", "VN"])
}

fn bucket(fst: &Segment, uom: &str) -> Result<ScheduleBucket, MapError> {
    let amount = decimal::parse(fst.element(1), '.')
        .malformed_at(format!("{}, FST01 quantity", fst.at()))?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(MapError::malformed(format!(
            "{}, FST01 quantity: '{}' is negative; a schedule's bucket is a quantity to deliver",
            fst.at(),
            fst.trimmed(1)
        )));
    }
    let level = match fst.trimmed(2) {
        "A" | "C" => CommitmentLevel::Firm,
        "B" | "D" => CommitmentLevel::Forecast,
        other => {
            return Err(MapError::unsupported(format!(
                "{}, FST02: forecast qualifier '{other}' is neither firm (A immediate, C firm) nor \
                 forecast (B pilot/prototype, D planning)",
                fst.at()
            )));
        }
    };
    let start = x12::date(fst.element(4)).malformed_at(format!("{}, FST04 date", fst.at()))?;
    let end = if fst.trimmed(5).is_empty() {
        None
    } else {
        Some(x12::date(fst.element(5)).malformed_at(format!("{}, FST05 end date", fst.at()))?)
    };
    let end = match (fst.trimmed(3), end) {
        ("D", _) => None,
        ("F", None) => {
            return Err(MapError::malformed(format!(
                "{}: a flexible-interval bucket (FST03 F) needs an end date in FST05",
                fst.at()
            )));
        }
        ("Z", None) => {
            return Err(MapError::malformed(format!(
                "{}: a mutually defined bucket (FST03 Z) needs an end date in FST05",
                fst.at()
            )));
        }
        ("W", end) => Some(interval_end(
            fst,
            "a weekly",
            start,
            days_after(start, 6),
            end,
        )),
        ("M", end) => Some(interval_end(
            fst,
            "a monthly",
            start,
            last_of_month(start),
            end,
        )),
        ("Q", end) => Some(interval_end(
            fst,
            "a quarterly",
            start,
            last_of_quarter(start),
            end,
        )),
        ("F" | "Z", end) => end,
        (other, _) => {
            return Err(MapError::unsupported(format!(
                "{}, FST03: timing qualifier '{other}' is not D, W, M, Q, F or Z",
                fst.at()
            )));
        }
    };
    if end.is_some_and(|e| e < start) {
        return Err(MapError::malformed(format!(
            "{}: the bucket ends (FST05) before it starts (FST04)",
            fst.at()
        )));
    }
    Ok(ScheduleBucket {
        date: timestamp::full_date(start),
        end_date: end.map(timestamp::full_date),
        quantity: decimal::quantity(amount, uom),
        level,
    })
}

/// The end of a weekly, monthly or quarterly bucket: the `FST05` sent with it, else the
/// interval's. One that ends the bucket elsewhere than the interval does (a work week to the
/// Friday, a week squeezed into a day) is the partner's explicit date and kept as sent, with a
/// warning that it contradicts `FST03`: refusing would stop a partner's whole schedule over a
/// reading either way of its own dates.
fn interval_end(
    fst: &Segment,
    interval: &str,
    start: Date,
    natural: Date,
    sent: Option<Date>,
) -> Date {
    match sent {
        Some(end) if end != natural => {
            log::warn(
                "a bucket's FST05 end is not its interval's: kept as sent (a bucket of its own \
                 length is sent as FST03 F)",
                &[
                    ("segment", &fst.at()),
                    (
                        "interval",
                        &format!("{interval} (FST03 {})", fst.trimmed(3)),
                    ),
                    ("start", &timestamp::full_date(start)),
                    ("end_sent", &timestamp::full_date(end)),
                    ("interval_end", &timestamp::full_date(natural)),
                ],
            );
            end
        }
        _ => natural,
    }
}

fn days_after(date: Date, days: usize) -> Date {
    (0..days).fold(date, |day, _| day.next_day().unwrap_or(day))
}

/// The last day of the calendar quarter `date` is in.
fn last_of_quarter(date: Date) -> Date {
    let quarter = |day: Date| (day.year(), (u8::from(day.month()) - 1) / 3);
    let mut last = date;
    while let Some(next) = last.next_day() {
        if quarter(next) != quarter(date) {
            break;
        }
        last = next;
    }
    last
}

fn last_of_month(date: Date) -> Date {
    let mut last = date;
    while let Some(next) = last.next_day() {
        if next.month() != date.month() {
            break;
        }
        last = next;
    }
    last
}

millrace_sdk::export_mapper!(map);

/// Checks a set's `CTT` summary, when it has one. `CTT01` must count its `LIN` loops: a loop
/// dropped or added on the way is refused. `CTT02`, the hash total, is the `FST01` quantities'
/// by the standard's note, but partners' translators total other things (the Seeburger 862 of
/// edifact-rails sends 5 for quantities of 158): a hash total that differs is logged, and the
/// schedule mapped as its segments say.
fn check_summary(set: &x12::TransactionSet<'_>) -> Result<(), MapError> {
    let Some(ctt) = set.segments.iter().find(|s| s.is("CTT")) else {
        return Ok(());
    };
    let loops = set.segments.iter().filter(|s| s.is("LIN")).count();
    let declared = ctt.trimmed(1);
    if !declared.is_empty() && declared.parse::<usize>().ok() != Some(loops) {
        return Err(MapError::malformed(format!(
            "{}: CTT01 counts {declared} LIN lines, the transaction set has {loops}",
            ctt.at()
        )));
    }
    if let Err(hash) = x12::check_totals(set, "LIN", set.segments.iter().filter(|s| s.is("FST")), 1)
    {
        log::warn(
            "the CTT02 hash total is not the FST01 quantities': mapped as the FST segments say",
            &[("detail", &hash.to_string())],
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_sdk::canonical::Quantity;

    fn bucket(date: &str, end: Option<&str>, level: CommitmentLevel) -> ScheduleBucket {
        ScheduleBucket {
            date: date.to_owned(),
            end_date: end.map(str::to_owned),
            quantity: Quantity {
                amount: "1".to_owned(),
                uom: "EA".to_owned(),
            },
            level,
        }
    }

    #[test]
    fn overlapping_buckets_are_named_once_each_in_the_order_sent() {
        let sent = [
            (
                "week".to_owned(),
                bucket("2026-07-20", Some("2026-07-26"), CommitmentLevel::Firm),
            ),
            (
                "next-day".to_owned(),
                bucket("2026-07-27", None, CommitmentLevel::Firm),
            ),
            (
                "month".to_owned(),
                bucket("2026-07-01", Some("2026-07-31"), CommitmentLevel::Forecast),
            ),
            (
                "august".to_owned(),
                bucket("2026-08-01", None, CommitmentLevel::Forecast),
            ),
        ];
        let named = overlaps(&sent);
        assert_eq!(
            named,
            [
                "week (2026-07-20..2026-07-26, firm 1)",
                "next-day (2026-07-27..2026-07-27, firm 1)",
                "month (2026-07-01..2026-07-31, forecast 1)",
            ]
        );
    }

    #[test]
    fn consecutive_buckets_do_not_overlap() {
        let sent = [
            (
                "a".to_owned(),
                bucket("2026-07-20", Some("2026-07-26"), CommitmentLevel::Firm),
            ),
            (
                "b".to_owned(),
                bucket("2026-07-27", Some("2026-08-02"), CommitmentLevel::Forecast),
            ),
        ];
        assert!(overlaps(&sent).is_empty());
    }
}
