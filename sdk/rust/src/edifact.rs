//! A strict reader for UN/EDIFACT interchanges (`UNA`? `UNB` … `UNZ`).
//!
//! [`parse`] honours the `UNA` service string advice (component separator, element separator,
//! decimal mark, release character, reserved, segment terminator) and defaults to `:+.? '`
//! without one. The release character escapes the next character. It checks every envelope:
//! `UNB`/`UNZ` control references equal and `UNZ` counting the messages (or the groups when `UNG`
//! is used), `UNG`/`UNE` the same, `UNH`/`UNT` references equal and `UNT` counting the message's
//! segments. A missing or wrong trailer, or a truncated interchange, is an [`EdifactError`] that
//! names the segment; there is never a partial result.
//!
//! Tolerated: a UTF-8 byte-order mark, and CR/LF between (or inside) segments: line breaks are not
//! data in EDIFACT, so unescaped ones are dropped.
//!
//! Numbers use the interchange's decimal mark: [`Interchange::decimal`] turns `12,5` into `12.5`
//! when the `UNA` says `,`.

use std::fmt;

use crate::decimal::{self, DecimalError};

/// The delimiters of one interchange, from its `UNA` or the defaults `:+.? '`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    /// Separates the components of a composite element (default `:`).
    pub component: char,
    /// Separates the elements of a segment (default `+`).
    pub element: char,
    /// The decimal mark of numeric values (default `.`).
    pub decimal_mark: char,
    /// Makes the next character literal (default `?`), when the interchange has one.
    pub release: Option<char>,
    /// Ends a segment (default `'`).
    pub segment: char,
}

impl Default for Separators {
    fn default() -> Self {
        Self {
            component: ':',
            element: '+',
            decimal_mark: '.',
            release: Some('?'),
            segment: '\'',
        }
    }
}

/// One segment: its tag and its elements, each a list of components (release characters removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The segment tag, for example `LIN`.
    pub tag: String,
    /// The elements after the tag; each is its list of components.
    pub elements: Vec<Vec<String>>,
    /// The 1-based position of the segment in the interchange (`UNB` is 1; `UNA` is not counted).
    pub position: usize,
    /// The 1-based line of the file the segment starts on.
    pub line: usize,
}

impl Segment {
    /// Returns component `m` of element `n` (both 1-based), or `""` when absent:
    /// in `QTY+12:40:PCE`, `value(1, 2)` is `40`.
    pub fn value(&self, n: usize, m: usize) -> &str {
        n.checked_sub(1)
            .and_then(|i| self.elements.get(i))
            .and_then(|element| m.checked_sub(1).and_then(|j| element.get(j)))
            .map_or("", String::as_str)
    }

    /// Returns the components of element `n` (1-based); empty when absent.
    pub fn element(&self, n: usize) -> &[String] {
        n.checked_sub(1)
            .and_then(|i| self.elements.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// Says where the segment is, for error messages: `segment 12 (QTY) at line 12`.
    pub fn at(&self) -> String {
        format!(
            "segment {} ({}) at line {}",
            self.position, self.tag, self.line
        )
    }
}

/// One message (`UNH` … `UNT`), for example a DESADV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message reference number (`UNH` 0062).
    pub reference: String,
    /// The message type (`UNH` S009 0065), for example `DESADV`.
    pub message_type: String,
    /// The message version (S009 0052), for example `D`.
    pub version: String,
    /// The message release (S009 0054), for example `96A`.
    pub release: String,
    /// The controlling agency (S009 0051), for example `UN`.
    pub agency: String,
    /// The association assigned code (S009 0057), for example `EAN005`, when given.
    pub association: String,
    /// The segments between `UNH` and `UNT` (both excluded).
    pub segments: Vec<Segment>,
    /// The position of the `UNH` segment in the interchange.
    pub position: usize,
    /// The index in [`Interchange::groups`] of the group the message is in, when groups are used.
    pub group: Option<usize>,
}

/// One functional group (`UNG` … `UNE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The message group identification (`UNG` 0038), for example `ORDERS`.
    pub functional_id: String,
    /// The group reference number (`UNG` 0048).
    pub reference: String,
    /// How many messages the group holds.
    pub message_count: usize,
}

