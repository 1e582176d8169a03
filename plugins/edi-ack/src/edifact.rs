//! EDIFACT: reads the interchange envelope (UNA/UNB/UNG/UNH/UNT/UNE/UNZ), checks its counts
//! and references, and writes the CONTRL syntax and service report: `UCI` for the
//! interchange, `UCF` for each functional group and `UCM` for each message. A payload that
//! batches interchanges of one partner back to back gets one CONTRL message per interchange, in
//! one interchange written with the first one's service characters.

use crate::envelope::{Acknowledgement, Inbound, Stamp, line_break, partner_token, unwrapped};
use millrace_sdk::text::{is_line_break, is_padding};

/// The largest control reference UNB 0020 (an..14) can carry as a number.
const MAX_CONTROL: u64 = 99_999_999_999_999;

/// Action code 0083: this level and all lower levels rejected.
const REJECTED: &str = "4";
/// Action code 0083: this level acknowledged, the next lower level acknowledged if not
/// explicitly rejected.
const ACKNOWLEDGED: &str = "7";

/// A syntax error (code 0085) and the service segment it is in (0013), if any.
type Error = (&'static str, &'static str);

/// The CONTRL of an EDIFACT interchange; `None` when it holds only CONTRL messages, which are
/// never acknowledged.
pub fn acknowledge(
    text: &str,
    inbound: &Inbound<'_>,
    stamp: &Stamp,
) -> Result<Option<Acknowledgement>, String> {
    if stamp.number > MAX_CONTROL {
        return Err(format!(
            "control number {} does not fit UNB 0020 (14 digits)",
            stamp.number
        ));
    }
    let read = Interchange::read_all(text)?;
    let (terminator, line) = (read[0].service.terminator, read[0].service.line);
    let unwrapped = unwrapped(text, terminator);
    let mut batch = match &unwrapped {
        Some(text) => Interchange::read_all(text)?,
        None => read,
    };
    // The acknowledgement breaks its lines as the original breaks them after its terminators.
    for interchange in &mut batch {
        interchange.service.line = line;
    }
    // An interchange repeating an earlier one's sender (UNB S002 0004) and control reference
    // (UNB 0020) is the same interchange sent twice, which the SDK's `parse_all` refuses as a
    // duplicate.
    for index in 1..batch.len() {
        let key = |i: &Interchange<'_>| (i.party(2).trim().to_owned(), i.reference());
        let this = key(&batch[index]);
        batch[index].duplicate = batch[..index].iter().any(|earlier| key(earlier) == this);
    }
    let first = &batch[0];
    let s = &first.service;
    let unb = &first.unb;
    let field = |i: usize| unb.get(i).copied().unwrap_or_default();
    let sender = first.party(2);
    if let Some(other) = batch[1..]
        .iter()
        .find(|other| (other.party(2), other.party(3)) != (first.party(2), first.party(3)))
    {
        return Err(format!(
            "the payload batches interchanges between different partners ({} to {}, then {} to {}); send each partner's apart",
            sender,
            first.party(3),
            other.party(2),
            other.party(3)
        ));
    }
    // Acknowledgements are not acknowledged: an interchange of CONTRLs gets no CONTRL. One
    // without any message is no acknowledgement: it is answered (rejected, UNH missing).
    let answered: Vec<&Interchange<'_>> = batch
        .iter()
        .filter(|i| i.all_messages().next().is_none() || i.all_messages().any(|m| !m.is_contrl()))
        .collect();
    if answered.is_empty() {
        return Ok(None);
    }
    // The inbound outcome is the whole payload's: an error anywhere in it explains a failure.
    let any_error = batch.iter().any(|i| {
        i.error().is_some()
            || i.groups.iter().any(|g| g.error().is_some())
            || i.all_messages().any(|m| m.error().is_some())
    });
    let verdict = |message: &Message<'_>| -> (&'static str, Option<Error>) {
        match message.error() {
            Some(error) => (REJECTED, Some(error)),
            None if !inbound.failed() => (ACKNOWLEDGED, None),
            None if any_error => (REJECTED, None),
            None if inbound.unsupported() => (REJECTED, Some(("17", "UNH"))),
            None => (REJECTED, Some(("18", ""))),
        }
    };
    let action = |messages: &mut dyn Iterator<Item = &Message<'_>>| {
        let mut any = false;
        for message in messages.filter(|m| !m.is_contrl()) {
            any = true;
            if verdict(message).0 == ACKNOWLEDGED {
                return ACKNOWLEDGED;
            }
        }
        // No message at all: nothing was accepted from a dead-lettered interchange.
        if any || inbound.failed() {
            REJECTED
        } else {
            ACKNOWLEDGED
        }
    };
    let mut out = Writer::new(s);
    let version_4 = split(field(1), s.component, s.release).get(1) == Some(&"4");
    let date = if version_4 {
        stamp.date8()
    } else {
        stamp.date6()
    };
    let when = format!("{date}{}{}", s.component, stamp.time4());
    let number = stamp.number.to_string();
    let mut header = vec!["UNB", field(1), field(3), field(2), &when, &number];
    if field(11) == "1" {
        header.extend(["", "", "", "", "", "1"]);
    }
    out.envelope(&header);
    let message_type = if version_4 {
        "CONTRL:4:1:UN"
    } else {
        "CONTRL:D:3:UN"
    }
    .replace(':', &s.component.to_string());
    // One CONTRL message per interchange answered, written in the first one's service
    // characters (a later interchange's values are re-escaped when its own differ).
    for (index, interchange) in answered.iter().enumerate() {
        let reference = (index + 1).to_string();
        let echo = |value: &str| recode(value, &interchange.service, s);
        let field = |i: usize| echo(interchange.unb.get(i).copied().unwrap_or_default());
        let started = out.count;
        out.segment(&["UNH", &reference, &message_type]);
        // An interchange without a message is missing its content (13, UNH): rejected.
        let empty = interchange.all_messages().next().is_none();
        out.response(
            &["UCI", &field(5), &field(2), &field(3)],
            if empty || interchange.duplicate {
                REJECTED
            } else {
                action(&mut interchange.all_messages())
            },
            interchange.error().or(empty.then_some(("13", "UNH"))),
        );
        let report = |out: &mut Writer<'_>, messages: &[Message<'_>]| {
            for message in messages.iter().filter(|m| !m.is_contrl()) {
                let (action, error) = verdict(message);
                out.response(
                    &["UCM", &echo(message.reference), &echo(message.identifier)],
                    action,
                    error,
                );
            }
        };
        // A duplicate is answered by its UCI alone: its messages are the earlier one's.
        if interchange.duplicate {
            let count = (out.count - started + 1).to_string();
            out.segment(&["UNT", &count, &reference]);
            continue;
        }
        report(&mut out, &interchange.messages);
        for group in &interchange.groups {
            let field = |i: usize| echo(group.ung.get(i).copied().unwrap_or_default());
            out.response(
                &["UCF", &field(5), &field(2), &field(3)],
                action(&mut group.messages.iter()),
                group.error(),
            );
            report(&mut out, &group.messages);
        }
        let count = (out.count - started + 1).to_string();
        out.segment(&["UNT", &count, &reference]);
    }
    out.envelope(&["UNZ", &answered.len().to_string(), &number]);
    Ok(Some(Acknowledgement {
        partner: partner_token(&sender),
        document: out.text.into_bytes(),
    }))
}

