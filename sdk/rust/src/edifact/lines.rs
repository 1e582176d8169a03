//! What EANCOM messages with item lines (DESADV, RECADV, INVRPT) share: the header before the
//! first line, the line groups, qualified segments, and a line's quantity, batch and serials.

use super::{Interchange, Message, Segment};
use crate::canonical::Quantity;
use crate::{MapError, ResultExt};

/// The first of `segments` with tag `tag` and one of `qualifiers` (its first component), in the
/// order of `qualifiers`: `qualified(&header, "DTM", &["11", "137"])` is the despatch date, else
/// the document date.
pub fn qualified<'a, 'b>(
    segments: &[&'a Segment<'b>],
    tag: &str,
    qualifiers: &[&str],
) -> Option<&'a Segment<'b>> {
    qualifiers.iter().find_map(|qualifier| {
        segments
            .iter()
            .copied()
            .find(|s| s.tag == tag && s.value(1, 1) == *qualifier)
    })
}

/// The `QTY` segment of `qualifier` in a line group (`LIN` and the segments after it); an error
/// names the line and `what` the quantity is ("despatch quantity") when the line has none.
pub fn line_qty<'a, 'b>(
    line: &[&'a Segment<'b>],
    qualifier: &str,
    what: &str,
) -> Result<&'a Segment<'b>, MapError> {
    let Some(lin) = line.first() else {
        return Err(MapError::malformed("an empty LIN group"));
    };
    qualified(line, "QTY", &[qualifier]).ok_or_else(|| {
        MapError::malformed(format!(
            "{}: the line has no {what} (QTY {qualifier})",
            lin.at()
        ))
    })
}

impl<'b> Message<'b> {
    /// The message header: its segments before the first item line (`LIN`) or packaging level
    /// (`CPS`).
    pub fn header(&self) -> Vec<&Segment<'b>> {
        self.segments
            .iter()
            .take_while(|s| s.tag != "CPS" && s.tag != "LIN")
            .collect()
    }

    /// The item lines: each `LIN` with the segments after it, up to the next `LIN`, packaging
    /// level (`CPS`), control total (`CNT`) or section separator (`UNS`). A line that sub-lines
    /// break down is left out ([`Message::split_lines`]): its sub-lines carry its quantity.
    pub fn lines(&self) -> Result<Vec<Vec<&Segment<'b>>>, MapError> {
        let split = self.split_lines()?;
        let mut lines: Vec<Vec<&Segment<'b>>> = Vec::new();
        let mut in_line = false;
        for segment in &self.segments {
            match segment.tag.as_ref() {
                "LIN" if split.contains(segment.value(1, 1).trim()) => in_line = false,
                "LIN" => {
                    lines.push(vec![segment]);
                    in_line = true;
                }
                "CPS" | "CNT" | "UNS" => in_line = false,
                _ if in_line => {
                    if let Some(line) = lines.last_mut() {
                        line.push(segment);
                    }
                }
                _ => {}
            }
        }
        Ok(lines)
    }

    /// The line numbers (`LIN` 1082) of the lines that sub-lines break down. A sub-line is a
    /// `LIN` whose C829 says `1` (sub-line information) and names its parent line: a batch split
    /// (`LIN+1++4000862141404:SRV'QTY+12:100'` then `LIN+2++4000862141404:SRV+1:1'QTY+12:60'`
    /// and `LIN+3++…+1:1'QTY+12:40'`) ships 100, not 200, so the parent's own quantity must
    /// not count beside its sub-lines'. A sub-line of another item than its parent (a
    /// configured item and its components) is `unsupported-document`: which of them is stock
    /// is the partner's convention, and guessing it would count goods twice or not at all. A
    /// sub-line of a line the message does not have before it is `malformed-input`.
    pub fn split_lines(&self) -> Result<std::collections::BTreeSet<&str>, MapError> {
        let mut items: std::collections::BTreeMap<&str, &str> = Default::default();
        let mut split = std::collections::BTreeSet::new();
        for lin in self.segments.iter().filter(|s| s.tag == "LIN") {
            let (number, item) = (lin.value(1, 1).trim(), lin.value(3, 1).trim());
            if lin.value(4, 1).trim() == "1" {
                let parent = lin.value(4, 2).trim();
                let Some(parent_item) = items.get(parent) else {
                    return Err(MapError::malformed(format!(
                        "{}: line {number} is a sub-line of line '{parent}', which the message \
                         does not have before it",
                        lin.at()
                    )));
                };
                if !item.is_empty() && !parent_item.is_empty() && item != *parent_item {
                    return Err(MapError::unsupported(format!(
                        "{}: line {number} (item {item}) is a sub-line of line {parent} (item \
                         {parent_item}): a configured item with its components is not mapped; \
                         sub-lines are read only as a split of their parent's item (by batch, \
                         for example)",
                        lin.at()
                    )));
                }
                split.insert(parent);
            }
            items.insert(number, item);
        }
        Ok(split)
    }

    /// The beginning of message (`BGM`) in `header`; an error names the message when there is
    /// none.
    pub fn beginning<'a>(&self, header: &[&'a Segment<'b>]) -> Result<&'a Segment<'b>, MapError> {
        header
            .iter()
            .copied()
            .find(|s| s.tag == "BGM")
            .ok_or_else(|| {
                MapError::malformed(format!(
                    "message {} (segment {}): there is no BGM segment",
                    self.reference, self.position
                ))
            })
    }
}