/// A checked interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interchange {
    /// The delimiters and decimal mark in force.
    pub separators: Separators,
    /// The syntax identifier (`UNB` S001 0001), for example `UNOC`.
    pub syntax: String,
    /// The syntax version (`UNB` S001 0002), for example `3`.
    pub syntax_version: String,
    /// The sender identification (`UNB` S002 0004).
    pub sender: String,
    /// The sender code qualifier (`UNB` S002 0007), for example `14` for a GLN.
    pub sender_qualifier: String,
    /// The recipient identification (`UNB` S003 0010).
    pub recipient: String,
    /// The preparation date (`UNB` S004 0017, `YYMMDD` or `CCYYMMDD`).
    pub date: String,
    /// The preparation time (`UNB` S004 0019, `HHMM`).
    pub time: String,
    /// The interchange control reference (`UNB` 0020).
    pub control_reference: String,
    /// The functional groups, when the interchange uses `UNG`.
    pub groups: Vec<Group>,
    /// Every message, in order (inside groups or not).
    pub messages: Vec<Message>,
}

impl Interchange {
    /// Reads a numeric value written with this interchange's decimal mark and returns it in the
    /// WIT `decimal` form: `12,5` gives `12.5` when the mark is `,`.
    pub fn decimal(&self, text: &str) -> Result<String, DecimalError> {
        wit_decimal(text, self.separators.decimal_mark)
    }
}

/// Reads `text` written with the decimal mark `mark` and returns the WIT `decimal` form.
pub fn wit_decimal(text: &str, mark: char) -> Result<String, DecimalError> {
    decimal::parse(text, mark).map(decimal::to_wit)
}

/// Why an interchange was refused; says which segment and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdifactError {
    /// Where: `UNA`, or `segment 24 (UNT) at line 24`.
    pub location: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for EdifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

impl std::error::Error for EdifactError {}

fn error(location: impl Into<String>, reason: impl Into<String>) -> EdifactError {
    EdifactError {
        location: location.into(),
        reason: reason.into(),
    }
}

fn at(segment: &Segment, reason: impl Into<String>) -> EdifactError {
    error(segment.at(), reason)
}

/// Reads and checks one EDIFACT interchange.
///
/// The bytes are decoded as UTF-8 when valid, otherwise as Latin-1 (syntax levels A to C are
/// single-byte).
pub fn parse(bytes: &[u8]) -> Result<Interchange, EdifactError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = crate::text::utf8_or_latin1(bytes);
    let chars: Vec<char> = text.chars().collect();
    let start = chars
        .iter()
        .position(|c| !c.is_whitespace())
        .unwrap_or(chars.len());
    let mut line = 1 + chars[..start].iter().filter(|c| **c == '\n').count();
    let mut body = &chars[start..];
    let mut separators = Separators::default();
    if body.starts_with(&['U', 'N', 'A']) {
        let Some(una) = body.get(3..9) else {
            return Err(error(
                "UNA",
                "the service string advice is shorter than its 6 characters",
            ));
        };
        separators = Separators {
            component: una[0],
            element: una[1],
            decimal_mark: una[2],
            release: (una[3] != ' ').then_some(una[3]),
            segment: una[5],
        };
        let distinct = [una[0], una[1], una[5]];
        if distinct[0] == distinct[1] || distinct[0] == distinct[2] || distinct[1] == distinct[2] {
            return Err(error(
                "UNA",
                format!(
                    "the component separator '{}', element separator '{}' and segment terminator \
                     '{}' must all differ",
                    una[0], una[1], una[5]
                ),
            ));
        }
        if separators.decimal_mark != '.' && separators.decimal_mark != ',' {
            return Err(error(
                "UNA",
                format!(
                    "the decimal mark '{}' is neither '.' nor ','",
                    separators.decimal_mark
                ),
            ));
        }
        body = &body[9..];
    }
    let segments = split(body, separators, &mut line)?;
    build(separators, segments)
}

