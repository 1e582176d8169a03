//! A strict reader for ASC X12 interchanges (`ISA` … `IEA`).
//!
//! [`parse`] reads the separators from the `ISA` header, splits the interchange into segments
//! and checks every envelope: `ISA`/`IEA`, `GS`/`GE` and `ST`/`SE` control numbers must match and
//! the trailers' counts must be right, and a group number (`GS06`) may not repeat in its
//! interchange nor a set number (`ST02`) in its group (a document's `source_transaction` is made
//! of them, so a repeat would pass for a resend). A missing or wrong trailer, or a truncated interchange, is
//! an [`SyntaxError`] that names the segment; there is never a partial result.
//!
//! Tolerated, because real gateways send them:
//! - a UTF-8 byte-order mark and leading blank lines; a payload in UTF-16 (as Windows tools save
//!   "Unicode" text), by its byte-order mark or the NUL beside its first letter;
//! - CR/LF after segment terminators, and files hard-wrapped at a fixed width: when the segment
//!   terminator is not a line break, line breaks are not data and are dropped everywhere;
//! - newline-delimited files, whose segment terminator *is* the line break (`ISA16` is followed by
//!   CR or LF, or by spaces and then CR or LF: padded lines), also when the last line (a complete
//!   `IEA` trailer) has no line break after it; a file that ends in the middle of a segment is
//!   still truncated;
//! - `ISA` fields that are not padded to their fixed widths: the header is read element by
//!   element (the element separator is the byte after `ISA`, the component separator is `ISA16`,
//!   the segment terminator the character right after it), not by fixed columns;
//! - the interchange-level `TA1`, `ISB` and `ISE` segments between the groups
//!   ([`Interchange::service`]);
//! - with [`parse_all`], several interchanges back to back in one payload, as gateways batch
//!   them into one file.
//!
//! The reader borrows from the payload: segment ids and elements are slices of the input, copied
//! only where the input must be changed to read them (a segment broken across lines, or a
//! payload that is not UTF-8 and is decoded from Latin-1). A mapping copies what its events keep.
//!
//! ```ignore
//! let interchange = x12::parse(&msg.payload)?; // a syntax error is malformed-input
//! for set in interchange.transaction_sets() {
//!     for segment in &set.segments { /* segment.id, segment.element(2), ... */ }
//! }
//! ```

use std::borrow::Cow;

use crate::edi::SyntaxError;
use crate::text::{find_any, is_line_break, is_padding, owned};

/// The delimiters of one interchange, as declared by its `ISA` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    /// Separates the elements of a segment (the byte after `ISA`, usually `*`).
    pub element: char,
    /// Separates the components of a composite element (`ISA16`, usually `>` or `:`).
    pub component: char,
    /// Separates repeated elements (`ISA11` from version 00402 on), when the header has one.
    pub repetition: Option<char>,
    /// Ends a segment (usually `~`); `\n` for newline-delimited files.
    pub segment: char,
}

/// One segment: its identifier and its elements, borrowed from the payload.
///
/// The elements stay one slice of the payload (the text after the identifier) and are found by
/// scanning it when asked for: a segment has a few dozen bytes, and reading it costs no
/// allocation per segment or element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The segment identifier, for example `BSN`.
    pub id: Cow<'a, str>,
    /// The elements after the identifier, as written, each followed by the element separator
    /// but the last (components not split); `count` says how many there are.
    elements: Cow<'a, str>,
    /// How many elements the segment has (`0` when the identifier stands alone).
    count: usize,
    /// The identifier packed in a number ([`tag`]), compared by [`Segment::is`].
    tag: u32,
    /// The 1-based position of the segment in the interchange (`ISA` is 1).
    pub position: usize,
    /// The 1-based line of the file the segment starts on.
    pub line: usize,
    separator: char,
    component: char,
}

/// `text` without surrounding whitespace (`str::trim`), returned at once when it starts and ends
/// with a printable ASCII character, as almost every element does.
#[inline]
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// A segment identifier (2 or 3 bytes) packed in a number, so that comparing two is one
/// instruction; anything else packs to a number no identifier has.
#[inline]
const fn tag(id: &[u8]) -> u32 {
    match *id {
        [a, b] => 2 << 24 | (a as u32) << 16 | (b as u32) << 8,
        [a, b, c] => 3 << 24 | (a as u32) << 16 | (b as u32) << 8 | c as u32,
        _ => u32::MAX,
    }
}

/// Part `index` (0-based) of `text` split at `separator`, or `""` past the last.
fn nth_part(text: &str, separator: char, index: usize) -> &str {
    if separator.is_ascii() {
        // Only an ASCII byte can equal an ASCII character in UTF-8, so byte offsets found
        // here are character boundaries.
        let wanted = [separator as u8];
        let mut rest = text;
        for _ in 0..index {
            match find_any(rest.as_bytes(), wanted) {
                Some(at) => rest = &rest[at + 1..],
                None => return "",
            }
        }
        match find_any(rest.as_bytes(), wanted) {
            Some(at) => &rest[..at],
            None => rest,
        }
    } else {
        text.split(separator).nth(index).unwrap_or("")
    }
}

impl<'a> Segment<'a> {
    /// Whether the segment's identifier is `id`: `segment.is("BSN")` is `segment.id == "BSN"`,
    /// without comparing strings.
    #[inline]
    pub fn is(&self, id: &str) -> bool {
        self.tag == tag(id.as_bytes())
    }

    /// How many elements the segment has: `BSN*14*829716` has 2.
    pub fn element_count(&self) -> usize {
        self.count
    }

    /// The elements in order, as written (components not split).
    pub fn elements(&self) -> impl Iterator<Item = &str> {
        let mut rest = (self.count > 0).then_some(self.elements.as_ref());
        let separator = self.separator;
        std::iter::from_fn(move || {
            let text = rest?;
            let cut = if separator.is_ascii() {
                find_any(text.as_bytes(), [separator as u8])
            } else {
                text.find(separator)
            };
            match cut {
                Some(at) => {
                    rest = Some(&text[at + separator.len_utf8()..]);
                    Some(&text[..at])
                }
                None => {
                    rest = None;
                    Some(text)
                }
            }
        })
    }

    /// Returns element `n` (1-based, `BSN02` is `element(2)`), or `""` when it is absent.
    pub fn element(&self, n: usize) -> &str {
        match n.checked_sub(1) {
            Some(index) if index < self.count => nth_part(&self.elements, self.separator, index),
            _ => "",
        }
    }

    /// Returns component `m` of element `n` (both 1-based), or `""` when it is absent.
    pub fn component(&self, n: usize, m: usize) -> &str {
        match m.checked_sub(1) {
            Some(index) => nth_part(self.element(n), self.component, index),
            None => "",
        }
    }

    /// Returns element `n` with surrounding spaces removed (fixed-width senders pad).
    pub fn trimmed(&self, n: usize) -> &str {
        trim(self.element(n))
    }

