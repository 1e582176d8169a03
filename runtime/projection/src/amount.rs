//! Exact decimal amounts: the canonical quantities are decimal text, and stock sums must not
//! drift the way floats do. A thin wrapper of `rust_decimal` (as the SDK uses) that reads only
//! plain decimal text and writes one normalised form.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
}

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
    fn refuses_what_is_no_decimal() {
        for bad in ["", "-", "1.", ".5", "1e3", "1,5", "--1", "NaN"] {
            assert!(Amount::parse(bad).is_none(), "{bad}");
        }
    }
}
