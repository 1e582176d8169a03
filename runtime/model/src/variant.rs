//! The shape of the WIT variants whose every case carries one text: `map-error`,
//! `render-error` and `verdict`.

/// Defines a WIT variant whose every case carries one text: the enum (serde names are the WIT
/// case names), a constructor per case that takes anything `Into<String>`, `kind()` (the WIT
/// case name), `message()` (the text) and `Display` as `<kind>: <message>`.
macro_rules! text_variant {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$case_meta:meta])*
                $case:ident = $wit:literal,
                $(#[$constructor_meta:meta])*
                fn $constructor:ident;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $( $(#[$case_meta])* $case(String), )+
        }

        impl $name {
            $(
                $(#[$constructor_meta])*
                pub fn $constructor(text: impl Into<String>) -> Self {
                    Self::$case(text.into())
                }
            )+

            /// The WIT case name, as dead letters, metrics and fixtures spell it.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Self::$case(_) => $wit, )+
                }
            }

            /// The text the case carries: the reason, or a posted verdict's document id.
            pub fn message(&self) -> &str {
                match self {
                    $( Self::$case(text) )|+ => text,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: {}", self.kind(), self.message())
            }
        }
    };
}