/// `value`, written in `from`'s service characters, as `to` writes it: the same text when both
/// use the same characters, else its components unescaped, escaped again and joined anew.
fn recode(value: &str, from: &Service<'_>, to: &Service<'_>) -> String {
    let same = (from.component, from.element, from.release, from.terminator)
        == (to.component, to.element, to.release, to.terminator);
    if same {
        return value.to_owned();
    }
    let reserved = [to.component, to.element, to.terminator];
    split(value, from.component, from.release)
        .iter()
        .map(|part| {
            let mut escaped = String::with_capacity(part.len());
            for c in unescape(part, from.release).chars() {
                if reserved.contains(&c) || Some(c) == to.release {
                    match to.release {
                        Some(release) => escaped.push(release),
                        // Without a release character a separator cannot be data: left out.
                        None => continue,
                    }
                }
                escaped.push(c);
            }
            escaped
        })
        .collect::<Vec<_>>()
        .join(&to.component.to_string())
}

/// The service characters of an interchange.
struct Service<'a> {
    component: char,
    element: char,
    /// None when the UNA leaves its place blank (ISO 9735: the interchange has none).
    release: Option<char>,
    terminator: char,
    /// The original UNA, echoed as it was.
    una: Option<&'a str>,
    /// What follows each terminator in the original (nothing, `\n` or `\r\n`).
    line: &'static str,
}

/// A trailer (UNT, UNE, UNZ) read as the SDK's reader reads it: each value its first component,
/// unescaped and trimmed, so that the acknowledgement never rejects what the mapping accepted.
struct Trailer {
    /// The count (0074, 0060, 0036), when it is a number.
    count: Option<usize>,
    /// Whether its reference (0062, 0048, 0020) is the header's, as text.
    same_reference: bool,
}