/// Refuses a message whose function (`BGM` 1225) withdraws what was sent before: `1`
/// cancellation, `3` deletion. Mapping it would publish the withdrawn data as live (a receipt, a
/// stock balance, a despatch), and no canonical event says "withdrawn", so it is an
/// `unsupported-document` error naming the function; `what` names the message ("the receiving
/// advice").
pub fn refuse_withdrawn(bgm: &Segment<'_>, what: &str) -> Result<(), MapError> {
    let function = match bgm.value(3, 1).trim() {
        "1" => "a cancellation (1)",
        "3" => "a deletion (3)",
        _ => return Ok(()),
    };
    Err(MapError::unsupported(format!(
        "{}, BGM 1225: {what} is {function}; it withdraws what was sent before, which no \
         canonical event can say, so it is not mapped",
        bgm.at()
    )))
}

impl<'b> Interchange<'b> {
    /// The messages, each checked to be of `message_type` (`DESADV`); one of another type is an
    /// `unsupported-document` error that says it is not `what` ("a DESADV despatch advice").
    pub fn messages_of<'a>(
        &'a self,
        message_type: &'a str,
        what: &'a str,
    ) -> impl Iterator<Item = Result<&'a Message<'b>, MapError>> + 'a {
        self.messages.iter().map(move |message| {
            if message.message_type == message_type {
                Ok(message)
            } else {
                Err(MapError::unsupported(format!(
                    "message {} (segment {}) is an {} message, not {what}",
                    message.reference, message.position, message.message_type
                )))
            }
        })
    }

    /// The quantity of a `QTY` segment (`QTY+12:40:PCE`): its amount in this interchange's
    /// decimal mark, and its UN/ECE Recommendation 20 unit, `PCE` when none is given (EANCOM
    /// counts pieces then). An error names the segment and its qualifier.
    pub fn quantity(&self, qty: &Segment<'_>) -> Result<Quantity, MapError> {
        self.read_quantity(qty, false)
    }

    /// [`Interchange::quantity`] of stock, which cannot be negative: a negative amount is an
    /// error.
    pub fn stock_quantity(&self, qty: &Segment<'_>) -> Result<Quantity, MapError> {
        self.read_quantity(qty, true)
    }

    fn read_quantity(&self, qty: &Segment<'_>, not_negative: bool) -> Result<Quantity, MapError> {
        let qualifier = qty.value(1, 1);
        let amount = self
            .decimal(qty.value(1, 2))
            .malformed_at(format!("{}, QTY {qualifier} quantity", qty.at()))?;
        if not_negative && amount.starts_with('-') {
            return Err(MapError::malformed(format!(
                "{}, QTY {qualifier} quantity: '{}' is negative",
                qty.at(),
                qty.value(1, 2)
            )));
        }
        let uom = match qty.value(1, 3).trim() {
            "" => "PCE",
            unit if (1..=3).contains(&unit.len())
                && unit
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
            {
                unit
            }
            unit => {
                return Err(MapError::malformed(format!(
                    "{}, QTY {qualifier} unit: '{unit}' is not a UN/ECE Recommendation 20 code",
                    qty.at()
                )));
            }
        };
        Ok(Quantity::new(amount, uom))
    }
}

