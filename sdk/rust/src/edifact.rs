//! A strict reader for UN/EDIFACT interchanges (`UNA`? `UNB` … `UNZ`).
//!
//! [`parse`] honours the `UNA` service string advice (component separator, element separator,
//! decimal mark, release character, reserved, segment terminator) and defaults to `:+.? '`
//! without one. The release character escapes the next character. It checks every envelope:
//! `UNB`/`UNZ` control references equal and `UNZ` counting the messages (or the groups when `UNG`
//! is used), `UNG`/`UNE` the same, `UNH`/`UNT` references equal and `UNT` counting the message's
//! segments, and no group reference (`UNG` 0048) repeated in its interchange nor message
//! reference (`UNH` 0062) in its group or interchange (a message's `source_transaction` is made of
//! them, so a repeat would pass for a resend). A missing or wrong trailer, or a truncated interchange, is an [`SyntaxError`] that
//! names the segment; there is never a partial result.
//!
//! Tolerated: a UTF-8 byte-order mark, a payload in UTF-16 (by its byte-order mark or the NUL
//! beside its first letter), CR/LF between (or inside) segments, and NUL bytes or Ctrl-Z (0x1A)
//! padding after the last `UNZ` (anything else there is refused). Line breaks are not data in
//! EDIFACT (files come hard-wrapped, at 80 columns for example), so they are dropped, and a
//! release character before one releases the first character after it (`RFF+BT:AB?`, a line
//! break, then `:C'` is the batch `AB:C`). For that reason a `UNA` naming a line break (CR or LF)
//! as the segment terminator, or as a separator or release character, is refused with a message
//! saying so: the reader cannot both drop line breaks and end segments with them, and guessing
//! which breaks are terminators would misread a file wrapped inside its segments.
//!
//! Numbers use the interchange's decimal mark: [`Interchange::decimal`] turns `12,5` into `12.5`
//! when the `UNA` says `,`.

use std::borrow::Cow;

use crate::edi::SyntaxError;
use crate::text::{is_line_break, is_padding, owned};

use crate::decimal::{self, DecimalError};

/// The delimiters of one interchange, from its `UNA` or the defaults `:+.? '` (or, for an
/// interchange written with the information separators, [`Separators::LEVEL_B`]).
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

/// The information separator IS3 (0x1D), the element separator of syntax level B and above.
const IS3: u8 = 0x1D;

impl Separators {
    /// The defaults of an interchange without `UNA` that writes the information separators
    /// (ISO 9735, syntax level B and above, for example `UNOB`): IS1 (0x1F) between components,
    /// IS3 (0x1D) between elements, IS4 (0x1C) after a segment, and no release character. An
    /// interchange is read with them when its `UNB` is followed by IS3.
    pub const LEVEL_B: Separators = Separators {
        component: '\u{1f}',
        element: '\u{1d}',
        decimal_mark: '.',
        release: None,
        segment: '\u{1c}',
    };
}

/// One segment: its tag and its elements, each a list of components (release characters
/// removed), borrowed from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The segment tag, for example `LIN`.
    pub tag: Cow<'a, str>,
    /// Every component of every element after the tag, in order, with the 0-based index of the
    /// element it belongs to.
    components: Vec<(usize, Cow<'a, str>)>,
    /// The 1-based position of the segment in the interchange (`UNB` is 1; `UNA` is not counted).
    pub position: usize,
    /// The 1-based line of the file the segment starts on.
    pub line: usize,
}

impl<'a> Segment<'a> {
    /// Returns component `m` of element `n` (both 1-based), or `""` when absent:
    /// in `QTY+12:40:PCE`, `value(1, 2)` is `40`.
    pub fn value(&self, n: usize, m: usize) -> &str {
        self.component(n, m).map_or("", |c| c.as_ref())
    }

    fn component(&self, n: usize, m: usize) -> Option<&Cow<'a, str>> {
        let (element, offset) = (n.checked_sub(1)?, m.checked_sub(1)?);
        let first = self.components.partition_point(|(e, _)| *e < element);
        match self.components.get(first.checked_add(offset)?) {
            Some((e, text)) if *e == element => Some(text),
            _ => None,
        }
    }

    /// Component `m` of element `n` trimmed, as a value that lives as long as the payload (not
    /// the segment): what the interchange's envelope fields are made of.
    fn trimmed_value(&self, n: usize, m: usize) -> Cow<'a, str> {
        match self.component(n, m) {
            Some(Cow::Borrowed(text)) => Cow::Borrowed(text.trim()),
            Some(Cow::Owned(text)) => Cow::Owned(text.trim().to_owned()),
            None => Cow::Borrowed(""),
        }
    }

    /// Component `m` of element `n` as written, living as long as the payload.
    fn untrimmed_value(&self, n: usize, m: usize) -> Cow<'a, str> {
        self.component(n, m).cloned().unwrap_or_default()
    }

    /// Returns the components of element `n` (1-based); none when absent.
    pub fn element(&self, n: usize) -> impl ExactSizeIterator<Item = &str> {
        let components = match n.checked_sub(1) {
            Some(element) => {
                let first = self.components.partition_point(|(e, _)| *e < element);
                let end = self.components.partition_point(|(e, _)| *e <= element);
                self.components.get(first..end).unwrap_or(&[])
            }
            None => &[],
        };
        components.iter().map(|(_, text)| text.as_ref())
    }

    /// The number of elements after the tag.
    pub fn element_count(&self) -> usize {
        self.components.last().map_or(0, |(e, _)| e + 1)
    }

    /// Says where the segment is, for error messages: `segment 12 (QTY) at line 12`.
    pub fn at(&self) -> String {
        format!(
            "segment {} ({}) at line {}",
            self.position, self.tag, self.line
        )
    }

    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Segment<'static> {
        Segment {
            tag: owned(self.tag),
            components: self
                .components
                .into_iter()
                .map(|(element, text)| (element, owned(text)))
                .collect(),
            position: self.position,
            line: self.line,
        }
    }
}

