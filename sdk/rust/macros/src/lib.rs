//! The export macro of `millrace-sdk`, re-exported there as `export_mapper!`.
//!
//! A plugin chooses the WIT version it targets in one place, its manifest: the macro reads the
//! `wit` key of the `plugin.toml` beside the plugin's `Cargo.toml` and writes the export glue of
//! that version. No dependencies: the macro only needs one line of the manifest and the text of
//! the released WIT packages, which it carries.
#![deny(missing_docs)]

use proc_macro::TokenStream;

/// One WIT version the SDK can export: its package and the text of its released package (one inline string: the file with the `package` line first).
#[derive(Debug)]
struct Version {
    package: &'static str,
    wit: [&'static str; 3],
}

const VERSIONS: [Version; 2] = [
    Version {
        package: "millrace:mapping@1.0.0",
        wit: [
            include_str!("../../../../wit/mapping@1.0.0/mapper.wit"),
            include_str!("../../../../wit/mapping@1.0.0/canonical.wit"),
            include_str!("../../../../wit/mapping@1.0.0/host.wit"),
        ],
    },
    Version {
        package: "millrace:mapping@1.1.0",
        wit: [
            include_str!("../../../../wit/mapping@1.1.0/mapper.wit"),
            include_str!("../../../../wit/mapping@1.1.0/canonical.wit"),
            include_str!("../../../../wit/mapping@1.1.0/host.wit"),
        ],
    },
];

/// Exports a plain mapping function as the plugin's `map`, for the WIT version named by the
/// `wit` key of the plugin's `plugin.toml`.
///
/// The `mapper` world's bindings are generated here, in the plugin, for that version only, with
/// the lowering of the SDK's own types to them: the SDK carries no bindings, so a component
/// names no other version (`wit-component` would merge semver-compatible versions of one
/// interface into the newest).
#[proc_macro]
pub fn export_mapper(input: TokenStream) -> TokenStream {
    let function = input.to_string();
    let expansion = match manifest_wit().and_then(|wit| version(&wit)) {
        Ok(version) => glue(version, &function),
        Err(message) => format!("::core::compile_error!({message:?});"),
    };
    expansion.parse().unwrap_or_default()
}

/// The lowering of the SDK's canonical types to the generated ones, for every version.
const LOWER: &str = include_str!("lower.rs.in");

/// The export glue of `version` for the mapping function `function`.
fn glue(version: &Version, function: &str) -> String {
    let wit = version.wit.concat();
    let (expiry_log, expiry_field) = if version.package == "millrace:mapping@1.0.0" {
        (
            r#"            if let Some(expiry) = &m.expiry_date {
                ::millrace_sdk::log::info(
                    "expiry date not mapped: the plugin targets millrace:mapping@1.0.0, whose \
                     inventory-movement has no expiry date; target 1.1.0 in plugin.toml",
                    &[
                        ("item", m.item.as_str()),
                        ("lot", m.lot.as_deref().unwrap_or("")),
                        ("expires", expiry.as_str()),
                    ],
                );
            }
"#,
            "",
        )
    } else {
        ("", "                expiry_date: m.expiry_date,\n")
    };
    let lower = LOWER
        .replace("{EXPIRY_LOG}", expiry_log)
        .replace("{EXPIRY_FIELD}", expiry_field);
    format!(
        r#"
::millrace_sdk::__mapper_const!({function});

// Including the manifest makes cargo rebuild the plugin when its `wit` changes.
const _: &[u8] = ::core::include_bytes!(::core::concat!(
    ::core::env!("CARGO_MANIFEST_DIR"), "/plugin.toml"));

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
mod __millrace_export {{
    ::millrace_sdk::__wit_bindgen::generate!({{
        inline: {wit:?},
        world: "mapper",
        runtime_path: "::millrace_sdk::__wit_bindgen_rt",
    }});

    use self::millrace::mapping::canonical as w;
    use self::millrace::mapping::host;
    use ::millrace_sdk::canonical as c;

    static HOST: ::millrace_sdk::__export::HostCalls = ::millrace_sdk::__export::HostCalls {{
        log: |level, message, fields| {{
            use ::millrace_sdk::log::Level as L;
            let level = match level {{
                L::Trace => host::LogLevel::Trace,
                L::Debug => host::LogLevel::Debug,
                L::Info => host::LogLevel::Info,
                L::Warn => host::LogLevel::Warn,
                L::Error => host::LogLevel::Error,
            }};
            host::log(level, message, fields)
        }},
        get_config: |key| host::get_config(key),
        get_config_all: || host::get_config_all(),
    }};

    struct MillraceMapper;

    impl Guest for MillraceMapper {{
        fn map(input: RawMessage) -> ::core::result::Result<::std::vec::Vec<w::CanonicalEvent>, MapError> {{
            ::millrace_sdk::__export::install(&HOST);
            let input = ::millrace_sdk::RawMessage {{
                subject: input.subject,
                headers: input.headers,
                payload: input.payload,
            }};
            match super::MAPPER(input) {{
                Ok(events) => Ok(events.into_iter().map(lower_event).collect()),
                Err(::millrace_sdk::MapError::MalformedInput(m)) => Err(MapError::MalformedInput(m)),
                Err(::millrace_sdk::MapError::UnsupportedDocument(m)) => Err(MapError::UnsupportedDocument(m)),
                Err(::millrace_sdk::MapError::RejectedByRule(m)) => Err(MapError::RejectedByRule(m)),
                Err(::millrace_sdk::MapError::Other(m)) => Err(MapError::Other(m)),
            }}
        }}
    }}

{lower}
    export!(MillraceMapper);
}}
"#
    )
}

