//! User thresholds, k6-style: `p99<50ms`, `refused<1%`, `delivered_per_sec>500k`,
//! `peak_heap<96MiB`. Parsed once (every error names what was typed, the known metrics
//! and operators, or the allowed range of the value), stored in the scenario
//! ([`ScenarioConfig::thresholds`](crate::ScenarioConfig)) and judged against a finished
//! run's record ([`Threshold::evaluate`]).
//!
//! ```
//! use runlog::{RunResults, Threshold};
//!
//! let t: Threshold = "p99<50ms".parse()?;
//! assert_eq!(t.to_string(), "p99<50ms");
//! let mut run = RunResults::default();
//! run.latency_us.count = 100;
//! run.latency_us.p99 = 61_000;
//! let judged = t.evaluate(&run);
//! assert!(!judged.passed);
//! assert_eq!(judged.note, "p99 61 ms, not < 50 ms");
//! # Ok::<(), runlog::ThresholdError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::results::RunResults;
use crate::units::{self, Kind};

/// What a threshold can judge, with how to read it from a run's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Enqueue-to-delivery latency, median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest latency.
    MaxLatency,
    /// Refused offers, as a percentage of offers (`refused<1%`) or a count (`refused<100`).
    Refused,
    /// Evicted events (drop-oldest), as a percentage of offers or a count.
    Dropped,
    /// Delivered events per second over the run.
    DeliveredPerSec,
    /// Accepted events per second over the run.
    AcceptedPerSec,
    /// Largest sampled heap.
    PeakHeap,
    /// Largest sampled resident set.
    PeakRss,
    /// Largest buffered bytes.
    PeakBuffered,
    /// From the end of production to the last delivery.
    Drain,
}

/// Every metric with its name as typed, in the order errors list them.
pub const METRICS: &[(&str, Metric)] = &[
    ("p50", Metric::P50),
    ("p90", Metric::P90),
    ("p99", Metric::P99),
    ("p999", Metric::P999),
    ("max", Metric::MaxLatency),
    ("refused", Metric::Refused),
    ("dropped", Metric::Dropped),
    ("delivered_per_sec", Metric::DeliveredPerSec),
    ("accepted_per_sec", Metric::AcceptedPerSec),
    ("peak_heap", Metric::PeakHeap),
    ("peak_rss", Metric::PeakRss),
    ("peak_buffered", Metric::PeakBuffered),
    ("drain", Metric::Drain),
];

