//! Payload shapes: what the bytes of each generated event look like.
//!
//! A [`PayloadSpec`] is the parsed, serialisable description (`fixed:10KiB`,
//! `telemetry`, ...). [`PayloadSource::load`] prepares it once per run
//! (reading a `file:` spec into memory) and hands every producer its own
//! deterministic [`PayloadGen`]: the same seed and producer index always
//! yield the same payloads, and different producers yield different ones.

mod records;
mod telemetry;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use fastrand::Rng;

pub use records::MAX_FILE_BYTES;
use records::Records;
use telemetry::{TelemetryPool, mix};

use crate::units::parse_bytes;

/// The largest payload a generated shape produces: `fixed` and `uniform`
/// sizes above it are refused when parsed, and `lognormal` samples are
/// clamped to it (its long tail would otherwise reach gigabytes).
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// The largest `lognormal` sigma accepted; beyond it the tail is all clamping.
pub const MAX_LOGNORMAL_SIGMA: f64 = 4.0;

/// The byte every generated (non-file, non-telemetry) payload is filled
/// with: non-zero so the allocator cannot hand out untouched zero pages and
/// the run's resident memory reflects the payloads.
const FILL: u8 = b'x';

/// The accepted forms, quoted in every parse error.
const SPEC_FORMS: &str = "fixed:SIZE, uniform:MIN..MAX, lognormal:MEDIAN,SIGMA, telemetry, \
                          file:PATH (SIZE like 64, 10KiB, 1MiB, 10KB)";

/// How payload sizes and contents are chosen.
///
/// Parses from (and displays back to) the CLI forms:
///
/// | form | payloads |
/// | --- | --- |
/// | `fixed:SIZE` | exactly SIZE bytes |
/// | `uniform:MIN..MAX` | uniformly MIN to MAX bytes, both inclusive |
/// | `lognormal:MEDIAN,SIGMA` | log-normal sizes with that median and shape, clamped to 1..=[`MAX_PAYLOAD_BYTES`] |
/// | `telemetry` | JSON analytics events of ~100–400 bytes with unique ids |
/// | `file:PATH` | the file's newline-delimited records, in a cycle |
///
/// # Examples
///
/// ```
/// use loadgen::PayloadSpec;
///
/// let spec: PayloadSpec = "uniform:64..1KiB".parse().unwrap();
/// assert_eq!(spec, PayloadSpec::Uniform { min: 64, max: 1024 });
/// assert_eq!(spec.to_string(), "uniform:64..1024");
/// assert!("fixed:ten".parse::<PayloadSpec>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadSpec {
    /// Every payload is this many bytes.
    Fixed(usize),
    /// Sizes uniformly distributed over `min..=max`.
    Uniform {
        /// Smallest size, in bytes.
        min: usize,
        /// Largest size, in bytes (inclusive).
        max: usize,
    },
    /// Log-normal sizes: `median * e^(sigma * Z)` for standard normal `Z`.
    LogNormal {
        /// Median size in bytes.
        median: usize,
        /// Shape: 0 is fixed-size; 1 spreads the middle 68% over median/2.7..median*2.7.
        sigma: f64,
    },
    /// JSON analytics events (page views, clicks, form inputs, scrolls, heartbeats).
    Telemetry,
    /// Records read from a newline-delimited file (at most [`MAX_FILE_BYTES`]).
    File(PathBuf),
}

/// A payload spec that could not be parsed. The message is one line naming
/// the input, the problem and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid payload spec {input:?}: {problem}; expected one of {SPEC_FORMS}")]
pub struct PayloadSpecError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A payload spec that parsed but could not be prepared (a `file:` spec
/// whose file cannot be used).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The file could not be opened or read.
    #[error("cannot read payload file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not a regular file (a FIFO, a device, a directory).
    #[error("payload file {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file holds no non-blank line.
    #[error("payload file {} holds no records (expected newline-delimited records)", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than the limit for file payloads.
    #[error("payload file {} is larger than the {limit}-byte limit for file payloads", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes ([`MAX_FILE_BYTES`]).
        limit: u64,
    },
}

