//! One line of a shift report split into fields, with typed, validated field access.
//!
//! Every error names the line number and the field, as the report's README documents them.

use millrace_sdk::decimal::{self, Decimal};
use millrace_sdk::timestamp::{self, Date, Time, TimestampError};
use millrace_sdk::{MapError, ResultExt};

/// The field separator.
const SEPARATOR: char = '|';
/// Quantity fields are 9 digits with 3 implied decimals: `000012500` is `12.5`.
const QUANTITY_WIDTH: usize = 9;
const QUANTITY_SCALE: u32 = 3;
/// Sequence numbers are 6 digits.
const SEQUENCE_WIDTH: usize = 6;

/// One record (line) of the report: its fields, sliced from the line.
pub(crate) struct Record<'a> {
    /// The 1-based line number in the payload.
    pub(crate) line: usize,
    fields: Vec<&'a str>,
}

impl<'a> Record<'a> {
    /// Splits a line (already decoded, without its line end) into fields.
    pub(crate) fn split(line: usize, text: &'a str) -> Result<Self, MapError> {
        if text.trim_matches(' ').is_empty() {
            return Err(MapError::malformed(format!("line {line}: empty line")));
        }
        // Room for every field at once: a record is split once per line of every report.
        let mut fields =
            Vec::with_capacity(1 + text.bytes().filter(|b| *b == SEPARATOR as u8).count());
        fields.extend(text.split(SEPARATOR));
        Ok(Self { line, fields })
    }

    /// The record type (first field).
    pub(crate) fn record_type(&self) -> &'a str {
        self.raw(0)
    }

    /// The number of fields.
    pub(crate) fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Checks the number of fields of a record of type `record_type`.
    pub(crate) fn expect_fields(&self, record_type: &str, count: usize) -> Result<(), MapError> {
        if self.fields.len() == count {
            Ok(())
        } else {
            Err(MapError::malformed(format!(
                "line {}: {record_type} record has {} fields, expected {count}",
                self.line,
                self.fields.len()
            )))
        }
    }

    /// The error for `field` with `problem`.
    pub(crate) fn error(&self, field: &str, problem: impl std::fmt::Display) -> MapError {
        MapError::malformed(format!("line {}, field {field}: {problem}", self.line))
    }

    /// The context prefix for errors in `field`.
    pub(crate) fn at(&self, field: &str) -> String {
        format!("line {}, field {field}", self.line)
    }

    /// A field trimmed of padding spaces; empty when the record is short.
    pub(crate) fn raw(&self, index: usize) -> &'a str {
        self.fields
            .get(index)
            .map_or("", |field| field.trim_matches(' '))
    }

    /// A required identifier: 1 to `max` printable ASCII characters, no spaces.
    pub(crate) fn id(&self, index: usize, field: &str, max: usize) -> Result<&'a str, MapError> {
        self.optional_id(index, field, max)?
            .ok_or_else(|| self.error(field, "is empty"))
    }

    /// An optional identifier: empty means none.
    pub(crate) fn optional_id(
        &self,
        index: usize,
        field: &str,
        max: usize,
    ) -> Result<Option<&'a str>, MapError> {
        let value = self.raw(index);
        if value.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = value.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(self.error(
                field,
                format!(
                    "character {bad:?} (byte 0x{:02X}) is not printable ASCII",
                    u32::from(bad)
                ),
            ));
        }
        let length = value.chars().count();
        if length > max {
            return Err(self.error(
                field,
                format!("'{value}' is {length} characters long, at most {max} allowed"),
            ));
        }
        Ok(Some(value))
    }

    /// Free text (Latin-1 allowed) of at most `max` characters.
    pub(crate) fn free_text(
        &self,
        index: usize,
        field: &str,
        max: usize,
    ) -> Result<&'a str, MapError> {
        let value = self.raw(index);
        let length = value.chars().count();
        if length > max {
            return Err(self.error(
                field,
                format!("is {length} characters long, at most {max} allowed"),
            ));
        }
        Ok(value)
    }

    /// A required fixed-width quantity.
    pub(crate) fn quantity(&self, index: usize, field: &str) -> Result<Decimal, MapError> {
        self.optional_quantity(index, field)?
            .ok_or_else(|| self.error(field, "is empty"))
    }

    /// An optional fixed-width quantity: empty means none.
    pub(crate) fn optional_quantity(
        &self,
        index: usize,
        field: &str,
    ) -> Result<Option<Decimal>, MapError> {
        let value = self.raw(index);
        if value.is_empty() {
            return Ok(None);
        }
        if value.len() != QUANTITY_WIDTH || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(
                field,
                format!("'{value}' is not a {QUANTITY_WIDTH}-digit quantity"),
            ));
        }
        decimal::implied(value, QUANTITY_SCALE)
            .malformed_with(|| self.at(field))
            .map(Some)
    }

    /// The record's 6-digit sequence number.
    pub(crate) fn sequence(&self, index: usize) -> Result<u64, MapError> {
        let value = self.raw(index);
        if value.len() != SEQUENCE_WIDTH || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(
                "seq",
                format!("'{value}' is not a {SEQUENCE_WIDTH}-digit number"),
            ));
        }
        value.parse().malformed_with(|| self.at("seq"))
    }

    /// A `YYYYMMDD` date.
    pub(crate) fn date(&self, index: usize, field: &str) -> Result<Date, MapError> {
        let value = self.raw(index);
        if value.len() != 8 {
            let error = TimestampError::Date {
                text: value.to_owned(),
            };
            return Err(self.error(field, error));
        }
        timestamp::parse_date(value).malformed_with(|| self.at(field))
    }

    /// An `HHMMSS` time of day.
    pub(crate) fn time(&self, index: usize, field: &str) -> Result<Time, MapError> {
        let value = self.raw(index);
        if value.len() != 6 {
            let error = TimestampError::Time {
                text: value.to_owned(),
            };
            return Err(self.error(field, error));
        }
        timestamp::parse_time(value).malformed_with(|| self.at(field))
    }
}