    /// Element `n` trimmed, as a value that lives as long as the payload (not the segment):
    /// what the interchange's envelope fields are made of.
    fn trimmed_value(&self, n: usize) -> Cow<'a, str> {
        match &self.elements {
            Cow::Borrowed(text) if n >= 1 && n <= self.count => {
                Cow::Borrowed(trim(nth_part(text, self.separator, n - 1)))
            }
            Cow::Borrowed(_) => Cow::Borrowed(""),
            Cow::Owned(_) => Cow::Owned(self.trimmed(n).to_owned()),
        }
    }

    /// The qualifier/value pairs from element `first` on, skipping empty pairs, without
    /// collecting them.
    fn pairs_from(&self, first: usize) -> impl Iterator<Item = (&str, &str)> {
        // Element 0 does not exist: nothing from there (`skip` past the end).
        let mut elements = self
            .elements()
            .skip(first.checked_sub(1).unwrap_or(usize::MAX));
        std::iter::from_fn(move || {
            loop {
                let qualifier = elements.next()?;
                let value = elements.next()?;
                let value = trim(value);
                if !value.is_empty() {
                    return Some((trim(qualifier), value));
                }
            }
        })
    }

    /// Returns the qualifier/value pairs from element `first` on, skipping empty pairs: in
    /// `LIN**BP*7389141G01*ON*RG61372`, `pairs(2)` gives `("BP", "7389141G01")`, `("ON", "RG61372")`.
    pub fn pairs(&self, first: usize) -> Vec<(&str, &str)> {
        self.pairs_from(first).collect()
    }

    /// The value of the first of `qualifiers` (in order) among the qualifier/value pairs from
    /// element `first` on ([`Segment::pairs`]): in `LIN**BP*7389141G01*ON*RG61372`,
    /// `pair_value(2, &["PO", "ON"])` is `RG61372`.
    pub fn pair_value(&self, first: usize, qualifiers: &[&str]) -> Option<String> {
        // One pass over the pairs: the value of the best-ranked qualifier seen first.
        let mut best: Option<(usize, &str)> = None;
        for (qualifier, value) in self.pairs_from(first) {
            let Some(rank) = qualifiers.iter().position(|q| *q == qualifier) else {
                continue;
            };
            if best.is_none_or(|(best_rank, _)| rank < best_rank) {
                best = Some((rank, value));
                if rank == 0 {
                    break;
                }
            }
        }
        best.map(|(_, value)| value.to_owned())
    }

    /// The product id of a `LIN` when the route names no qualifier: the buyer's part number
    /// (`BP`), else the vendor's (`VP`), else the first id that names the item
    /// ([`is_item_qualifier`]: not the order, lot or serial number the `LIN` also gives).
    pub fn product_id(&self) -> Option<String> {
        self.pair_value(2, &["BP", "VP"]).or_else(|| {
            self.pairs_from(2)
                .find(|(qualifier, _)| is_item_qualifier(qualifier))
                .map(|(_, v)| v.to_owned())
        })
    }

    /// Says where the segment is, for error messages: `segment 12 (REF) at line 12`.
    pub fn at(&self) -> String {
        format!(
            "segment {} ({}) at line {}",
            self.position, self.id, self.line
        )
    }

    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Segment<'static> {
        Segment {
            id: owned(self.id),
            elements: owned(self.elements),
            count: self.count,
            tag: self.tag,
            position: self.position,
            line: self.line,
            separator: self.separator,
            component: self.component,
        }
    }
}

/// One transaction set (`ST` … `SE`), for example an 856 ship notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSet<'a> {
    /// The transaction set identifier (`ST01`), for example `856`.
    pub id: Cow<'a, str>,
    /// The transaction set control number (`ST02`).
    pub control_number: Cow<'a, str>,
    /// The segments between `ST` and `SE` (both excluded).
    pub segments: Vec<Segment<'a>>,
    /// The position of the `ST` segment in the interchange.
    pub position: usize,
}

impl<'a> TransactionSet<'a> {
    /// The set's beginning segment `id` (`BSN`, `BIA`, `W06`...), looked for in `segments` (the
    /// set's own, or its header); an error names the set when there is none.
    pub fn beginning<'s>(
        &self,
        id: &str,
        segments: impl IntoIterator<Item = &'s Segment<'a>>,
    ) -> Result<&'s Segment<'a>, crate::MapError>
    where
        'a: 's,
    {
        segments.into_iter().find(|s| s.is(id)).ok_or_else(|| {
            crate::MapError::malformed(format!(
                "transaction set {} {} (segment {}): there is no {id} segment",
                self.id, self.control_number, self.position
            ))
        })
    }

    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> TransactionSet<'static> {
        TransactionSet {
            id: owned(self.id),
            control_number: owned(self.control_number),
            segments: self.segments.into_iter().map(Segment::into_owned).collect(),
            position: self.position,
        }
    }
}

/// One functional group (`GS` … `GE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    /// The functional identifier code (`GS01`), for example `SH`.
    pub functional_id: Cow<'a, str>,
    /// The application sender's code (`GS02`).
    pub sender: Cow<'a, str>,
    /// The application receiver's code (`GS03`).
    pub receiver: Cow<'a, str>,
    /// The group date (`GS04`, `CCYYMMDD` or `YYMMDD`).
    pub date: Cow<'a, str>,
    /// The group time (`GS05`, `HHMM` or longer).
    pub time: Cow<'a, str>,
    /// The group control number (`GS06`).
    pub control_number: Cow<'a, str>,
    /// The version / release / industry identifier (`GS08`), for example `004010`.
    pub version: Cow<'a, str>,
    /// The transaction sets of the group, in order.
    pub transaction_sets: Vec<TransactionSet<'a>>,
}

impl Group<'_> {
    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Group<'static> {
        Group {
            functional_id: owned(self.functional_id),
            sender: owned(self.sender),
            receiver: owned(self.receiver),
            date: owned(self.date),
            time: owned(self.time),
            control_number: owned(self.control_number),
            version: owned(self.version),
            transaction_sets: self
                .transaction_sets
                .into_iter()
                .map(TransactionSet::into_owned)
                .collect(),
        }
    }
}

/// A checked interchange (`ISA` … `IEA`), borrowing from the payload it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interchange<'a> {
    /// The delimiters declared by the `ISA` header.
    pub separators: Separators,
    /// The interchange sender id qualifier (`ISA05`).
    pub sender_qualifier: Cow<'a, str>,
    /// The interchange sender id (`ISA06`), trimmed.
    pub sender: Cow<'a, str>,
    /// The interchange receiver id qualifier (`ISA07`).
    pub receiver_qualifier: Cow<'a, str>,
    /// The interchange receiver id (`ISA08`), trimmed.
    pub receiver: Cow<'a, str>,
    /// The interchange date (`ISA09`, `YYMMDD`).
    pub date: Cow<'a, str>,
    /// The interchange time (`ISA10`, `HHMM`).
    pub time: Cow<'a, str>,
    /// The interchange control version number (`ISA12`), for example `00401`.
    pub version: Cow<'a, str>,
    /// The interchange control number (`ISA13`).
    pub control_number: Cow<'a, str>,
    /// The usage indicator (`ISA15`): `P` production, `T` test.
    pub usage: Cow<'a, str>,
    /// The functional groups, in order.
    pub groups: Vec<Group<'a>>,
    /// The interchange-level segments outside the groups, in order: `TA1` interchange
    /// acknowledgements and the `ISB`/`ISE` service requests. They are about the interchange's
    /// handling, not its business content, so the mappings leave them.
    pub service: Vec<Segment<'a>>,
}

impl<'a> Interchange<'a> {
    /// True when the sender marks the interchange as a test (`ISA15` `T`); pass it to
    /// [`crate::edi::Route::admit`].
    pub fn is_test(&self) -> bool {
        self.usage.trim().eq_ignore_ascii_case("T")
    }

    /// Every transaction set of every group, in order, with the group it belongs to.
    pub fn transaction_sets(&self) -> impl Iterator<Item = (&Group<'a>, &TransactionSet<'a>)> {
        self.groups
            .iter()
            .flat_map(|group| group.transaction_sets.iter().map(move |set| (group, set)))
    }

    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Interchange<'static> {
        Interchange {
            separators: self.separators,
            sender_qualifier: owned(self.sender_qualifier),
            sender: owned(self.sender),
            receiver_qualifier: owned(self.receiver_qualifier),
            receiver: owned(self.receiver),
            date: owned(self.date),
            time: owned(self.time),
            version: owned(self.version),
            control_number: owned(self.control_number),
            usage: owned(self.usage),
            groups: self.groups.into_iter().map(Group::into_owned).collect(),
            service: self.service.into_iter().map(Segment::into_owned).collect(),
        }
    }
}

fn at(segment: &Segment<'_>, reason: impl Into<String>) -> SyntaxError {
    SyntaxError::new(segment.at(), reason)
}

/// Reads and checks one X12 interchange; a payload that holds more than one is an error (read
/// it with [`parse_all`]).
///
/// The bytes are decoded as UTF-8 when valid, otherwise as Latin-1 (X12's extended character set
/// is single-byte). See the module documentation for what is tolerated and what is checked.
pub fn parse(bytes: &[u8]) -> Result<Interchange<'_>, SyntaxError> {
    match crate::edi::payload_text(bytes)? {
        Cow::Borrowed(text) => read(text, One).and_then(first),
        Cow::Owned(text) => read(&text, One)
            .and_then(first)
            .map(Interchange::into_owned),
    }
}

/// Reads and checks every interchange of a payload that holds one or more back to back (`ISA`
/// … `IEA` `ISA` … `IEA`), as gateways batch them into one file. Each is checked as [`parse`]
/// checks one; any error fails the whole payload. The later interchanges must use the first
/// one's separators: one that declares another element separator, component separator or
/// segment terminator is an error that says so ([`batch_terminator_change`]).
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Interchange<'_>>, SyntaxError> {
    match crate::edi::payload_text(bytes)? {
        Cow::Borrowed(text) => read(text, All),
        Cow::Owned(text) => {
            read(&text, All).map(|all| all.into_iter().map(Interchange::into_owned).collect())
        }
    }
}

