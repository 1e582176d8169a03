//! X12: reads the interchange envelope (ISA/GS/ST/SE/GE/IEA), checks its counts and control
//! numbers (as the SDK's reader does: numbers as numbers), and writes the 997 functional
//! acknowledgement: one 997 per functional group, in one `FA` group per version (GS08) received,
//! with a `TA1` first when the interchange trailer is wrong. A payload that
//! batches several interchanges of one partner back to back gets one 997 interchange that
//! acknowledges the groups of all of them (and a `TA1` for each interchange whose trailer is
//! wrong).

use crate::envelope::{Acknowledgement, Inbound, Stamp, line_break, partner_token, unwrapped};
use millrace_sdk::text::is_padding;

/// The largest control number ISA13 (9 digits) and GS06 can carry.
const MAX_CONTROL: u64 = 999_999_999;

/// Most AK502..AK506 and AK905..AK909 codes the 997 carries.
const MAX_CODES: usize = 5;

/// The 997 of an X12 interchange; `None` when it holds only acknowledgements (`GS01` = `FA`),
/// which are never acknowledged.
pub fn acknowledge(
    text: &str,
    inbound: &Inbound<'_>,
    stamp: &Stamp,
) -> Result<Option<Acknowledgement>, String> {
    let read = Interchange::read_all(text)?;
    let (terminator, line) = (read[0].delimiters.terminator, read[0].delimiters.line);
    let unwrapped = unwrapped(text, terminator);
    let mut interchanges = match &unwrapped {
        Some(text) => Interchange::read_all(text)?,
        None => read,
    };
    // The acknowledgement breaks its lines as the original breaks them after its terminators.
    for interchange in &mut interchanges {
        interchange.delimiters.line = line;
    }
    // An interchange repeating an earlier one's sender (ISA05, ISA06) and control number (ISA13)
    // is the same interchange sent twice, which the SDK's `parse_all` refuses as a duplicate.
    for index in 1..interchanges.len() {
        fn key<'a>(i: &Interchange<'a>) -> (&'a str, &'a str, &'a str) {
            let field = |n: usize| i.isa.get(n).copied().unwrap_or_default().trim();
            (field(5), field(6), field(13))
        }
        let (qualifier, sender, control) = key(&interchanges[index]);
        interchanges[index].duplicate = interchanges[..index].iter().any(|earlier| {
            let (q, s, c) = key(earlier);
            q == qualifier && s == sender && same_number(c, control)
        });
    }
    let interchange = &interchanges[0];
    if let Some(other) = interchanges[1..]
        .iter()
        .find(|other| other.isa[5..9] != interchange.isa[5..9])
    {
        return Err(format!(
            "the payload batches interchanges between different partners ({} to {}, then {} to {}); send each partner's apart",
            interchange.isa[6].trim(),
            interchange.isa[8].trim(),
            other.isa[6].trim(),
            other.isa[8].trim()
        ));
    }
    if stamp.number > MAX_CONTROL {
        return Err(format!(
            "control number {} does not fit ISA13 (9 digits)",
            stamp.number
        ));
    }
    // Acknowledgements are never acknowledged; an interchange with nothing in it is no
    // acknowledgement, and is answered (a TA1, note 024).
    if interchanges.iter().all(Interchange::is_acknowledgement) {
        return Ok(None);
    }
    // A duplicate interchange is answered by its TA1 (note 025) alone: its groups are the
    // earlier one's, answered once.
    let groups: Vec<&Group<'_>> = interchanges
        .iter()
        .filter(|i| !i.duplicate)
        .flat_map(|i| &i.groups)
        .filter(|g| g.field(1) != "FA")
        .collect();
    let any_error = interchanges.iter().any(|i| i.note().is_some())
        || groups
            .iter()
            .any(|g| !g.codes().is_empty() || g.sets.iter().any(|s| !s.codes().is_empty()));
    let d = &interchange.delimiters;
    let mut out = Writer::new(d);
    let isa = &interchange.isa;
    let field = |i: usize| isa.get(i).copied().unwrap_or_default();
    // The ISA's elements have fixed widths (X12.5): translators read it by column, so an
    // original that did not pad them is answered padded.
    let fixed = |i: usize, width: usize| format!("{:<width$}", field(i).trim());
    out.segment(&[
        "ISA",
        "00",
        "          ",
        "00",
        "          ",
        &fixed(7, 2),
        &fixed(8, 15),
        &fixed(5, 2),
        &fixed(6, 15),
        &stamp.date6(),
        &stamp.time4(),
        &fixed(11, 1),
        &fixed(12, 5),
        &format!("{:09}", stamp.number),
        "0",
        &fixed(15, 1),
        &d.component.to_string(),
    ]);
    // TA104: `E` (accepted, errors noted) when the interchange was mapped all the same, `R`
    // (rejected: the sender must send it again) when it was dead-lettered.
    let verdict = if inbound.failed() { "R" } else { "E" };
    for each in &interchanges {
        let field = |i: usize| each.isa.get(i).copied().unwrap_or_default();
        match each.note() {
            Some(note) => out.segment(&["TA1", field(13), field(9), field(10), verdict, note]),
            // ISA14 `1`: the sender asks for a TA1 whatever it says (`A`, `000` no error).
            None if field(14).trim() == "1" => {
                out.segment(&["TA1", field(13), field(9), field(10), "A", "000"]);
            }
            None => {}
        }
    }
    // One FA group per version (GS08) and pair of application codes (GS02, GS03) acknowledged,
    // in the order they first come: a 997 is written in the version of the groups it
    // acknowledges (AK103 and AK204 exist from 005010 on, and the FA group's GS08 is the version
    // of its 997s), and goes back to the application that sent them.
    let mut versions: Vec<Vec<&Group<'_>>> = Vec::new();
    let key = |group: &Group<'_>| {
        (
            group.field(8).trim().to_owned(),
            group.field(2).trim().to_owned(),
            group.field(3).trim().to_owned(),
        )
    };
    for group in groups.iter().copied() {
        match versions.iter_mut().find(|same| key(same[0]) == key(group)) {
            Some(same) => same.push(group),
            None => versions.push(vec![group]),
        }
    }
    // GS06: the control number, then the next numbers for the groups of further versions.
    let last = stamp.number + (versions.len() as u64).saturating_sub(1);
    if last > MAX_CONTROL {
        return Err(format!(
            "control number {} leaves no GS06 of 9 digits for the acknowledgement's {} groups",
            stamp.number,
            versions.len()
        ));
    }
    for (offset, same) in (0..).zip(&versions) {
        let number = (stamp.number + offset).to_string();
        functional_group(&mut out, same, &number, stamp, inbound, any_error);
    }
    out.segment(&[
        "IEA",
        &versions.len().to_string(),
        &format!("{:09}", stamp.number),
    ]);
    Ok(Some(Acknowledgement {
        partner: partner_token(field(6)),
        document: out.text.into_bytes(),
    }))
}

