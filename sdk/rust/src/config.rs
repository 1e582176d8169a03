//! Read access to the route's configuration (site code, partner id, unit tables...).
//!
//! On `wasm32` these call the host. Elsewhere (a plugin's native `cargo test`) they read a
//! per-thread table set with `set_for_tests`, empty by default.

use crate::MapError;

/// Returns the value of `key` in the route configuration, or none when the route does not set it.
pub fn get(key: &str) -> Option<String> {
    backend::get(key)
}

/// Returns the value of `key`, or none when the route does not set it; a value that is blank
/// (`plant.PLANT1 = ""`) is a [`MapError::Other`] naming the key, since a key set to nothing
/// is a mistake in the route, not a wish for the default.
pub fn get_non_blank(key: &str) -> Result<Option<String>, MapError> {
    match get(key) {
        Some(value) if value.trim().is_empty() => Err(MapError::other(format!(
            "route config key '{key}' is empty; set it to a value or remove it"
        ))),
        value => Ok(value),
    }
}

/// Returns the value of `key`, or a [`MapError::Other`] telling the operator to set it.
pub fn require(key: &str) -> Result<String, MapError> {
    get(key).ok_or_else(|| {
        MapError::other(format!(
            "the route configuration has no key '{key}'; set it in the route's config"
        ))
    })
}

/// Returns a route setting for a site: the key `<key>.<site>` and its value, else `<key>` and
/// its value (the key read, for an error to name).
pub fn site_setting(key: &str, site: &str) -> Option<(String, String)> {
    let for_site = format!("{key}.{site}");
    match get(&for_site) {
        Some(value) => Some((for_site, value)),
        None => get(key).map(|value| (key.to_owned(), value)),
    }
}

/// Checks `site`, read from the key `key`, against what a canonical subject token may hold
/// (letters, digits, `-` and `_`), and returns it; an [`MapError::Other`] names the key.
pub fn checked_site(key: &str, site: String) -> Result<String, MapError> {
    let valid = !site.is_empty()
        && site
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if valid {
        Ok(site)
    } else {
        Err(MapError::other(format!(
            "route config key '{key}' is '{site}', but a site code may hold only letters, digits, '-' and '_'"
        )))
    }
}

/// Returns every key/value pair of the route configuration, sorted by key.
pub fn all() -> Vec<(String, String)> {
    backend::all()
}

#[cfg(target_arch = "wasm32")]
mod backend {
    // The host imports of the WIT version the plugin exports; set before `map` runs.
    pub(super) fn get(key: &str) -> Option<String> {
        crate::__export::host().and_then(|host| (host.get_config)(key))
    }

    pub(super) fn all() -> Vec<(String, String)> {
        crate::__export::host().map_or_else(Vec::new, |host| (host.get_config_all)())
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use backend::set_for_tests;

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static CONFIG: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Replaces this thread's route configuration (native builds only, for plugin tests).
    pub fn set_for_tests<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) {
        let table = pairs
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        CONFIG.with(|config| *config.borrow_mut() = table);
    }

    pub(super) fn get(key: &str) -> Option<String> {
        CONFIG.with(|config| config.borrow().get(key).cloned())
    }

    pub(super) fn all() -> Vec<(String, String)> {
        CONFIG.with(|config| {
            config
                .borrow()
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn reads_the_test_table() {
        set_for_tests([("site", "PLANT1"), ("partner", "ACME")]);
        assert_eq!(get("site").as_deref(), Some("PLANT1"));
        assert_eq!(get("missing"), None);
        assert_eq!(require("partner").unwrap(), "ACME");
        assert_eq!(
            require("missing").unwrap_err(),
            MapError::Other(
                "the route configuration has no key 'missing'; set it in the route's config".into()
            )
        );
        assert_eq!(all().len(), 2);
        assert_eq!(all()[0].0, "partner");
        assert_eq!(get_non_blank("site").unwrap().as_deref(), Some("PLANT1"));
        assert_eq!(get_non_blank("missing").unwrap(), None);
        set_for_tests([("plant.PLANT1", " "), ("utc-offset", "+01:00")]);
        assert_eq!(
            get_non_blank("plant.PLANT1").unwrap_err(),
            MapError::Other(
                "route config key 'plant.PLANT1' is empty; set it to a value or remove it".into()
            )
        );
        assert_eq!(
            site_setting("utc-offset", "PLANT1"),
            Some(("utc-offset".to_owned(), "+01:00".to_owned()))
        );
        set_for_tests([("utc-offset", "+01:00"), ("utc-offset.PLANT2", "-05:00")]);
        assert_eq!(
            site_setting("utc-offset", "PLANT2"),
            Some(("utc-offset.PLANT2".to_owned(), "-05:00".to_owned()))
        );
    }
}