/// Splits the text after the `UNA` into segments, honouring the release character.
fn split(
    chars: &[char],
    separators: Separators,
    line: &mut usize,
) -> Result<Vec<Segment>, EdifactError> {
    let mut segments = Vec::new();
    let mut elements: Vec<Vec<String>> = vec![vec![String::new()]];
    let mut started = false;
    let mut segment_line = *line;
    let mut iter = chars.iter().copied();
    while let Some(c) = iter.next() {
        if c == '\n' {
            *line += 1;
        }
        if c == '\r' || c == '\n' {
            continue;
        }
        if !started {
            segment_line = *line;
            started = true;
        }
        let push = |elements: &mut Vec<Vec<String>>, c: char| {
            if let Some(component) = elements.last_mut().and_then(|e| e.last_mut()) {
                component.push(c);
            }
        };
        if Some(c) == separators.release {
            match iter.next() {
                Some(escaped) => push(&mut elements, escaped),
                None => {
                    return Err(error(
                        format!("segment {} at line {segment_line}", segments.len() + 1),
                        "the interchange ends with a release character: it is truncated",
                    ));
                }
            }
        } else if c == separators.segment {
            let done = std::mem::replace(&mut elements, vec![vec![String::new()]]);
            segments.push(segment(done, segments.len() + 1, segment_line)?);
            started = false;
        } else if c == separators.element {
            elements.push(vec![String::new()]);
        } else if c == separators.component {
            if let Some(element) = elements.last_mut() {
                element.push(String::new());
            }
        } else {
            push(&mut elements, c);
        }
    }
    if started && elements.iter().flatten().any(|c| !c.trim().is_empty()) {
        let tag = elements
            .first()
            .and_then(|e| e.first())
            .cloned()
            .unwrap_or_default();
        return Err(error(
            format!(
                "segment {} ({}) at line {segment_line}",
                segments.len() + 1,
                tag.trim()
            ),
            format!(
                "the segment has no terminator '{}': the interchange is truncated",
                separators.segment
            ),
        ));
    }
    Ok(segments)
}

fn segment(
    mut elements: Vec<Vec<String>>,
    position: usize,
    line: usize,
) -> Result<Segment, EdifactError> {
    let tag = if elements.is_empty() {
        String::new()
    } else {
        elements.remove(0).join(":")
    };
    let tag = tag.trim_start().to_owned();
    let valid = tag.len() == 3 && tag.chars().all(|c| c.is_ascii_uppercase());
    if !valid {
        return Err(error(
            format!("segment {position} at line {line}"),
            format!("'{tag}' is not a segment tag (three capital letters)"),
        ));
    }
    Ok(Segment {
        tag,
        elements,
        position,
        line,
    })
}

fn count(segment: &Segment, n: usize, what: &str) -> Result<usize, EdifactError> {
    let text = segment.value(n, 1).trim();
    text.parse().map_err(|_| {
        at(
            segment,
            format!("element {n} '{text}' is not a {what} count"),
        )
    })
}

fn required<'a>(
    segment: &'a Segment,
    n: usize,
    m: usize,
    what: &str,
) -> Result<&'a str, EdifactError> {
    let value = segment.value(n, m).trim();
    if value.is_empty() {
        return Err(at(segment, format!("the {what} is missing")));
    }
    Ok(value)
}

