//! The scenario flags a run, `tune` and `crash-test` share, and the values they take.

use super::values::*;
use super::*;

/// A named starting point for the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The default scenario for 10 s: a smoke test.
    Quick,
    /// The reference Go dispatcher's soak: the default scenario for 5 minutes.
    Tempo,
    /// A Raspberry Pi 4: 5 minutes of ~10 KiB payloads with intentional backpressure.
    Pi4,
}

/// What the byte limit counts, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeighArg {
    /// Payload bytes only, as other batchers count.
    Payload,
    /// Each event's struct and allocation: the limit is the buffer's heap.
    Occupancy,
}

impl From<WeighArg> for runlog::Weighing {
    fn from(w: WeighArg) -> runlog::Weighing {
        match w {
            WeighArg::Payload => runlog::Weighing::Payload,
            WeighArg::Occupancy => runlog::Weighing::Occupancy,
        }
    }
}

/// The producers' scheduling class, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulingArg {
    /// SCHED_BATCH: a producer waking up does not preempt a running thread.
    Batch,
    /// The class the soak itself runs in.
    Normal,
}

impl From<SchedulingArg> for runlog::ProducerScheduling {
    fn from(s: SchedulingArg) -> runlog::ProducerScheduling {
        match s {
            SchedulingArg::Batch => runlog::ProducerScheduling::Batch,
            SchedulingArg::Normal => runlog::ProducerScheduling::Normal,
        }
    }
}

/// The overload policy, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Refuse what does not fit; producers back off.
    Reject,
    /// Wait for room up to --block-timeout.
    Block,
    /// Evict the oldest undelivered events.
    DropOldest,
}

/// What the producers feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// The dispatcher under test.
    Dispatcher,
    /// A bare bounded std channel: the reference for overhead ratios.
    Channel,
    /// A bounded crossbeam-channel drained in batches: the fastest channel peer.
    Crossbeam,
    /// A bounded tokio mpsc channel drained in batches: the async peer.
    Tokio,
}

impl From<TargetArg> for TargetKind {
    fn from(t: TargetArg) -> TargetKind {
        match t {
            TargetArg::Dispatcher => TargetKind::Dispatcher,
            TargetArg::Channel => TargetKind::Channel,
            TargetArg::Crossbeam => TargetKind::Crossbeam,
            TargetArg::Tokio => TargetKind::Tokio,
        }
    }
}

