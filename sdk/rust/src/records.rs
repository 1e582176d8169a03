//! Legacy record readers: fixed-width and delimited lines split into named fields.
//!
//! Mappings of legacy files should describe their record layout once and let these readers do
//! the slicing, padding and error wording, instead of hand-rolling `&line[31..40]`:
//!
//! ```ignore
//! use millrace_sdk::records::{Delimited, FixedField, FixedLayout};
//!
//! const PRD: FixedLayout = FixedLayout::new(&[
//!     FixedField::new("record-type", 1, 3),
//!     FixedField::new("item", 4, 18),
//!     FixedField::new("qty", 22, 9),
//! ]);
//! let record = PRD.read(line_number, line)?;          // a short line is a malformed-input error
//! let qty = decimal::implied(record.value("qty")?, 3).malformed_at(record.at("qty"))?;
//!
//! const MAT: Delimited = Delimited::new(';', &["record-type", "item", "qty"]).quoted('"');
//! let record = MAT.read(line_number, line)?;          // wrong field count is an error
//! let item = record.require(1)?;                      // empty is an error naming "item"
//! ```
//!
//! Positions and widths count characters, not bytes, so a line decoded from Latin-1 slices
//! the same way the source system wrote it. Values are slices of the line; only a quoted value
//! with doubled quotes is copied. Padding spaces around a value are trimmed; other
//! whitespace is kept, because a tab in a fixed-width field is data, not padding. Every error
//! names the 1-based line number and the field, and converts into [`MapError::malformed`].

use std::borrow::Cow;

use crate::MapError;

/// Why a line does not fit its record layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A fixed-width line ends before the end of a field.
    #[error(
        "line {line}, field {field} (columns {first}-{last}): the line is {length} characters long"
    )]
    TooShort {
        /// The 1-based line number.
        line: usize,
        /// The field that does not fit.
        field: &'static str,
        /// The field's first column (1-based).
        first: usize,
        /// The field's last column (1-based).
        last: usize,
        /// The length of the line in characters.
        length: usize,
    },
    /// A delimited line has the wrong number of fields.
    #[error("line {line}: {found} fields, expected {expected}")]
    FieldCount {
        /// The 1-based line number.
        line: usize,
        /// The number of fields found.
        found: usize,
        /// The number of fields the layout names.
        expected: usize,
    },
    /// A quoted field is not closed, or has text between its closing quote and the separator.
    #[error("line {line}, field {field}: {problem}")]
    Quote {
        /// The 1-based line number.
        line: usize,
        /// The field name (or `#<n>` past the named fields).
        field: String,
        /// What is wrong with the quoting.
        problem: &'static str,
    },
    /// A required field is empty (only padding).
    #[error("line {line}, field {field}: is empty")]
    Empty {
        /// The 1-based line number.
        line: usize,
        /// The field name.
        field: String,
    },
    /// The mapping asked for a field its layout does not define (a bug in the mapping).
    #[error("the record layout has no field {field}")]
    NoSuchField {
        /// The requested field name or index.
        field: String,
    },
}

impl From<RecordError> for MapError {
    fn from(error: RecordError) -> Self {
        match error {
            // Asking for an undefined field is the mapping's fault, not the input's.
            RecordError::NoSuchField { .. } => MapError::other(error.to_string()),
            _ => MapError::malformed(error.to_string()),
        }
    }
}

/// One field of a fixed-width layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedField {
    /// The field name used in errors and lookups.
    pub name: &'static str,
    /// The first column, 1-based, as record layout documents print it.
    pub column: usize,
    /// The width in characters (at least 1).
    pub width: usize,
}

impl FixedField {
    /// A field `width` characters wide starting at 1-based `column`.
    pub const fn new(name: &'static str, column: usize, width: usize) -> Self {
        Self {
            name,
            column,
            width,
        }
    }

    /// The last column of the field, 1-based.
    const fn last(&self) -> usize {
        self.column + self.width.saturating_sub(1)
    }
}

/// A fixed-width record layout: named fields at fixed columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedLayout {
    fields: &'static [FixedField],
    pad_short: bool,
}

impl FixedLayout {
    /// A layout of `fields`; a line shorter than a field's last column is an error.
    pub const fn new(fields: &'static [FixedField]) -> Self {
        Self {
            fields,
            pad_short: false,
        }
    }

