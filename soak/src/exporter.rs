//! `--metrics-addr`: the run's samples (and the dispatcher's own counters)
//! served in the Prometheus text format at `http://ADDR/metrics` while the
//! run lasts, through the [`metrics`] facade and `metrics-exporter-prometheus`.
//!
//! Every [`Sample`] field is one metric named `metronome_<field>` (nested
//! fields joined by `_`: `limits.max_buffered_bytes` is
//! `metronome_limits_max_buffered_bytes`); the cumulative `totals` are
//! counters ending in `_total` (`metronome_delivered_total`), the rest are
//! gauges. Every series carries the labels `run_id`, `scenario` (the preset's
//! name, or `custom`) and `host`. [`METRIC_NAMES`] lists them all, with the
//! dispatcher's [`DISPATCHER_METRIC_NAMES`].
//!
//! The address is only ever the one given: `127.0.0.1:9464` keeps the
//! endpoint on this machine, `0.0.0.0:9464` exposes it to the network.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use runlog::{FlushReasonCounts, Sample};

/// The label values every exported series carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLabels {
    /// The run directory's name.
    pub run_id: String,
    /// The preset the scenario came from, or `custom`.
    pub scenario: String,
    /// This machine's host name (`unknown` if it cannot be read).
    pub host: String,
}

impl RunLabels {
    /// The labels of run `run_id` of `config` on this host.
    ///
    /// ```
    /// let config = runlog::ScenarioConfig::default();
    /// let labels = soak::exporter::RunLabels::for_run("r1", &config);
    /// assert_eq!((labels.run_id.as_str(), labels.scenario.as_str()), ("r1", "custom"));
    /// assert!(!labels.host.is_empty());
    /// ```
    pub fn for_run(run_id: &str, config: &runlog::ScenarioConfig) -> Self {
        RunLabels {
            run_id: run_id.to_owned(),
            scenario: config.preset.clone().unwrap_or_else(|| "custom".into()),
            host: crate::environment::host_name(),
        }
    }
}

/// Whether a metric only goes up (a Prometheus counter) or is read as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cumulative; the name ends in `_total`.
    Counter,
    /// A value at the end of the sample interval (or over it, for rates).
    Gauge,
}

/// How a metric's value is read from a sample.
#[derive(Clone, Copy)]
enum Read {
    Count(fn(&Sample) -> u64),
    Value(fn(&Sample) -> f64),
}

/// One exported sample field.
struct Field {
    name: &'static str,
    help: &'static str,
    read: Read,
}

/// A limit that is off reads 0.
fn or_zero(limit: Option<u64>) -> f64 {
    limit.map_or(0.0, |v| v as f64)
}

const fn count(name: &'static str, help: &'static str, read: fn(&Sample) -> u64) -> Field {
    Field {
        name,
        help,
        read: Read::Count(read),
    }
}

const fn value(name: &'static str, help: &'static str, read: fn(&Sample) -> f64) -> Field {
    Field {
        name,
        help,
        read: Read::Value(read),
    }
}