/// Writes one `FA` group, control number `number`, with a 997 for each of `groups` (all of one
/// version, which the group's GS08 echoes); `any_error` says whether the envelope explains a
/// failure.
fn functional_group(
    out: &mut Writer<'_>,
    groups: &[&Group<'_>],
    number: &str,
    stamp: &Stamp,
    inbound: &Inbound<'_>,
    any_error: bool,
) {
    let first = groups[0];
    // GS04 is CCYYMMDD from version 004010 on, YYMMDD before it.
    let date = match first.field(8).get(..6).and_then(|v| v.parse::<u32>().ok()) {
        Some(version) if version < 4010 => stamp.date6(),
        _ => stamp.date8(),
    };
    out.segment(&[
        "GS",
        "FA",
        first.field(3),
        first.field(2),
        &date,
        &stamp.time4(),
        number,
        "X",
        first.field(8),
    ]);
    for (index, group) in groups.iter().enumerate() {
        let control = format!("{:04}", index + 1);
        let started = out.count;
        out.segment(&["ST", "997", &control]);
        let five = group.is_005010_or_later();
        let mut ak1 = vec!["AK1", group.field(1), group.field(6)];
        if five {
            ak1.push(group.field(8));
        }
        out.segment(&ak1);
        let mut accepted = 0;
        for set in &group.sets {
            let mut ak2 = vec!["AK2", set.id, set.control];
            if five && let Some(convention) = set.convention.filter(|c| !c.is_empty()) {
                ak2.push(convention);
            }
            out.segment(&ak2);
            for (position, tag) in &set.unknown_segments {
                out.segment(&["AK3", tag, &position.to_string(), "", "1"]);
            }
            let mut codes = set.codes();
            if codes.is_empty() && inbound.failed() && !any_error {
                codes.push(if inbound.unsupported() { "1" } else { "5" });
            }
            if codes.is_empty() && !inbound.failed() {
                accepted += 1;
                out.segment(&["AK5", "A"]);
            } else {
                let mut ak5 = vec!["AK5", "R"];
                ak5.extend(codes.iter().take(MAX_CODES));
                out.segment(&ak5);
            }
        }
        let received = group.sets.len();
        let included = group
            .trailer
            .and_then(|(count, _)| count.trim().parse::<usize>().ok())
            .unwrap_or(received);
        let codes = group.codes();
        // A dead-lettered interchange had nothing accepted, even from a group without sets.
        let status = if inbound.failed() || (accepted == 0 && received > 0) {
            "R"
        } else if accepted == received {
            if codes.is_empty() { "A" } else { "E" }
        } else {
            "P"
        };
        let (included, received, accepted) = (
            included.to_string(),
            received.to_string(),
            accepted.to_string(),
        );
        let mut ak9 = vec!["AK9", status, &included, &received, &accepted];
        ak9.extend(codes.iter().take(MAX_CODES));
        out.segment(&ak9);
        let count = (out.count - started + 1).to_string();
        out.segment(&["SE", &count, &control]);
    }
    out.segment(&["GE", &groups.len().to_string(), number]);
}

/// The separators an interchange declares in its ISA.
struct Delimiters {
    element: char,
    component: char,
    terminator: char,
    /// What follows each terminator in the original (nothing, `\n` or `\r\n`).
    line: &'static str,
}

/// An interchange as far as its envelope goes.
struct Interchange<'a> {
    delimiters: Delimiters,
    /// ISA and its 16 elements.
    isa: Vec<&'a str>,
    groups: Vec<Group<'a>>,
    /// IEA01 and IEA02, when the IEA is there.
    trailer: Option<(&'a str, &'a str)>,
    /// A TA1 (an interchange acknowledgement) outside the groups.
    ta1: bool,
    /// A segment outside the groups that belongs in one (an ST without a GS).
    stray: bool,
    /// An earlier interchange of the payload has the same sender and control number.
    duplicate: bool,
}

