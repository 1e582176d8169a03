//! Before measuring: every mapping the arms use gives the same events for the bench inputs.
//! The Python and JavaScript plugins are ports of the Rust mappings; this is where a port that
//! drifted is caught, before it is timed. (The Node service runs the JavaScript plugin's own
//! mapping module.)

use millrace::canonical::MappedEvent;
use millrace::sandbox::{RawMessage, Session};

use crate::arms::{Arm, Setup};
use crate::service::Mapping;
use crate::workload;

/// Maps a shift report and an 856 with every selected arm's mapping and compares the events
/// with the Rust plugin's in the sandbox.
pub async fn outputs_agree(setup: &Setup, arms: &[Arm]) -> anyhow::Result<()> {
    let samples = [0u64, 1];
    let reference = sandboxed(setup, Arm::Rust, &samples).await?;
    for (index, events) in samples.iter().zip(&reference) {
        anyhow::ensure!(
            events.len() == usize::from(workload::events_of(*index)),
            "the Rust plugin maps bench message {index} to {} events, the workload expects {}",
            events.len(),
            workload::events_of(*index)
        );
    }
    let native: Vec<Vec<MappedEvent>> = samples
        .iter()
        .map(|i| crate::native::map(&workload::subject(*i), &workload::payload(*i)))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(
        native == reference,
        "the native mapping and the Rust plugin disagree"
    );
    let mut agreed = vec!["native"];
    for arm in [Arm::Python, Arm::JavaScript] {
        let node_needs_js = arm == Arm::JavaScript && arms.contains(&Arm::Node);
        if !arms.contains(&arm) && !node_needs_js {
            continue;
        }
        let events = sandboxed(setup, arm, &samples).await?;
        for (n, (ours, theirs)) in reference.iter().zip(&events).enumerate() {
            if ours != theirs {
                anyhow::bail!(
                    "{} maps bench message {n} differently from the Rust plugin:\nRust: {}\nport: {}",
                    arm.title(),
                    serde_json::to_string(ours)?,
                    serde_json::to_string(theirs)?
                );
            }
        }
        agreed.push(arm.key());
    }
    println!(
        "outputs agree with the Rust plugin's: {}",
        agreed.join(", ")
    );
    Ok(())
}

async fn sandboxed(
    setup: &Setup,
    arm: Arm,
    samples: &[u64],
) -> anyhow::Result<Vec<Vec<MappedEvent>>> {
    let (shift_dir, asn_dir) = setup.plugin_dirs(arm);
    let shift = setup.load(&shift_dir).await?;
    let asn = setup.load(&asn_dir).await?;
    let route = Mapping::route_context("check");
    let samples = samples.to_vec();
    tokio::task::spawn_blocking(move || {
        samples
            .iter()
            .map(|index| {
                let plugin = if workload::is_shift_report(*index) {
                    &shift
                } else {
                    &asn
                };
                let mut session = Session::new(plugin, &route)?;
                let raw = RawMessage {
                    subject: workload::subject(*index),
                    headers: Vec::new(),
                    payload: workload::payload(*index).to_vec(),
                };
                Ok(session.call(&raw)?)
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await?
}
