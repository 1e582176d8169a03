//! Registering one metric family: the value the host counts in is the one the registry reads.

use prometheus_client::registry::{Metric, Registry};

/// Registers `metric` in `registry` as `name` with the `help` text, and returns it: the value
/// the host counts in and the registry reads from.
pub(super) fn registered<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}
