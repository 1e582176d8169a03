//! The severity of a log record, shared by the log calls and the host imports they reach.

/// The severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Details useful when debugging a mapping.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the mapping handled.
    Warn,
    /// Something failed.
    Error,
}