    /// Treats characters missing at the end of a short line as padding spaces, for sources (and
    /// file transfers) that strip trailing blanks. Trailing fields then read as empty.
    pub const fn pad_short_lines(self) -> Self {
        Self {
            pad_short: true,
            ..self
        }
    }

    /// The fields of the layout.
    pub fn fields(&self) -> &'static [FixedField] {
        self.fields
    }

    /// Checks that line `line` (1-based number, text without its line end) holds the layout's
    /// fields; the record reads them from the line when asked.
    pub fn read<'a>(&self, line: usize, text: &'a str) -> Result<FixedRecord<'a>, RecordError> {
        let length = if text.is_ascii() {
            text.len()
        } else {
            text.chars().count()
        };
        if !self.pad_short
            && let Some(field) = self
                .fields
                .iter()
                .find(|field| field.column.saturating_sub(1) + field.width > length)
        {
            return Err(RecordError::TooShort {
                line,
                field: field.name,
                first: field.column,
                last: field.last(),
                length,
            });
        }
        Ok(FixedRecord {
            line,
            text,
            length,
            fields: self.fields,
        })
    }
}

/// One line read with a [`FixedLayout`]: trimmed values by field name, sliced from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedRecord<'a> {
    line: usize,
    text: &'a str,
    /// The length of the line in characters.
    length: usize,
    fields: &'static [FixedField],
}

impl<'a> FixedRecord<'a> {
    /// The 1-based line number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The byte offset of character `index` of the line (its end when past it).
    fn offset(&self, index: usize) -> usize {
        if self.length == self.text.len() {
            // ASCII: a character is a byte.
            return index.min(self.text.len());
        }
        self.text
            .char_indices()
            .nth(index)
            .map_or(self.text.len(), |(at, _)| at)
    }

    /// The trimmed value of field `name` (empty when it held only padding).
    pub fn value(&self, name: &str) -> Result<&'a str, RecordError> {
        let field = self
            .fields
            .iter()
            .find(|field| field.name == name)
            .ok_or_else(|| RecordError::NoSuchField {
                field: name.to_owned(),
            })?;
        let first = field.column.saturating_sub(1);
        let start = self.offset(first.min(self.length));
        let stop = self.offset((first + field.width).min(self.length));
        Ok(self.text.get(start..stop).unwrap_or("").trim_matches(' '))
    }

    /// The trimmed value of field `name`, or an error when it is empty.
    pub fn require(&self, name: &str) -> Result<&'a str, RecordError> {
        let value = self.value(name)?;
        if value.is_empty() {
            return Err(RecordError::Empty {
                line: self.line,
                field: name.to_owned(),
            });
        }
        Ok(value)
    }

    /// The trimmed value of field `name`, none when it is empty.
    pub fn optional(&self, name: &str) -> Result<Option<&'a str>, RecordError> {
        self.value(name)
            .map(|value| (!value.is_empty()).then_some(value))
    }

    /// The error context `line <n>, field <name>`, for [`crate::ResultExt`].
    pub fn at(&self, name: &str) -> String {
        format!("line {}, field {name}", self.line)
    }
}

/// A delimited record layout: a separator, an optional quote character and a name per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimited {
    separator: char,
    quote: Option<char>,
    names: &'static [&'static str],
}