impl Metric {
    /// The name as typed, e.g. `"p99"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether this is a latency metric (judged only when latency was recorded).
    #[must_use]
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Self::P50 | Self::P90 | Self::P99 | Self::P999 | Self::MaxLatency
        )
    }

    /// Whether this is a throughput metric.
    #[must_use]
    pub fn is_throughput(self) -> bool {
        matches!(self, Self::DeliveredPerSec | Self::AcceptedPerSec)
    }

    fn kind(self) -> Kind {
        match self {
            m if m.is_latency() => Kind::Duration,
            Self::Drain => Kind::Duration,
            Self::Refused | Self::Dropped => Kind::Share,
            Self::DeliveredPerSec | Self::AcceptedPerSec => Kind::Rate,
            _ => Kind::Bytes,
        }
    }

    /// Where the metric comes in [`METRICS`]: thresholds are kept in this order.
    fn rank(self) -> usize {
        METRICS
            .iter()
            .position(|(_, m)| *m == self)
            .unwrap_or(usize::MAX)
    }

    fn lookup(name: &str) -> Option<Metric> {
        let name = name.trim().to_ascii_lowercase();
        let name = match name.as_str() {
            "p99.9" => "p999",
            other => other,
        };
        METRICS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The run's figure, in the metric's unit (microseconds, percent or count, events per
    /// second, bytes); `Err` with the reason when the run did not measure it.
    fn read(self, r: &RunResults, percent: bool) -> Result<f64, &'static str> {
        let l = &r.latency_us;
        let latency = |v: u64| {
            if !r.config.record_latency {
                Err("latency was not recorded (--no-latency)")
            } else if l.count == 0 {
                Err("no latency was recorded: nothing was delivered")
            } else {
                Ok(v as f64)
            }
        };
        let share = |n: u64| {
            if !percent {
                Ok(n as f64)
            } else if r.totals.attempted == 0 {
                Err("nothing was offered")
            } else {
                Ok(100.0 * n as f64 / r.totals.attempted as f64)
            }
        };
        match self {
            Self::P50 => latency(l.p50),
            Self::P90 => latency(l.p90),
            Self::P99 => latency(l.p99),
            Self::P999 => latency(l.p999),
            Self::MaxLatency => latency(l.max),
            Self::Refused => share(r.totals.rejected),
            Self::Dropped => share(r.totals.dropped),
            Self::DeliveredPerSec => Ok(r.throughput.avg_delivered_per_sec),
            Self::AcceptedPerSec => Ok(r.throughput.avg_accepted_per_sec),
            Self::PeakHeap => Ok(r.memory.peak_heap_bytes as f64),
            Self::PeakRss => Ok(r.memory.peak_rss_bytes as f64),
            Self::PeakBuffered => Ok(r.memory.peak_buffered_bytes as f64),
            Self::Drain => Ok(r.drain.drain_us as f64),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The operators, as typed.
pub const OPERATORS: &str = "<, <=, >, >=";

impl Op {
    /// The operator as typed.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    /// Whether `actual OP limit` holds.
    #[must_use]
    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Self::Lt => actual < limit,
            Self::Le => actual <= limit,
            Self::Gt => actual > limit,
            Self::Ge => actual >= limit,
        }
    }
}

/// A threshold that could not be parsed. Every message quotes what was typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// No operator, no metric or no value.
    #[error("threshold `{text}`: expected METRIC OP VALUE, e.g. p99<50ms (operators: {OPERATORS})")]
    Syntax {
        /// What was typed.
        text: String,
    },
    /// The metric is not one a threshold can judge.
    #[error("threshold `{text}`: unknown metric `{metric}` (known: {known})", known = known_metrics())]
    UnknownMetric {
        /// What was typed.
        text: String,
        /// The metric as typed.
        metric: String,
    },
    /// The value does not parse or is out of range for the metric.
    #[error("threshold `{text}`: `{value}` is not {expected} for `{metric}`")]
    BadValue {
        /// What was typed.
        text: String,
        /// The metric.
        metric: &'static str,
        /// The value as typed.
        value: String,
        /// The accepted forms and range.
        expected: &'static str,
    },
}

fn known_metrics() -> String {
    METRICS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One threshold: a metric, an operator and a limit in the metric's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What is judged.
    pub metric: Metric,
    /// How.
    pub op: Op,
    /// The limit: microseconds, percent (or a count), events per second, or bytes.
    pub limit: f64,
    /// For `refused` and `dropped`: the limit is a percentage of offers, not a count.
    pub percent: bool,
    /// The value as typed (trimmed), for messages and the record.
    value_text: String,
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || ThresholdError::Syntax {
            text: text.to_owned(),
        };
        let at = text.find(['<', '>']).ok_or_else(syntax)?;
        let (name, rest) = text.split_at(at);
        let (op, value) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', ..] => (Op::Lt, &rest[1..]),
            _ => (Op::Gt, &rest[1..]),
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || value.is_empty() {
            return Err(syntax());
        }
        let metric = Metric::lookup(name).ok_or_else(|| ThresholdError::UnknownMetric {
            text: text.to_owned(),
            metric: name.to_owned(),
        })?;
        let kind = metric.kind();
        let (limit, percent) =
            units::parse(kind, value).ok_or_else(|| ThresholdError::BadValue {
                text: text.to_owned(),
                metric: metric.name(),
                value: value.to_owned(),
                expected: kind.expected(),
            })?;
        Ok(Threshold {
            metric,
            op,
            limit,
            percent,
            value_text: value.to_owned(),
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.metric.name(), self.condition())
    }
}

impl Threshold {
    /// The condition without the metric, e.g. `<50ms`.
    #[must_use]
    pub fn condition(&self) -> String {
        format!("{}{}", self.op.as_str(), self.value_text)
    }

    /// Judges the threshold against a finished run. A figure the run did not measure
    /// (latency with `--no-latency`) fails the threshold, saying why.
    #[must_use]
    pub fn evaluate(&self, run: &RunResults) -> ThresholdResult {
        let kind = self.metric.kind();
        let show = |v: f64| units::show(kind, v, self.percent);
        let (actual, passed, note) = match self.metric.read(run, self.percent) {
            Ok(actual) => {
                let passed = self.op.holds(actual, self.limit);
                let verb = if passed { "" } else { "not " };
                let note = format!(
                    "{} {}, {verb}{} {}",
                    self.metric.name(),
                    show(actual),
                    self.op.as_str(),
                    show(self.limit)
                );
                (Some(actual), passed, note)
            }
            Err(why) => (None, false, format!("{}: {why}", self.metric.name())),
        };
        ThresholdResult {
            threshold: self.to_string(),
            metric: self.metric.name().to_owned(),
            limit: self.limit,
            actual,
            unit: units::unit_name(kind, self.percent).to_owned(),
            passed,
            note,
        }
    }
}