/// One message (`UNH` … `UNT`), for example a DESADV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message reference number (`UNH` 0062).
    pub reference: Cow<'a, str>,
    /// The message type (`UNH` S009 0065), for example `DESADV`.
    pub message_type: Cow<'a, str>,
    /// The message version (S009 0052), for example `D`.
    pub version: Cow<'a, str>,
    /// The message release (S009 0054), for example `96A`.
    pub release: Cow<'a, str>,
    /// The controlling agency (S009 0051), for example `UN`.
    pub agency: Cow<'a, str>,
    /// The association assigned code (S009 0057), for example `EAN005`, when given.
    pub association: Cow<'a, str>,
    /// The segments between `UNH` and `UNT` (both excluded).
    pub segments: Vec<Segment<'a>>,
    /// The position of the `UNH` segment in the interchange.
    pub position: usize,
    /// The index in [`Interchange::groups`] of the group the message is in, when groups are used.
    pub group: Option<usize>,
}

impl Message<'_> {
    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            reference: owned(self.reference),
            message_type: owned(self.message_type),
            version: owned(self.version),
            release: owned(self.release),
            agency: owned(self.agency),
            association: owned(self.association),
            segments: self.segments.into_iter().map(Segment::into_owned).collect(),
            position: self.position,
            group: self.group,
        }
    }
}

/// One functional group (`UNG` … `UNE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    /// The message group identification (`UNG` 0038), for example `ORDERS`.
    pub functional_id: Cow<'a, str>,
    /// The group reference number (`UNG` 0048).
    pub reference: Cow<'a, str>,
    /// How many messages the group holds.
    pub message_count: usize,
}

impl Group<'_> {
    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Group<'static> {
        Group {
            functional_id: owned(self.functional_id),
            reference: owned(self.reference),
            message_count: self.message_count,
        }
    }
}

/// A checked interchange, borrowing from the payload it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interchange<'a> {
    /// The delimiters and decimal mark in force.
    pub separators: Separators,
    /// The syntax identifier (`UNB` S001 0001), for example `UNOC`.
    pub syntax: Cow<'a, str>,
    /// The syntax version (`UNB` S001 0002), for example `3`.
    pub syntax_version: Cow<'a, str>,
    /// The sender identification (`UNB` S002 0004).
    pub sender: Cow<'a, str>,
    /// The sender code qualifier (`UNB` S002 0007), for example `14` for a GLN.
    pub sender_qualifier: Cow<'a, str>,
    /// The recipient identification (`UNB` S003 0010).
    pub recipient: Cow<'a, str>,
    /// The preparation date (`UNB` S004 0017, `YYMMDD` or `CCYYMMDD`).
    pub date: Cow<'a, str>,
    /// The preparation time (`UNB` S004 0019, `HHMM`).
    pub time: Cow<'a, str>,
    /// The interchange control reference (`UNB` 0020).
    pub control_reference: Cow<'a, str>,
    /// The test indicator (`UNB` 0035): `1` when the sender marks the interchange as a test,
    /// empty otherwise.
    pub test_indicator: Cow<'a, str>,
    /// The functional groups, when the interchange uses `UNG`.
    pub groups: Vec<Group<'a>>,
    /// Every message, in order (inside groups or not).
    pub messages: Vec<Message<'a>>,
}

impl Interchange<'_> {
    /// Reads a numeric value written with this interchange's decimal mark and returns it in the
    /// WIT `decimal` form: `12,5` gives `12.5` when the mark is `,`. Syntax version 4 takes a
    /// comma or a full stop whatever the `UNA` says (ISO 9735-1:1998, clause 10, keeps the
    /// `UNA` position only for compatibility), so there a value in the other mark is read too.
    pub fn decimal(&self, text: &str) -> Result<String, DecimalError> {
        let declared = self.separators.decimal_mark;
        let mark = match (declared, self.syntax_version.trim()) {
            ('.', "4") if text.contains(',') => ',',
            (',', "4") if text.contains('.') => '.',
            _ => declared,
        };
        wit_decimal(text, mark)
    }

    /// True when the sender marks the interchange as a test (`UNB` 0035 `1`); pass it to
    /// [`crate::edi::Route::admit`].
    pub fn is_test(&self) -> bool {
        self.test_indicator.trim() == "1"
    }

    /// A copy that owns its text, independent of the payload.
    pub fn into_owned(self) -> Interchange<'static> {
        Interchange {
            separators: self.separators,
            syntax: owned(self.syntax),
            syntax_version: owned(self.syntax_version),
            sender: owned(self.sender),
            sender_qualifier: owned(self.sender_qualifier),
            recipient: owned(self.recipient),
            date: owned(self.date),
            time: owned(self.time),
            control_reference: owned(self.control_reference),
            test_indicator: owned(self.test_indicator),
            groups: self.groups.into_iter().map(Group::into_owned).collect(),
            messages: self.messages.into_iter().map(Message::into_owned).collect(),
        }
    }
}