/// The item number of a line group (`LIN` and the segments after it): from `LIN` 03 and the
/// `PIA` item ids, the one whose type code (e.g. `SA` supplier, `BP` buyer, `EN` EAN) is
/// `qualifier`, or the first one when no qualifier is asked for. An error names the segment.
pub fn line_item(segments: &[&Segment<'_>], qualifier: Option<&str>) -> Result<String, MapError> {
    let Some(lin) = segments.first() else {
        return Err(MapError::malformed("an empty LIN group"));
    };
    let mut ids: Vec<(&str, &str)> = Vec::new();
    if !lin.value(3, 1).trim().is_empty() {
        ids.push((lin.value(3, 2), lin.value(3, 1).trim()));
    }
    for pia in segments.iter().filter(|s| s.tag == "PIA") {
        for n in 2..=6 {
            // A batch or serial number in a PIA names the units, not the item.
            if NOT_ITEM_IDS.contains(&pia.value(n, 2)) {
                continue;
            }
            if !pia.value(n, 1).trim().is_empty() {
                ids.push((pia.value(n, 2), pia.value(n, 1).trim()));
            }
        }
    }
    let found = match qualifier {
        Some(q) => ids.iter().find(|(k, _)| *k == q),
        None => ids.first(),
    };
    found.map(|(_, id)| (*id).to_owned()).ok_or_else(|| {
        MapError::malformed(match qualifier {
            Some(q) => format!(
                "{}: the line has no item number with qualifier '{q}' (route config item-qualifier)",
                lin.at()
            ),
            None => format!("{}: the line has no item number", lin.at()),
        })
    })
}

/// `PIA` item number types (7143) that are not item numbers: batch (`NB`) and serial (`SN`).
const NOT_ITEM_IDS: [&str; 2] = ["NB", "SN"];

/// The batch (lot) number of a line group (`LIN` and the segments after it), read from every
/// place EANCOM and partners put it: `GIN+BX` (batch identity numbers), the marks of a `PCI+36E`
/// (marked with batch number), `RFF+BT` (batch number reference), `GIR` identity numbers
/// qualified `BX`, and `PIA` item numbers of type `NB`. `None` when the line names no batch.
///
/// A line naming two different batches is an error: its quantity cannot be given to one lot,
/// and picking one would book stock to the wrong lot. Split such lines per batch.
pub fn line_batch(segments: &[&Segment<'_>]) -> Result<Option<String>, MapError> {
    let mut found: Vec<(&str, &Segment<'_>, &str)> = Vec::new();
    let mut add = |value, segment, place| {
        let value: &str = str::trim(value);
        if !value.is_empty() {
            found.push((value, segment, place));
        }
    };
    for &segment in segments {
        match segment.tag.as_ref() {
            "GIN" if segment.value(1, 1) == "BX" => {
                for n in 2..=6 {
                    add(segment.value(n, 1), segment, "GIN BX");
                }
            }
            "PCI" if segment.value(1, 1) == "36E" => {
                for m in 1..=10 {
                    add(segment.value(2, m), segment, "PCI 36E marks");
                }
            }
            "RFF" if segment.value(1, 1) == "BT" => add(segment.value(1, 2), segment, "RFF BT"),
            "GIR" => {
                for n in 2..=6 {
                    if segment.value(n, 2) == "BX" {
                        add(segment.value(n, 1), segment, "GIR BX");
                    }
                }
            }
            "PIA" => {
                for n in 2..=6 {
                    if segment.value(n, 2) == "NB" {
                        add(segment.value(n, 1), segment, "PIA NB");
                    }
                }
            }
            _ => {}
        }
    }
    let Some((batch, first, first_place)) = found.first() else {
        return Ok(None);
    };
    if let Some((other, segment, place)) = found.iter().find(|(b, _, _)| b != batch) {
        return Err(MapError::malformed(format!(
            "{}: the line names two batches, '{batch}' ({first_place}, {}) and '{other}' ({place}, \
             {}); its quantity cannot be booked to one lot: send one line per batch",
            segments.first().map_or_else(|| first.at(), |lin| lin.at()),
            first.at(),
            segment.at()
        )));
    }
    Ok(Some((*batch).to_owned()))
}

/// Most serial numbers one `GIN+BN` range may stand for.
const MAX_SERIAL_RANGE: u64 = 1000;

/// The serial numbers of a line group: the identity numbers of its `GIN+BN` segments. A
/// composite with two numbers (C208 `SN0001:SN0010`) is a range, first to last (EANCOM), and
/// stands for every number in it when both share a prefix and a numeric tail of one width, up
/// to 1,000 numbers; another range is an error naming it, never its first number alone.
pub fn line_serials(segments: &[&Segment<'_>]) -> Result<Vec<String>, MapError> {
    let mut serials = Vec::new();
    for gin in segments
        .iter()
        .filter(|s| s.tag == "GIN" && s.value(1, 1) == "BN")
    {
        for n in 2..=6 {
            let (first, last) = (gin.value(n, 1).trim(), gin.value(n, 2).trim());
            if first.is_empty() {
                continue;
            }
            if last.is_empty() || last == first {
                serials.push(first.to_owned());
                continue;
            }
            let range = serial_range(first, last).ok_or_else(|| {
                MapError::malformed(format!(
                    "{}: the serial number range '{first}' to '{last}' cannot be listed: its ends \
                     must share a prefix and a numeric tail of one width, first to last, at most \
                     {MAX_SERIAL_RANGE} numbers",
                    gin.at()
                ))
            })?;
            serials.extend(range);
        }
    }
    Ok(serials)
}

/// The numbers from `first` to `last`, when they are `<prefix><digits>` with one prefix and one
/// width, in order and at most [`MAX_SERIAL_RANGE`] of them.
fn serial_range(first: &str, last: &str) -> Option<Vec<String>> {
    let ((prefix, from), (other, to)) = (digits_tail(first), digits_tail(last));
    if prefix != other || from.is_empty() || from.len() != to.len() || from.len() > 18 {
        return None;
    }
    let (from, to): (u64, u64) = (from.parse().ok()?, to.parse().ok()?);
    if to < from || to - from >= MAX_SERIAL_RANGE {
        return None;
    }
    let width = first.len() - prefix.len();
    Some(
        (from..=to)
            .map(|n| format!("{prefix}{n:0width$}"))
            .collect(),
    )
}

/// `text` split before its trailing ASCII digits.
fn digits_tail(text: &str) -> (&str, &str) {
    let tail = text.len() - text.bytes().rev().take_while(u8::is_ascii_digit).count();
    text.split_at(tail)
}