/// One functional group.
struct Group<'a> {
    /// GS and its elements.
    gs: Vec<&'a str>,
    sets: Vec<Set<'a>>,
    /// GE01 and GE02, when the GE is there.
    trailer: Option<(&'a str, &'a str)>,
}

/// One transaction set.
struct Set<'a> {
    /// ST01.
    id: &'a str,
    /// ST02.
    control: &'a str,
    /// ST03 (005010 and later).
    convention: Option<&'a str>,
    /// Segments from ST to SE, both included.
    count: usize,
    /// SE01 and SE02, when the SE is there.
    trailer: Option<(&'a str, &'a str)>,
    /// Positions (ST = 1) and tags of segments whose tag is not a segment id.
    unknown_segments: Vec<(usize, &'a str)>,
    /// Another set of the group has the same ST02.
    duplicate: bool,
}

impl<'a> Interchange<'a> {
    /// The interchanges of a payload, one or more back to back; each reads its own ISA.
    fn read_all(text: &'a str) -> Result<Vec<Self>, String> {
        let (first, mut rest) = Self::read(text)?;
        let terminator = first.delimiters.terminator;
        let mut all = vec![first];
        loop {
            let next = rest.trim_start_matches(is_padding);
            if next.is_empty() {
                return Ok(all);
            }
            // What trails the last trailer and is not another interchange is left to the
            // mapping, whose reader refuses it (and the acknowledgement then says so).
            if !next.starts_with("ISA") {
                return Ok(all);
            }
            // The mapping readers split a batch with the first interchange's separators and
            // refuse one that ends its segments otherwise (`x12::parse_all`): refused here in
            // their words, not misread as wraps of the first one's segments.
            if let Some(reason) = millrace_sdk::x12::batch_terminator_change(next, terminator) {
                return Err(format!("interchange {}: {reason}", all.len() + 1));
            }
            let (interchange, after) = Self::read(next)?;
            all.push(interchange);
            rest = after;
        }
    }

