//! The export macros of `millrace-sdk`, re-exported there as `export_mapper!` and
//! `export_poster!`.
//!
//! A plugin chooses the WIT version it targets in one place, its manifest: the macros read the
//! `wit` key of the `plugin.toml` beside the plugin's `Cargo.toml` and write the export glue of
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
    MAPPING_1_1_0,
];

/// The newest mapping version, which the poster world also uses.
const MAPPING_1_1_0: Version = Version {
    package: "millrace:mapping@1.1.0",
    wit: [
        include_str!("../../../../wit/mapping@1.1.0/mapper.wit"),
        include_str!("../../../../wit/mapping@1.1.0/canonical.wit"),
        include_str!("../../../../wit/mapping@1.1.0/host.wit"),
    ],
};

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
    expand("export_mapper!", |wit| {
        version(wit).map(|version| glue(version, &function))
    })
}

/// The glue `write` makes for the WIT version the plugin's manifest names, or a
/// `compile_error!` saying why `macro_name` cannot write one.
fn expand(macro_name: &str, write: impl FnOnce(&str) -> Result<String, String>) -> TokenStream {
    let expansion = manifest_wit(macro_name)
        .and_then(|wit| write(&wit))
        .unwrap_or_else(|message| format!("::core::compile_error!({message:?});"));
    expansion.parse().unwrap_or_default()
}

/// The lowering of the SDK's canonical types to the generated ones, for every version.
const LOWER: &str = include_str!("lower.rs.in");

/// The `HOST` table the glue of both worlds installs before each call: through it the SDK's
/// `log` and `config` reach the WIT `host` interface (`millrace:mapping/host`, which the poster
/// world imports too).
const HOST_CALLS: &str = r#"    static HOST: ::millrace_sdk::__export::HostCalls = ::millrace_sdk::__export::HostCalls {
        log: |level, message, fields| {
            use ::millrace_sdk::log::Level as L;
            let level = match level {
                L::Trace => host::LogLevel::Trace,
                L::Debug => host::LogLevel::Debug,
                L::Info => host::LogLevel::Info,
                L::Warn => host::LogLevel::Warn,
                L::Error => host::LogLevel::Error,
            };
            host::log(level, message, fields)
        },
        get_config: |key| host::get_config(key),
        get_config_all: || host::get_config_all(),
    };"#;

/// The start of the glue's export module, which the caller's text continues and closes: the
/// manifest dependency, then the bindings of `world` in the inline `wit`, generated with the
/// further `generate!` options `options` (lines, or "").
fn export_module_start(world: &str, wit: &str, options: &str) -> String {
    format!(
        r#"
// Including the manifest makes cargo rebuild the plugin when its `wit` changes.
const _: &[u8] = ::core::include_bytes!(::core::concat!(
    ::core::env!("CARGO_MANIFEST_DIR"), "/plugin.toml"));

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
mod __millrace_export {{
    ::millrace_sdk::__wit_bindgen::generate!({{
        inline: {wit:?},
        world: "{world}",
        runtime_path: "::millrace_sdk::__wit_bindgen_rt",
{options}    }});"#
    )
}

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
    let bindings = export_module_start("mapper", &wit, "");
    format!(
        r#"
::millrace_sdk::__mapper_const!({function});
{bindings}

    use self::millrace::mapping::canonical as w;
    use self::millrace::mapping::host;
    use ::millrace_sdk::canonical as c;

{HOST_CALLS}

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

/// The `wit` value of `$CARGO_MANIFEST_DIR/plugin.toml`; `name` (the macro) prefixes errors.
fn manifest_wit(name: &str) -> Result<String, String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| format!("{name}: CARGO_MANIFEST_DIR is not set (build with cargo)"))?;
    let path = std::path::Path::new(&dir).join("plugin.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{name}: cannot read {}: {e}; a plugin's manifest names the WIT version it \
             targets (wit = \"millrace:mapping@1.1.0\")",
            path.display()
        )
    })?;
    wit_of(&text).ok_or_else(|| {
        format!(
            "{name}: {} has no `wit = \"millrace:<package>@<version>\"` line",
            path.display()
        )
    })
}

/// The poster WIT versions the SDK can export: the package and its inline text.
const POSTER_VERSIONS: [&str; 1] = ["millrace:outbound@1.0.0"];

/// The inline WIT of the `poster` world of millrace:outbound@1.0.0: `posting.wit` (its
/// `package` line first) and the mapping package it uses, nested (`package ... { ... }`), so
/// one string carries both without a `deps` folder.
fn poster_wit() -> String {
    let [mapper, canonical, host] = MAPPING_1_1_0.wit;
    // The nested package takes the mapping files' items without their `package` line.
    let types = mapper
        .lines()
        .filter(|line| !line.starts_with("package "))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "{}\npackage {} {{\n{canonical}\n{host}\n{types}\n}}\n",
        include_str!("../../../../wit/outbound@1.0.0/posting.wit"),
        MAPPING_1_1_0.package,
    )
}

/// Exports a type implementing `millrace_sdk::posting::Poster` as the plugin's `render` and
/// `interpret`, for the `poster` world of the WIT version named by the `wit` key of the
/// plugin's `plugin.toml` (`millrace:outbound@1.0.0`).
#[proc_macro]
pub fn export_poster(input: TokenStream) -> TokenStream {
    let poster = input.to_string();
    expand("export_poster!", |wit| {
        poster_version(wit).map(|_| poster_glue(&poster))
    })
}