/// Reads `text` written with the decimal mark `mark` and returns the WIT `decimal` form.
pub fn wit_decimal(text: &str, mark: char) -> Result<String, DecimalError> {
    decimal::parse(text, mark).map(decimal::to_wit)
}

fn at(segment: &Segment<'_>, reason: impl Into<String>) -> SyntaxError {
    SyntaxError::new(segment.at(), reason)
}

/// Reads and checks one EDIFACT interchange.
///
/// The bytes are decoded as UTF-8 when valid. Otherwise the `UNB` syntax identifier names the
/// character set: `UNOD` to `UNOK` are the ISO 8859 parts 2, 5, 7, 3, 4, 6, 8 and 9 (Central
/// European, Cyrillic, Greek...), anything else (levels A to C) is read as Latin-1, which every
/// byte is, so nothing is ever lost.
pub fn parse(bytes: &[u8]) -> Result<Interchange<'_>, SyntaxError> {
    let mut all = decoded(bytes, One)?;
    Ok(all.remove(0))
}

/// Reads and checks every interchange of a payload that holds one or more back to back (`UNA`?
/// `UNB` … `UNZ`, then the next), as gateways batch them into one file. Each is checked as
/// [`parse`] checks one, under its own `UNA` (or the defaults without one); any error fails the
/// whole payload, and so does an interchange repeating an earlier one's sender and control
/// reference (its messages would be mapped twice). The payload's character set is decided once,
/// as [`parse`] decides it.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Interchange<'_>>, SyntaxError> {
    decoded(bytes, All)
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

/// The interchanges of `bytes`, decoded as [`parse`] says; never none.
fn decoded(bytes: &[u8], expect: Expect) -> Result<Vec<Interchange<'_>>, SyntaxError> {
    let text = match crate::edi::payload_text(bytes)? {
        // Decoded (from Latin-1, or UTF-16): a Latin-1 reading gives way to the character set
        // the syntax level names. The envelope of a UTF-16 payload is not ASCII bytes, so its
        // syntax level is not found there and its decoding stands.
        Cow::Owned(latin1) => Cow::Owned(syntax_level_text(bytes).unwrap_or(latin1)),
        utf8 => utf8,
    };
    match text {
        Cow::Borrowed(text) => read(text, expect),
        Cow::Owned(text) => {
            read(&text, expect).map(|all| all.into_iter().map(Interchange::into_owned).collect())
        }
    }
}

/// The interchanges of `text`: one, or with [`All`] as many as follow each other.
fn read(text: &str, expect: Expect) -> Result<Vec<Interchange<'_>>, SyntaxError> {
    let mut line = 1;
    let mut position = 0;
    let (first, mut rest) = read_one(text, &mut line, &mut position)?;
    let mut all = vec![first];
    loop {
        let next = rest.trim_start();
        // NUL bytes and Ctrl-Z (the DOS end-of-file mark) that some systems pad a file with may
        // end it, as white space may: after the last UNZ only.
        let data = next.trim_start_matches(is_padding);
        if data.is_empty() {
            return Ok(all);
        }
        let padded = data.len() < next.len();
        let another = data.starts_with("UNA") || data.starts_with("UNB");
        if !another || expect == One || padded {
            line += rest[..rest.len() - data.len()].matches('\n').count();
            let here = format!("segment {} at line {line}", position + 1);
            if another && expect == One {
                return Err(SyntaxError::new(
                    here,
                    "a second interchange follows the UNZ trailer; this reader takes one \
                     (edifact::parse_all reads them all)",
                ));
            }
            if another {
                return Err(SyntaxError::new(
                    here,
                    "an interchange follows NUL or Ctrl-Z padding after the UNZ trailer; such \
                     padding may only end the file, never stand between interchanges",
                ));
            }
            let reason = if padded {
                "segment after the UNZ trailer and the NUL or Ctrl-Z padding after it (such \
                 padding may only end the file)"
            } else {
                "segment after the UNZ trailer"
            };
            // Read as a segment of the interchange before, to name it.
            let separators = all[all.len() - 1].separators;
            return Err(match split(data, separators, &mut line, position) {
                Ok((segments, _)) if !segments.is_empty() => at(&segments[0], reason),
                _ => SyntaxError::new(here, reason),
            });
        }
        let (interchange, after) = read_one(rest, &mut line, &mut position)?;
        if let Some(earlier) = all.iter().position(|earlier| {
            earlier.sender == interchange.sender
                && earlier.control_reference == interchange.control_reference
        }) {
            return Err(SyntaxError::new(
                format!("interchange {}", all.len() + 1),
                format!(
                    "it repeats interchange {} (sender {}, control reference {}): a duplicate, \
                     whose messages would be mapped twice",
                    earlier + 1,
                    interchange.sender,
                    interchange.control_reference
                ),
            ));
        }
        all.push(interchange);
        rest = after;
    }
}