    /// One interchange from its ISA, and the text after its IEA.
    fn read(text: &'a str) -> Result<(Self, &'a str), String> {
        let element = text.chars().nth(3).ok_or("the ISA segment is truncated")?;
        if element.is_ascii_alphanumeric() || element.is_whitespace() {
            return Err(format!(
                "the ISA declares {element:?} as element separator: not an X12 interchange"
            ));
        }
        // ISA16 is the character after the 16th separator; the segment terminator follows it.
        let (sixteenth, _) = text
            .match_indices(element)
            .nth(15)
            .ok_or("the ISA segment has fewer than 16 elements")?;
        let mut after = text[sixteenth + element.len_utf8()..].chars();
        let (Some(component), Some(mut terminator)) = (after.next(), after.next()) else {
            return Err("the ISA segment is truncated".into());
        };
        // Spaces after ISA16 and then a line break: padded lines, the lines are the segments
        // (as the mapping readers take them).
        let padding = if matches!(terminator, ' ' | '\t')
            && matches!(after.find(|c| *c != ' ' && *c != '\t'), Some('\r' | '\n'))
        {
            let skipped = text[sixteenth + element.len_utf8() + component.len_utf8()..]
                .find(['\r', '\n'])
                .unwrap_or_default();
            terminator = '\n';
            skipped
        } else {
            0
        };
        if terminator.is_ascii_alphanumeric() || terminator == ' ' || terminator == element {
            return Err(format!(
                "the ISA declares {terminator:?} as segment terminator: the ISA is malformed"
            ));
        }
        let isa_end = sixteenth + element.len_utf8() + component.len_utf8();
        let isa: Vec<&str> = text[..isa_end].split(element).collect();
        let rest = &text[isa_end + padding + terminator.len_utf8()..];
        let line = match terminator {
            '\n' => "",
            '\r' if rest.starts_with('\n') => "\n",
            '\r' => "",
            _ => line_break(rest),
        };
        let mut interchange = Self {
            delimiters: Delimiters {
                element,
                component,
                terminator,
                line,
            },
            isa,
            groups: Vec::new(),
            trailer: None,
            ta1: false,
            stray: false,
            duplicate: false,
        };
        let after = interchange.walk(rest);
        Ok((interchange, after))
    }