/// The one interchange of a payload read with [`One`].
fn first(all: Vec<Interchange<'_>>) -> Result<Interchange<'_>, SyntaxError> {
    all.into_iter()
        .next()
        .ok_or_else(|| SyntaxError::new("ISA header", "the interchange is empty"))
}

/// How many interchanges a payload may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exactly one.
    One,
    /// One or more.
    All,
}
use Expect::{All, One};

/// The interchanges of `text`: one or more, never none.
fn read(text: &str, expect: Expect) -> Result<Vec<Interchange<'_>>, SyntaxError> {
    let (separators, segments) = split_segments(text)?;
    build(separators, segments, expect)
}

/// Reads the separators from the `ISA` header at the start of `text`.
fn read_header(text: &str) -> Result<Separators, SyntaxError> {
    let header = |reason: &str| SyntaxError::new("ISA header", reason.to_owned());
    let mut chars = text.chars();
    let Some(element) = chars.by_ref().nth(3).filter(|_| text.starts_with("ISA")) else {
        return Err(header(
            "the interchange does not start with an ISA segment (is this an X12 file?)",
        ));
    };
    if element.is_ascii_alphanumeric() || element.is_whitespace() {
        return Err(header(&format!(
            "'{element}' after ISA is not a usable element separator"
        )));
    }
    // Walk the header element by element; line breaks inside it are wraps, not data.
    let mut seen = 1;
    let mut isa11 = String::new();
    while seen < 16 {
        let Some(c) = chars.next() else {
            return Err(header("the ISA header is truncated before ISA16"));
        };
        if c == element {
            seen += 1;
        } else if seen == 11 && !is_line_break(c) {
            isa11.push(c);
        }
    }
    let mut rest = chars.skip_while(|c| is_line_break(*c));
    let Some(component) = rest.next() else {
        return Err(header("the ISA header is truncated before ISA16"));
    };
    // The terminator is the character right after ISA16; a line break there makes a
    // newline-delimited file. So do spaces there before a line break: the lines are padded,
    // and a space cannot end segments anyway when ISA02 and ISA04 are blank.
    let segment = match rest.next() {
        Some('\r') | Some('\n') => '\n',
        Some(' ' | '\t')
            if matches!(
                rest.clone().find(|c| *c != ' ' && *c != '\t'),
                Some('\r' | '\n')
            ) =>
        {
            '\n'
        }
        Some(c) => c,
        None => {
            return Err(header(
                "the ISA header has no segment terminator after ISA16",
            ));
        }
    };
    if segment == element || segment == component || component == element {
        return Err(header(&format!(
            "the element separator '{element}', component separator '{component}' and segment \
             terminator '{}' must all differ",
            printable(segment)
        )));
    }
    if segment.is_ascii_alphanumeric() || component.is_ascii_alphanumeric() {
        return Err(header(&format!(
            "component separator '{component}' or segment terminator '{segment}' is a letter or \
             digit: the ISA header does not have 16 elements"
        )));
    }
    // ISA11 is the repetition separator from version 00402 on; before it, it is the standards
    // identifier `U`.
    let mut isa11 = isa11.chars();
    let repetition = match (isa11.next(), isa11.next()) {
        (Some(c), None) if !c.is_ascii_alphanumeric() && c != ' ' => Some(c),
        _ => None,
    };
    Ok(Separators {
        element,
        component,
        repetition,
        segment,
    })
}

/// Why an interchange batched after the first one cannot be read with the first one's
/// separators, when its header (`header`, the text from its `ISA` on) declares another segment
/// terminator than the first one's (`first`): `None` when it declares the same, or when it is no
/// readable header (its own checks say why). A batch is split with the first interchange's
/// separators ([`parse_all`]), so the segments of another terminator would run together; the
/// reason says so rather than calling the interchange truncated. A line break right after `ISA16`
/// that is followed by `first` is a wrap of a hard-wrapped file, not a terminator. Public so that
/// an acknowledger refuses such a batch in the same words.
pub fn batch_terminator_change(header: &str, first: char) -> Option<String> {
    let header = header.trim_start_matches([' ', '\t']);
    let theirs = read_header(header).ok()?.segment;
    if theirs == first {
        return None;
    }
    if theirs == '\n' {
        // What follows ISA16 (the character after the 16th element separator, past wraps).
        let element = header[3..].chars().next()?;
        let (at, _) = header.match_indices(element).nth(15)?;
        let mut after = header[at + element.len_utf8()..]
            .chars()
            .skip_while(|c| is_line_break(*c))
            .skip(1)
            .skip_while(|c| is_line_break(*c) || *c == ' ' || *c == '\t');
        if after.next() == Some(first) {
            return None;
        }
    }
    Some(format!(
        "a further interchange starts here with segment terminator '{}', the first uses '{}': a \
         batch keeps the first interchange's separators; send it as a message of its own",
        printable(theirs),
        printable(first)
    ))
}

/// [`batch_terminator_change`] for the segment starting at `from` (position `position`, line
/// `line`) of a payload read with `separators`, when it is an `ISA` after the first one.
fn check_batched_header(
    from: &str,
    collected: &Collected<'_>,
    position: usize,
    line: usize,
) -> Result<(), SyntaxError> {
    if collected.found == 0 || !from.trim_start_matches([' ', '\t']).starts_with("ISA") {
        return Ok(());
    }
    match batch_terminator_change(from, collected.separators.segment) {
        Some(reason) => Err(SyntaxError::new(
            format!("segment {position} (ISA) at line {line}"),
            reason,
        )),
        None => Ok(()),
    }
}

/// Characters gateways commonly use as segment terminators; used to recognise a file that mixes
/// two of them (see [`split_segments`]).
const USUAL_TERMINATORS: [char; 6] = ['~', '\'', '!', '$', '|', '\u{85}'];

/// The segments read so far, each made as soon as its text is found. The first one without a
/// segment identifier is kept as the error to give once the whole text is split: a truncation
/// or mixed terminators, found while splitting, are reported first.
struct Collected<'a> {
    separators: Separators,
    segments: Vec<Segment<'a>>,
    /// Segments found, those refused included (the position of the next one is this plus 1).
    found: usize,
    refused: Option<SyntaxError>,
}

impl<'a> Collected<'a> {
    fn new(separators: Separators, text: &str) -> Self {
        // One segment per terminator at most: a vector that never grows while splitting.
        let capacity = if separators.segment.is_ascii() {
            let terminator = separators.segment as u8;
            text.bytes().filter(|b| *b == terminator).count() + 1
        } else {
            0
        };
        Self {
            separators,
            segments: Vec::with_capacity(capacity),
            found: 0,
            refused: None,
        }
    }

    fn push(&mut self, text: Cow<'a, str>, line: usize) {
        self.found += 1;
        if self.refused.is_some() {
            return;
        }
        match segment(text, line, self.found, self.separators) {
            Ok(segment) => self.segments.push(segment),
            Err(error) => self.refused = Some(error),
        }
    }
}