/// The poster version `wit` names.
fn poster_version(wit: &str) -> Result<&'static str, String> {
    POSTER_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == wit)
        .ok_or_else(|| {
            format!(
                "export_poster!: plugin.toml targets {wit:?}; an outbound plugin targets {} \
                 (a mapping plugin uses export_mapper!)",
                POSTER_VERSIONS.join(", ")
            )
        })
}

/// The lifting of the generated canonical types to the SDK's, for the poster glue.
const LIFT: &str = include_str!("lift.rs.in");

/// The export glue of the `poster` world for the type `poster`.
fn poster_glue(poster: &str) -> String {
    // The canonical model and the host interface live in the (nested) mapping package.
    let bindings = export_module_start("poster", &poster_wit(), "        generate_all,\n");
    format!(
        r#"
// The exported type, named where the macro is used (any path works), and checked on every
// target, so a native `cargo test` already says when it does not implement `Poster`.
#[doc(hidden)]
type __MillracePoster = {poster};
const _: fn() = || {{
    fn implements_poster<P: ::millrace_sdk::posting::Poster>() {{}}
    implements_poster::<__MillracePoster>();
}};
{bindings}

    use self::millrace::mapping::canonical as w;
    use self::millrace::mapping::host;
    use self::millrace::outbound::posting as p;
    use ::millrace_sdk::canonical as c;
    use ::millrace_sdk::posting as s;

{HOST_CALLS}

    struct MillracePoster;

    impl Guest for MillracePoster {{
        fn render(event: p::Event) -> ::core::result::Result<::std::vec::Vec<p::Request>, p::RenderError> {{
            ::millrace_sdk::__export::install(&HOST);
            let event = lift_event(event);
            match <super::__MillracePoster as s::Poster>::render(&event) {{
                Ok(requests) => Ok(requests.into_iter().map(lower_request).collect()),
                Err(s::RenderError::IncompleteEvent(m)) => Err(p::RenderError::IncompleteEvent(m)),
                Err(s::RenderError::RejectedByRule(m)) => Err(p::RenderError::RejectedByRule(m)),
                Err(s::RenderError::Other(m)) => Err(p::RenderError::Other(m)),
            }}
        }}

        fn interpret(event: p::Event, request: p::Request, response: p::Response) -> p::Verdict {{
            ::millrace_sdk::__export::install(&HOST);
            let event = lift_event(event);
            let request = lift_request(request);
            let response = s::Response {{
                target: response.target,
                status: response.status,
                headers: response.headers,
                body: response.body,
            }};
            match <super::__MillracePoster as s::Poster>::interpret(&event, &request, &response) {{
                s::Verdict::Posted(m) => p::Verdict::Posted(m),
                s::Verdict::Rejected(m) => p::Verdict::Rejected(m),
                s::Verdict::TryAgain(m) => p::Verdict::TryAgain(m),
            }}
        }}
    }}

    fn lift_event(event: p::Event) -> s::Event {{
        let e = event.envelope;
        let data = lift_data(event.data);
        s::Event {{
            envelope: s::Envelope {{
                id: e.id,
                kind: e.kind,
                business_key: data.business_key(&e.site),
                site: e.site,
                subject: e.subject,
                time: e.time,
                lineage: s::Lineage {{
                    raw_id: e.lineage.raw_id,
                    route: e.lineage.route,
                    plugin: e.lineage.plugin,
                    source_transaction: e.lineage.source_transaction,
                    source_sequence: e.lineage.source_sequence,
                }},
            }},
            data,
        }}
    }}

    fn lower_request(r: s::Request) -> p::Request {{
        p::Request {{
            target: r.target,
            method: match r.method {{
                s::Method::Get => p::Method::Get,
                s::Method::Post => p::Method::Post,
                s::Method::Put => p::Method::Put,
                s::Method::Patch => p::Method::Patch,
                s::Method::Delete => p::Method::Delete,
            }},
            path: r.path,
            headers: r.headers,
            body: r.body,
        }}
    }}

    fn lift_request(r: p::Request) -> s::Request {{
        s::Request {{
            target: r.target,
            method: match r.method {{
                p::Method::Get => s::Method::Get,
                p::Method::Post => s::Method::Post,
                p::Method::Put => s::Method::Put,
                p::Method::Patch => s::Method::Patch,
                p::Method::Delete => s::Method::Delete,
            }},
            path: r.path,
            headers: r.headers,
            body: r.body,
        }}
    }}

{LIFT}
    export!(MillracePoster);
}}
"#
    )
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

    #[test]
    fn writes_the_poster_glue_of_outbound_1_0_0_only() {
        assert!(poster_version("millrace:outbound@1.0.0").is_ok());
        assert!(
            poster_version("millrace:mapping@1.1.0")
                .unwrap_err()
                .contains("an outbound plugin targets millrace:outbound@1.0.0")
        );
        let glue = poster_glue("ErpPostings");
        assert!(glue.contains("package millrace:outbound@1.0.0;"));
        assert!(glue.contains("package millrace:mapping@1.1.0 {"));
        assert!(glue.contains("type __MillracePoster = ErpPostings;"));
        assert!(glue.contains("<super::__MillracePoster as s::Poster>::render(&event)"));
    }
}