impl FromStr for PayloadSpec {
    type Err = PayloadSpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse_spec(input.trim()).map_err(|problem| PayloadSpecError {
            input: input.to_owned(),
            problem,
        })
    }
}

fn parse_spec(text: &str) -> Result<PayloadSpec, String> {
    let (kind, arg) = text.split_once(':').unwrap_or((text, ""));
    let size = |s: &str| -> Result<usize, String> {
        let bytes = parse_bytes(s.trim()).map_err(|_| format!("{:?} is not a size", s.trim()))?;
        match usize::try_from(bytes) {
            Ok(n) if n <= MAX_PAYLOAD_BYTES => Ok(n),
            // What was typed, and the limit in the unit it is set in (no raw byte counts).
            _ => Err(format!(
                "{} is above the payload limit (allowed: up to {} MiB)",
                s.trim(),
                MAX_PAYLOAD_BYTES >> 20
            )),
        }
    };
    match kind.trim() {
        "telemetry" if arg.is_empty() => Ok(PayloadSpec::Telemetry),
        "fixed" => Ok(PayloadSpec::Fixed(size(arg)?)),
        "uniform" => {
            let (min, max) = arg
                .split_once("..=")
                .or_else(|| arg.split_once(".."))
                .ok_or("uniform needs MIN..MAX")?;
            let (min, max) = (size(min)?, size(max)?);
            if min > max {
                return Err(format!("MIN ({min}) is above MAX ({max})"));
            }
            Ok(PayloadSpec::Uniform { min, max })
        }
        "lognormal" => {
            let (median, sigma) = arg.split_once(',').ok_or("lognormal needs MEDIAN,SIGMA")?;
            let median = size(median)?.max(1);
            let sigma: f64 = sigma
                .trim()
                .parse()
                .map_err(|_| format!("SIGMA {:?} is not a number", sigma.trim()))?;
            if !(0.0..=MAX_LOGNORMAL_SIGMA).contains(&sigma) {
                return Err(format!("SIGMA must be within 0..={MAX_LOGNORMAL_SIGMA}"));
            }
            Ok(PayloadSpec::LogNormal { median, sigma })
        }
        "file" if !arg.is_empty() => Ok(PayloadSpec::File(PathBuf::from(arg))),
        "file" => Err("file needs a PATH".to_owned()),
        _ => Err("unknown shape".to_owned()),
    }
}

impl fmt::Display for PayloadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadSpec::Fixed(n) => write!(f, "fixed:{n}"),
            PayloadSpec::Uniform { min, max } => write!(f, "uniform:{min}..{max}"),
            PayloadSpec::LogNormal { median, sigma } => write!(f, "lognormal:{median},{sigma}"),
            PayloadSpec::Telemetry => f.write_str("telemetry"),
            PayloadSpec::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// A spec made ready to generate: cheap to clone (a file's records are
/// shared through an `Arc`), and the factory of per-producer generators.
///
/// # Examples
///
/// ```
/// use loadgen::{PayloadSource, PayloadSpec};
///
/// let source = PayloadSource::load(&PayloadSpec::Fixed(64)).unwrap();
/// let mut generator = source.generator(42, 0);
/// assert_eq!(generator.next_payload().len(), 64);
/// assert_eq!(source.mean_size_hint(), 64.0);
/// ```
#[derive(Debug, Clone)]
pub struct PayloadSource {
    spec: PayloadSpec,
    shape: Shape,
    mean: f64,
}

/// The prepared form of a spec.
#[derive(Debug, Clone)]
enum Shape {
    Fixed(usize),
    Uniform(usize, usize),
    LogNormal { ln_median: f64, sigma: f64 },
    Telemetry,
    Records(Arc<Records>),
}