    /// Reads the segments after the ISA into groups and sets, up to the IEA; returns the text
    /// after it.
    fn walk(&mut self, rest: &'a str) -> &'a str {
        let element = self.delimiters.element;
        let terminator = self.delimiters.terminator;
        let mut group: Option<Group<'a>> = None;
        let mut set: Option<Set<'a>> = None;
        let mut read = 0;
        let mut pieces = rest.split(terminator).peekable();
        while let Some(mut segment) = pieces.next() {
            read = (read + segment.len() + terminator.len_utf8()).min(rest.len());
            if terminator == '\n' && pieces.peek().is_none() {
                // The last line of a newline-delimited file without a final line break: what
                // pads the file after it (Ctrl-Z, NULs) is not part of it, as the SDK's reader
                // takes it.
                segment = segment.trim_end_matches(is_padding);
            }
            // Tokenized as the SDK's reader (`millrace_sdk::x12`, `split_segments` and `segment`)
            // does, which this crate does not link: spaces and tabs before a segment id are not
            // part of it (one space after each terminator, records padded to a fixed width), the
            // spaces that pad a line of a newline-delimited file are not data, and a segment of
            // nothing but padding (white space, NUL, Ctrl-Z) is none.
            let mut segment = segment
                .trim_matches(|c| c == '\r' || c == '\n')
                .trim_start_matches([' ', '\t']);
            if terminator == '\n' {
                segment = segment.trim_end_matches([' ', '\t']);
            }
            if segment.trim_matches(is_padding).is_empty() {
                continue;
            }
            let elements: Vec<&'a str> = segment.split(element).collect();
            let at = |i: usize| elements.get(i).copied().unwrap_or_default();
            match at(0) {
                "GS" => {
                    close_set(&mut group, &mut set);
                    self.groups.extend(group.take());
                    group = Some(Group {
                        gs: elements.clone(),
                        sets: Vec::new(),
                        trailer: None,
                    });
                }
                "GE" => {
                    close_set(&mut group, &mut set);
                    if let Some(mut open) = group.take() {
                        open.trailer = Some((at(1), at(2)));
                        self.groups.push(open);
                    }
                }
                "ST" => {
                    close_set(&mut group, &mut set);
                    if group.is_none() {
                        self.stray = true;
                    } else {
                        set = Some(Set {
                            id: at(1),
                            control: at(2),
                            convention: elements.get(3).copied(),
                            count: 1,
                            trailer: None,
                            unknown_segments: Vec::new(),
                            duplicate: false,
                        });
                    }
                }
                "SE" => {
                    if let Some(open) = set.as_mut() {
                        open.count += 1;
                        open.trailer = Some((at(1), at(2)));
                    }
                    close_set(&mut group, &mut set);
                }
                "IEA" => {
                    close_set(&mut group, &mut set);
                    self.groups.extend(group.take());
                    self.trailer = Some((at(1), at(2)));
                    return &rest[read..];
                }
                tag => {
                    if let Some(open) = set.as_mut() {
                        open.count += 1;
                        if !is_segment_id(tag) {
                            open.unknown_segments.push((open.count, tag));
                        }
                    } else if group.is_none() {
                        // Outside the groups: the interchange-level TA1, ISB and ISE, or
                        // content out of place.
                        match tag {
                            "TA1" => self.ta1 = true,
                            "ISB" | "ISE" => {}
                            _ => self.stray = true,
                        }
                    }
                }
            }
        }
        close_set(&mut group, &mut set);
        self.groups.extend(group);
        ""
    }

    /// The TA1 note code (I18) of an interchange error: `025` a duplicate of an earlier
    /// interchange of the payload (same sender and ISA13), `023` no IEA, `001` IEA02 is
    /// not ISA13, `021` IEA01 is not the number of groups, `024` (invalid interchange content)
    /// no transaction set in any group, or segments outside the groups that belong in one.
    fn note(&self) -> Option<&'static str> {
        if self.duplicate {
            return Some("025");
        }
        let Some((count, control)) = self.trailer else {
            return Some("023");
        };
        if !same_number(control, self.isa.get(13).copied().unwrap_or_default()) {
            Some("001")
        } else if !counts(count, self.groups.len()) {
            Some("021")
        } else if !self.is_acknowledgement()
            && (self.stray || self.groups.iter().all(|g| g.sets.is_empty()))
        {
            Some("024")
        } else {
            None
        }
    }