/// One threshold judged against a run: `assessment.thresholds` in `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The threshold as given, e.g. `"p99<50ms"`.
    pub threshold: String,
    /// The metric's name, e.g. `"p99"`.
    pub metric: String,
    /// The limit in `unit`.
    pub limit: f64,
    /// The run's figure in `unit`; `null` when the run did not measure it.
    pub actual: Option<f64>,
    /// `"us"`, `"percent"`, `"count"`, `"per_sec"` or `"bytes"`.
    pub unit: String,
    /// Whether the run met it.
    pub passed: bool,
    /// One readable sentence: the figure against the limit.
    pub note: String,
}

/// The thresholds of a scenario, in the order of [`METRICS`] (and as given within one
/// metric), whatever order a file lists them in: a scenario reads back equal.
///
/// A scenario file writes them as a `[thresholds]` table keyed by metric, each a condition
/// or a list of them; `results.json`'s `config` uses the same shape:
///
/// ```
/// let config = runlog::ScenarioConfig::from_toml_str(
///     "[thresholds]\np99 = \"<50ms\"\nrefused = [\"<1%\"]\n",
/// )?;
/// let all: Vec<String> = config.thresholds.iter().map(|t| t.to_string()).collect();
/// assert_eq!(all, ["p99<50ms", "refused<1%"]);
/// # Ok::<(), runlog::RunlogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds(pub Vec<Threshold>);

impl Thresholds {
    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The thresholds, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Threshold> {
        self.0.iter()
    }

    /// Adds `more`, replacing any threshold of the same metric and operator (a flag given
    /// on the command line overrides the scenario file's).
    pub fn merge(&mut self, more: impl IntoIterator<Item = Threshold>) {
        for t in more {
            self.0.retain(|o| !(o.metric == t.metric && o.op == t.op));
            self.0.push(t);
        }
        self.0.sort_by_key(|t| t.metric.rank());
    }

    /// Whether any judges latency.
    #[must_use]
    pub fn judges_latency(&self) -> bool {
        self.0.iter().any(|t| t.metric.is_latency())
    }

    /// Whether any judges throughput.
    #[must_use]
    pub fn judges_throughput(&self) -> bool {
        self.0.iter().any(|t| t.metric.is_throughput())
    }
}

/// A table value: one condition or a list.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Conditions {
    One(String),
    Many(Vec<String>),
}

impl Serialize for Thresholds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut names: Vec<&'static str> = Vec::new();
        for t in &self.0 {
            if !names.contains(&t.metric.name()) {
                names.push(t.metric.name());
            }
        }
        let mut map = s.serialize_map(Some(names.len()))?;
        for name in names {
            let mut conditions: Vec<String> = self
                .0
                .iter()
                .filter(|t| t.metric.name() == name)
                .map(Threshold::condition)
                .collect();
            if conditions.len() == 1 {
                map.serialize_entry(name, &Conditions::One(conditions.remove(0)))?;
            } else {
                map.serialize_entry(name, &Conditions::Many(conditions))?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = indexmap_like::Table::deserialize(d)?;
        let mut out = Vec::new();
        for (metric, conditions) in table.0 {
            let list = match conditions {
                Conditions::One(c) => vec![c],
                Conditions::Many(list) => list,
            };
            for condition in list {
                let condition = condition.trim();
                if !condition.starts_with(['<', '>']) {
                    let text = format!("{metric} = \"{condition}\"");
                    return Err(serde::de::Error::custom(ThresholdError::Syntax { text }));
                }
                let text = format!("{metric}{condition}");
                out.push(text.parse().map_err(serde::de::Error::custom)?);
            }
        }
        out.sort_by_key(|t: &Threshold| t.metric.rank());
        Ok(Thresholds(out))
    }
}

/// A map read in document order (serde's maps do not keep it, and the order thresholds
/// are listed in is the order they are shown in).
mod indexmap_like {
    use std::fmt;