/// `text` without line breaks: borrowed when it has none.
fn unwrapped(text: &str) -> Cow<'_, str> {
    if text.contains(is_line_break) {
        Cow::Owned(text.chars().filter(|c| !is_line_break(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// The position and character of the first line break or `terminator` in `text`.
fn next_stop(text: &str, terminator: char) -> Option<(usize, char)> {
    if terminator.is_ascii() {
        // Only ASCII bytes can equal an ASCII character in UTF-8: scan bytes.
        find_any(text.as_bytes(), [terminator as u8, b'\n', b'\r'])
            .map(|at| (at, char::from(text.as_bytes()[at])))
    } else {
        text.char_indices()
            .find(|(_, c)| *c == terminator || is_line_break(*c))
    }
}

/// Splits the text into raw segments, dropping line breaks when they are not the terminator.
fn split_segments(text: &str) -> Result<(Separators, Vec<Segment<'_>>), SyntaxError> {
    let body = text.trim_start();
    let leading_lines = text[..text.len() - body.len()]
        .bytes()
        .filter(|b| *b == b'\n')
        .count();
    let separators = read_header(body)?;
    let mut line = 1 + leading_lines;
    let mut collected = Collected::new(separators, body);
    let (current, segment_line) = if separators.segment == '\n' {
        split_lines(body, &mut line, &mut collected)?
    } else {
        split_terminated(body, &mut line, &mut collected)?
    };
    // A newline-delimited file may end without a final line break: a complete IEA trailer
    // (two elements, a control number as long as ISA13) at the end of the file is accepted as
    // the last segment, and checked against its ISA as any trailer is. Anything else there was
    // cut off in the middle.
    let mut current = current;
    if separators.segment == '\n' {
        // What pads the file after its last line (Ctrl-Z, NULs) is not part of the trailer.
        let end = current.trim_end_matches(is_padding).len();
        current = match current {
            Cow::Borrowed(text) => Cow::Borrowed(&text[..end]),
            Cow::Owned(mut text) => {
                text.truncate(end);
                Cow::Owned(text)
            }
        };
    }
    if separators.segment == '\n' && is_complete_trailer(&current, &collected) {
        collected.push(std::mem::take(&mut current), segment_line);
    }
    if !current.trim_matches(is_padding).is_empty() {
        let id: String = current.chars().take(3).collect();
        return Err(SyntaxError::new(
            format!(
                "segment {} ({}) at line {segment_line}",
                collected.found + 1,
                id.trim()
            ),
            format!(
                "the segment has no terminator '{}': the interchange is truncated",
                printable(separators.segment)
            ),
        ));
    }
    match collected.refused {
        Some(refused) => Err(refused),
        None => Ok((separators, collected.segments)),
    }
}

/// Collects the segments of a file whose segments are its lines; returns the unterminated rest
/// and its line.
fn split_lines<'a>(
    body: &'a str,
    line: &mut usize,
    collected: &mut Collected<'a>,
) -> Result<(Cow<'a, str>, usize), SyntaxError> {
    let mut rest = body;
    while let Some((at, c)) = next_stop(rest, '\n') {
        // Spaces before the line break pad the line; they are not data.
        let text = rest[..at].trim_end_matches([' ', '\t']);
        if !text.trim_matches(is_padding).is_empty() {
            check_batched_header(rest, collected, collected.found + 1, *line)?;
            collected.push(Cow::Borrowed(text), *line);
        }
        if c == '\n' {
            *line += 1;
        }
        rest = &rest[at + 1..];
    }
    check_batched_header(rest, collected, collected.found + 1, *line)?;
    Ok((Cow::Borrowed(rest.trim_end_matches([' ', '\t'])), *line))
}

/// Collects the segments of a file with a segment terminator (line breaks anywhere are wraps,
/// not data); returns the unterminated rest and its line.
fn split_terminated<'a>(
    body: &'a str,
    line: &mut usize,
    collected: &mut Collected<'a>,
) -> Result<(Cow<'a, str>, usize), SyntaxError> {
    let separators = collected.separators;
    // Where the current segment's first character is (none before it has one), whether line
    // breaks run through it, and the line it starts on.
    let mut start: Option<usize> = None;
    let mut wrapped = false;
    let mut segment_line = *line;
    let mut cursor = 0;
    while let Some((offset, c)) = next_stop(&body[cursor..], separators.segment) {
        let at = cursor + offset;
        if offset > 0 && start.is_none() {
            start = Some(cursor);
            segment_line = *line;
            check_batched_header(&body[cursor..], collected, collected.found + 1, *line)?;
        }
        if is_line_break(c) {
            if c == '\n' {
                *line += 1;
            }
            if let Some(start) = start {
                wrapped = true;
                check_mixed_terminator(
                    &body[at..],
                    &body[start..at],
                    separators,
                    collected.found + 1,
                    segment_line,
                )?;
            }
        } else {
            let text = match start.take() {
                Some(start) if wrapped => unwrapped(&body[start..at]),
                Some(start) => Cow::Borrowed(&body[start..at]),
                None => Cow::Borrowed(""),
            };
            wrapped = false;
            collected.push(text, segment_line);
        }
        cursor = at + c.len_utf8();
    }
    if cursor < body.len() && start.is_none() {
        start = Some(cursor);
        segment_line = *line;
        check_batched_header(&body[cursor..], collected, collected.found + 1, *line)?;
    }
    let current = start.map_or(Cow::Borrowed(""), |start| unwrapped(&body[start..]));
    Ok((current, segment_line))
}

/// Whether `text` is a whole `IEA` trailer of the interchange whose `ISA` was collected last:
/// two elements, the second as long as `ISA13` (the fixed-width control number a cut file
/// would have shortened). Whether the numbers agree is the trailer check's to say.
fn is_complete_trailer(text: &str, collected: &Collected<'_>) -> bool {
    let mut elements = text.trim().split(collected.separators.element);
    // The interchange it closes is the last one opened.
    let isa13 = collected
        .segments
        .iter()
        .rev()
        .find(|segment| segment.is("ISA"))
        .map(|isa| isa.element(13))
        .unwrap_or_default();
    match (
        elements.next(),
        elements.next(),
        elements.next(),
        elements.next(),
    ) {
        (Some("IEA"), Some(count), Some(control), None) => {
            !count.trim().is_empty() && control.trim().len() == isa13.trim().len()
        }
        _ => false,
    }
}

/// Refuses a line break that follows another usual terminator and starts what looks like a new
/// segment: such a file mixes terminators, and dropping the line break would glue two segments.
/// `from_break` is the text from the line break on, `current` the segment before it (with any
/// earlier wraps).
fn check_mixed_terminator(
    from_break: &str,
    current: &str,
    separators: Separators,
    position: usize,
    line: usize,
) -> Result<(), SyntaxError> {
    let Some(before) = current.chars().rev().find(|c| !is_line_break(*c)) else {
        return Ok(());
    };
    // A declared separator is never the terminator: a line broken after it is a wrap.
    let declared = [
        Some(separators.segment),
        Some(separators.element),
        Some(separators.component),
        separators.repetition,
    ];
    if declared.contains(&Some(before)) || !USUAL_TERMINATORS.contains(&before) {
        return Ok(());
    }
    let next: String = from_break
        .chars()
        .skip_while(|c| is_line_break(*c))
        .take(4)
        .collect();
    let id_len = next
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        .count();
    if (2..=3).contains(&id_len) && next.chars().nth(id_len) == Some(separators.element) {
        let id: String = unwrapped(current).chars().take(3).collect();
        return Err(SyntaxError::new(
            format!(
                "segment {position} ({}) at line {line}",
                id.trim_end_matches(separators.element)
            ),
            format!(
                "the segment ends with '{before}' and a line break, and the next line starts a new \
                 segment '{}', but the ISA header declares '{}' as the segment terminator: the file \
                 mixes segment terminators",
                &next[..id_len],
                printable(separators.segment)
            ),
        ));
    }
    Ok(())
}

fn printable(c: char) -> String {
    match c {
        '\n' => "line break".to_owned(),
        c if c.is_control() => format!("\\u{{{:x}}}", u32::from(c)),
        c => c.to_string(),
    }
}

/// Reads one segment's identifier and counts its elements; `position` and `line` say where it
/// is.
fn segment(
    text: Cow<'_, str>,
    line: usize,
    position: usize,
    separators: Separators,
) -> Result<Segment<'_>, SyntaxError> {
    let start = text.len() - text.trim_start_matches([' ', '\t']).len();
    // Where the identifier ends and how many element separators follow it.
    let mut id_end = None;
    let mut separators_after = 0;
    if separators.element.is_ascii() {
        let wanted = separators.element as u8;
        let bytes = &text.as_bytes()[start..];
        if let Some(at) = find_any(bytes, [wanted]) {
            id_end = Some(start + at);
            separators_after = bytes[at + 1..].iter().filter(|b| **b == wanted).count();
        }
    } else if let Some(at) = text[start..].find(separators.element) {
        id_end = Some(start + at);
        separators_after = text[start + at..].matches(separators.element).count() - 1;
    }
    let (id_end, elements_start) = match id_end {
        Some(end) => (end, Some(end + separators.element.len_utf8())),
        None => (text.len(), None),
    };
    let id = &text[start..id_end];
    let valid_id = (2..=3).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && id.as_bytes()[0].is_ascii_uppercase();
    if !valid_id {
        // A batched interchange written with other separators than the first one's.
        if let Some(other) = text[start..]
            .strip_prefix("ISA")
            .and_then(|rest| rest.chars().next())
            .filter(|c| !c.is_ascii_alphanumeric() && !c.is_whitespace())
        {
            return Err(SyntaxError::new(
                format!("segment {position} at line {line}"),
                format!(
                    "a second interchange starts here with element separator '{other}', the first \
                     uses '{}': a batch keeps the first interchange's separators; send it as a \
                     message of its own",
                    separators.element
                ),
            ));
        }
        let shown: String = text[start..].chars().take(20).collect();
        return Err(SyntaxError::new(
            format!("segment {position} at line {line}"),
            format!("'{shown}' does not start with a segment identifier"),
        ));
    }
    let count = match elements_start {
        Some(_) => 1 + separators_after,
        None => 0,
    };
    let from = elements_start.unwrap_or(text.len());
    let (id, elements) = match text {
        Cow::Borrowed(text) => (
            Cow::Borrowed(&text[start..id_end]),
            Cow::Borrowed(&text[from..]),
        ),
        Cow::Owned(text) => (
            Cow::Owned(text[start..id_end].to_owned()),
            Cow::Owned(text[from..].to_owned()),
        ),
    };
    Ok(Segment {
        tag: tag(id.as_bytes()),
        id,
        elements,
        count,
        position,
        line,
        separator: separators.element,
        component: separators.component,
    })
}

/// Whether two control numbers are the same: numerically when both are digits (a sender may
/// write `000000089` in one and `89` in the other), else as text.
fn same_number(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A control number (or another number a document refers to, such as an `HL` id) as
/// [`same_number`] compares it, as one key: two numbers are the same exactly when their keys
/// are (`000000089` and `89` are).
pub fn number_key(text: &str) -> String {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(number) => format!("#{number}"),
        Err(_) => format!("={text}"),
    }
}

fn count(segment: &Segment<'_>, n: usize, what: &str) -> Result<usize, SyntaxError> {
    let text = segment.trimmed(n);
    text.parse().map_err(|_| {
        at(
            segment,
            format!("{}{n:02} '{text}' is not a {what} count", segment.id),
        )
    })
}

/// Checks the envelopes of the interchanges `segments` hold, back to back.
fn build(
    separators: Separators,
    segments: Vec<Segment<'_>>,
    expect: Expect,
) -> Result<Vec<Interchange<'_>>, SyntaxError> {
    let mut iter = segments.into_iter();
    let Some(mut isa) = iter.next() else {
        return Err(SyntaxError::new("ISA header", "the interchange is empty"));
    };
    let mut all: Vec<Interchange<'_>> = Vec::new();
    loop {
        // Where the header is, for an error about the whole interchange.
        let (position, line) = (isa.position, isa.line);
        let interchange = build_one(separators, isa, &mut iter)?;
        // The same sender's control number twice is the same interchange sent twice: mapped
        // twice, its events would be published twice.
        if let Some(earlier) = all.iter().position(|other| {
            other.sender_qualifier == interchange.sender_qualifier
                && other.sender == interchange.sender
                && same_number(&other.control_number, &interchange.control_number)
        }) {
            return Err(SyntaxError::new(
                format!("segment {position} (ISA) at line {line}"),
                format!(
                    "interchange {} repeats the control number {} of interchange {} from the same sender {}: a duplicate",
                    all.len() + 1,
                    interchange.control_number,
                    earlier + 1,
                    interchange.sender
                ),
            ));
        }
        all.push(interchange);
        let Some(next) = iter.next() else {
            return Ok(all);
        };
        if !next.is("ISA") {
            return Err(at(&next, "segment after the IEA trailer"));
        }
        if expect == One {
            return Err(at(
                &next,
                "a second interchange follows the IEA trailer; this reader takes one (x12::parse_all reads them all)",
            ));
        }
        // The segments were split with the first header's separators.
        if next.count != 16 || next.element(16) != separators.component.to_string() {
            return Err(at(
                &next,
                format!(
                    "interchange {} does not use the first interchange's separators (element '{}', component '{}', terminator '{}'); send it as a message of its own",
                    all.len() + 1,
                    separators.element,
                    separators.component,
                    printable(separators.segment)
                ),
            ));
        }
        isa = next;
    }
}

