//! `--metrics-addr`: the run's samples (and the dispatcher's own counters)
//! served in the Prometheus text format at `http://ADDR/metrics` while the
//! run lasts, through the [`metrics`] facade and `metrics-exporter-prometheus`'s
//! recorder, plus the latency histogram ([`histogram`]).
//!
//! Every [`Sample`] field is one metric named `metronome_<field>` (nested
//! fields joined by `_`: `limits.max_buffered_bytes` is
//! `metronome_limits_max_buffered_bytes`); the cumulative `totals` are
//! counters ending in `_total` (`metronome_delivered_total`), the rest are
//! gauges. Latency is the histogram `metronome_latency_seconds` (`_bucket{le}`,
//! `_sum`, `_count`, cumulative, seconds), which a fleet aggregates with
//! `histogram_quantile`; of the per-interval percentiles only the maximum stays
//! (`metronome_latency_us_max`). Every series carries the labels `run_id`,
//! `scenario` (the preset's name, or `custom`) and `host`. [`METRIC_NAMES`] lists
//! them all, with the dispatcher's [`DISPATCHER_METRIC_NAMES`].
//!
//! The address is only ever the one given: `127.0.0.1:9464` keeps the
//! endpoint on this machine, `0.0.0.0:9464` exposes it to the network.

mod fields;
pub mod histogram;
mod server;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use runlog::{FlushReasonCounts, Sample};

use fields::{FIELDS, Read};
pub use histogram::{LATENCY_BUCKETS_S, LATENCY_HISTOGRAM, LatencyBuckets};

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

/// Whether a metric only goes up (a Prometheus counter), is read as is, or is a series of
/// the latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cumulative; the name ends in `_total`.
    Counter,
    /// A value at the end of the sample interval (or over it, for rates).
    Gauge,
    /// `metronome_latency_seconds_bucket`, `_sum` or `_count`.
    Histogram,
}

/// Batches by flush reason, cumulative, labelled `reason`.
pub const FLUSH_REASONS_METRIC: &str = "metronome_flush_reasons_total";
/// 1 for the run's current phase (`run`, `drain`), 0 for the other, labelled `phase`.
pub const PHASE_METRIC: &str = "metronome_phase";

/// The series of the latency histogram.
pub const HISTOGRAM_SERIES: [&str; 3] = [
    "metronome_latency_seconds_bucket",
    "metronome_latency_seconds_sum",
    "metronome_latency_seconds_count",
];

/// Every `metronome_*` metric the endpoint serves.
pub const METRIC_NAMES: [&str; FIELDS.len() + 5] = {
    let mut names = [""; FIELDS.len() + 5];
    let mut i = 0;
    while i < FIELDS.len() {
        names[i] = FIELDS[i].name;
        i += 1;
    }
    names[i] = FLUSH_REASONS_METRIC;
    names[i + 1] = PHASE_METRIC;
    names[i + 2] = HISTOGRAM_SERIES[0];
    names[i + 3] = HISTOGRAM_SERIES[1];
    names[i + 4] = HISTOGRAM_SERIES[2];
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
    latency: Arc<Mutex<LatencyBuckets>>,
    flush_totals: FlushReasonCounts,
    _server: server::Server,
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
    /// series and serves it, with the latency histogram, at `http://addr/metrics`
    /// on a thread of its own. Port 0 picks a free port: [`Exporter::addr`] says which.
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
        let listener =
            TcpListener::bind(addr).map_err(|source| ExporterError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ExporterError::Listen { addr, source })?;
        tracing::debug!("metrics exporter bound to {bound}");
        let recorder = PrometheusBuilder::new()
            .add_global_label("run_id", &labels.run_id)
            .add_global_label("scenario", &labels.scenario)
            .add_global_label("host", &labels.host)
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|_| ExporterError::AlreadyInstalled { addr })?;
        let latency = Arc::new(Mutex::new(LatencyBuckets::default()));
        let label_text = histogram::label_text(&[
            ("run_id", &labels.run_id),
            ("scenario", &labels.scenario),
            ("host", &labels.host),
        ]);
        let render: server::Render = {
            let (handle, latency) = (handle.clone(), Arc::clone(&latency));
            Arc::new(move || {
                let buckets = latency
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let mut text = handle.render();
                text.push_str(&buckets.render(&label_text));
                text
            })
        };
        let server = server::Server::start(listener, render).map_err(|e| ExporterError::Start {
            addr,
            message: e.to_string(),
        })?;
        describe();
        Ok(Exporter {
            addr: bound,
            handle,
            latency,
            flush_totals: FlushReasonCounts::default(),
            _server: server,
        })
    }

    /// Where it serves (`/metrics`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes one sample and its interval's latencies (the run calls this for every
    /// sample it writes).
    pub fn publish(&mut self, sample: &Sample, latency: Option<&Histogram<u64>>) {
        publish(sample, &mut self.flush_totals);
        if let Some(interval) = latency {
            self.latency
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(interval);
        }
    }

    /// What a scrape would return now, without the latency histogram.
    pub fn render(&self) -> String {
        self.handle.render()
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
/// assert_eq!(kind_of("metronome_latency_seconds_bucket"), Some(Kind::Histogram));
/// assert_eq!(kind_of("nope"), None);
/// ```
pub fn kind_of(name: &str) -> Option<Kind> {
    if HISTOGRAM_SERIES.contains(&name) {
        return Some(Kind::Histogram);
    }
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
        for name in METRIC_NAMES
            .iter()
            .filter(|n| !HISTOGRAM_SERIES.contains(n))
        {
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
