//! Exact decimal quantities: parse source text, read implied-decimal fields, and write the WIT
//! `decimal` form (`-?digits(.digits)?`).
//!
//! Amounts are [`Decimal`] (96-bit mantissa, up to 28 fractional digits) and never pass through
//! floating point.

use crate::canonical::Quantity;

pub use rust_decimal::Decimal;

/// Why a text is not an acceptable decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The field is empty (or only spaces).
    #[error("empty number")]
    Empty,
    /// The text is not a number in the expected form.
    #[error("'{text}' is not a decimal number")]
    Invalid {
        /// The offending text.
        text: String,
    },
    /// The number has more digits than a 96-bit decimal holds.
    #[error("'{text}' has too many digits")]
    TooLarge {
        /// The offending text.
        text: String,
    },
    /// The number's significant fraction digits (after the decimal mark, trailing zeros not
    /// counted) are more than a decimal holds (28).
    #[error("'{text}' has {digits} digits after the decimal mark, more than the supported 28")]
    TooManyFractionDigits {
        /// The offending text.
        text: String,
        /// The fraction digits, trailing zeros not counted.
        digits: usize,
    },
    /// More implied decimals were asked for than a decimal supports (28).
    #[error("{scale} implied decimals is more than the supported 28")]
    ScaleTooLarge {
        /// The requested scale.
        scale: u32,
    },
}

const MAX_SCALE: u32 = 28;

/// Parses a decimal written with the decimal mark `mark` (usually `.` or `,`).
///
/// Accepts surrounding spaces, an optional leading `+` or `-`, digits with an optional `mark`
/// anywhere among them, and at least one digit: `12`, `-0,410`, ` 3.5 `, and `.5` and `12.`,
/// which X12 (leading zeros suppressed) and XML Schema's `xs:decimal` both allow. Trailing
/// fraction zeros beyond the 28 places a decimal holds are precision the value does not need
/// (`1.` and 29 zeros is 1); a value whose significant fraction digits need more places is
/// refused. Rejects exponents, thousands separators and anything else.
pub fn parse(text: &str, mark: char) -> Result<Decimal, DecimalError> {
    let trimmed = text.trim_matches(' ');
    if trimmed.is_empty() {
        return Err(DecimalError::Empty);
    }
    let invalid = || DecimalError::Invalid {
        text: text.to_owned(),
    };
    let (negative, unsigned) = split_sign(trimmed);
    let (whole, fraction) = match unsigned.split_once(mark) {
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, ""),
    };
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || whole.len() + fraction.len() == 0 {
        return Err(invalid());
    }
    let significant = fraction.trim_end_matches('0');
    let fraction = &fraction[..fraction
        .len()
        .min(significant.len().max(MAX_SCALE as usize))];
    if fraction.len() > MAX_SCALE as usize {
        return Err(DecimalError::TooManyFractionDigits {
            text: text.to_owned(),
            digits: fraction.len(),
        });
    }
    let scale = u32::try_from(fraction.len()).map_err(|_| invalid())?;
    from_digits([whole, fraction], scale, negative, text)
}

/// Reads a fixed-width numeric field with `scale` implied decimals: `000125` with 2 gives `1.25`.
///
/// The field is all ASCII digits, optionally led by `+` or `-` (surrounding spaces are ignored).
pub fn implied(field: &str, scale: u32) -> Result<Decimal, DecimalError> {
    let trimmed = field.trim_matches(' ');
    if trimmed.is_empty() {
        return Err(DecimalError::Empty);
    }
    let (negative, digits) = split_sign(trimmed);
    if !all_digits(digits) {
        return Err(DecimalError::Invalid {
            text: field.to_owned(),
        });
    }
    from_digits([digits, ""], scale, negative, field)
}

/// The sum of `amounts`, or `None` when it does not fit a [`Decimal`] (a 96-bit mantissa):
/// quantities a sender wrote too large to add up are refused with the segment or line that names
/// them, never let to overflow (which panics, and traps a plugin).
pub fn checked_sum(amounts: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    amounts
        .into_iter()
        .try_fold(Decimal::ZERO, |sum, amount| sum.checked_add(amount))
}