/// Checks one interchange from its `ISA` header to its `IEA` trailer, taking its segments from
/// `iter` and leaving what follows the trailer.
fn build_one<'a>(
    separators: Separators,
    isa: Segment<'a>,
    iter: &mut std::vec::IntoIter<Segment<'a>>,
) -> Result<Interchange<'a>, SyntaxError> {
    if isa.count != 16 {
        return Err(at(
            &isa,
            format!("ISA has {} elements, expected 16", isa.count),
        ));
    }
    let mut interchange = Interchange {
        separators,
        sender_qualifier: isa.trimmed_value(5),
        sender: isa.trimmed_value(6),
        receiver_qualifier: isa.trimmed_value(7),
        receiver: isa.trimmed_value(8),
        date: isa.trimmed_value(9),
        time: isa.trimmed_value(10),
        version: isa.trimmed_value(12),
        control_number: isa.trimmed_value(13),
        usage: isa.trimmed_value(15),
        groups: Vec::new(),
        service: Vec::new(),
    };
    // The envelope's identifiers, matched as packed numbers.
    const ISA: u32 = tag(b"ISA");
    const IEA: u32 = tag(b"IEA");
    const GS: u32 = tag(b"GS");
    const GE: u32 = tag(b"GE");
    const ST: u32 = tag(b"ST");
    const SE: u32 = tag(b"SE");
    const TA1: u32 = tag(b"TA1");
    const ISB: u32 = tag(b"ISB");
    const ISE: u32 = tag(b"ISE");
    let mut group: Option<(Group, Segment)> = None;
    let mut set: Option<(TransactionSet, Segment)> = None;
    // The open group's set numbers ([`number_key`]) and where each set stands in it: a group
    // may hold thousands of sets, so a repeat is found without a scan per set.
    let mut set_numbers: std::collections::HashMap<String, usize> = Default::default();
    // The interchange's group numbers ([`number_key`]) and where each group's GS stands: GS06
    // names a group in its interchange (its sets' source transaction is the interchange's, the
    // group's and their own number), so a second group with the same number would give its
    // sets the identity of the first group's, and pass for their resend.
    let mut group_numbers: std::collections::HashMap<String, String> = Default::default();
    let mut last_position = isa.position;
    while let Some(segment) = iter.next() {
        last_position = segment.position;
        if let Some((current, st)) = set.as_mut() {
            match segment.tag {
                SE => {
                    let counted = current.segments.len() + 2;
                    let declared = count(&segment, 1, "segment")?;
                    if declared != counted {
                        return Err(at(
                            &segment,
                            format!(
                                "SE01 counts {declared} segments, the transaction set {} {} has {counted} (ST to SE)",
                                current.id, current.control_number
                            ),
                        ));
                    }
                    if !same_number(segment.element(2), &current.control_number) {
                        return Err(at(
                            &segment,
                            format!(
                                "SE02 control number '{}' differs from ST02 '{}' ({})",
                                segment.trimmed(2),
                                current.control_number,
                                st.at()
                            ),
                        ));
                    }
                    if let (Some((done, _)), Some((g, _))) = (set.take(), group.as_mut()) {
                        g.transaction_sets.push(done);
                    }
                }
                ST | GE | GS | IEA | ISA => {
                    return Err(at(
                        &segment,
                        format!(
                            "{} before the SE trailer of transaction set {} {} ({})",
                            segment.id,
                            current.id,
                            current.control_number,
                            st.at()
                        ),
                    ));
                }
                _ => current.segments.push(segment),
            }
            continue;
        }
        if let Some((current, gs)) = group.as_mut() {
            match segment.tag {
                ST => {
                    if segment.trimmed(1).is_empty() || segment.trimmed(2).is_empty() {
                        return Err(at(
                            &segment,
                            "ST01 (transaction set id) and ST02 (control number) are required",
                        ));
                    }
                    // ST02 names a set in its group (its source transaction is the group's and
                    // its own number): a second set with the same number would pass for a resend
                    // of the first, and its events would be skipped as duplicates.
                    let number = number_key(segment.element(2));
                    if let Some(first) = set_numbers
                        .get(&number)
                        .and_then(|&at| current.transaction_sets.get(at))
                    {
                        return Err(at(
                            &segment,
                            format!(
                                "ST02 control number '{}' repeats that of transaction set {} {} \
                                 (segment {}) in the same group: a set's number is unique in its \
                                 group",
                                segment.trimmed(2),
                                first.id,
                                first.control_number,
                                first.position
                            ),
                        ));
                    }
                    set_numbers.insert(number, current.transaction_sets.len());
                    // The set runs to the next SE: room for its segments at once.
                    let length = iter.as_slice().iter().position(|s| s.is("SE"));
                    set = Some((
                        TransactionSet {
                            id: segment.trimmed_value(1),
                            control_number: segment.trimmed_value(2),
                            segments: Vec::with_capacity(length.unwrap_or_default()),
                            position: segment.position,
                        },
                        segment,
                    ));
                }
                GE => {
                    let declared = count(&segment, 1, "transaction set")?;
                    if declared != current.transaction_sets.len() {
                        return Err(at(
                            &segment,
                            format!(
                                "GE01 counts {declared} transaction sets, the group {} has {}",
                                current.control_number,
                                current.transaction_sets.len()
                            ),
                        ));
                    }
                    if !same_number(segment.element(2), &current.control_number) {
                        return Err(at(
                            &segment,
                            format!(
                                "GE02 control number '{}' differs from GS06 '{}' ({})",
                                segment.trimmed(2),
                                current.control_number,
                                gs.at()
                            ),
                        ));
                    }
                    if let Some((done, _)) = group.take() {
                        interchange.groups.push(done);
                    }
                }
                _ => {
                    return Err(at(
                        &segment,
                        format!(
                            "expected ST or the GE trailer of the group opened at {}, found {}",
                            gs.at(),
                            segment.id
                        ),
                    ));
                }
            }
            continue;
        }
        match segment.tag {
            GS => {
                if segment.trimmed(6).is_empty() {
                    return Err(at(&segment, "GS06 (group control number) is required"));
                }
                let number = number_key(segment.element(6));
                if let Some(first) = group_numbers.get(&number) {
                    return Err(at(
                        &segment,
                        format!(
                            "GS06 control number '{}' repeats that of group {first} in the same \
                             interchange: a group's number is unique in its interchange",
                            segment.trimmed(6)
                        ),
                    ));
                }
                group_numbers.insert(
                    number,
                    format!(
                        "{} {} (segment {})",
                        segment.trimmed(1),
                        segment.trimmed(6),
                        segment.position
                    ),
                );
                set_numbers.clear();
                group = Some((
                    Group {
                        functional_id: segment.trimmed_value(1),
                        sender: segment.trimmed_value(2),
                        receiver: segment.trimmed_value(3),
                        date: segment.trimmed_value(4),
                        time: segment.trimmed_value(5),
                        control_number: segment.trimmed_value(6),
                        version: segment.trimmed_value(8),
                        transaction_sets: Vec::new(),
                    },
                    segment,
                ));
            }
            IEA => {
                let declared = count(&segment, 1, "functional group")?;
                if declared != interchange.groups.len() {
                    return Err(at(
                        &segment,
                        format!(
                            "IEA01 counts {declared} functional groups, the interchange has {}",
                            interchange.groups.len()
                        ),
                    ));
                }
                if !same_number(segment.element(2), &interchange.control_number) {
                    return Err(at(
                        &segment,
                        format!(
                            "IEA02 control number '{}' differs from ISA13 '{}'",
                            segment.trimmed(2),
                            interchange.control_number
                        ),
                    ));
                }
                return Ok(interchange);
            }
            TA1 | ISB | ISE => interchange.service.push(segment),
            _ => {
                return Err(at(
                    &segment,
                    format!("expected GS or the IEA trailer, found {}", segment.id),
                ));
            }
        }
    }
    let open = match (&set, &group) {
        (Some((s, st)), _) => format!(
            "transaction set {} {} ({}) has no SE trailer",
            s.id,
            s.control_number,
            st.at()
        ),
        (None, Some((g, gs))) => {
            format!("group {} ({}) has no GE trailer", g.control_number, gs.at())
        }
        (None, None) => "there is no IEA trailer".to_owned(),
    };
    Err(SyntaxError::new(
        format!("after segment {last_position}"),
        format!("the interchange ends too early: {open}"),
    ))
}