impl Trailer {
    /// The trailer whose count and reference are `count` and `reference`, of the header whose
    /// reference is `header`, under the component separator and release character given.
    fn new(
        count: &str,
        reference: &str,
        header: &str,
        component: char,
        release: Option<char>,
    ) -> Self {
        let read = |element: &str| -> String {
            let first = split(element, component, release)[0];
            let value: String = unescape(first, release)
                .chars()
                .filter(|c| !matches!(c, '\r' | '\n'))
                .collect();
            value.trim().to_owned()
        };
        Self {
            count: read(count).parse().ok(),
            same_reference: read(reference) == read(header),
        }
    }
}

struct Interchange<'a> {
    service: Service<'a>,
    /// UNB and its elements.
    unb: Vec<&'a str>,
    /// Messages outside functional groups.
    messages: Vec<Message<'a>>,
    groups: Vec<Group<'a>>,
    /// The UNZ, when it is there.
    trailer: Option<Trailer>,
    /// An earlier interchange of the payload has the same sender and control reference.
    duplicate: bool,
}

struct Group<'a> {
    /// UNG and its elements.
    ung: Vec<&'a str>,
    messages: Vec<Message<'a>>,
    /// The UNE, when it is there.
    trailer: Option<Trailer>,
}

struct Message<'a> {
    /// UNH 0062.
    reference: &'a str,
    /// UNH S009, as written (`DESADV:D:96A:UN:EAN005`).
    identifier: &'a str,
    /// Segments from UNH to UNT, both included.
    count: usize,
    /// The UNT, when it is there.
    trailer: Option<Trailer>,
    /// Another message of the interchange has the same reference.
    duplicate: bool,
}

impl<'a> Interchange<'a> {
    /// The interchanges of a payload, one or more back to back, each under its own UNA.
    fn read_all(text: &'a str) -> Result<Vec<Self>, String> {
        let (first, mut rest) = Self::read(text)?;
        let mut all = vec![first];
        loop {
            let next = rest.trim_start_matches(is_padding);
            // What trails the last trailer and is not another interchange is left to the
            // mapping, whose reader refuses it (and the acknowledgement then says so).
            if !(next.starts_with("UNA") || next.starts_with("UNB")) {
                return Ok(all);
            }
            let (interchange, after) = Self::read(next)?;
            all.push(interchange);
            rest = after;
        }
    }

