//! `[telemetry]`: trace export.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `telemetry.otlp_endpoint` | OTLP/HTTP collector base URL spans are exported to | none: no export |
//! | `telemetry.service_name` | the service name spans carry | `millrace` |

use serde::Deserialize;

use super::values::Invalid;

/// Trace export.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL, e.g. `http://127.0.0.1:4318`.
    pub otlp_endpoint: Option<String>,
    /// The service name spans carry.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "millrace".into(),
        }
    }
}

impl TelemetryConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Invalid::new(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL, e.g. http://127.0.0.1:4318",
            ));
        }
        Ok(())
    }
}
