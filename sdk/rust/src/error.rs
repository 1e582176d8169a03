//! A `?`-friendly way to attach context to an error as a [`MapError`] (whose constructors are
//! the model's).

use std::fmt::Display;

use crate::MapError;

/// Turns any displayable error into a [`MapError`] that says where it happened.
///
/// ```ignore
/// let qty = decimal::implied(field, 3).malformed_at(format!("line {line}, field good-qty"))?;
/// ```
pub trait ResultExt<T> {
    /// Maps the error to [`MapError::malformed`] with the message `"<context>: <error>"`.
    fn malformed_at(self, context: impl Display) -> Result<T, MapError>;

    /// Maps the error to [`MapError::rejected`] with the message `"<context>: <error>"`.
    fn rejected_at(self, context: impl Display) -> Result<T, MapError>;
}

impl<T, E: Display> ResultExt<T> for Result<T, E> {
    fn malformed_at(self, context: impl Display) -> Result<T, MapError> {
        self.map_err(|error| MapError::malformed(format!("{context}: {error}")))
    }

    fn rejected_at(self, context: impl Display) -> Result<T, MapError> {
        self.map_err(|error| MapError::rejected(format!("{context}: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_prefixed() {
        let result: Result<(), &str> = Err("not a number");
        let error = result.malformed_at("line 3, field qty").unwrap_err();
        assert_eq!(
            error,
            MapError::MalformedInput("line 3, field qty: not a number".into())
        );
    }
}
