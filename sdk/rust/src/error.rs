//! Constructors for [`MapError`] and a `?`-friendly way to attach context.

use std::fmt::Display;

use crate::MapError;

impl MapError {
    /// The payload is not well-formed for its format (bad syntax, wrong encoding, truncated).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::MalformedInput(message.into())
    }

    /// The payload is well-formed but of a document type or version this mapping does not map.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::UnsupportedDocument(message.into())
    }

    /// The payload is well-formed but a business rule rejects it.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::RejectedByRule(message.into())
    }

    /// Any other reason, for example a route configuration the mapping cannot use.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }

    /// The kind of the error as the WIT case name, for example `malformed-input`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MalformedInput(_) => "malformed-input",
            Self::UnsupportedDocument(_) => "unsupported-document",
            Self::RejectedByRule(_) => "rejected-by-rule",
            Self::Other(_) => "other",
        }
    }

    /// The human-readable reason carried by the error.
    pub fn message(&self) -> &str {
        match self {
            Self::MalformedInput(message)
            | Self::UnsupportedDocument(message)
            | Self::RejectedByRule(message)
            | Self::Other(message) => message,
        }
    }
}

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

    /// As [`ResultExt::malformed_at`], with the context written only when there is an error:
    /// `.malformed_with(|| format!("{}, SN102 quantity", sn1.at()))` costs nothing on success.
    fn malformed_with<C: Display>(self, context: impl FnOnce() -> C) -> Result<T, MapError>;
}

impl<T, E: Display> ResultExt<T> for Result<T, E> {
    fn malformed_at(self, context: impl Display) -> Result<T, MapError> {
        self.map_err(|error| MapError::malformed(format!("{context}: {error}")))
    }

    fn rejected_at(self, context: impl Display) -> Result<T, MapError> {
        self.map_err(|error| MapError::rejected(format!("{context}: {error}")))
    }

    fn malformed_with<C: Display>(self, context: impl FnOnce() -> C) -> Result<T, MapError> {
        self.map_err(|error| MapError::malformed(format!("{}: {error}", context())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_pick_the_case() {
        assert_eq!(MapError::malformed("a").kind(), "malformed-input");
        assert_eq!(MapError::unsupported("b").kind(), "unsupported-document");
        assert_eq!(MapError::rejected("c").kind(), "rejected-by-rule");
        assert_eq!(MapError::other("d").message(), "d");
    }

    #[test]
    fn context_is_prefixed() {
        let result: Result<(), &str> = Err("not a number");
        let error = result.malformed_at("line 3, field qty").unwrap_err();
        assert_eq!(
            error,
            MapError::MalformedInput("line 3, field qty: not a number".into())
        );
        let lazy: Result<(), &str> = Err("not a number");
        assert_eq!(
            lazy.malformed_with(|| format!("line {}, field qty", 3)),
            Err(MapError::MalformedInput(
                "line 3, field qty: not a number".into()
            ))
        );
        let fine: Result<u8, &str> = Ok(1);
        assert_eq!(
            fine.malformed_with(|| -> String { unreachable!("no context on success") }),
            Ok(1)
        );
    }
}