    /// Every message, in groups or not.
    fn all_messages(&self) -> impl Iterator<Item = &Message<'a>> {
        self.messages
            .iter()
            .chain(self.groups.iter().flat_map(|g| g.messages.iter()))
    }

    /// The identification of UNB element `index` (2 the sender, 3 the recipient), unescaped.
    fn party(&self, index: usize) -> String {
        let s = &self.service;
        split(
            self.unb.get(index).copied().unwrap_or_default(),
            s.component,
            s.release,
        )
        .first()
        .map(|id| unescape(id, s.release))
        .unwrap_or_default()
    }

    /// The control reference (UNB 0020), its first component unescaped and trimmed.
    fn reference(&self) -> String {
        let s = &self.service;
        let value = self.unb.get(5).copied().unwrap_or_default();
        unescape(split(value, s.component, s.release)[0], s.release)
            .trim()
            .to_owned()
    }

    /// One interchange from the start of `text`, and the text after its UNZ.
    fn read(text: &'a str) -> Result<(Self, &'a str), String> {
        let (una, body) = match text.strip_prefix("UNA") {
            Some(rest) => {
                let chars: Vec<char> = rest.chars().take(6).collect();
                if chars.len() < 6 {
                    return Err("the UNA segment is truncated".into());
                }
                let length: usize = chars.iter().map(|c| c.len_utf8()).sum();
                (Some((&text[..3 + length], chars)), &rest[length..])
            }
            None => (None, text),
        };
        let body = body.trim_start_matches(['\r', '\n']);
        let (component, element, release, terminator) = match &una {
            // A space in the release character's place: there is none (ISO 9735).
            Some((_, c)) => (c[0], c[1], (c[3] != ' ').then_some(c[3]), c[5]),
            // Syntax level B's defaults, the information separators IS1, IS3 and IS4 and no
            // release character, when the UNB is written with them (as the SDK's reader takes).
            None if body.as_bytes().get(3) == Some(&0x1D) => ('\u{1f}', '\u{1d}', None, '\u{1c}'),
            None => (':', '+', Some('?'), '\''),
        };
        let segments = split(body, terminator, release);
        let una = una.map(|(u, _)| u);
        let line = match (una, segments.first()) {
            (Some(u), _) => line_break(&text[u.len()..]),
            (None, Some(first)) => line_break(body.get(first.len() + 1..).unwrap_or_default()),
            (None, None) => "",
        };
        let mut interchange = Self {
            service: Service {
                component,
                element,
                release,
                terminator,
                una,
                line,
            },
            unb: Vec::new(),
            messages: Vec::new(),
            groups: Vec::new(),
            trailer: None,
            duplicate: false,
        };
        let read = interchange.walk(&segments)?;
        // The segments are slices of `body`: the rest starts after the UNZ's terminator.
        let rest = match segments.get(read) {
            Some(unz) if read + 1 < segments.len() => {
                let end = unz.as_ptr() as usize - body.as_ptr() as usize + unz.len();
                body.get(end + terminator.len_utf8()..).unwrap_or_default()
            }
            _ => "",
        };
        Ok((interchange, rest))
    }

    /// Files the segments up to the UNZ; returns the index of the last one read.
    fn walk(&mut self, segments: &[&'a str]) -> Result<usize, String> {
        let (element, component, release) = (
            self.service.element,
            self.service.component,
            self.service.release,
        );
        let mut group: Option<Group<'a>> = None;
        let mut message: Option<Message<'a>> = None;
        let mut last = segments.len().saturating_sub(1);
        for (index, segment) in segments.iter().enumerate() {
            // Tokenized as the SDK's reader (`millrace_sdk::edifact`, `split` and `segment`)
            // does, which this crate does not link: white space before a tag is not part of it
            // (one space after each terminator, records padded to a fixed width), and a segment
            // of nothing but padding (white space, NUL, Ctrl-Z) is none.
            let segment = segment.trim_matches(['\r', '\n']);
            if segment.trim_matches(is_padding).is_empty() {
                continue;
            }
            let mut elements = split(segment, element, release);
            elements[0] = elements[0].trim_start();
            let at = |i: usize| elements.get(i).copied().unwrap_or_default();
            match at(0) {
                "UNB" => self.unb = elements,
                "UNG" => {
                    self.close(&mut group, &mut message);
                    self.groups.extend(group.take());
                    group = Some(Group {
                        ung: elements,
                        messages: Vec::new(),
                        trailer: None,
                    });
                }
                "UNE" => {
                    self.close(&mut group, &mut message);
                    if let Some(mut open) = group.take() {
                        let header = open.ung.get(5).copied().unwrap_or_default();
                        open.trailer = Some(Trailer::new(at(1), at(2), header, component, release));
                        self.groups.push(open);
                    }
                }
                "UNH" => {
                    self.close(&mut group, &mut message);
                    message = Some(Message {
                        reference: at(1),
                        identifier: at(2),
                        count: 1,
                        trailer: None,
                        duplicate: false,
                    });
                }
                "UNT" => {
                    if let Some(open) = message.as_mut() {
                        open.count += 1;
                        open.trailer = Some(Trailer::new(
                            at(1),
                            at(2),
                            open.reference,
                            component,
                            release,
                        ));
                    }
                    self.close(&mut group, &mut message);
                }
                "UNZ" => {
                    self.close(&mut group, &mut message);
                    self.groups.extend(group.take());
                    let header = self.unb.get(5).copied().unwrap_or_default();
                    self.trailer = Some(Trailer::new(at(1), at(2), header, component, release));
                    last = index;
                    break;
                }
                _ => {
                    if let Some(open) = message.as_mut() {
                        open.count += 1;
                    }
                }
            }
        }
        self.close(&mut group, &mut message);
        self.groups.extend(group);
        if self.unb.is_empty() {
            return Err("the interchange has no UNB segment".into());
        }
        Ok(last)
    }

    /// Ends the open message (without a UNT if none came) and files it.
    fn close(&mut self, group: &mut Option<Group<'a>>, message: &mut Option<Message<'a>>) {
        let Some(mut closed) = message.take() else {
            return;
        };
        // A reference names a message in its group, or in the interchange when it has no
        // groups, as the mapping readers take it (the group's reference tells two apart).
        let siblings = match group {
            Some(group) => &group.messages,
            None => &self.messages,
        };
        closed.duplicate = siblings.iter().any(|m| m.reference == closed.reference);
        match group {
            Some(group) => group.messages.push(closed),
            None => self.messages.push(closed),
        }
    }

    /// The interchange's own error: a duplicate of an earlier interchange of the payload (26),
    /// no UNZ (13), UNZ 0020 is not UNB 0020 (28), UNZ 0036 is
    /// not the number of groups, or of messages when there are none (29).
    fn error(&self) -> Option<Error> {
        if self.duplicate {
            return Some(("26", "UNB"));
        }
        let Some(trailer) = &self.trailer else {
            return Some(("13", "UNZ"));
        };
        let expected = if self.groups.is_empty() {
            self.messages.len()
        } else {
            self.groups.len()
        };
        if !trailer.same_reference {
            Some(("28", "UNZ"))
        } else if trailer.count != Some(expected) {
            Some(("29", "UNZ"))
        } else {
            None
        }
    }
}