/// The payload decoded in the character set its syntax level names, when it names one of
/// `UNOD` ... `UNOK` and every byte is in that set.
fn syntax_level_text(bytes: &[u8]) -> Option<String> {
    let body = crate::text::without_bom(bytes);
    let encoding = syntax_level_encoding(body)?;
    Some(
        encoding
            .decode_without_bom_handling_and_without_replacement(body)?
            .into_owned(),
    )
}

/// The ISO 8859 part the `UNB` syntax identifier (`UNOD` ... `UNOK`) names, read from the bytes
/// before they are decoded (the envelope is ASCII whatever the level).
fn syntax_level_encoding(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let at = bytes.windows(3).position(|w| w == b"UNB")?;
    // `UNB`, its element separator, then the four letters of the identifier.
    let identifier = bytes.get(at + 4..at + 8)?;
    Some(match identifier {
        b"UNOD" => encoding_rs::ISO_8859_2,
        b"UNOE" => encoding_rs::ISO_8859_5,
        b"UNOF" => encoding_rs::ISO_8859_7,
        b"UNOG" => encoding_rs::ISO_8859_3,
        b"UNOH" => encoding_rs::ISO_8859_4,
        b"UNOI" => encoding_rs::ISO_8859_6,
        b"UNOJ" => encoding_rs::ISO_8859_8,
        // ISO 8859-9; the Encoding Standard reads it as its superset windows-1254.
        b"UNOK" => encoding_rs::WINDOWS_1254,
        _ => return None,
    })
}

/// One interchange from the start of `text` (after blank lines), and the text after its `UNZ`
/// trailer; `line` and `position` go on from the segments read before it.
fn read_one<'a>(
    text: &'a str,
    line: &mut usize,
    position: &mut usize,
) -> Result<(Interchange<'a>, &'a str), SyntaxError> {
    let mut body = text.trim_start();
    *line += text[..text.len() - body.len()]
        .bytes()
        .filter(|b| *b == b'\n')
        .count();
    let mut separators = Separators::default();
    if let Some(advice) = body.strip_prefix("UNA") {
        let mut chars = advice.char_indices();
        let mut una = [' '; 6];
        for slot in &mut una {
            match chars.next() {
                Some((_, c)) => *slot = c,
                None => {
                    return Err(SyntaxError::new(
                        "UNA",
                        "the service string advice is shorter than its 6 characters",
                    ));
                }
            }
        }
        separators = Separators {
            component: una[0],
            element: una[1],
            decimal_mark: una[2],
            release: (una[3] != ' ').then_some(una[3]),
            segment: una[5],
        };
        // ISO 9735: one character may not serve two purposes. A release character that is also
        // the decimal mark turned 12.5 into 125, a decimal mark that is also the component
        // separator 12,5 into 12 of unit 5.
        let roles = [
            ("component separator", una[0]),
            ("element separator", una[1]),
            ("decimal mark", una[2]),
            ("release character", una[3]),
            ("repetition separator", una[4]),
            ("segment terminator", una[5]),
        ];
        for (i, (role, c)) in roles.iter().enumerate() {
            let same = roles[i + 1..]
                .iter()
                .find(|(_, other)| other == c && *c != ' ');
            if let Some((other_role, _)) = same {
                return Err(SyntaxError::new(
                    "UNA",
                    format!("'{c}' is both the {role} and the {other_role}: each must differ"),
                ));
            }
        }
        // Line breaks are not data here: they are dropped between and inside segments (files
        // come wrapped), so one cannot end a segment or separate its parts. Said plainly, as
        // otherwise the whole file reads as one unterminated segment and is called truncated.
        let breaks = [
            ("segment terminator", una[5]),
            ("component separator", una[0]),
            ("element separator", una[1]),
            ("release character", una[3]),
        ];
        if let Some((role, c)) = breaks.iter().find(|(_, c)| is_line_break(*c)) {
            let name = if *c == '\n' { "LF" } else { "CR" };
            return Err(SyntaxError::new(
                "UNA",
                format!(
                    "the {role} is a line break ({name}); this reader drops line breaks between \
                     and inside segments (files come wrapped), so a line break cannot be the \
                     {role}: use a printable character (the default is {})",
                    match *role {
                        "segment terminator" => '\'',
                        "component separator" => ':',
                        "element separator" => '+',
                        _ => '?',
                    }
                ),
            ));
        }
        if separators.decimal_mark != '.' && separators.decimal_mark != ',' {
            return Err(SyntaxError::new(
                "UNA",
                format!(
                    "the decimal mark '{}' is neither '.' nor ','",
                    separators.decimal_mark
                ),
            ));
        }
        body = chars.as_str();
    } else if body.as_bytes().get(3) == Some(&IS3) {
        separators = Separators::LEVEL_B;
    }
    // Said before splitting: with another syntax's separators the whole file reads as one
    // unterminated segment, and "truncated" would send the reader the wrong way.
    if !body.is_empty() && !body.trim_start().starts_with("UNB") {
        let start: String = body.trim_start().chars().take(3).collect();
        let hint = match start.as_str() {
            "ISA" => "it starts with ISA: an X12 interchange, not EDIFACT",
            "STX" => "it starts with STX: a TRADACOMS transmission, not EDIFACT",
            _ => "is this an EDIFACT file?",
        };
        return Err(SyntaxError::new(
            "UNB",
            format!("the interchange does not start with UNA or UNB ({hint})"),
        ));
    }
    let (segments, rest) = split(body, separators, line, *position)?;
    *position += segments.len();
    Ok((build(separators, segments)?, rest))
}