/// Every sample field but `flush_reasons` and `phase`, which are labelled.
const FIELDS: &[Field] = &[
    value("metronome_t_s", "Seconds since the run started", |s| s.t_s),
    value(
        "metronome_interval_s",
        "Length of the last sample interval, seconds",
        |s| s.interval_s,
    ),
    value(
        "metronome_attempted_per_sec",
        "Enqueue attempts per second",
        |s| s.attempted_per_sec,
    ),
    value(
        "metronome_accepted_per_sec",
        "Admitted events per second",
        |s| s.accepted_per_sec,
    ),
    value(
        "metronome_rejected_per_sec",
        "Refused events per second",
        |s| s.rejected_per_sec,
    ),
    value(
        "metronome_dropped_per_sec",
        "Evicted events per second",
        |s| s.dropped_per_sec,
    ),
    value(
        "metronome_delivered_per_sec",
        "Delivered events per second",
        |s| s.delivered_per_sec,
    ),
    value(
        "metronome_batches_per_sec",
        "Delivered batches per second",
        |s| s.batches_per_sec,
    ),
    value(
        "metronome_delivered_bytes_per_sec",
        "Delivered payload bytes per second",
        |s| s.delivered_bytes_per_sec,
    ),
    count("metronome_attempted_total", "Enqueue attempts", |s| {
        s.totals.attempted
    }),
    count("metronome_accepted_total", "Events admitted", |s| {
        s.totals.accepted
    }),
    count("metronome_rejected_total", "Events refused", |s| {
        s.totals.rejected
    }),
    count(
        "metronome_dropped_total",
        "Accepted events evicted (drop-oldest)",
        |s| s.totals.dropped,
    ),
    count("metronome_delivered_total", "Events delivered", |s| {
        s.totals.delivered
    }),
    count("metronome_batches_total", "Batches delivered", |s| {
        s.totals.batches
    }),
    value(
        "metronome_buffered_bytes",
        "Bytes accepted, not yet delivered",
        |s| s.buffered_bytes as f64,
    ),
    value(
        "metronome_buffered_items",
        "Events accepted, not yet delivered",
        |s| s.buffered_items as f64,
    ),
    value(
        "metronome_peak_buffered_bytes",
        "Highest buffered bytes so far",
        |s| s.peak_buffered_bytes as f64,
    ),
    value(
        "metronome_heap_allocated_bytes",
        "jemalloc stats.allocated",
        |s| s.heap_allocated_bytes as f64,
    ),
    value(
        "metronome_heap_resident_bytes",
        "jemalloc stats.resident",
        |s| s.heap_resident_bytes as f64,
    ),
    value(
        "metronome_rss_bytes",
        "Resident set size of the process",
        |s| s.rss_bytes as f64,
    ),
    value(
        "metronome_cpu_percent",
        "Process CPU over the interval (100 = one core)",
        |s| s.cpu_percent,
    ),
    value(
        "metronome_latency_us_count",
        "Deliveries timed in the interval",
        |s| s.latency_us.count as f64,
    ),
    value(
        "metronome_latency_us_p50",
        "Enqueue-to-delivery p50 in the interval, us",
        |s| s.latency_us.p50 as f64,
    ),
    value(
        "metronome_latency_us_p90",
        "Enqueue-to-delivery p90 in the interval, us",
        |s| s.latency_us.p90 as f64,
    ),
    value(
        "metronome_latency_us_p99",
        "Enqueue-to-delivery p99 in the interval, us",
        |s| s.latency_us.p99 as f64,
    ),
    value(
        "metronome_latency_us_p999",
        "Enqueue-to-delivery p99.9 in the interval, us",
        |s| s.latency_us.p999 as f64,
    ),
    value(
        "metronome_latency_us_max",
        "Enqueue-to-delivery max in the interval, us",
        |s| s.latency_us.max as f64,
    ),
    value(
        "metronome_mean_batch_bytes",
        "Mean bytes per batch in the interval",
        |s| s.mean_batch_bytes,
    ),
    value(
        "metronome_limits_interval_us",
        "Flush interval in force, us",
        |s| s.limits.interval_us as f64,
    ),
    value(
        "metronome_limits_max_batch_bytes",
        "Batch byte target (0 = off)",
        |s| or_zero(s.limits.max_batch_bytes),
    ),
    value(
        "metronome_limits_max_batch_items",
        "Batch item target (0 = off)",
        |s| or_zero(s.limits.max_batch_items),
    ),
    value(
        "metronome_limits_max_buffered_bytes",
        "Limit on buffered bytes",
        |s| s.limits.max_buffered_bytes as f64,
    ),
    value(
        "metronome_limits_rate_per_sec",
        "Offered rate (0 = unlimited)",
        |s| or_zero(s.limits.rate_per_sec),
    ),
    value(
        "metronome_limits_consumer_delay_us",
        "Consumer delay per batch, us",
        |s| s.limits.consumer_delay_us as f64,
    ),
    value(
        "metronome_paused",
        "1 while the producers are paused",
        |s| f64::from(u8::from(s.paused)),
    ),
];

/// Batches by flush reason, cumulative, labelled `reason`.
pub const FLUSH_REASONS_METRIC: &str = "metronome_flush_reasons_total";
/// 1 for the run's current phase (`run`, `drain`), 0 for the other, labelled `phase`.
pub const PHASE_METRIC: &str = "metronome_phase";