/// Converts an X12 unit of measure code (element 355) to its UN/ECE Recommendation 20 code.
///
/// Covers the units seen on ship notices, schedules and warehouse documents; returns none for any
/// other code so the mapping can refuse it rather than guess.
///
/// Packages counted as units (case, box, pallet, roll, carton, bag, drum, bottle, reel, package)
/// take the code Rec 20 prescribes for them (Revision 17, introduction, note 2): the UN/ECE
/// Recommendation 21 package code prefixed with `X` (Rec 21 `CT` carton is `XCT`, `CS` case
/// `XCS`, `BX` box `XBX`, `PX` pallet `XPX`, `RO` roll `XRO`), as Rec 20's own two-letter package
/// codes (`CT`, `CS`, `BX`, `PX`, `RO`, `BG`...) are deleted there in its favour; so a box is
/// `XBX` whether an X12 or an EDIFACT partner counted it. A kit is Rec 20's `KT`. A lot (X12
/// `LO`) names no fixed quantity and is left out.
pub fn unit_to_rec20(code: &str) -> Option<&'static str> {
    Some(match code.trim() {
        "EA" => "EA",
        "PC" | "PCS" => "PCE",
        "LB" => "LBR",
        "KG" => "KGM",
        "GR" => "GRM",
        "TN" => "STN",
        "MT" => "TNE",
        "FT" => "FOT",
        "IN" => "INH",
        "MR" => "MTR",
        "CM" => "CMT",
        "GA" | "GL" => "GLL",
        "LT" => "LTR",
        "DZ" => "DZN",
        "PR" => "PR",
        "SF" | "FT2" => "FTK",
        "YD" => "YRD",
        // A linear foot is a foot of length (what is sold by the run: wire, profiles, fabric).
        "LF" => "FOT",
        "CF" => "FTQ",
        "OZ" => "ONZ",
        "ML" => "MLT",
        "HR" => "HUR",
        "SH" => "ST",
        "UN" => "C62",
        // X12 355 → Rec 21 package code, prefixed `X` as Rec 20 prescribes.
        "CA" | "CS" => "XCS",
        "BX" => "XBX",
        "PL" | "PX" => "XPX",
        "RL" => "XRO",
        "CT" => "XCT",
        "BG" => "XBG",
        "DR" => "XDR",
        "BO" => "XBO",
        "RE" => "XRL",
        "PK" => "XPK",
        "KT" => "KT",
        _ => return None,
    })
}

/// Reads an X12 date: `CCYYMMDD`, or `YYMMDD` with years 00–49 in the 2000s and 50–99 in the
/// 1900s (the convention of 6-digit X12 dates such as `ISA09` and version 2 documents).
pub fn date(text: &str) -> Result<crate::timestamp::Date, crate::timestamp::TimestampError> {
    let text = text.trim();
    if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
        let century = if text < "50" { "20" } else { "19" };
        let mut compact = [0u8; 8];
        compact[..2].copy_from_slice(century.as_bytes());
        compact[2..].copy_from_slice(text.as_bytes());
        let compact = std::str::from_utf8(&compact).unwrap_or_default();
        return crate::timestamp::parse_date(compact);
    }
    crate::timestamp::parse_date(text)
}

/// Reads an X12 time: `HHMM`, `HHMMSS` or `HHMMSSD..` (decimal seconds are dropped).
pub fn time(text: &str) -> Result<crate::timestamp::Time, crate::timestamp::TimestampError> {
    let text = text.trim();
    let cut = if text.len() > 6 && text.bytes().all(|b| b.is_ascii_digit()) {
        &text[..6]
    } else {
        text
    };
    crate::timestamp::parse_time(cut)
}

/// Builds an RFC 3339 timestamp from an X12 date (`CCYYMMDD` or `YYMMDD`), an optional time
/// (`HHMM`, `HHMMSS`; empty means midnight) and a UTC offset such as `+01:00`.
pub fn timestamp(date_text: &str, time_text: &str, offset: &str) -> Result<String, String> {
    let day = date(date_text).map_err(|e| e.to_string())?;
    let at = if time_text.trim().is_empty() {
        crate::timestamp::Time::MIDNIGHT
    } else {
        time(time_text).map_err(|e| e.to_string())?
    };
    let offset = crate::timestamp::parse_offset(offset).map_err(|e| e.to_string())?;
    crate::timestamp::rfc3339(day, at, offset).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;

impl<'a> Interchange<'a> {
    /// The `source_transaction` of `set`: `ISA05/ISA06` `:` `ISA13` `:` `GS06` `:` `ST02`,
    /// then the document's own number when given. See [`crate::edi::source_transaction`].
    pub fn source_transaction(&self, set: &TransactionSet<'_>, number: Option<&str>) -> String {
        // The group whose sets span the set's position: a look at each group's first and last
        // set, not at every set, so an interchange of thousands of sets stays linear.
        let group = self.groups.iter().find(|group| {
            match (
                group.transaction_sets.first(),
                group.transaction_sets.last(),
            ) {
                (Some(first), Some(last)) => {
                    (first.position..=last.position).contains(&set.position)
                }
                _ => false,
            }
        });
        let mut controls = vec![&*self.control_number];
        controls.extend(group.map(|g| &*g.control_number));
        controls.push(&set.control_number);
        crate::edi::source_transaction((&self.sender_qualifier, &self.sender), &controls, number)
    }

    /// The transaction sets, each checked to be of `id` (`856`); one of another id is an
    /// `unsupported-document` error that says it is not `what` ("an 856 ship notice").
    pub fn transaction_sets_of<'s>(
        &'s self,
        id: &'s str,
        what: &'s str,
    ) -> impl Iterator<Item = Result<&'s TransactionSet<'a>, crate::MapError>> + 's {
        self.transaction_sets().map(move |(_, set)| {
            if set.id == id {
                Ok(set)
            } else {
                Err(crate::MapError::unsupported(format!(
                    "transaction set {} {} (segment {}) is not {what}",
                    set.id, set.control_number, set.position
                )))
            }
        })
    }
}