/// The component being read: where it starts in the text, and whether it must be copied to be
/// read (a release character or a line break runs through it).
struct Pending {
    start: usize,
    copy: bool,
}

impl Pending {
    fn at(start: usize) -> Self {
        Self { start, copy: false }
    }

    /// The component ending at `end`: the slice itself, or a copy without line breaks and with
    /// each released character (the first after the release character that is no line break)
    /// in place of its release character.
    fn finish<'a>(&self, text: &'a str, end: usize, release: Option<char>) -> Cow<'a, str> {
        let raw = text.get(self.start..end).unwrap_or("");
        if !self.copy {
            return Cow::Borrowed(raw);
        }
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if is_line_break(c) {
                continue;
            }
            if Some(c) == release {
                // It releases the next character of the data: a line break wrapping the file
                // between them is not data.
                value.extend(chars.by_ref().find(|next| !is_line_break(*next)));
            } else {
                value.push(c);
            }
        }
        Cow::Owned(value)
    }
}

/// Splits the text after the `UNA` into segments, honouring the release character, up to and
/// with the first `UNZ`; returns them and the text after it. Positions count on from `before`.
fn split<'a>(
    text: &'a str,
    separators: Separators,
    line: &mut usize,
    before: usize,
) -> Result<(Vec<Segment<'a>>, &'a str), SyntaxError> {
    let mut segments = Vec::new();
    // The finished components of the segment being read, by element (0 is the tag).
    let mut components: Vec<(usize, Cow<'a, str>)> = Vec::new();
    let mut element = 0;
    let mut pending = Pending::at(0);
    let mut started = false;
    let mut segment_line = *line;
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '\n' {
            *line += 1;
        }
        if is_line_break(c) {
            // A break before the component's first character is skipped over; inside it, the
            // component is copied without it.
            if pending.start == at {
                pending.start = at + 1;
            } else {
                pending.copy = true;
            }
            continue;
        }
        if !started {
            segment_line = *line;
            started = true;
        }
        if Some(c) == separators.release {
            // ISO 9735: the release character applies to the next character of the data. A line
            // break after it wraps the file (a release at the end of an 80-column line): it is
            // not data, so the character released is the first one after the break.
            let mut released = None;
            for (_, next) in chars.by_ref() {
                if next == '\n' {
                    *line += 1;
                }
                if !is_line_break(next) {
                    released = Some(next);
                    break;
                }
            }
            if released.is_none() {
                return Err(SyntaxError::new(
                    format!(
                        "segment {} at line {segment_line}",
                        before + segments.len() + 1
                    ),
                    "the interchange ends with a release character: it is truncated",
                ));
            }
            pending.copy = true;
        } else if c == separators.segment {
            components.push((element, pending.finish(text, at, separators.release)));
            let done = std::mem::take(&mut components);
            let read = segment(done, before + segments.len() + 1, segment_line)?;
            let trailer = read.tag == "UNZ";
            segments.push(read);
            if trailer {
                return Ok((segments, &text[at + c.len_utf8()..]));
            }
            element = 0;
            pending = Pending::at(at + c.len_utf8());
            started = false;
        } else if c == separators.element {
            components.push((element, pending.finish(text, at, separators.release)));
            element += 1;
            pending = Pending::at(at + c.len_utf8());
        } else if c == separators.component {
            components.push((element, pending.finish(text, at, separators.release)));
            pending = Pending::at(at + c.len_utf8());
        }
    }
    components.push((
        element,
        pending.finish(text, text.len(), separators.release),
    ));
    if started && components.iter().any(|(_, c)| !c.trim().is_empty()) {
        let tag = components
            .first()
            .filter(|(e, _)| *e == 0)
            .map_or("", |(_, c)| c.trim());
        return Err(SyntaxError::new(
            format!(
                "segment {} ({tag}) at line {segment_line}",
                before + segments.len() + 1,
            ),
            format!(
                "the segment has no terminator '{}': the interchange is truncated",
                separators.segment
            ),
        ));
    }
    Ok((segments, ""))
}