impl PayloadSource {
    /// Prepares `spec`: reads a `file:` spec's records (once), and estimates
    /// the mean payload size.
    ///
    /// # Errors
    ///
    /// [`PayloadError`] if a `file:` spec's file is missing, unreadable,
    /// empty, or larger than [`MAX_FILE_BYTES`].
    pub fn load(spec: &PayloadSpec) -> Result<Self, PayloadError> {
        let shape = match spec {
            PayloadSpec::Fixed(n) => Shape::Fixed(*n),
            PayloadSpec::Uniform { min, max } => Shape::Uniform(*min, *max),
            PayloadSpec::LogNormal { median, sigma } => Shape::LogNormal {
                ln_median: (*median as f64).ln(),
                sigma: *sigma,
            },
            PayloadSpec::Telemetry => Shape::Telemetry,
            PayloadSpec::File(path) => Shape::Records(Arc::new(Records::load(path)?)),
        };
        let mean = estimate_mean(&shape);
        Ok(Self {
            spec: spec.clone(),
            shape,
            mean,
        })
    }

    /// The largest payload this source can produce, when it is known before generating:
    /// `fixed`'s size, `uniform`'s maximum, a file's longest record, the longest telemetry
    /// event; `None` for `lognormal` (whose tail is clamped at [`MAX_PAYLOAD_BYTES`] but
    /// rarely reaches it).
    pub fn max_size(&self) -> Option<usize> {
        match &self.shape {
            Shape::Fixed(n) => Some(*n),
            Shape::Uniform(_, max) => Some(*max),
            Shape::LogNormal { .. } => None,
            Shape::Telemetry => Some(telemetry::MAX_EVENT_BYTES),
            Shape::Records(records) => Some(records.max_len()),
        }
    }

    /// The spec this source was prepared from.
    pub fn spec(&self) -> &PayloadSpec {
        &self.spec
    }

    /// The expected mean payload size in bytes: exact for `fixed`,
    /// `uniform` and `file`, estimated from a fixed sample of 4096 draws for
    /// `lognormal` (clamping included), and for `telemetry` the mean of 32
    /// producers' template pools (4096 templates). The soak uses it to
    /// work out the consumer's bound in events per second.
    pub fn mean_size_hint(&self) -> f64 {
        self.mean
    }

    /// The generator for producer `producer` of a run seeded with `seed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::{PayloadSource, PayloadSpec};
    ///
    /// let source = PayloadSource::load(&PayloadSpec::Telemetry).unwrap();
    /// let a: Vec<_> = source.generator(7, 1).take(3).collect();
    /// let b: Vec<_> = source.generator(7, 1).take(3).collect();
    /// let c: Vec<_> = source.generator(7, 2).take(3).collect();
    /// assert_eq!(a, b);
    /// assert_ne!(a, c);
    /// ```
    pub fn generator(&self, seed: u64, producer: u32) -> PayloadGen {
        let mut rng = Rng::with_seed(mix(seed ^ mix(u64::from(producer))));
        let stream = match &self.shape {
            Shape::Fixed(n) => Stream::Fixed(*n),
            Shape::Uniform(min, max) => Stream::Uniform(*min, *max),
            Shape::LogNormal { ln_median, sigma } => Stream::LogNormal {
                ln_median: *ln_median,
                sigma: *sigma,
            },
            Shape::Telemetry => Stream::Telemetry(TelemetryPool::new(&mut rng, producer)),
            // Spread the producers' starting records over the file (a
            // golden-ratio sequence), so they do not replay it in lockstep.
            Shape::Records(records) => {
                let fraction =
                    mix(seed).wrapping_add(u64::from(producer).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                Stream::Records {
                    records: Arc::clone(records),
                    cursor: ((u128::from(fraction) * records.len() as u128) >> 64) as usize,
                }
            }
        };
        PayloadGen {
            stream,
            rng,
            seq: 0,
            mean: self.mean,
        }
    }
}

/// A shape as one generator draws from it: with its per-producer state.
#[derive(Debug, Clone)]
enum Stream {
    Fixed(usize),
    Uniform(usize, usize),
    LogNormal {
        ln_median: f64,
        sigma: f64,
    },
    Telemetry(TelemetryPool),
    Records {
        records: Arc<Records>,
        cursor: usize,
    },
}

/// One producer's deterministic stream of payloads (see [`PayloadSource`]).
///
/// Also an endless [`Iterator`] of payloads.
#[derive(Debug, Clone)]
pub struct PayloadGen {
    stream: Stream,
    rng: Rng,
    seq: u64,
    mean: f64,
}

impl PayloadGen {
    /// A generator for `spec`, loading it first; with many producers prefer
    /// [`PayloadSource::load`] once and [`PayloadSource::generator`] per
    /// producer, which shares a file's records.
    ///
    /// # Errors
    ///
    /// As [`PayloadSource::load`].
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::{PayloadGen, PayloadSpec};
    ///
    /// let spec = "uniform:10..20".parse::<PayloadSpec>().unwrap();
    /// let mut generator = PayloadGen::new(&spec, 1, 0).unwrap();
    /// let len = generator.next_payload().len();
    /// assert!((10..=20).contains(&len));
    /// ```
    pub fn new(spec: &PayloadSpec, seed: u64, producer: u32) -> Result<Self, PayloadError> {
        Ok(PayloadSource::load(spec)?.generator(seed, producer))
    }

