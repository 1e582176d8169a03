//! Exact decimal amounts: the canonical quantities are decimal text, and stock sums must not
//! drift the way floats do.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most fraction digits kept; canonical amounts have far fewer.
const MAX_SCALE: u32 = 18;

/// An exact decimal: `units / 10^scale`. Written and read as decimal text (`"12.5"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Amount {
    units: i128,
    scale: u32,
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount { units: 0, scale: 0 };

    /// Reads `-?digits(.digits)?`; `None` for anything else or an amount too large.
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        if digits.contains('.') && fraction.is_empty() {
            return None;
        }
        let scale = u32::try_from(fraction.len())
            .ok()
            .filter(|s| *s <= MAX_SCALE)?;
        let units: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some(
            Self {
                units: if negative { -units } else { units },
                scale,
            }
            .normalized(),
        )
    }

    /// The sum; `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        let scale = self.scale.max(other.scale);
        let a = self
            .units
            .checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other
            .units
            .checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some(
            Self {
                units: a.checked_add(b)?,
                scale,
            }
            .normalized(),
        )
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
        Self {
            units: -self.units,
            scale: self.scale,
        }
    }

    /// True when below zero.
    pub fn is_negative(self) -> bool {
        self.units < 0
    }

    /// True when zero.
    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    /// The amount, or zero when it is negative.
    pub fn at_least_zero(self) -> Self {
        if self.is_negative() { Self::ZERO } else { self }
    }

    /// Trailing fraction zeros dropped, so equal amounts have one form.
    fn normalized(mut self) -> Self {
        while self.scale > 0 && self.units % 10 == 0 {
            self.units /= 10;
            self.scale -= 1;
        }
        if self.units == 0 {
            self.scale = 0;
        }
        self
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Amount {}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        // Both are normalized, so the sign of the difference decides.
        match self.checked_add(other.negated()) {
            Some(d) => d.units.cmp(&0),
            None => self.units.signum().cmp(&other.units.signum()),
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.units.unsigned_abs().to_string();
        let sign = if self.units < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
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