fn segment(
    mut components: Vec<(usize, Cow<'_, str>)>,
    position: usize,
    line: usize,
) -> Result<Segment<'_>, SyntaxError> {
    let tag_parts = components.partition_point(|(e, _)| *e == 0);
    let tag = match tag_parts {
        1 => match components.remove(0).1 {
            Cow::Borrowed(tag) => Cow::Borrowed(tag.trim_start()),
            Cow::Owned(tag) => Cow::Owned(tag.trim_start().to_owned()),
        },
        _ => {
            let joined: Vec<Cow<'_, str>> = components.drain(..tag_parts).map(|(_, c)| c).collect();
            Cow::Owned(joined.join(":").trim_start().to_owned())
        }
    };
    let valid = tag.len() == 3 && tag.chars().all(|c| c.is_ascii_uppercase());
    if !valid {
        return Err(SyntaxError::new(
            format!("segment {position} at line {line}"),
            format!("'{tag}' is not a segment tag (three capital letters)"),
        ));
    }
    for (element, _) in &mut components {
        *element -= 1;
    }
    Ok(Segment {
        tag,
        components,
        position,
        line,
    })
}

fn count(segment: &Segment<'_>, n: usize, what: &str) -> Result<usize, SyntaxError> {
    let text = segment.value(n, 1).trim();
    text.parse().map_err(|_| {
        at(
            segment,
            format!("element {n} '{text}' is not a {what} count"),
        )
    })
}

fn required<'a>(
    segment: &Segment<'a>,
    n: usize,
    m: usize,
    what: &str,
) -> Result<Cow<'a, str>, SyntaxError> {
    let value = segment.trimmed_value(n, m);
    if value.is_empty() {
        return Err(at(segment, format!("the {what} is missing")));
    }
    Ok(value)
}

