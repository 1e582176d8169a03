//! Exact decimal amounts: the canonical quantities are decimal text, and stock sums must not
//! drift the way floats do. A thin wrapper of `rust_decimal` (as the SDK uses) that reads only
//! plain decimal text and writes one normalised form.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use millrace_core::canonical::Quantity;

/// An exact decimal, written and read as decimal text (`"12.5"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(Decimal);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    /// Reads `-?digits(.digits)?`; `None` for anything else (signs, exponents, separators)
    /// or an amount too large.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        if digits.contains('.') && fraction.is_empty() {
            return None;
        }
        Decimal::from_str(text).ok().map(|d| Self(d.normalize()))
    }

    /// The sum; `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(|d| Self(d.normalize()))
    }

    /// The sum, saturating instead of overflowing (amounts that large are garbage anyway).
    pub fn plus(self, other: Self) -> Self {
        self.checked_add(other).unwrap_or(self)
    }

    /// The difference.
    pub fn minus(self, other: Self) -> Self {
        self.plus(other.negated())
    }

    /// The amount with the opposite sign.
    pub fn negated(self) -> Self {
        Self(-self.0)
    }

    /// True when below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// True when zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The amount, or zero when it is negative.
    pub fn at_least_zero(self) -> Self {
        if self.is_negative() { Self::ZERO } else { self }
    }

    /// This amount in unit `from` (a UN/ECE Recommendation 20 code) expressed in unit `to`:
    /// itself when the units are the same, converted exactly when both measure one thing
    /// ([`UNITS`]: grams and kilograms, millilitres and litres, each and pieces), `None` when
    /// the units cannot be converted (each and kilograms).
    pub fn in_unit(self, from: &str, to: &str) -> Option<Self> {
        if from == to {
            return Some(self);
        }
        let factor = |unit: &str| {
            UNITS
                .iter()
                .find(|(code, _, _)| *code == unit)
                .map(|(_, dimension, factor)| (*dimension, *factor))
        };
        let ((from_dimension, from_factor), (to_dimension, to_factor)) =
            (factor(from)?, factor(to)?);
        if from_dimension != to_dimension {
            return None;
        }
        let (from_factor, to_factor) = (
            Decimal::from_str(from_factor).ok()?,
            Decimal::from_str(to_factor).ok()?,
        );
        let converted = self.0.checked_mul(from_factor)?.checked_div(to_factor)?;
        Some(Self(converted.normalize()))
    }

    /// The amount of `q` in unit `uom` ([`Amount::in_unit`]); when its unit cannot be
    /// converted, its amount as it is, counted in `mismatches` (a sum that mixes units says
    /// so). A zero is zero in any unit: it mixes nothing. The one rule of stock positions and
    /// of summed quantities.
    pub fn of(q: &Quantity, uom: &str, mismatches: &mut u64) -> Self {
        let amount = Self::parse(&q.amount).unwrap_or(Self::ZERO);
        if amount.is_zero() {
            return Self::ZERO;
        }
        amount.in_unit(&q.uom, uom).unwrap_or_else(|| {
            *mismatches += 1;
            amount
        })
    }
}

/// The units converted between (Rec 20 code, what it measures, its size in the dimension's
/// base unit), exactly as the definitions of the pound, the inch and the gallon have them.
const UNITS: &[(&str, &str, &str)] = &[
    ("KGM", "mass", "1"),
    ("GRM", "mass", "0.001"),
    ("MGM", "mass", "0.000001"),
    ("TNE", "mass", "1000"),
    ("LBR", "mass", "0.45359237"),
    ("ONZ", "mass", "0.028349523125"),
    ("MTR", "length", "1"),
    ("CMT", "length", "0.01"),
    ("MMT", "length", "0.001"),
    ("KMT", "length", "1000"),
    ("FOT", "length", "0.3048"),
    ("INH", "length", "0.0254"),
    ("LTR", "volume", "1"),
    ("MLT", "volume", "0.001"),
    ("MTQ", "volume", "1000"),
    ("GLL", "volume", "3.785411784"),
    ("EA", "count", "1"),
    ("PCE", "count", "1"),
    ("C62", "count", "1"),
    ("DZN", "count", "12"),
];

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Normalised on every construction; zero has no sign.
        if self.0.is_zero() {
            return f.write_str("0");
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Amount::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an exact decimal")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn a(text: &str) -> Amount {
        Amount::parse(text).unwrap()
    }

    #[test]
    fn sums_are_exact_and_written_in_one_form() {
        assert_eq!(a("0.1").plus(a("0.2")).to_string(), "0.3");
        assert_eq!(a("12.50").to_string(), "12.5");
        assert_eq!(a("125").minus(a("12.5")).to_string(), "112.5");
        assert_eq!(a("2.75").minus(a("3")).to_string(), "-0.25");
        assert_eq!(a("-0.25").at_least_zero(), Amount::ZERO);
        assert_eq!(a("1.000").to_string(), "1");
        assert_eq!(a("0.05").to_string(), "0.05");
        assert!(a("9.75") < a("10"));
        assert_eq!(a("10.0"), a("10"));
    }

    #[test]
    fn converts_units_of_one_measure_exactly() {
        let conv = |text, from, to| a(text).in_unit(from, to).map(|a| a.to_string());
        assert_eq!(conv("500", "GRM", "KGM").as_deref(), Some("0.5"));
        assert_eq!(conv("2", "TNE", "KGM").as_deref(), Some("2000"));
        assert_eq!(conv("1", "LBR", "KGM").as_deref(), Some("0.45359237"));
        assert_eq!(conv("250", "MLT", "LTR").as_deref(), Some("0.25"));
        assert_eq!(conv("2", "DZN", "EA").as_deref(), Some("24"));
        assert_eq!(conv("7", "PCE", "EA").as_deref(), Some("7"));
        assert_eq!(conv("7", "XYZ", "XYZ").as_deref(), Some("7"));
        assert_eq!(conv("5", "EA", "KGM"), None, "count and mass");
        assert_eq!(conv("5", "XYZ", "KGM"), None, "unknown unit");
    }

    #[test]
    fn refuses_what_is_no_decimal() {
        for bad in ["", "-", "1.", ".5", "1e3", "1,5", "--1", "NaN"] {
            assert!(Amount::parse(bad).is_none(), "{bad}");
        }
    }
}