/// Checks a transaction set's `CTT` totals when it has a `CTT` segment: `CTT01` must count the
/// `line_id` segments, and `CTT02` (the hash total), when present, must total element `element`
/// of the `quantities` segments (see [`check_totals_against`] for how). A set without `CTT`
/// passes: the segment is optional in most documents.
pub fn check_totals<'a, 'b: 'a>(
    set: &TransactionSet<'_>,
    line_id: &str,
    quantities: impl IntoIterator<Item = &'a Segment<'b>>,
    element: usize,
) -> Result<(), crate::MapError> {
    let lines = set.segments.iter().filter(|s| s.is(line_id)).count();
    let quantities: Vec<&Segment<'_>> = quantities.into_iter().collect();
    check_totals_against(set, &[(line_id, lines)], &[("the", quantities)], element)
}

/// [`check_totals`] for a document whose partners total it in more than one way. `CTT01` must
/// equal one of `counts`, each a count and what it counts (an 856's `CTT01` counts every `HL`
/// level by the standard's note, only the item levels in some automotive guides). `CTT02` must
/// total element `element` of one of `quantities`, each its segments and how a message names
/// them ("the item-level", "all": the segment id and element follow) (an 856's
/// hash total sums every `SN1` by the standard's note, only the item levels' in guides where
/// packs break an item's quantity down), either as numbers or as X12 hash totals are defined
/// (data element 347: the values summed without regard to decimal points or signs, the
/// left-most digits truncated to fit the element's ten).
pub fn check_totals_against<'a, 'b: 'a>(
    set: &TransactionSet<'_>,
    counts: &[(&str, usize)],
    quantities: &[(&str, Vec<&'a Segment<'b>>)],
    element: usize,
) -> Result<(), crate::MapError> {
    let Some(ctt) = set.segments.iter().find(|s| s.is("CTT")) else {
        return Ok(());
    };
    let declared = ctt.trimmed(1);
    let number = declared.parse::<usize>().ok();
    if !declared.is_empty() && !counts.iter().any(|(_, lines)| number == Some(*lines)) {
        return Err(crate::MapError::malformed(match counts {
            [(what, lines)] => format!(
                "{}: CTT01 counts {declared} {what} lines, the transaction set has {lines}",
                ctt.at()
            ),
            _ => format!(
                "{}: CTT01 counts {declared} lines, the transaction set has {}",
                ctt.at(),
                counts
                    .iter()
                    .map(|(what, lines)| format!("{lines} {what} lines"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        }));
    }
    let hash = ctt.trimmed(2);
    if hash.is_empty() {
        return Ok(());
    }
    let declared = crate::decimal::parse(hash, '.')
        .map_err(|e| crate::MapError::malformed(format!("{}, CTT02 hash total: {e}", ctt.at())))?;
    let declared_digits = hash_value(hash);
    let mut totals = Vec::with_capacity(quantities.len());
    for (what, segments) in quantities {
        let total = Total::of(segments, element)?;
        if total.sum == declared || (!hash.contains('.') && total.hash == declared_digits) {
            return Ok(());
        }
        totals.push((*what, total));
    }
    // `SN102 ` (the element summed), or nothing when no segment holds a quantity.
    let id = quantities
        .iter()
        .find_map(|(_, segments)| segments.first())
        .map_or_else(String::new, |segment| {
            format!("{}{element:02} ", segment.id)
        });
    let add_up = |what: &str, total: &Total| {
        let as_hash = if total.hash == hash_value(&crate::decimal::to_wit(total.sum)) {
            String::new()
        } else {
            format!(
                " ({} as a hash total, without decimal points and signs)",
                total.hash
            )
        };
        format!(
            "{what} {id}quantities add up to {}{as_hash}",
            crate::decimal::to_wit(total.sum)
        )
    };
    // Ways that total the same are one to the reader.
    let totals = match totals.as_slice() {
        [(_, first), rest @ ..] if rest.iter().all(|(_, total)| total == first) => {
            add_up("the", first)
        }
        _ => totals
            .iter()
            .map(|(what, total)| add_up(what, total))
            .collect::<Vec<_>>()
            .join(" and "),
    };
    Err(crate::MapError::malformed(format!(
        "{}: CTT02 hash total is {}, {totals}",
        ctt.at(),
        crate::decimal::to_wit(declared),
    )))
}

/// The two totals a `CTT02` may state of some quantities: their sum, and their X12 hash total.
#[derive(PartialEq)]
struct Total {
    sum: crate::decimal::Decimal,
    hash: u64,
}

impl Total {
    fn of(segments: &[&Segment<'_>], element: usize) -> Result<Self, crate::MapError> {
        let mut total = Self {
            sum: crate::decimal::Decimal::ZERO,
            hash: 0,
        };
        for segment in segments {
            let text = segment.trimmed(element);
            if text.is_empty() {
                continue;
            }
            let value = crate::decimal::parse(text, '.').map_err(|e| {
                crate::MapError::malformed(format!(
                    "{}, {}{element:02} quantity: {e}",
                    segment.at(),
                    segment.id
                ))
            })?;
            total.sum = crate::decimal::checked_sum([total.sum, value]).ok_or_else(|| {
                crate::MapError::malformed(format!(
                    "{}, {}{element:02} quantity: '{text}' takes the total of the {}{element:02} \
                     quantities past the largest decimal number",
                    segment.at(),
                    segment.id,
                    segment.id
                ))
            })?;
            total.hash = (total.hash + hash_value(text)) % HASH_MODULUS;
        }
        Ok(total)
    }
}

/// A hash total has at most ten digits: a larger sum keeps its right-most ten.
const HASH_MODULUS: u64 = 10_000_000_000;

/// A value as a hash total counts it: its digits, without decimal point or sign, the left-most
/// truncated to ten.
fn hash_value(text: &str) -> u64 {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .fold(0, |value, digit| {
            (value * 10 + u64::from(digit - b'0')) % HASH_MODULUS
        })
}

/// Refuses a document whose purpose (X12 element 353, in `BSN01`, `BIA01`, `BFR01`, `BSS01`,
/// `BRA03`...: element `element` of its beginning segment `begin`) withdraws what was sent
/// before: `01` cancellation, `03` delete. Mapping it would publish the withdrawn data as live
/// (a shipment, a stock balance, demand), and no canonical event says "withdrawn", so it is an
/// `unsupported-document` error naming the purpose; `what` names the document ("the ship
/// notice").
pub fn refuse_withdrawn(
    begin: &Segment<'_>,
    element: usize,
    what: &str,
) -> Result<(), crate::MapError> {
    let purpose = match begin.trimmed(element) {
        "01" => "a cancellation (01)",
        "03" => "a deletion (03)",
        _ => return Ok(()),
    };
    Err(crate::MapError::unsupported(format!(
        "{}, {}{element:02}: {what} is {purpose}; it withdraws what was sent before, which no \
         canonical event can say, so it is not mapped",
        begin.at(),
        begin.id
    )))
}

/// [`refuse_withdrawn`], and also a document that changes or replaces what was sent before
/// (`04` change, `05` replace) or sends it again (`07` duplicate, `18` reissue, `22` information
/// copy): for goods that move (a ship notice, a receipt) it would book the same goods again, as a
/// resend comes in a new interchange whose identity is new. Documents of levels or demand (an
/// 846, an 830) are replaced by their next one and need only [`refuse_withdrawn`].
pub fn refuse_not_original(
    begin: &Segment<'_>,
    element: usize,
    what: &str,
) -> Result<(), crate::MapError> {
    refuse_withdrawn(begin, element, what)?;
    let (purpose, because) = match begin.trimmed(element) {
        "04" => ("a change (04)", "it changes what was sent before"),
        "05" => ("a replacement (05)", "it replaces what was sent before"),
        "07" => ("a duplicate (07)", "it sends again what was sent before"),
        "18" => ("a reissue (18)", "it sends again what was sent before"),
        "22" => (
            "an information copy (22)",
            "it sends again what was sent before",
        ),
        _ => return Ok(()),
    };
    Err(crate::MapError::unsupported(format!(
        "{}, {}{element:02}: {what} is {purpose}; {because}, which no canonical event can say \
         (mapped, its goods would count again), so it is not mapped",
        begin.at(),
        begin.id
    )))
}

/// Whether a product/service id qualifier (element 235) names the item itself rather than
/// something a `LIN` or line gives beside it: a purchase order (`PO`), its line (`PL`), a
/// customer order (`ON`), a lot (`LT`), batch (`B8`) or serial number (`SN`), a country of
/// origin (`CH`) or a description (`PD`). A fallback to "the first id" takes the first pair
/// that does, so `LIN*1*PO*4500099*VP*VEND-77` is item `VEND-77`, never the order.
pub fn is_item_qualifier(qualifier: &str) -> bool {
    !matches!(
        qualifier.trim(),
        "" | "PO" | "PL" | "ON" | "LT" | "B8" | "SN" | "CH" | "PD"
    )
}

/// The UTC offset of an X12 time code (element 623: `DTM04`, `G62` 05...): `UT`/`GM` UTC; the
/// fixed North American standard (`ES`, `CS`, `MS`, `PS`, `AS` Alaska, `HS` Hawaii-Aleutian,
/// `NS` Newfoundland, `TS` Atlantic) and daylight (`ED`, `CD`, `MD`, `PD`, `AD`, `HD`, `ND`, `TD`)
/// zones; `01`–`12` UTC+01 to +12 and `13`–`24` UTC-12 to -01 (ISO P01–P12, M12–M01). None for
/// anything else: [`time_zone`] tells local time from a code it does not know.
pub fn time_code_offset(code: &str) -> Option<&'static str> {
    const HOURS: [&str; 25] = [
        "+00:00", "+01:00", "+02:00", "+03:00", "+04:00", "+05:00", "+06:00", "+07:00", "+08:00",
        "+09:00", "+10:00", "+11:00", "+12:00", "-12:00", "-11:00", "-10:00", "-09:00", "-08:00",
        "-07:00", "-06:00", "-05:00", "-04:00", "-03:00", "-02:00", "-01:00",
    ];
    let code = code.trim();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) {
        return code
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=24).contains(n))
            .map(|n| HOURS[n]);
    }
    Some(match code {
        "UT" | "GM" => "+00:00",
        "ND" => "-02:30",
        "TD" => "-03:00",
        "NS" => "-03:30",
        "TS" | "ED" => "-04:00",
        "ES" | "CD" => "-05:00",
        "CS" | "MD" => "-06:00",
        "MS" | "PD" => "-07:00",
        "PS" | "AD" => "-08:00",
        "AS" | "HD" => "-09:00",
        "HS" => "-10:00",
        _ => return None,
    })
}

