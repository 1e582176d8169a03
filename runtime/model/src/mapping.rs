//! Why a mapping could not turn a raw message into canonical events: the WIT `map-error` of
//! `wit/mapping@1.1.0/mapper.wit` (the same in every served version).

text_variant! {
    /// Why a mapping could not turn a raw message into canonical events. Every case is
    /// permanent: the host dead-letters the message at once with this reason, and does not
    /// retry it.
    ///
    /// Build one with [`MapError::malformed`], [`MapError::unsupported`], [`MapError::rejected`]
    /// or [`MapError::other`].
    pub enum MapError {
        /// The payload is not well-formed for its format (bad syntax, wrong encoding, truncated).
        MalformedInput = "malformed-input",
        /// The payload is not well-formed for its format (bad syntax, wrong encoding, truncated).
        fn malformed;
        /// The payload is well-formed but of a document type or version this mapping does not
        /// map.
        UnsupportedDocument = "unsupported-document",
        /// The payload is well-formed but of a document type or version this mapping does not
        /// map.
        fn unsupported;
        /// The payload is well-formed but a business rule rejects it.
        RejectedByRule = "rejected-by-rule",
        /// The payload is well-formed but a business rule rejects it.
        fn rejected;
        /// Any other reason.
        Other = "other",
        /// Any other reason, for example a route configuration the mapping cannot use.
        fn other;
    }
}

impl std::error::Error for MapError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_pick_the_case() {
        assert_eq!(MapError::malformed("a").kind(), "malformed-input");
        assert_eq!(MapError::unsupported("b").kind(), "unsupported-document");
        assert_eq!(MapError::rejected("c").kind(), "rejected-by-rule");
        assert_eq!(MapError::other("d").message(), "d");
        assert_eq!(MapError::other("d").to_string(), "other: d");
    }
}
