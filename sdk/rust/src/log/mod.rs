//! Structured logging to the host log, tagged by the host with the route and plugin version.
//!
//! On `wasm32` these call the host; elsewhere (native tests) they write one line to stderr.

pub(crate) mod level;

pub use self::level::Level;

/// Writes `message` at `level` with extra key/value `fields`.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    backend::write(level, message, fields);
}

/// Writes a trace record.
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    write(Level::Trace, message, fields);
}

/// Writes a debug record.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields);
}

/// Writes an info record.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields);
}

/// Writes a warning record.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields);
}

/// Writes an error record.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write(Level::Error, message, fields);
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::Level;

    pub(super) fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
        // The host imports of the WIT version the plugin exports; set before `map` runs.
        let Some(host) = crate::__export::host() else {
            return;
        };
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        (host.log)(level, message, &fields);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use super::Level;

    pub(super) fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
        // As the host's default log level does, drop debug and trace records: a mapping called
        // natively in a loop (the benchmark's baseline) must not spend its time on stderr.
        if matches!(level, Level::Debug | Level::Trace) {
            return;
        }
        let fields: String = fields
            .iter()
            .map(|(key, value)| format!(" {key}={value:?}"))
            .collect();
        eprintln!("[{level:?}] {message}{fields}");
    }
}