/// The `wit` value of `$CARGO_MANIFEST_DIR/plugin.toml`.
fn manifest_wit() -> Result<String, String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        "export_mapper!: CARGO_MANIFEST_DIR is not set (build with cargo)".to_owned()
    })?;
    let path = std::path::Path::new(&dir).join("plugin.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "export_mapper!: cannot read {}: {e}; a plugin's manifest names the WIT version it \
             targets (wit = \"millrace:mapping@1.1.0\")",
            path.display()
        )
    })?;
    wit_of(&text).ok_or_else(|| {
        format!(
            "export_mapper!: {} has no `wit = \"millrace:mapping@<version>\"` line",
            path.display()
        )
    })
}

/// The value of the top-level `wit` key of a manifest (before any `[table]`).
fn wit_of(manifest: &str) -> Option<String> {
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            return None;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "wit" {
            let value = value.split('#').next().unwrap_or_default().trim();
            return Some(value.trim_matches('"').to_owned());
        }
    }
    None
}

/// The version `wit` names.
fn version(wit: &str) -> Result<&'static Version, String> {
    VERSIONS.iter().find(|v| v.package == wit).ok_or_else(|| {
        format!(
            "export_mapper!: plugin.toml targets {wit:?}; this SDK exports {}",
            VERSIONS.map(|v| v.package).join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_wit_key_before_any_table() {
        let manifest =
            "name = \"a\"\nwit = \"millrace:mapping@1.1.0\" # newest\n[fixtures]\nwit = \"x\"\n";
        assert_eq!(wit_of(manifest).unwrap(), "millrace:mapping@1.1.0");
        assert_eq!(wit_of("[fixtures]\nwit = \"x\"\n"), None);
    }

    #[test]
    fn writes_the_glue_of_the_version_named() {
        assert!(
            version("millrace:mapping@9.0.0")
                .unwrap_err()
                .contains("1.0.0, millrace:mapping@1.1.0")
        );
        let new = glue(version("millrace:mapping@1.1.0").unwrap(), "map");
        assert!(new.contains("package millrace:mapping@1.1.0;"));
        assert!(new.contains("expiry_date: m.expiry_date,"));
        let old = glue(version("millrace:mapping@1.0.0").unwrap(), "map");
        assert!(old.contains("package millrace:mapping@1.0.0;"));
        assert!(old.contains("expiry date not mapped"));
        assert!(!old.contains("expiry_date: m.expiry_date,"));
    }
}
