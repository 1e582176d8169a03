//! Arm (b): the plugins' own mapping functions compiled into this binary and called directly,
//! with no sandbox. What the host does around a plugin call (checking the events, the
//! CloudEvents envelope) is the host's own code, as in every other arm, and the calls run on
//! a pool of threads like the host's worker pool, so the arm differs from (c) by the sandbox
//! alone.

use millrace::canonical::MappedEvent;

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
    // The SDK's events are the host's (one model, millrace-model): nothing to convert.
    mapper(raw).map_err(|e| anyhow::anyhow!("native mapping refused: {e:?}"))
}

thread_local! {
    static CONFIGURED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets this thread's route configuration, which the SDK keeps per thread natively.
fn configure() {
    millrace_sdk::config::set_for_tests([("site", crate::SITE)]);
}