/// Every `metronome_*` metric the endpoint serves.
pub const METRIC_NAMES: [&str; FIELDS.len() + 2] = {
    let mut names = [""; FIELDS.len() + 2];
    let mut i = 0;
    while i < FIELDS.len() {
        names[i] = FIELDS[i].name;
        i += 1;
    }
    names[i] = FLUSH_REASONS_METRIC;
    names[i + 1] = PHASE_METRIC;
    names
};

/// The dispatcher's own metrics (its `metrics` feature), labelled
/// `dispatcher="soak"`: counters of events and batches, gauges of what it holds.
pub const DISPATCHER_METRIC_NAMES: &[&str] = &dispatcher::metrics::METRIC_NAMES;

/// Whether `name` is a metric the endpoint can serve.
///
/// ```
/// use soak::exporter::is_exported;
/// assert!(is_exported("metronome_delivered_total"));
/// assert!(is_exported("dispatcher_buffered_bytes"));
/// assert!(!is_exported("metronome_delivered"));
/// ```
pub fn is_exported(name: &str) -> bool {
    METRIC_NAMES.contains(&name) || DISPATCHER_METRIC_NAMES.contains(&name)
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// The address cannot be listened on (in use, not this machine's, privileged).
    #[error("--metrics-addr {addr}: cannot listen: {source}")]
    Listen {
        /// The address given.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The exporter could not be built or started.
    #[error("--metrics-addr {addr}: {message}")]
    Start {
        /// The address given.
        addr: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// Another metrics recorder is already installed in this process (one
    /// endpoint per process: the `metrics` facade has one global recorder).
    #[error("--metrics-addr {addr}: a metrics endpoint is already running in this process")]
    AlreadyInstalled {
        /// The address given.
        addr: SocketAddr,
    },
}

/// The running endpoint. Dropping it stops serving.
pub struct Exporter {
    addr: SocketAddr,
    handle: PrometheusHandle,
    flush_totals: FlushReasonCounts,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Exporter {
    /// Installs the process-wide Prometheus recorder with `labels` on every
    /// series and serves it at `http://addr/metrics` on a thread of its own.
    /// Port 0 picks a free port: [`Exporter::addr`] says which.
    ///
    /// ```no_run
    /// use soak::exporter::{Exporter, RunLabels};
    ///
    /// let labels = RunLabels::for_run("demo", &runlog::ScenarioConfig::default());
    /// let exporter = Exporter::start("127.0.0.1:9464".parse()?, &labels)?;
    /// println!("http://{}/metrics", exporter.addr());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ExporterError::Listen`] if the address cannot be listened on,
    /// [`ExporterError::AlreadyInstalled`] if this process already has a
    /// metrics recorder, [`ExporterError::Start`] if the server cannot start.
    pub fn start(addr: SocketAddr, labels: &RunLabels) -> Result<Exporter, ExporterError> {
        let start_err = |message: String| ExporterError::Start { addr, message };
        // Resolve port 0 (and report a bad address as the OS words it) before
        // the exporter binds for itself, which would only say "failed".
        let bound = TcpListener::bind(addr)
            .and_then(|l| l.local_addr())
            .map_err(|source| ExporterError::Listen { addr, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| start_err(e.to_string()))?;
        let builder = PrometheusBuilder::new()
            .with_http_listener(bound)
            .add_global_label("run_id", &labels.run_id)
            .add_global_label("scenario", &labels.scenario)
            .add_global_label("host", &labels.host);
        let (recorder, serve) = {
            let _context = runtime.enter();
            builder.build().map_err(|e| start_err(e.to_string()))?
        };
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|_| ExporterError::AlreadyInstalled { addr })?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let server = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        _ = serve => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| start_err(e.to_string()))?;
        describe();
        Ok(Exporter {
            addr: bound,
            handle,
            flush_totals: FlushReasonCounts::default(),
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Where it serves (`/metrics`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes one sample (the run calls this for every sample it writes).
    pub fn publish(&mut self, sample: &Sample) {
        publish(sample, &mut self.flush_totals);
    }

    /// What a scrape would return now.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// `# HELP` lines for every sample metric.
fn describe() {
    for field in FIELDS {
        match field.read {
            Read::Count(_) => describe_counter!(field.name, field.help),
            Read::Value(_) => describe_gauge!(field.name, field.help),
        }
    }
    describe_counter!(FLUSH_REASONS_METRIC, "Batches delivered, by flush reason");
    describe_gauge!(PHASE_METRIC, "1 for the run's current phase");
}

/// Sets every sample metric on the current recorder. `flush_totals` sums the
/// per-interval flush reasons into the cumulative counter.
pub fn publish(sample: &Sample, flush_totals: &mut FlushReasonCounts) {
    for field in FIELDS {
        match field.read {
            Read::Count(read) => counter!(field.name).absolute(read(sample)),
            Read::Value(read) => gauge!(field.name).set(read(sample)),
        }
    }
    let f = &sample.flush_reasons;
    let t = flush_totals;
    t.interval += f.interval;
    t.bytes += f.bytes;
    t.items += f.items;
    t.manual += f.manual;
    t.drain += f.drain;
    for (reason, total) in [
        ("interval", t.interval),
        ("bytes", t.bytes),
        ("items", t.items),
        ("manual", t.manual),
        ("drain", t.drain),
    ] {
        counter!(FLUSH_REASONS_METRIC, "reason" => reason).absolute(total);
    }
    for phase in ["run", "drain"] {
        gauge!(PHASE_METRIC, "phase" => phase).set(f64::from(u8::from(sample.phase == phase)));
    }
}

/// The kind of a `metronome_*` metric, or `None` if it is not one.
///
/// ```
/// use soak::exporter::{Kind, kind_of};
/// assert_eq!(kind_of("metronome_delivered_total"), Some(Kind::Counter));
/// assert_eq!(kind_of("metronome_buffered_bytes"), Some(Kind::Gauge));
/// assert_eq!(kind_of("nope"), None);
/// ```
pub fn kind_of(name: &str) -> Option<Kind> {
    if name == FLUSH_REASONS_METRIC {
        return Some(Kind::Counter);
    }
    if name == PHASE_METRIC {
        return Some(Kind::Gauge);
    }
    FIELDS
        .iter()
        .find(|f| f.name == name)
        .map(|f| match f.read {
            Read::Count(_) => Kind::Counter,
            Read::Value(_) => Kind::Gauge,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn counters_and_only_counters_end_in_total() {
        let mut unique = METRIC_NAMES.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), METRIC_NAMES.len(), "names are unique");
        for name in METRIC_NAMES {
            let counter = kind_of(name) == Some(Kind::Counter);
            assert_eq!(counter, name.ends_with("_total"), "{name}");
        }
    }

    #[test]
    fn a_sample_renders_every_metric_with_its_value() {
        let recorder = PrometheusBuilder::new()
            .add_global_label("host", "h")
            .build_recorder();
        let handle = recorder.handle();
        let mut sample = Sample {
            delivered_per_sec: 1234.5,
            phase: "run".into(),
            ..Sample::default()
        };
        sample.totals.delivered = 99;
        sample.flush_reasons.bytes = 3;
        sample.limits.max_buffered_bytes = 64 << 20;
        let mut totals = FlushReasonCounts::default();
        metrics::with_local_recorder(&recorder, || {
            publish(&sample, &mut totals);
            publish(&sample, &mut totals);
        });
        let text = handle.render();
        for name in METRIC_NAMES {
            assert!(
                text.contains(&format!("\n{name}{{")),
                "{name} missing:\n{text}"
            );
        }
        assert!(
            text.contains("metronome_delivered_total{host=\"h\"} 99\n"),
            "{text}"
        );
        assert!(text.contains("metronome_delivered_per_sec{host=\"h\"} 1234.5\n"));
        assert!(text.contains("metronome_flush_reasons_total{host=\"h\",reason=\"bytes\"} 6\n"));
        assert!(text.contains("metronome_phase{host=\"h\",phase=\"run\"} 1\n"));
        assert!(text.contains("metronome_limits_max_buffered_bytes{host=\"h\"} 67108864\n"));
    }
}