/// Writes `value` in the WIT `decimal` form, normalised: no exponent, no trailing fractional
/// zeros, no `-0` (`12.500` gives `12.5`, `-0.0` gives `0`).
pub fn to_wit(value: Decimal) -> String {
    let mut mantissa = value.mantissa();
    let mut scale = value.scale() as usize;
    if mantissa == 0 {
        return "0".to_owned();
    }
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    // A 96-bit mantissa has at most 29 digits.
    let mut buffer = [0u8; 40];
    let mut start = buffer.len();
    let mut rest = mantissa.unsigned_abs();
    while rest > 0 || start == buffer.len() {
        start -= 1;
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let digits = std::str::from_utf8(&buffer[start..]).unwrap_or_default();
    let mut text = String::with_capacity(digits.len() + scale + 3);
    if mantissa < 0 {
        text.push('-');
    }
    if scale == 0 {
        text.push_str(digits);
    } else if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        text.push_str(whole);
        text.push('.');
        text.push_str(fraction);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', scale - digits.len()));
        text.push_str(digits);
    }
    text
}

/// Builds a canonical [`Quantity`] from an amount and a UN/ECE Recommendation 20 unit code.
pub fn quantity(amount: Decimal, uom: &str) -> Quantity {
    Quantity {
        amount: to_wit(amount),
        uom: uom.to_owned(),
    }
}

/// Checks that `text` is in the WIT `decimal` form `-?digits(.digits)?`.
pub fn is_wit_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => all_digits(whole) && all_digits(fraction),
        None => all_digits(unsigned),
    }
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (false, rest)
    } else {
        (false, text)
    }
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// The decimal of the ASCII digits `parts` (read one after the other) with `scale` of them
/// after the mark; `original` is the text errors name.
fn from_digits(
    parts: [&str; 2],
    scale: u32,
    negative: bool,
    original: &str,
) -> Result<Decimal, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::ScaleTooLarge { scale });
    }
    let too_large = || DecimalError::TooLarge {
        text: original.to_owned(),
    };
    // Leading zeros are padding in fixed-width fields, not precision: they add nothing here.
    let mut mantissa: u128 = 0;
    for byte in parts.iter().flat_map(|part| part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u128::from(byte - b'0')))
            .filter(|m| *m <= MAX_MANTISSA)
            .ok_or_else(too_large)?;
    }
    let signed = i128::try_from(mantissa).map_err(|_| too_large())?;
    let signed = if negative { -signed } else { signed };
    Decimal::try_from_i128_with_scale(signed, scale).map_err(|_| too_large())
}