impl Group<'_> {
    /// The group's own error: no UNE (13), UNE 0048 is not UNG 0048 (28), UNE 0060 is not the
    /// number of messages (29).
    fn error(&self) -> Option<Error> {
        let Some(trailer) = &self.trailer else {
            return Some(("13", "UNE"));
        };
        if !trailer.same_reference {
            Some(("28", "UNE"))
        } else if trailer.count != Some(self.messages.len()) {
            Some(("29", "UNE"))
        } else {
            None
        }
    }
}

impl Message<'_> {
    fn is_contrl(&self) -> bool {
        self.identifier.starts_with("CONTRL")
    }

    /// The message's first error: no UNT (13), UNT 0062 is not UNH 0062 (28), UNT 0074 is
    /// not the number of segments (29), the reference repeats in the interchange (26).
    fn error(&self) -> Option<Error> {
        let Some(trailer) = &self.trailer else {
            return Some(("13", "UNT"));
        };
        if !trailer.same_reference {
            Some(("28", "UNT"))
        } else if trailer.count != Some(self.count) {
            Some(("29", "UNT"))
        } else if self.duplicate {
            Some(("26", "UNH"))
        } else {
            None
        }
    }
}

/// Splits `text` at each `separator` not escaped by `release`; the parts keep their escapes.
/// As the SDK's reader: a line break is no data (files come hard-wrapped), so a release
/// character before one releases the first character after it.
fn split(text: &str, separator: char, release: Option<char>) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (index, c) in text.char_indices() {
        if escaped {
            escaped = is_line_break(c);
        } else if Some(c) == release {
            escaped = true;
        } else if c == separator {
            parts.push(&text[start..index]);
            start = index + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A value without its release characters and line breaks (no data in EDIFACT; a release
/// character before one releases the first character after it, as in the SDK's reader).
fn unescape(value: &str, release: Option<char>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if is_line_break(c) {
            continue;
        }
        if Some(c) == release && !escaped {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    out
}

/// Writes segments with the original's service characters, counting the message's segments.
struct Writer<'s> {
    service: &'s Service<'s>,
    text: String,
    count: usize,
}

impl<'s> Writer<'s> {
    fn new(service: &'s Service<'s>) -> Self {
        let mut text = String::new();
        if let Some(una) = service.una {
            text.push_str(una);
            text.push_str(service.line);
        }
        Self {
            service,
            text,
            count: 0,
        }
    }

    /// A segment inside the CONTRL message.
    fn segment(&mut self, elements: &[&str]) {
        self.envelope(elements);
        self.count += 1;
    }

    /// A UCI, UCF or UCM: its identifying elements, the action and the error, if any.
    fn response(&mut self, head: &[&str], action: &str, error: Option<Error>) {
        let mut elements = head.to_vec();
        elements.push(action);
        match error {
            Some((code, "")) => elements.push(code),
            Some((code, tag)) => elements.extend([code, tag]),
            None => {}
        }
        self.segment(&elements);
    }

    /// A service segment outside the message (UNB, UNZ).
    fn envelope(&mut self, elements: &[&str]) {
        let mut separator = [0; 4];
        let separator = self.service.element.encode_utf8(&mut separator);
        self.text.push_str(&elements.join(separator));
        self.text.push(self.service.terminator);
        self.text.push_str(self.service.line);
    }
}

#[cfg(test)]
mod tests {
    use super::{split, unescape};

    #[test]
    fn a_release_character_before_a_wrap_releases_the_next_data_character() {
        for wrap in ["\n", "\r\n", "\r"] {
            let text = format!("RFF+BT:AB?{wrap}:C");
            let parts = split(&text, ':', Some('?'));
            assert_eq!(parts.len(), 2, "{wrap:?}: {parts:?}");
            assert_eq!(unescape(parts[1], Some('?')), "AB:C", "{wrap:?}");
        }
        assert_eq!(unescape("A\r\nB??C", Some('?')), "AB?C");
    }
}