/// Scenario flags; each overrides the preset or `--config` file. Their `[default: …]`
/// is the default scenario's value, added by [`command_for`].
#[derive(Debug, Default, Args)]
pub struct ScenarioArgs {
    /// Scenario file (TOML, the keys of results.json `config`).
    #[arg(long, value_name = "PATH", conflicts_with = "preset", help_heading = RUN)]
    pub config: Option<PathBuf>,
    /// Start from a preset instead of the default scenario.
    #[arg(long, value_name = "PRESET", value_enum, help_heading = RUN)]
    pub preset: Option<Preset>,
    /// How long producers run, e.g. 60s, 5m.
    #[arg(short, long, value_name = "DURATION", value_parser = duration, help_heading = RUN)]
    pub duration: Option<Duration>,
    /// Producer threads (1..=4096).
    #[arg(short, long, value_name = "N", help_heading = LOAD)]
    pub producers: Option<u32>,
    /// Payload shape: fixed:SIZE, uniform:MIN..MAX, lognormal:MEDIAN,SIGMA, telemetry, file:PATH.
    #[arg(long, value_name = "SHAPE", help_heading = PAYLOAD)]
    pub payload: Option<String>,
    /// Total offered rate: `unlimited` (closed loop) or e.g. 200k/s (open loop).
    #[arg(long, value_name = "RATE", value_parser = rate, help_heading = LOAD)]
    pub rate: Option<Rate>,
    /// Producer pause after a refusal, e.g. 100us.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LOAD)]
    pub backoff: Option<Duration>,
    /// Producer threads' scheduling class: `batch` (Linux's SCHED_BATCH: their wake-ups
    /// do not preempt the consumer) or `normal` (the class the soak runs in).
    #[arg(long, value_name = "CLASS", value_enum, help_heading = LOAD)]
    pub producer_scheduling: Option<SchedulingArg>,
    /// Simulated consumer work per batch, e.g. 200us; 0s for none.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub consumer_delay: Option<Duration>,
    /// Simulated consumer work per KiB delivered, e.g. 2us.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub consumer_cost_per_kib: Option<Duration>,
    /// Random +/- jitter on the consumer's work per batch.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub consumer_jitter: Option<Duration>,
    /// The consumer stalls every this long (with --stall-for).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub stall_every: Option<Duration>,
    /// How long each consumer stall lasts.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub stall_for: Option<Duration>,
    /// Batch interval, e.g. 10ms.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub interval: Option<Duration>,
    /// Random extra interval per batch, 0..=interval.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub interval_jitter: Option<Duration>,
    /// Batch byte target, e.g. 32KiB, or `none`.
    #[arg(long, value_parser = optional_bytes, value_name = "SIZE|none", help_heading = LIMITS)]
    pub max_batch_bytes: Option<Limit>,
    /// Batch item target, or `none`.
    #[arg(long, value_parser = optional_count, value_name = "N|none", help_heading = LIMITS)]
    pub max_batch_items: Option<Limit>,
    /// Limit on buffered bytes, e.g. 64MiB.
    #[arg(long, value_parser = bytes, value_name = "SIZE", help_heading = LIMITS)]
    pub max_buffered_bytes: Option<u64>,
    /// Overload policy.
    #[arg(long, value_name = "POLICY", value_enum, help_heading = LIMITS)]
    pub policy: Option<PolicyArg>,
    /// What --max-buffered-bytes counts per event: `occupancy` (struct and
    /// allocation: the limit is the buffer's heap) or `payload` (bytes only).
    #[arg(long, value_name = "WHAT", value_enum, help_heading = LIMITS)]
    pub weigh: Option<WeighArg>,
    /// How long a producer waits for room under the block policy (at least 1us: to
    /// refuse at once, use --policy reject).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub block_timeout: Option<Duration>,
    /// Batch builders (1..=256, default 8) sharing the byte budget; each
    /// producer thread admits into one, round-robin.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub partitions: Option<u32>,
    /// Give the dispatcher a durable disk tier in DIR (created if missing; its parent
    /// must exist; empty or one of ours; apart from --out): events that do not fit in
    /// memory go to disk instead of meeting the policy, and come back in order as memory
    /// frees; what an earlier run left there is delivered first.
    #[arg(long, value_name = "DIR", help_heading = DISK)]
    pub spill_dir: Option<PathBuf>,
    /// With --spill-dir: the most the disk tier's files may take (4KiB..=1TiB); past it
    /// the policy applies.
    #[arg(long, value_parser = bytes, value_name = "SIZE", help_heading = DISK)]
    pub max_spill_bytes: Option<u64>,
    /// With --spill-dir: when what it writes is forced to the device: every-batch, an
    /// interval (1ms..=60s, e.g. 100ms) or os (left to the kernel). A process crash loses
    /// nothing written under any of them; a power failure loses what was not synced.
    #[arg(long, value_parser = spill_sync, value_name = "WHEN", help_heading = DISK)]
    pub spill_sync: Option<SpillSyncArg>,
    /// With --spill-dir: every event goes through the disk, not only those that do not
    /// fit in memory, so a crash loses nothing that was accepted.
    #[arg(long, help_heading = DISK)]
    pub spill_write_ahead: bool,
    /// How often to sample, e.g. 1s, 250ms.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = RUN)]
    pub sample_every: Option<Duration>,
    /// Seed for payload generation.
    #[arg(long, value_name = "N", help_heading = PAYLOAD)]
    pub seed: Option<u64>,
    /// What the producers feed.
    #[arg(long, value_name = "TARGET", value_enum, help_heading = LOAD)]
    pub target: Option<TargetArg>,
    /// Deadline for draining at the end.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = RUN)]
    pub drain_timeout: Option<Duration>,
    /// Pin the run to N cores, to rehearse a smaller machine (an approximation:
    /// the same number of cores, not the same cores, caches or memory).
    #[arg(long, value_name = "N", help_heading = LOAD)]
    pub cpus: Option<u32>,
    /// Do not record enqueue-to-delivery latency (to measure the recording's cost).
    #[arg(long, help_heading = RUN)]
    pub no_latency: bool,
    /// A pass/fail threshold judged at the end, METRIC OP VALUE (repeatable), e.g.
    /// 'p99<50ms', 'refused<1%', 'delivered_per_sec>500k', 'peak_heap<96MiB'. Metrics:
    /// p50 p90 p99 p999 max refused dropped delivered_per_sec accepted_per_sec peak_heap
    /// peak_rss peak_buffered drain; operators < <= > >=. A failed threshold exits 1.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = threshold, help_heading = RUN)]
    pub thresholds: Vec<runlog::Threshold>,
    /// What the user typed for each flag given on the command line, by the flag's id (its
    /// field name): messages repeat it rather than a re-rendered value. Filled by
    /// [`parse`]; empty when the arguments were built in code.
    #[arg(skip)]
    pub typed: BTreeMap<String, String>,
}

impl ScenarioArgs {
    /// What the user typed for the flag whose id is `id` (`"max_buffered_bytes"`), if it
    /// was given on the command line.
    pub fn typed(&self, id: &str) -> Option<&str> {
        self.typed.get(id).map(String::as_str)
    }
}
/// `--spill-sync`, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillSyncArg {
    /// `every-batch`.
    EveryBatch,
    /// An interval, e.g. `100ms`.
    Every(Duration),
    /// `os`.
    Os,
}
/// A limit that can be switched off with `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);