/// The offset a time with time code `code` is at: the code's own ([`time_code_offset`]), else
/// `route_offset` when the code is absent, local time (`LT`) or a zone name that does not say
/// whether daylight saving applies (`ET`, `CT`, `MT`, `PT`, `AT`, `HT`, `NT`, `TT`). Any other
/// code is an error, never a guess: a time read at the wrong offset would be wrong by hours
/// without a trace.
pub fn time_zone<'o>(code: &str, route_offset: &'o str) -> Result<&'o str, String> {
    match code.trim() {
        "" | "LT" | "ET" | "CT" | "MT" | "PT" | "AT" | "HT" | "NT" | "TT" => Ok(route_offset),
        code => time_code_offset(code).ok_or_else(|| {
            format!(
                "time code '{code}' is not one this reader knows (UT, GM, LT, the North American \
                 zones such as ES or PD, or 01-24 for UTC+01 to UTC-01)"
            )
        }),
    }
}

/// The timestamp of a `DTM` segment (`DTM*011*20260714*1530*ES`): date `DTM02`, time `DTM03`,
/// in the zone of the time code `DTM04` ([`time_zone`]). A `DTM` that gives its date and time in
/// `DTM05`/`DTM06` instead (`DTM*011****DT*202607141530`) is read from there: formats `D8`
/// (`CCYYMMDD`) and `DT` (`CCYYMMDDHHMM`, or longer with seconds); a range (`RD8`...) names no
/// one time and is an error.
pub fn dtm_timestamp(dtm: &Segment<'_>, route_offset: &str) -> Result<String, String> {
    let offset = time_zone(dtm.element(4), route_offset)?;
    if dtm.element(2).trim().is_empty() && !dtm.element(5).trim().is_empty() {
        let period = dtm.trimmed(6);
        return match dtm.trimmed(5) {
            "D8" => timestamp(period, "", offset),
            "DT" if period.len() > 8 && period.is_char_boundary(8) => {
                timestamp(&period[..8], &period[8..], offset)
            }
            "DT" => Err(format!(
                "DTM06 '{period}' is not a date and time (DTM05 DT: CCYYMMDDHHMM)"
            )),
            format => Err(format!(
                "DTM05 format '{format}' names no single date and time (accepted: D8, DT)"
            )),
        };
    }
    timestamp(dtm.element(2), dtm.element(3), offset)
}

/// The value `value` reads from each of `segments` (`Ok(None)` for a segment that gives none),
/// when they agree: a segment may be repeated with the same value (two `DTM*011` of one ship
/// date), but two different values (two ship dates, two `N1*SF` parties) are a
/// `malformed-input` error naming both segments and `what` ("DTM*011 ship date"), never the
/// first taken silently. Returns the value with the first segment that gives it; `None` when no
/// segment gives one.
pub fn agreed<'s, 'a: 's, T: PartialEq + std::fmt::Display>(
    segments: impl IntoIterator<Item = &'s Segment<'a>>,
    what: &str,
    mut value: impl FnMut(&'s Segment<'a>) -> Result<Option<T>, crate::MapError>,
) -> Result<Option<(T, &'s Segment<'a>)>, crate::MapError> {
    let mut found: Option<(T, &'s Segment<'a>)> = None;
    for segment in segments {
        let Some(this) = value(segment)? else {
            continue;
        };
        match &found {
            Some((first, at)) if *first != this => {
                return Err(crate::MapError::malformed(format!(
                    "{}: {what} '{this}' differs from '{first}' at {}; a repeat must say the same",
                    segment.at(),
                    at.at()
                )));
            }
            Some(_) => {}
            None => found = Some((this, segment)),
        }
    }
    Ok(found)
}

/// [`party`], refusing a party that `segments` name twice differently: two `N1*SF` with
/// different ids (or names, without ids) are an error ([`agreed`]), not the first one taken.
pub fn agreed_party<'s, 'a: 's>(
    segments: impl IntoIterator<Item = &'s Segment<'a>> + Clone,
    codes: &[&str],
) -> Result<Option<String>, crate::MapError> {
    for code in codes {
        let what = format!("N1*{code} party");
        let named = agreed(segments.clone(), &what, |n1| {
            Ok(Some(party_id(n1))
                .filter(|_| n1.is("N1") && n1.trimmed(1) == *code)
                .filter(|id| !id.is_empty()))
        })?;
        if let Some((id, _)) = named {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// An `N1` party's id (`N104`), else its name (`N102`).
fn party_id(n1: &Segment<'_>) -> String {
    match n1.trimmed(4) {
        "" => n1.trimmed(2),
        id => id,
    }
    .to_owned()
}

/// The first of the parties `codes` (`N101` entity codes, in order of preference, for example
/// `["WH", "SF"]`) that `segments` name in an `N1`: by its id (`N104`), else by its name
/// (`N102`). `None` when none of them is named.
pub fn party<'s, 'a: 's>(
    segments: impl IntoIterator<Item = &'s Segment<'a>> + Clone,
    codes: &[&str],
) -> Option<String> {
    codes.iter().find_map(|code| {
        let n1 = segments
            .clone()
            .into_iter()
            .find(|s| s.is("N1") && s.trimmed(1) == *code)?;
        let id = match n1.trimmed(4) {
            "" => n1.trimmed(2),
            id => id,
        };
        Some(id.to_owned()).filter(|p| !p.is_empty())
    })
}