impl Delimited {
    /// A layout whose lines hold exactly `names.len()` fields separated by `separator`.
    pub const fn new(separator: char, names: &'static [&'static str]) -> Self {
        Self {
            separator,
            quote: None,
            names,
        }
    }

    /// Lets fields be enclosed in `quote` (a doubled quote inside stands for one), so they may
    /// contain the separator. Quoted values keep their inner spaces.
    pub const fn quoted(self, quote: char) -> Self {
        Self {
            quote: Some(quote),
            ..self
        }
    }

    /// The field names, by index.
    pub fn names(&self) -> &'static [&'static str] {
        self.names
    }

    /// Splits line `line` (1-based number, text without its line end) and checks the field count.
    pub fn read<'a>(&self, line: usize, text: &'a str) -> Result<DelimitedRecord<'a>, RecordError> {
        let fields = self.split(line, text)?;
        if fields.len() != self.names.len() {
            return Err(RecordError::FieldCount {
                line,
                found: fields.len(),
                expected: self.names.len(),
            });
        }
        Ok(DelimitedRecord {
            line,
            names: self.names,
            fields,
        })
    }

    fn split<'a>(&self, line: usize, text: &'a str) -> Result<Vec<Cow<'a, str>>, RecordError> {
        let mut fields = Vec::new();
        let mut rest = text;
        loop {
            let index = fields.len();
            let field_name = || field_name(self.names, index);
            let start = rest.trim_start_matches(' ');
            match self.quote {
                Some(quote) if start.starts_with(quote) => {
                    let body = start.get(quote.len_utf8()..).unwrap_or("");
                    let (value, after) =
                        unquote(body, quote).ok_or_else(|| RecordError::Quote {
                            line,
                            field: field_name(),
                            problem: "the quoted value is not closed",
                        })?;
                    fields.push(value);
                    let after = after.trim_start_matches(' ');
                    if after.is_empty() {
                        return Ok(fields);
                    }
                    match after.strip_prefix(self.separator) {
                        Some(next) => rest = next,
                        None => {
                            return Err(RecordError::Quote {
                                line,
                                field: field_name(),
                                problem: "text follows the closing quote",
                            });
                        }
                    }
                }
                _ => match rest.split_once(self.separator) {
                    Some((value, next)) => {
                        fields.push(Cow::Borrowed(value.trim_matches(' ')));
                        rest = next;
                    }
                    None => {
                        fields.push(Cow::Borrowed(rest.trim_matches(' ')));
                        return Ok(fields);
                    }
                },
            }
        }
    }
}

/// Reads a quoted value up to its closing quote; returns the value (borrowed unless it has
/// doubled quotes) and the text after the quote.
fn unquote(body: &str, quote: char) -> Option<(Cow<'_, str>, &str)> {
    let width = quote.len_utf8();
    // Once a doubled quote is seen, the value is copied with one quote for each pair.
    let mut copied: Option<String> = None;
    let mut from = 0;
    loop {
        let at = from + body.get(from..)?.find(quote)?;
        let after = at + width;
        if body.get(after..)?.starts_with(quote) {
            copied
                .get_or_insert_with(String::new)
                .push_str(body.get(from..after)?);
            from = after + width;
            continue;
        }
        let value = match copied {
            Some(mut value) => {
                value.push_str(body.get(from..at)?);
                Cow::Owned(value)
            }
            None => Cow::Borrowed(body.get(..at)?),
        };
        return Some((value, body.get(after..)?));
    }
}

/// The name of field `index`, or `#<n>` (1-based) past the named fields.
fn field_name(names: &[&str], index: usize) -> String {
    names
        .get(index)
        .map_or_else(|| format!("#{}", index + 1), |name| (*name).to_owned())
}

/// One line read with a [`Delimited`] layout: trimmed values by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelimitedRecord<'a> {
    line: usize,
    names: &'static [&'static str],
    fields: Vec<Cow<'a, str>>,
}

