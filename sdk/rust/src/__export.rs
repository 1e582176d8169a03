//! What the export glue of [`crate::export_mapper!`] calls: the route of host calls to the
//! `host` imports of the exported WIT version, which the glue generates in the plugin.
#![allow(missing_docs)] // hidden: named only by the SDK's macro

use crate::log::level::Level;

/// The host imports of the WIT version a plugin exports, as plain function pointers.
pub struct HostCalls {
    pub log: fn(Level, &str, &[(String, String)]),
    pub get_config: fn(&str) -> Option<String>,
    pub get_config_all: fn() -> Vec<(String, String)>,
}

static HOST: std::sync::OnceLock<&'static HostCalls> = std::sync::OnceLock::new();

/// Routes [`crate::log`] and [`crate::config`] to `calls`; the glue does it before each call.
pub fn install(calls: &'static HostCalls) {
    HOST.get_or_init(|| calls);
}

/// The host imports of the exported version; none off `wasm32` or before the first call.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn host() -> Option<&'static HostCalls> {
    HOST.get().copied()
}
