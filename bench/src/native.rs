//! Arm (b): the plugins' own mapping functions compiled into this binary and called directly,
//! with no sandbox. What the host does around a plugin call (checking the events, the
//! CloudEvents envelope) is the host's own code, as in every other arm, and the calls run on
//! a pool of threads like the host's worker pool, so the arm differs from (c) by the sandbox
//! alone.

use millrace::canonical::{self as host, MappedEvent};
use millrace_sdk::canonical as sdk;

/// A fixed pool of threads running the native mappings, fed by one bounded queue, as the
/// host's `WorkerPool` runs plugin calls.
pub struct NativePool {
    queue: async_channel::Sender<Job>,
}

type Job = (
    String,
    bytes::Bytes,
    tokio::sync::oneshot::Sender<anyhow::Result<Vec<MappedEvent>>>,
);

impl NativePool {
    /// Starts `workers` threads; they end when the pool is dropped.
    pub fn start(workers: usize) -> anyhow::Result<Self> {
        let (queue, jobs) = async_channel::bounded::<Job>(64 * workers);
        for i in 0..workers {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("native-worker-{i}"))
                .spawn(move || {
                    while let Ok((subject, payload, reply)) = jobs.recv_blocking() {
                        let _ = reply.send(map(&subject, &payload));
                    }
                })?;
        }
        Ok(Self { queue })
    }

    /// Maps one raw message on the first free thread.
    pub async fn call(
        &self,
        subject: &str,
        payload: &bytes::Bytes,
    ) -> anyhow::Result<Vec<MappedEvent>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send((subject.to_owned(), payload.clone(), reply))
            .await
            .map_err(|_| anyhow::anyhow!("the native pool is shut down"))?;
        answer.await?
    }
}

/// The native mappings, by raw subject.
pub fn map(subject: &str, payload: &[u8]) -> anyhow::Result<Vec<MappedEvent>> {
    let mapper = if subject.ends_with(".856") {
        x12_856::MAPPER
    } else {
        mes_shift_report::MAPPER
    };
    CONFIGURED.with(|done| {
        if !done.get() {
            configure();
            done.set(true);
        }
    });
    let raw = millrace_sdk::RawMessage {
        subject: subject.to_owned(),
        headers: Vec::new(),
        payload: payload.to_vec(),
    };
    let events = mapper(raw).map_err(|e| anyhow::anyhow!("native mapping refused: {e:?}"))?;
    events.into_iter().map(lift).collect()
}

thread_local! {
    static CONFIGURED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets this thread's route configuration, which the SDK keeps per thread natively.
fn configure() {
    millrace_sdk::config::set_for_tests([("site", crate::SITE)]);
}

fn quantity(q: sdk::Quantity) -> host::Quantity {
    host::Quantity {
        amount: q.amount,
        uom: q.uom,
    }
}

/// The SDK's event as the host's model; only the kinds the workload produces.
fn lift(event: sdk::CanonicalEvent) -> anyhow::Result<MappedEvent> {
    let data = match event.data {
        sdk::EventData::ProductionCompletion(p) => {
            host::EventData::ProductionCompletion(host::ProductionCompletion {
                work_order: p.work_order,
                operation: p.operation,
                item: p.item,
                lot: p.lot,
                good_quantity: quantity(p.good_quantity),
                scrap_quantity: quantity(p.scrap_quantity),
                location: p.location,
            })
        }
        sdk::EventData::MaterialConsumption(m) => {
            host::EventData::MaterialConsumption(host::MaterialConsumption {
                work_order: m.work_order,
                operation: m.operation,
                item: m.item,
                lot: m.lot,
                quantity: quantity(m.quantity),
                location: m.location,
            })
        }
        sdk::EventData::ShipmentNotice(s) => {
            host::EventData::ShipmentNotice(host::ShipmentNotice {
                shipment_id: s.shipment_id,
                supplier: s.supplier,
                ship_date: s.ship_date,
                expected_delivery: s.expected_delivery,
                lines: s
                    .lines
                    .into_iter()
                    .map(|l| host::ShipmentLine {
                        item: l.item,
                        quantity: quantity(l.quantity),
                        lot: l.lot,
                        serials: l.serials,
                        purchase_order: l.purchase_order,
                        package_id: l.package_id,
                    })
                    .collect(),
            })
        }
        _ => anyhow::bail!("the workload maps to completions, consumptions and ship notices only"),
    };
    Ok(MappedEvent {
        site: event.site,
        occurred_at: event.occurred_at,
        source_sequence: event.source_sequence,
        source_transaction: event.source_transaction,
        data,
    })
}