/// Checks the envelopes and builds the interchange.
fn build(separators: Separators, segments: Vec<Segment>) -> Result<Interchange, EdifactError> {
    let mut iter = segments.into_iter();
    let unb = match iter.next() {
        Some(s) if s.tag == "UNB" => s,
        Some(s) => return Err(at(&s, "the interchange does not start with UNB")),
        None => return Err(error("UNB", "the interchange is empty")),
    };
    let mut interchange = Interchange {
        separators,
        syntax: unb.value(1, 1).to_owned(),
        syntax_version: unb.value(1, 2).to_owned(),
        sender: required(&unb, 2, 1, "sender identification (UNB S002)")?.to_owned(),
        sender_qualifier: unb.value(2, 2).to_owned(),
        recipient: required(&unb, 3, 1, "recipient identification (UNB S003)")?.to_owned(),
        date: unb.value(4, 1).to_owned(),
        time: unb.value(4, 2).to_owned(),
        control_reference: required(&unb, 5, 1, "interchange control reference (UNB 0020)")?
            .to_owned(),
        groups: Vec::new(),
        messages: Vec::new(),
    };
    let mut group: Option<(Group, Segment)> = None;
    let mut message: Option<(Message, Segment)> = None;
    let mut direct_messages = 0;
    let mut last_position = unb.position;
    for segment in iter.by_ref() {
        last_position = segment.position;
        if let Some((current, unh)) = message.as_mut() {
            match segment.tag.as_str() {
                "UNT" => {
                    let declared = count(&segment, 1, "segment")?;
                    let counted = current.segments.len() + 2;
                    if declared != counted {
                        return Err(at(
                            &segment,
                            format!(
                                "UNT counts {declared} segments, message {} has {counted} (UNH to UNT)",
                                current.reference
                            ),
                        ));
                    }
                    if segment.value(2, 1).trim() != current.reference {
                        return Err(at(
                            &segment,
                            format!(
                                "UNT message reference '{}' differs from UNH '{}' ({})",
                                segment.value(2, 1),
                                current.reference,
                                unh.at()
                            ),
                        ));
                    }
                    if let Some((done, _)) = message.take() {
                        match group.as_mut() {
                            Some((g, _)) => g.message_count += 1,
                            None => direct_messages += 1,
                        }
                        interchange.messages.push(done);
                    }
                }
                "UNH" | "UNE" | "UNG" | "UNZ" | "UNB" => {
                    return Err(at(
                        &segment,
                        format!(
                            "{} before the UNT trailer of message {} ({})",
                            segment.tag,
                            current.reference,
                            unh.at()
                        ),
                    ));
                }
                _ => current.segments.push(segment),
            }
            continue;
        }
        match segment.tag.as_str() {
            "UNH" => {
                if !interchange.groups.is_empty() && group.is_none() {
                    return Err(at(
                        &segment,
                        "a message outside a group in an interchange that uses UNG groups",
                    ));
                }
                let reference = required(&segment, 1, 1, "message reference (UNH 0062)")?;
                let message_type = required(&segment, 2, 1, "message type (UNH S009)")?;
                message = Some((
                    Message {
                        reference: reference.to_owned(),
                        message_type: message_type.to_owned(),
                        version: segment.value(2, 2).to_owned(),
                        release: segment.value(2, 3).to_owned(),
                        agency: segment.value(2, 4).to_owned(),
                        association: segment.value(2, 5).to_owned(),
                        segments: Vec::new(),
                        position: segment.position,
                        group: group.as_ref().map(|_| interchange.groups.len()),
                    },
                    segment,
                ));
            }
            "UNG" => {
                if let Some((_, ung)) = &group {
                    return Err(at(
                        &segment,
                        format!(
                            "UNG before the UNE trailer of the group opened at {}",
                            ung.at()
                        ),
                    ));
                }
                if direct_messages > 0 {
                    return Err(at(&segment, "a UNG group after messages outside any group"));
                }
                let reference = required(&segment, 5, 1, "group reference (UNG 0048)")?;
                group = Some((
                    Group {
                        functional_id: segment.value(1, 1).to_owned(),
                        reference: reference.to_owned(),
                        message_count: 0,
                    },
                    segment,
                ));
            }
            "UNE" => {
                let Some((current, ung)) = group.take() else {
                    return Err(at(&segment, "UNE without a UNG group"));
                };
                let declared = count(&segment, 1, "message")?;
                if declared != current.message_count {
                    return Err(at(
                        &segment,
                        format!(
                            "UNE counts {declared} messages, group {} has {}",
                            current.reference, current.message_count
                        ),
                    ));
                }
                if segment.value(2, 1).trim() != current.reference {
                    return Err(at(
                        &segment,
                        format!(
                            "UNE group reference '{}' differs from UNG '{}' ({})",
                            segment.value(2, 1),
                            current.reference,
                            ung.at()
                        ),
                    ));
                }
                interchange.groups.push(current);
            }
            "UNZ" => {
                if let Some((current, ung)) = &group {
                    return Err(at(
                        &segment,
                        format!(
                            "UNZ before the UNE trailer of group {} ({})",
                            current.reference,
                            ung.at()
                        ),
                    ));
                }
                let declared = count(&segment, 1, "message or group")?;
                let (counted, what) = if interchange.groups.is_empty() {
                    (direct_messages, "messages")
                } else {
                    (interchange.groups.len(), "groups")
                };
                if declared != counted {
                    return Err(at(
                        &segment,
                        format!("UNZ counts {declared}, the interchange has {counted} {what}"),
                    ));
                }
                if segment.value(2, 1).trim() != interchange.control_reference {
                    return Err(at(
                        &segment,
                        format!(
                            "UNZ control reference '{}' differs from UNB '{}'",
                            segment.value(2, 1),
                            interchange.control_reference
                        ),
                    ));
                }
                if let Some(extra) = iter.next() {
                    return Err(at(&extra, "segment after the UNZ trailer"));
                }
                return Ok(interchange);
            }
            other => {
                return Err(at(
                    &segment,
                    format!("expected UNH, UNG, UNE or the UNZ trailer, found {other}"),
                ));
            }
        }
    }
    let open = match (&message, &group) {
        (Some((m, unh)), _) => format!("message {} ({}) has no UNT trailer", m.reference, unh.at()),
        (None, Some((g, ung))) => {
            format!("group {} ({}) has no UNE trailer", g.reference, ung.at())
        }
        (None, None) => "there is no UNZ trailer".to_owned(),
    };
    Err(error(
        format!("after segment {last_position}"),
        format!("the interchange ends too early: {open}"),
    ))
}