impl DelimitedRecord<'_> {
    /// The 1-based line number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no fields (never true for a record that was read).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The name of field `index` in the layout.
    pub fn name(&self, index: usize) -> String {
        field_name(self.names, index)
    }

    /// The trimmed value of field `index` (empty when it held only padding).
    pub fn value(&self, index: usize) -> Result<&str, RecordError> {
        self.fields
            .get(index)
            .map(|value| value.as_ref())
            .ok_or_else(|| RecordError::NoSuchField {
                field: format!("#{}", index + 1),
            })
    }

    /// The trimmed value of field `index`, or an error naming the field when it is empty.
    pub fn require(&self, index: usize) -> Result<&str, RecordError> {
        let value = self.value(index)?;
        if value.is_empty() {
            return Err(RecordError::Empty {
                line: self.line,
                field: self.name(index),
            });
        }
        Ok(value)
    }

    /// The trimmed value of field `index`, none when it is empty.
    pub fn optional(&self, index: usize) -> Result<Option<&str>, RecordError> {
        self.value(index)
            .map(|value| (!value.is_empty()).then_some(value))
    }

    /// The error context `line <n>, field <name>`, for [`crate::ResultExt`].
    pub fn at(&self, index: usize) -> String {
        format!("line {}, field {}", self.line, self.name(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: FixedLayout = FixedLayout::new(&[
        FixedField::new("type", 1, 3),
        FixedField::new("item", 4, 6),
        FixedField::new("qty", 10, 5),
    ]);

    #[test]
    fn fixed_reads_and_trims_fields() {
        let record = LAYOUT.read(7, "PRDAB12  00125").unwrap();
        assert_eq!(record.line(), 7);
        assert_eq!(record.value("type").unwrap(), "PRD");
        assert_eq!(record.value("item").unwrap(), "AB12");
        assert_eq!(record.value("qty").unwrap(), "00125");
        assert_eq!(record.at("qty"), "line 7, field qty");
    }

    #[test]
    fn fixed_counts_characters_not_bytes() {
        let record = LAYOUT.read(1, "MATMüller12345").unwrap();
        assert_eq!(record.value("item").unwrap(), "Müller");
        assert_eq!(record.value("qty").unwrap(), "12345");
    }

    #[test]
    fn fixed_short_line_names_line_and_field() {
        let error = LAYOUT.read(3, "PRDAB12  001").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 3, field qty (columns 10-14): the line is 12 characters long"
        );
        assert_eq!(
            MapError::from(error).kind(),
            "malformed-input",
            "a short line is the input's fault"
        );
    }

    #[test]
    fn fixed_pads_short_lines_when_asked() {
        let record = LAYOUT.pad_short_lines().read(1, "PRDAB").unwrap();
        assert_eq!(record.value("item").unwrap(), "AB");
        assert_eq!(record.optional("qty").unwrap(), None);
        assert_eq!(
            record.require("qty").unwrap_err().to_string(),
            "line 1, field qty: is empty"
        );
    }

    #[test]
    fn fixed_unknown_field_is_a_mapping_bug() {
        let record = LAYOUT.read(1, "PRDAB12  00125").unwrap();
        let error = MapError::from(record.value("lot").unwrap_err());
        assert_eq!(error.kind(), "other");
        assert_eq!(error.message(), "the record layout has no field lot");
    }

    const CSV: Delimited = Delimited::new(';', &["type", "item", "text"]).quoted('"');

    #[test]
    fn delimited_reads_fields_by_index() {
        let record = CSV.read(2, "MAT; RM-1 ;plain").unwrap();
        assert_eq!(record.len(), 3);
        assert_eq!(record.value(1).unwrap(), "RM-1");
        assert_eq!(record.require(2).unwrap(), "plain");
        assert_eq!(record.at(1), "line 2, field item");
    }

    #[test]
    fn delimited_handles_quotes() {
        let record = CSV.read(1, r#"MAT;"a;b" ;" say ""hi"" ""#).unwrap();
        assert_eq!(record.value(1).unwrap(), "a;b");
        assert_eq!(record.value(2).unwrap(), r#" say "hi" "#);
        let empty = CSV.read(1, r#"MAT;"";x"#).unwrap();
        assert_eq!(empty.optional(1).unwrap(), None);
    }

    #[test]
    fn delimited_quote_errors_name_the_field() {
        assert_eq!(
            CSV.read(4, r#"MAT;"open;x"#).unwrap_err().to_string(),
            "line 4, field item: the quoted value is not closed"
        );
        assert_eq!(
            CSV.read(4, r#"MAT;"a"b;x"#).unwrap_err().to_string(),
            "line 4, field item: text follows the closing quote"
        );
    }

    #[test]
    fn delimited_checks_the_field_count() {
        assert_eq!(
            CSV.read(5, "MAT;x").unwrap_err(),
            RecordError::FieldCount {
                line: 5,
                found: 2,
                expected: 3
            }
        );
        assert_eq!(
            CSV.read(5, "MAT;x;y;z").unwrap_err().to_string(),
            "line 5: 4 fields, expected 3"
        );
    }

    #[test]
    fn delimited_without_quote_keeps_quotes_as_data() {
        const PIPE: Delimited = Delimited::new('|', &["a", "b"]);
        let record = PIPE.read(1, r#""x|y""#).unwrap();
        assert_eq!(record.value(0).unwrap(), "\"x");
        assert_eq!(
            record.require(1).map_err(MapError::from),
            Ok("y\""),
            "an unquoted layout treats quotes as text"
        );
        let blank = PIPE.read(9, "a|  ").unwrap();
        assert_eq!(
            blank.require(1).unwrap_err().to_string(),
            "line 9, field b: is empty"
        );
    }
}