    /// The next payload, owned: it is moved into an event and nothing else
    /// keeps a copy. Its capacity equals its length, so the heap it holds is
    /// exactly its weight.
    pub fn next_payload(&mut self) -> Vec<u8> {
        let seq = self.seq;
        self.seq += 1;
        match &mut self.stream {
            Stream::Fixed(n) => vec![FILL; *n],
            Stream::Uniform(min, max) => vec![FILL; self.rng.usize(*min..=*max)],
            Stream::LogNormal { ln_median, sigma } => {
                vec![FILL; lognormal_size(&mut self.rng, *ln_median, *sigma)]
            }
            Stream::Telemetry(pool) => pool.event(seq),
            Stream::Records { records, cursor } => {
                let payload = records.get(*cursor).to_vec();
                *cursor = (*cursor + 1) % records.len();
                payload
            }
        }
    }

    /// How many payloads this generator has produced.
    pub fn produced(&self) -> u64 {
        self.seq
    }

    /// As [`PayloadSource::mean_size_hint`].
    pub fn mean_size_hint(&self) -> f64 {
        self.mean
    }
}

impl Iterator for PayloadGen {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        Some(self.next_payload())
    }
}

/// A log-normal size in `1..=MAX_PAYLOAD_BYTES` (Box–Muller for the normal draw).
fn lognormal_size(rng: &mut Rng, ln_median: f64, sigma: f64) -> usize {
    // 1 - f64() is in (0, 1], so the logarithm is finite.
    let radius = (-2.0 * (1.0 - rng.f64()).ln()).sqrt();
    let z = radius * (std::f64::consts::TAU * rng.f64()).cos();
    let size = (ln_median + sigma * z).exp().round();
    // `as` saturates for floats, and the clamp bounds the result anyway.
    (size as usize).clamp(1, MAX_PAYLOAD_BYTES)
}

/// The mean payload size for `shape`, exact where cheap, else sampled with a
/// fixed seed so the hint itself is deterministic.
fn estimate_mean(shape: &Shape) -> f64 {
    const SAMPLES: u32 = 4096;
    let mut rng = Rng::with_seed(0x5EED);
    match shape {
        Shape::Fixed(n) => *n as f64,
        Shape::Uniform(min, max) => (*min as f64 + *max as f64) / 2.0,
        Shape::Records(records) => records.mean_len(),
        Shape::LogNormal { ln_median, sigma } => {
            let total: f64 = (0..SAMPLES)
                .map(|_| lognormal_size(&mut rng, *ln_median, *sigma) as f64)
                .sum();
            total / f64::from(SAMPLES)
        }
        // Every template is equally likely, so a pool's mean is exact for
        // its producer; average a few producers' pools (SAMPLES templates).
        Shape::Telemetry => {
            let pools = SAMPLES / telemetry::POOL as u32;
            let total: f64 = (0..pools)
                .map(|producer| TelemetryPool::new(&mut rng, producer).mean_len())
                .sum();
            total / f64::from(pools)
        }
    }
}

#[cfg(test)]
mod tests;