/// Reads a `DTM` date/time value by its format code (`C507` 2379) into a date and, when the
/// format has one, a time: `102` `CCYYMMDD`, `203` `CCYYMMDDHHMM`, `204` `CCYYMMDDHHMMSS`,
/// `101` `YYMMDD`, `201` `YYMMDDHHMM` (years 00–49 in the 2000s). An empty format means `102`.
pub fn date_time(
    value: &str,
    format: &str,
) -> Result<(crate::timestamp::Date, Option<crate::timestamp::Time>), String> {
    use crate::timestamp::{parse_date, parse_time};
    let value = value.trim();
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{value}' is not a date/time of digits"));
    }
    let century = |yy: &str| if yy < "50" { "20" } else { "19" };
    let (date, time) = match (format.trim(), value.len()) {
        ("102" | "", 8) => (value.to_owned(), None),
        ("203", 12) => (value[..8].to_owned(), Some(&value[8..])),
        ("204", 14) => (value[..8].to_owned(), Some(&value[8..])),
        ("101", 6) => (format!("{}{value}", century(&value[..2])), None),
        ("201", 10) => (
            format!("{}{}", century(&value[..2]), &value[..6]),
            Some(&value[6..]),
        ),
        ("102" | "203" | "204" | "101" | "201" | "", _) => {
            return Err(format!(
                "'{value}' does not have the length of date/time format {}",
                if format.is_empty() { "102" } else { format }
            ));
        }
        (other, _) => return Err(format!("date/time format '{other}' is not supported")),
    };
    let date = parse_date(&date).map_err(|e| e.to_string())?;
    let time = time
        .map(parse_time)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok((date, time))
}

#[cfg(test)]
mod tests;

impl Interchange {
    /// The `source_transaction` of `message`: `UNB` 0020 `:` `UNH` 0062, then the message's own
    /// number (`BGM` C106) when given. See [`crate::edi::source_transaction`].
    pub fn source_transaction(&self, message: &Message, number: Option<&str>) -> String {
        crate::edi::source_transaction(&self.control_reference, &message.reference, number)
    }
}

/// The item number of a line group (`LIN` and the segments after it): from `LIN` 03 and the
/// `PIA` item ids, the one whose type code (e.g. `SA` supplier, `BP` buyer, `EN` EAN) is
/// `qualifier`, or the first one when no qualifier is asked for. An error names the segment.
pub fn line_item(
    segments: &[&Segment],
    qualifier: Option<&str>,
) -> Result<String, crate::MapError> {
    let Some(lin) = segments.first() else {
        return Err(crate::MapError::malformed("an empty LIN group"));
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
        crate::MapError::malformed(match qualifier {
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
pub fn line_batch(segments: &[&Segment]) -> Result<Option<String>, crate::MapError> {
    let mut found: Vec<(String, Segment, &str)> = Vec::new();
    let mut add = |value: &str, segment: &Segment, place: &'static str| {
        let value = value.trim();
        if !value.is_empty() {
            found.push((value.to_owned(), segment.clone(), place));
        }
    };
    for segment in segments {
        match segment.tag.as_str() {
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
        return Err(crate::MapError::malformed(format!(
            "{}: the line names two batches, '{batch}' ({first_place}, {}) and '{other}' ({place}, \
             {}); its quantity cannot be booked to one lot: send one line per batch",
            segments.first().map_or_else(|| first.at(), |lin| lin.at()),
            first.at(),
            segment.at()
        )));
    }
    Ok(Some(batch.clone()))
}