    use serde::de::{MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::Conditions;

    pub(super) struct Table(pub(super) Vec<(String, Conditions)>);

    impl<'de> Deserialize<'de> for Table {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Table;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a table of metric = \"<condition>\" (e.g. p99 = \"<50ms\")")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Table, A::Error> {
                    let mut out = Vec::new();
                    while let Some(entry) = map.next_entry::<String, Conditions>()? {
                        out.push(entry);
                    }
                    Ok(Table(out))
                }
            }
            d.deserialize_map(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Threshold, ThresholdError> {
        s.parse()
    }

    #[test]
    fn the_issue_examples_parse() {
        let t = parse("p99<50ms").unwrap();
        assert_eq!((t.metric, t.op, t.limit), (Metric::P99, Op::Lt, 50_000.0));
        let t = parse("refused<1%").unwrap();
        assert_eq!((t.metric, t.limit, t.percent), (Metric::Refused, 1.0, true));
        let t = parse("delivered_per_sec>500k").unwrap();
        assert_eq!((t.op, t.limit), (Op::Gt, 500_000.0));
        let t = parse("peak_heap<96MiB").unwrap();
        assert_eq!(t.limit, 96.0 * 1024.0 * 1024.0);
        let t = parse(" p99.9 >= 1.5s ").unwrap();
        assert_eq!((t.metric, t.op, t.limit), (Metric::P999, Op::Ge, 1.5e6));
        assert_eq!(t.to_string(), "p999>=1.5s");
        assert!(!parse("refused<=10").unwrap().percent);
    }

    #[test]
    fn errors_name_what_was_typed_and_what_is_allowed() {
        let e = parse("p99 50ms").unwrap_err().to_string();
        assert!(
            e.contains("`p99 50ms`") && e.contains("<, <=, >, >="),
            "{e}"
        );
        let e = parse("p98<5ms").unwrap_err().to_string();
        assert!(
            e.contains("unknown metric `p98`") && e.contains("p99"),
            "{e}"
        );
        let e = parse("p99<fast").unwrap_err().to_string();
        assert!(e.contains("`fast`") && e.contains("50ms"), "{e}");
        let e = parse("refused<150%").unwrap_err().to_string();
        assert!(e.contains("0%..=100%"), "{e}");
        let e = parse("peak_heap<-3MiB").unwrap_err().to_string();
        assert!(e.contains("`-3MiB`"), "{e}");
        assert!(parse("<5ms").is_err() && parse("p99<").is_err());
    }

    #[test]
    fn evaluation_uses_the_record_and_refuses_what_was_not_measured() {
        let mut run = RunResults::default();
        run.totals.attempted = 1000;
        run.totals.rejected = 20;
        run.throughput.avg_delivered_per_sec = 600_000.0;
        let r = parse("refused<1%").unwrap().evaluate(&run);
        assert!(!r.passed);
        assert_eq!(r.actual, Some(2.0));
        assert_eq!(r.note, "refused 2.00%, not < 1.00%");
        let r = parse("delivered_per_sec>500k").unwrap().evaluate(&run);
        assert!(r.passed, "{r:?}");
        let r = parse("p99<50ms").unwrap().evaluate(&run);
        assert!(!r.passed && r.actual.is_none(), "{r:?}");
        assert!(r.note.contains("no latency"), "{}", r.note);
    }

    #[test]
    fn thresholds_round_trip_as_a_table() {
        let t = Thresholds(vec![
            parse("p99<50ms").unwrap(),
            parse("refused<1%").unwrap(),
            parse("p99>1us").unwrap(),
        ]);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"p99":["<50ms",">1us"],"refused":"<1%"}"#);
        let back: Thresholds = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0.len(), 3);
        let err = serde_json::from_str::<Thresholds>(r#"{"p99":"50ms"}"#).unwrap_err();
        assert!(err.to_string().contains("`p99 = \"50ms\"`"), "{err}");
    }

    #[test]
    fn a_flag_replaces_the_file_s_threshold_on_the_same_metric_and_operator() {
        let mut t = Thresholds(vec![parse("p99<50ms").unwrap(), parse("p50<5ms").unwrap()]);
        t.merge([parse("p99<20ms").unwrap(), parse("refused<1%").unwrap()]);
        let all: Vec<String> = t.iter().map(ToString::to_string).collect();
        assert_eq!(all, ["p50<5ms", "p99<20ms", "refused<1%"]);
    }
}