/// The largest mantissa a decimal holds (96 bits).
const MAX_MANTISSA: u128 = (1 << 96) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    fn wit(text: &str, mark: char) -> String {
        to_wit(parse(text, mark).unwrap())
    }

    #[test]
    fn parses_point_and_comma_marks() {
        assert_eq!(wit("12.5", '.'), "12.5");
        assert_eq!(wit("12,5", ','), "12.5");
        assert_eq!(wit(" -0,410 ", ','), "-0.41");
        assert_eq!(wit("+7", '.'), "7");
        assert_eq!(wit("0007.000", '.'), "7");
        assert_eq!(wit("-0.00", '.'), "0");
        // X12 suppresses leading zeros; xs:decimal allows a mark with digits on one side.
        assert_eq!(wit(".5", '.'), "0.5");
        assert_eq!(wit("-,25", ','), "-0.25");
        assert_eq!(wit("112.", '.'), "112");
    }

    #[test]
    fn checked_sums_refuse_overflow() {
        let big = parse("50000000000000000000000000000", '.').unwrap();
        let small = parse("2.5", '.').unwrap();
        assert_eq!(checked_sum([small, small]), Some(parse("5", '.').unwrap()));
        assert_eq!(checked_sum([]), Some(Decimal::ZERO));
        assert_eq!(checked_sum([big, big]), None);
        assert_eq!(checked_sum([big, -big, small]), Some(small));
    }

    #[test]
    fn drops_trailing_fraction_zeros_beyond_the_supported_scale() {
        let zeros = |n: usize| "0".repeat(n);
        assert_eq!(wit(&format!("1.{}", zeros(29)), '.'), "1");
        assert_eq!(wit(&format!("-0,5{}", zeros(100)), ','), "-0.5");
        let fine = format!("0.{}1", zeros(27));
        assert_eq!(wit(&format!("{fine}{}", zeros(3)), '.'), fine);
        // Significant digits that need more than 28 places are refused, naming the text.
        let fine_plus = format!("0.{}1", zeros(28));
        assert_eq!(
            parse(&fine_plus, '.'),
            Err(DecimalError::TooManyFractionDigits {
                text: fine_plus.clone(),
                digits: 29
            })
        );
        assert_eq!(
            parse(&format!("{fine_plus}000"), '.')
                .unwrap_err()
                .to_string(),
            format!(
                "'{fine_plus}000' has 29 digits after the decimal mark, more than the supported 28"
            )
        );
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "1e5", "1,000.5", ".", "-.", "+", "--1", "1 2", "abc", "12.5.1", "1..5", "1_000", "٣",
        ] {
            assert!(
                matches!(parse(text, '.'), Err(DecimalError::Invalid { .. })),
                "{text} should be rejected"
            );
        }
        assert_eq!(parse("   ", '.'), Err(DecimalError::Empty));
        assert!(matches!(
            parse("12.5", ','),
            Err(DecimalError::Invalid { .. })
        ));
    }

    #[test]
    fn reads_implied_decimals() {
        assert_eq!(to_wit(implied("000125", 2).unwrap()), "1.25");
        assert_eq!(to_wit(implied("001200", 2).unwrap()), "12");
        assert_eq!(to_wit(implied("000000", 3).unwrap()), "0");
        assert_eq!(to_wit(implied("-000050", 1).unwrap()), "-5");
        assert_eq!(to_wit(implied("42", 0).unwrap()), "42");
        assert!(matches!(
            implied("00 125", 2),
            Err(DecimalError::Invalid { .. })
        ));
        assert!(matches!(
            implied("0001,5", 2),
            Err(DecimalError::Invalid { .. })
        ));
        assert_eq!(implied("", 2), Err(DecimalError::Empty));
        assert_eq!(
            implied("1", 29),
            Err(DecimalError::ScaleTooLarge { scale: 29 })
        );
    }

    #[test]
    fn rejects_numbers_too_large_for_a_decimal() {
        let huge = "9".repeat(40);
        assert!(matches!(
            implied(&huge, 2),
            Err(DecimalError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(&huge, '.'),
            Err(DecimalError::TooLarge { .. })
        ));
    }

    #[test]
    fn output_is_in_wit_form() {
        for text in [
            "0",
            "1.25",
            "-3.5",
            "100",
            "0.0001",
            "79228162514264337593543950335",
        ] {
            let value = parse(text, '.').unwrap();
            let out = to_wit(value);
            assert!(is_wit_decimal(&out), "{out}");
            assert_eq!(out, text);
        }
        assert!(!is_wit_decimal("1e5"));
        assert!(!is_wit_decimal("-"));
        assert!(!is_wit_decimal("1."));
    }

    #[test]
    fn writes_what_the_decimal_display_writes() {
        let mut values = vec![Decimal::ZERO, Decimal::MAX, Decimal::MIN];
        for mantissa in [
            0i128,
            1,
            -1,
            7,
            10,
            100,
            -120,
            125_000,
            123_456_789,
            -987_654_321_000,
            79_228_162_514_264_337_593_543_950_335,
        ] {
            for scale in [0, 1, 2, 3, 5, 9, 12, 20, 28] {
                values.push(Decimal::from_i128_with_scale(mantissa, scale));
            }
        }
        for value in values {
            assert_eq!(to_wit(value), value.normalize().to_string(), "{value:?}");
        }
    }

    #[test]
    fn builds_quantities() {
        let q = quantity(implied("000125000", 3).unwrap(), "KGM");
        assert_eq!(q.amount, "125");
        assert_eq!(q.uom, "KGM");
    }
}