/// Checks the envelopes and builds the interchange.
fn build(
    separators: Separators,
    segments: Vec<Segment<'_>>,
) -> Result<Interchange<'_>, SyntaxError> {
    let mut iter = segments.into_iter();
    let unb = match iter.next() {
        Some(s) if s.tag == "UNB" => s,
        Some(s) => return Err(at(&s, "the interchange does not start with UNB")),
        None => return Err(SyntaxError::new("UNB", "the interchange is empty")),
    };
    let mut interchange = Interchange {
        separators,
        syntax: unb.untrimmed_value(1, 1),
        syntax_version: unb.untrimmed_value(1, 2),
        sender: required(&unb, 2, 1, "sender identification (UNB S002)")?,
        sender_qualifier: unb.untrimmed_value(2, 2),
        recipient: required(&unb, 3, 1, "recipient identification (UNB S003)")?,
        date: unb.untrimmed_value(4, 1),
        time: unb.untrimmed_value(4, 2),
        control_reference: required(&unb, 5, 1, "interchange control reference (UNB 0020)")?,
        test_indicator: unb.untrimmed_value(11, 1),
        groups: Vec::new(),
        messages: Vec::new(),
    };
    let mut group: Option<(Group, Segment)> = None;
    let mut message: Option<(Message, Segment)> = None;
    let mut direct_messages = 0;
    // Each message's group (none outside groups) and reference, and where it stands in
    // `interchange.messages`: an interchange may hold thousands, so a repeat is found without a
    // scan per message.
    let mut references: std::collections::HashMap<(Option<usize>, String), usize> =
        Default::default();
    // Each group's reference, and its group id and UNG segment: UNG 0048 names a group in its
    // interchange (its messages' source transaction is the interchange's, the group's and their
    // own reference), so a second group with the same reference would give its messages the
    // identity of the first group's, and pass for their resend.
    let mut group_references: std::collections::HashMap<String, String> = Default::default();
    let mut last_position = unb.position;
    for segment in iter.by_ref() {
        last_position = segment.position;
        if let Some((current, unh)) = message.as_mut() {
            match segment.tag.as_ref() {
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
        match segment.tag.as_ref() {
            "UNH" => {
                if !interchange.groups.is_empty() && group.is_none() {
                    return Err(at(
                        &segment,
                        "a message outside a group in an interchange that uses UNG groups",
                    ));
                }
                let reference = required(&segment, 1, 1, "message reference (UNH 0062)")?;
                // UNH 0062 names a message in its interchange, or in its group when the
                // interchange has UNG groups (its source transaction is the interchange's, the
                // group's and its own reference): a second message with the same reference
                // there would pass for a resend of the first, its events skipped.
                let in_group = group.as_ref().map(|_| interchange.groups.len());
                let named = (in_group, reference.to_string());
                if let Some(first) = references
                    .get(&named)
                    .and_then(|&at| interchange.messages.get(at))
                {
                    let scope = if in_group.is_some() {
                        "group"
                    } else {
                        "interchange"
                    };
                    return Err(at(
                        &segment,
                        format!(
                            "message reference '{reference}' repeats that of message {} (segment \
                             {}) in the same {scope}: a message's reference is unique there",
                            first.message_type, first.position
                        ),
                    ));
                }
                references.insert(named, interchange.messages.len());
                let message_type = required(&segment, 2, 1, "message type (UNH S009)")?;
                message = Some((
                    Message {
                        reference,
                        message_type,
                        version: segment.untrimmed_value(2, 2),
                        release: segment.untrimmed_value(2, 3),
                        agency: segment.untrimmed_value(2, 4),
                        association: segment.untrimmed_value(2, 5),
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
                if let Some(first) = group_references.get(reference.as_ref()) {
                    return Err(at(
                        &segment,
                        format!(
                            "group reference '{reference}' repeats that of group {first} in the \
                             same interchange: a group's reference is unique there"
                        ),
                    ));
                }
                group_references.insert(
                    reference.to_string(),
                    format!(
                        "{} (segment {})",
                        segment.value(1, 1).trim(),
                        segment.position
                    ),
                );
                group = Some((
                    Group {
                        functional_id: segment.untrimmed_value(1, 1),
                        reference,
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
                // The segments end at the UNZ: what follows is the caller's to judge.
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
    Err(SyntaxError::new(
        format!("after segment {last_position}"),
        format!("the interchange ends too early: {open}"),
    ))
}

/// A `DTM` date/time value read by its format code: the date, the time when the format has
/// one, and the UTC offset when the format carries a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The calendar date.
    pub date: crate::timestamp::Date,
    /// The time of day, when the format has one.
    pub time: Option<crate::timestamp::Time>,
    /// The zone's offset, when the format carries one (`205`, `303`, `304`).
    pub offset: Option<crate::timestamp::UtcOffset>,
}

/// Reads a `DTM` date/time value by its format code (`C507` 2379) into a date and, when the
/// format has one, a time: `102` `CCYYMMDD`, `203` `CCYYMMDDHHMM`, `204` `CCYYMMDDHHMMSS`,
/// `101` `YYMMDD`, `201` `YYMMDDHHMM` (years 00–49 in the 2000s), the periods `718` and `719`
/// (their start), and the zoned formats of [`zoned_date_time`] (whose zone this drops). An
/// empty format means `102`. The time `2400` (`240000`), the end of a day, is read as the next
/// day's `00:00`, the same instant.
pub fn date_time(
    value: &str,
    format: &str,
) -> Result<(crate::timestamp::Date, Option<crate::timestamp::Time>), String> {
    zoned_date_time(value, format).map(|read| (read.date, read.time))
}

/// Reads a `DTM` date/time value like [`date_time`], keeping the time zone of the formats that
/// carry one: `303` `CCYYMMDDHHMMZZZ` and `304` `CCYYMMDDHHMMSSZZZ`, whose zone `ZZZ` is a
/// signed offset (`?+01`, `-05`, `+0530`) or a zone name ([`zone_offset`]), and `205`
/// `CCYYMMDDHHMMZHHMM` (`+0100`).
pub fn zoned_date_time(value: &str, format: &str) -> Result<DateTime, String> {
    use crate::timestamp::{parse_date, parse_offset, parse_time};
    let value = value.trim();
    let format = format.trim();
    // A period (`718` `CCYYMMDD-CCYYMMDD`, `719` `CCYYMMDDHHMM-CCYYMMDDHHMM`, a delivery window,
    // mostly sent without the hyphen) is read as its start, the earliest moment it names.
    let period = match format {
        "718" => Some(("102", 8)),
        "719" => Some(("203", 12)),
        _ => None,
    };
    if let Some((single, width)) = period {
        let start = match value.split_once('-') {
            Some((start, end)) if start.len() == width && end.len() == width => Some(start),
            None if value.len() == 2 * width => value.get(..width),
            _ => None,
        };
        return match start {
            Some(start) => zoned_date_time(start, single)
                .map_err(|e| format!("the start of period '{value}' (format {format}): {e}")),
            None => Err(format!(
                "'{value}' is not a period of format {format} (a start and an end, both {})",
                if width == 8 {
                    "CCYYMMDD"
                } else {
                    "CCYYMMDDHHMM"
                }
            )),
        };
    }
    // The digits of the date and time, and the zone after them.
    let (digits, zone) = match format {
        "303" | "205" => value.split_at_checked(12).unwrap_or((value, "")),
        "304" => value.split_at_checked(14).unwrap_or((value, "")),
        _ => (value, ""),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{value}' is not a date/time of digits"));
    }
    let century = |yy: &str| if yy < "50" { "20" } else { "19" };
    let (date, time) = match (format, digits.len()) {
        ("102" | "", 8) => (digits.to_owned(), None),
        ("203" | "303" | "205", 12) => (digits[..8].to_owned(), Some(&digits[8..])),
        ("204" | "304", 14) => (digits[..8].to_owned(), Some(&digits[8..])),
        ("101", 6) => (format!("{}{digits}", century(&digits[..2])), None),
        ("201", 10) => (
            format!("{}{}", century(&digits[..2]), &digits[..6]),
            Some(&digits[6..]),
        ),
        ("102" | "203" | "204" | "101" | "201" | "303" | "304" | "205" | "", _) => {
            return Err(format!(
                "'{value}' does not have the length of date/time format {}",
                if format.is_empty() { "102" } else { format }
            ));
        }
        (other, _) => return Err(format!("date/time format '{other}' is not supported")),
    };
    let offset = match format {
        "303" | "304" => Some(zone_offset(zone).ok_or_else(|| {
            format!(
                "'{value}': the time zone '{zone}' of format {format} is neither a signed offset \
                 (+01, -0500) nor a known zone name (UTC, GMT, CET, EST, ...)"
            )
        })?),
        "205" => Some(parse_offset(zone).ok().filter(|_| zone.len() == 5).ok_or_else(|| {
            format!("'{value}': the time zone '{zone}' of format 205 is not a ZHHMM offset (+0100)")
        })?),
        _ => None,
    };
    // The two-digit years of 101 and 201 are read with a century added: an error quotes the
    // value as sent, never the date rewritten.
    let date = parse_date(&date).map_err(|e| match format {
        "101" => format!("'{value}' is not a valid date (expected YYMMDD)"),
        "201" => format!("'{value}' is not a valid date (expected YYMMDDHHMM)"),
        _ => e.to_string(),
    })?;
    let format = if format.is_empty() { "102" } else { format };
    let (layout, range) = if matches!(format, "204" | "304") {
        (
            "HHMMSS",
            "000000 to 235959, or 240000 for the end of the day",
        )
    } else {
        ("HHMM", "0000 to 2359, or 2400 for the end of the day")
    };
    let (date, time) = match time {
        // The end of the day, `2400` (as ISO 8601 and xs:dateTime's `24:00:00` write it, and as
        // partners send a delivery "by the end of the day"), is the next day's first instant.
        Some("2400" | "240000") => (
            date.next_day().ok_or_else(|| {
                format!("'{value}': the end of day {date} has no next day to write it as")
            })?,
            Some(crate::timestamp::Time::MIDNIGHT),
        ),
        Some(time) => (
            date,
            Some(parse_time(time).map_err(|_| {
                format!(
                    "'{value}': '{time}' is not a valid time of format {format} (expected \
                     {layout}, {range})"
                )
            })?),
        ),
        None => (date, None),
    };
    Ok(DateTime { date, time, offset })
}

/// The UTC offset of the time zone `ZZZ` of the `DTM` formats `303` and `304`: a signed offset
/// (`+01`, `-05`, `+0530`, `+05:30`), `UTC`/`GMT`/`UT`/`Z`, or the name of a zone with a fixed
/// offset: `WET`, `CET`/`MEZ`, `EET`, and the North American standard (`EST`, `CST`, `MST`,
/// `PST`) and daylight (`EDT`, `CDT`, `MDT`, `PDT`) zones. None for anything else: a local
/// time whose zone is unknown cannot be placed on the time line.
pub fn zone_offset(zone: &str) -> Option<crate::timestamp::UtcOffset> {
    let zone = zone.trim();
    if zone.starts_with(['+', '-']) {
        return crate::timestamp::parse_offset(zone).ok();
    }
    let hours: i8 = match zone.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "UT" | "Z" | "WET" => 0,
        "CET" | "MEZ" => 1,
        "EET" => 2,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => return None,
    };
    crate::timestamp::UtcOffset::from_hms(hours, 0, 0).ok()
}

/// The timestamp of a `DTM` segment (`DTM+11:202607141230:203`): its date and time (midnight
/// when the format has none) in the segment's own time zone when its format carries one
/// (`303`, `304`, `205`), else at the route's `route_offset`. An error names the segment and
/// the `DTM` qualifier.
pub fn dtm_timestamp(
    dtm: &Segment<'_>,
    route_offset: crate::timestamp::UtcOffset,
) -> Result<String, crate::MapError> {
    let read = zoned_date_time(dtm.value(1, 2), dtm.value(1, 3)).map_err(|e| {
        crate::MapError::malformed(format!("{}, DTM {}: {e}", dtm.at(), dtm.value(1, 1)))
    })?;
    crate::timestamp::rfc3339(
        read.date,
        read.time.unwrap_or(crate::timestamp::Time::MIDNIGHT),
        read.offset.unwrap_or(route_offset),
    )
    .map_err(|e| crate::MapError::malformed(format!("{}: {e}", dtm.at())))
}

mod lines;
#[cfg(test)]
mod tests;

pub use lines::{
    HeaderReference, Packaging, line_batch, line_item, line_qty, line_serials, qualified,
    qualified_once, refuse_not_original, refuse_withdrawn, sole,
};

impl Interchange<'_> {
    /// The `source_transaction` of `message`: the sender (`UNB` S002 0007`/`0004) `:` `UNB` 0020
    /// `:` `UNG` 0048 (when the message is in a group) `:` `UNH` 0062, then the message's own
    /// number (`BGM` C106) when given. See [`crate::edi::source_transaction`].
    pub fn source_transaction(&self, message: &Message<'_>, number: Option<&str>) -> String {
        let mut controls = vec![&*self.control_reference];
        controls.extend(
            message
                .group
                .and_then(|g| self.groups.get(g))
                .map(|g| &*g.reference),
        );
        controls.push(&message.reference);
        crate::edi::source_transaction((&self.sender_qualifier, &self.sender), &controls, number)
    }
}