    /// True when the interchange is itself an acknowledgement: its groups all `FA` (997s), or
    /// no group but a TA1. One without groups, sets or TA1 is none, and is answered.
    fn is_acknowledgement(&self) -> bool {
        if self.groups.is_empty() {
            self.ta1 && !self.stray
        } else {
            self.groups.iter().all(|g| g.field(1) == "FA")
        }
    }
}

/// Ends the open set (without an SE if none came) and files it in the open group.
fn close_set<'a>(group: &mut Option<Group<'a>>, set: &mut Option<Set<'a>>) {
    let (Some(group), Some(mut closed)) = (group.as_mut(), set.take()) else {
        return;
    };
    // Compared as the SDK's reader compares them (`0001` and `1` are one number).
    closed.duplicate = group
        .sets
        .iter()
        .any(|s| same_number(s.control, closed.control));
    group.sets.push(closed);
}

impl Group<'_> {
    fn field(&self, index: usize) -> &str {
        self.gs.get(index).copied().unwrap_or_default()
    }

    /// True when GS08 names version 005010 or later (AK1 and AK2 then carry their third
    /// element).
    fn is_005010_or_later(&self) -> bool {
        self.field(8)
            .get(..6)
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v >= 5010)
    }

    /// The AK9 syntax error codes (716): `3` no GE, `4` GE02 is not GS06, `5` GE01 is not the
    /// number of sets.
    fn codes(&self) -> Vec<&'static str> {
        let Some((count, control)) = self.trailer else {
            return vec!["3"];
        };
        let mut codes = Vec::new();
        if !same_number(control, self.field(6)) {
            codes.push("4");
        }
        if !counts(count, self.sets.len()) {
            codes.push("5");
        }
        codes
    }
}

impl Set<'_> {
    /// The AK5 syntax error codes (718) of this set, in code order.
    fn codes(&self) -> Vec<&'static str> {
        let mut codes = Vec::new();
        match self.trailer {
            None => codes.push("2"),
            Some((count, control)) => {
                if !same_number(control, self.control) {
                    codes.push("3");
                }
                if !counts(count, self.count) {
                    codes.push("4");
                }
            }
        }
        if !self.unknown_segments.is_empty() {
            codes.push("5");
        }
        if self.id.len() != 3 || !self.id.bytes().all(|b| b.is_ascii_digit()) {
            codes.push("6");
        }
        // The mapping readers take an ST02 of any length (`x12::parse` requires one, and SE02
        // to match it): 10 characters, or 3, are mapped, so only a missing one is an error here.
        if self.control.trim().is_empty() {
            codes.push("7");
        }
        if self.duplicate {
            codes.push("23");
        }
        codes
    }
}

/// Whether two control numbers are the same as the SDK's X12 reader (`x12::parse`, whose
/// `same_number` this is) decides: numerically when both are digits (`000000089` and `89`),
/// else as text; both trimmed. The acknowledgement must not reject what the mapping accepted.
fn same_number(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Whether a trailer's count (SE01, GE01, IEA01) is `n`, read trimmed as the SDK reads it.
fn counts(count: &str, n: usize) -> bool {
    count.trim().parse::<usize>().ok() == Some(n)
}

/// A segment id: two or three upper-case letters or digits, starting with a letter.
fn is_segment_id(tag: &str) -> bool {
    (2..=3).contains(&tag.len())
        && tag.starts_with(|c: char| c.is_ascii_uppercase())
        && tag
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Writes segments with the original's separators, counting them.
struct Writer<'d> {
    delimiters: &'d Delimiters,
    text: String,
    count: usize,
}

impl<'d> Writer<'d> {
    fn new(delimiters: &'d Delimiters) -> Self {
        Self {
            delimiters,
            text: String::new(),
            count: 0,
        }
    }

    fn segment(&mut self, elements: &[&str]) {
        let mut separator = [0; 4];
        let separator = self.delimiters.element.encode_utf8(&mut separator);
        self.text.push_str(&elements.join(separator));
        self.text.push(self.delimiters.terminator);
        self.text.push_str(self.delimiters.line);
        self.count += 1;
    }
}
