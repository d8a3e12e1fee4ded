//! The search for the edge, independent of how a probe is taken: the same
//! logic drives the live dispatcher ([`super::probe`]) and the simulated
//! machine of the tests ([`super::model`]).
//!
//! Method (each step stops early when the budget would be exceeded):
//! 1. **ceiling**: one closed-loop probe (unlimited rate) with generous
//!    limits; its delivered rate bounds the search from above.
//! 2. **rate**: open-loop probes. Start at half the ceiling, halve until
//!    healthy, then bisect (geometrically) between the last good and the
//!    first bad rate until they are within [`RATE_RESOLUTION`]. A point that
//!    fails only narrowly (p99 a little over target, nothing refused) is probed
//!    once more before it counts as bad: one scheduling hiccup must not move the
//!    edge by a bisection step.
//! 3. **shape**: at the operating rate ([`OPERATING_FRACTION`] of the edge,
//!    where p99 is steadier than at the edge), probe the starting interval /
//!    batch (twice if it fails: it was healthy at the higher edge rate) and the
//!    plan's alternatives; an alternative replaces it only with a clearly lower
//!    p99 ([`SHAPE_WIN`]).
//!
//! The buffered limit is not bisected (a bisection's answer depends on how many
//! probes the budget allowed): it is computed from what the shape probe measured
//! (see [`super::recommend`](mod@super::recommend)) and checked by the verification probe
//! ([`super::verify`]).

use std::fmt;

/// Bisection of the rate stops when last-bad / last-good is at most this.
pub const RATE_RESOLUTION: f64 = 1.15;
/// A healthy shape whose p99 is under this share of its target is kept.
pub const SHAPE_NEED: f64 = 0.5;
/// A failed probe counts as narrowly failed (and is probed again) when nothing was
/// refused and its p99 was within this factor of the target.
pub const NARROW_MISS: f64 = 1.5;
/// The recommended operating rate, as a fraction of the edge rate.
pub const OPERATING_FRACTION: f64 = 0.8;
/// A shape alternative must bring p99 to at most this share of the
/// incumbent's to replace it.
pub const SHAPE_WIN: f64 = 0.5;
/// The rate search gives up below ceiling / this.
const MIN_RATE_FRACTION: f64 = 64.0;

/// The limits and offered rate of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Flush interval.
    pub interval_us: u64,
    /// Batch byte trigger.
    pub max_batch_bytes: u64,
    /// Bound on buffered bytes.
    pub max_buffered_bytes: u64,
    /// Offered rate; `None` is closed loop (as fast as admitted).
    pub rate_per_sec: Option<u64>,
}

/// What one probe measured, counted by event origin: only the probe's own events.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measured {
    /// Events offered per second.
    pub offered_per_sec: f64,
    /// The probe's events delivered per second while it produced.
    pub delivered_per_sec: f64,
    /// Their payload bytes per second.
    pub delivered_bytes_per_sec: f64,
    /// Refused events as a percentage of attempts.
    pub rejected_pct: f64,
    /// Accepted events of the probe not delivered by the end of its drain (a backlog the
    /// consumer could not work off, or evicted events).
    pub undelivered: u64,
    /// Events of earlier probes delivered while this one ran (0: the probe was isolated).
    pub earlier: u64,
    /// p99 enqueue-to-delivery latency of the probe's events.
    pub p99_us: u64,
    /// Largest heap seen.
    pub peak_heap_bytes: u64,
    /// Largest buffered bytes seen (the burst the buffer had to absorb).
    pub burst_bytes: u64,
    /// Time the probe took (counted against the budget).
    pub elapsed_s: f64,
}

/// Which step of the search a probe belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Closed-loop ceiling.
    Ceiling,
    /// Open-loop rate bisection.
    Rate,
    /// Interval / batch alternatives.
    Shape,
    /// The recommendation, checked.
    Verify,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ceiling => "ceiling",
            Self::Rate => "rate",
            Self::Shape => "shape",
            Self::Verify => "verify",
        })
    }
}

/// One probe taken: where, what it measured, and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The search step.
    pub phase: Phase,
    /// The limits probed.
    pub point: Point,
    /// What was measured.
    pub measured: Measured,
    /// The latency target it was judged against.
    pub target_us: u64,
    /// Why it is unhealthy; `None` when healthy.
    pub problem: Option<String>,
}

impl Probe {
    /// No rejections, p99 within target, and (open loop) keeping up.
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.problem.is_none()
    }
}

/// Takes one probe at a point. Implemented by the live dispatcher and the model.
pub trait Machine {
    /// Why a probe could not be taken at all.
    type Error;
    /// Runs the point for about `probe_s` seconds and reports what it saw.
    ///
    /// # Errors
    /// When the machine cannot take probes any more.
    fn probe(&mut self, point: &Point, probe_s: f64) -> Result<Measured, Self::Error>;
}

/// What the search may spend and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Total probing time allowed.
    pub budget_s: f64,
    /// Length of each probe.
    pub probe_s: f64,
    /// p99 target; `None` means twice the probe's interval.
    pub latency_target_us: Option<u64>,
    /// Starting interval, batch and generous buffered limit (rate ignored).
    pub start: Point,
    /// Interval / batch alternatives tried at the edge rate.
    pub shapes: Vec<(u64, u64)>,
}

impl Plan {
    /// A plan starting from `start`, with the default shape alternatives:
    /// one factor of two from it (half the interval; twice the batch, if the
    /// buffer allows), so a noisy choice between them stays within 2x.
    #[must_use]
    pub fn new(budget_s: f64, probe_s: f64, latency_target_us: Option<u64>, start: Point) -> Self {
        let mut shapes = vec![((start.interval_us / 2).max(1), start.max_batch_bytes)];
        let bigger = start.max_batch_bytes.saturating_mul(2);
        if bigger <= start.max_buffered_bytes / 4 {
            shapes.push((start.interval_us, bigger));
        }
        Self {
            budget_s,
            probe_s,
            latency_target_us,
            start,
            shapes,
        }
    }

    fn target_us(&self, point: &Point) -> u64 {
        self.latency_target_us
            .unwrap_or(point.interval_us.saturating_mul(2))
    }
}

/// The edge the search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// The healthy probe at the highest rate.
    pub best: Probe,
    /// The interval / batch chosen, probed at the operating rate.
    pub shape: Probe,
    /// The rate recommended: [`OPERATING_FRACTION`] of the edge.
    pub operating_rate_per_sec: u64,
    /// The first unhealthy probe beyond the edge (the failing point).
    pub failing: Option<Probe>,
}

/// Everything the search did.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// Every probe, in order.
    pub probes: Vec<Probe>,
    /// The edge; `None` when nothing was healthy (or the budget allowed no probe).
    pub edge: Option<Edge>,
    /// One line on how it ended.
    pub message: String,
    /// Probing time spent.
    pub spent_s: f64,
}

/// Judges a measurement: the reason it is unhealthy, if it is.
#[must_use]
pub fn judge(point: &Point, m: &Measured, target_us: u64) -> Option<String> {
    if m.delivered_per_sec <= 0.0 {
        return Some("nothing delivered".into());
    }
    if m.rejected_pct > 0.0 {
        return Some(format!("{:.2}% rejected", m.rejected_pct));
    }
    if m.p99_us > target_us {
        return Some(format!(
            "p99 {} > target {}",
            crate::human::micros(m.p99_us),
            crate::human::micros(target_us)
        ));
    }
    match point.rate_per_sec {
        Some(rate) if m.delivered_per_sec < 0.9 * rate as f64 => {
            return Some(format!(
                "delivered {:.0}/s < 90% of offered {rate}/s",
                m.delivered_per_sec
            ));
        }
        _ => {}
    }
    (m.undelivered > 0).then(|| {
        format!(
            "{} accepted events still undelivered after the probe's drain",
            m.undelivered
        )
    })
}

/// Whether a failed probe missed only narrowly: nothing refused or left undelivered, p99
/// within [`NARROW_MISS`] of the target.
#[must_use]
pub fn narrow_miss(probe: &Probe) -> bool {
    let m = &probe.measured;
    !probe.healthy()
        && m.rejected_pct == 0.0
        && m.undelivered == 0
        && (m.p99_us as f64) <= NARROW_MISS * probe.target_us as f64
}

/// Why the search stopped taking probes.
enum Stop<E> {
    /// The next probe would overrun the budget.
    Budget,
    /// The machine failed.
    Machine(E),
}

struct Search<'a, M: Machine> {
    machine: &'a mut M,
    plan: &'a Plan,
    probes: Vec<Probe>,
    spent_s: f64,
    on_probe: &'a mut dyn FnMut(&Probe, f64),
}

impl<M: Machine> Search<'_, M> {
    fn probe(&mut self, phase: Phase, point: Point) -> Result<Probe, Stop<M::Error>> {
        // The next probe may take as long as the longest so far.
        let next_s = self
            .probes
            .iter()
            .map(|p| p.measured.elapsed_s)
            .fold(self.plan.probe_s, f64::max);
        if self.spent_s + next_s > self.plan.budget_s + 1e-9 {
            return Err(Stop::Budget);
        }
        let measured = self
            .machine
            .probe(&point, self.plan.probe_s)
            .map_err(Stop::Machine)?;
        // A probe costs at least its planned length, even if it reports less.
        self.spent_s += measured.elapsed_s.max(self.plan.probe_s);
        let target_us = self.plan.target_us(&point);
        let probe = Probe {
            phase,
            point,
            measured,
            target_us,
            problem: judge(&point, &measured, target_us),
        };
        self.probes.push(probe.clone());
        (self.on_probe)(&probe, self.spent_s);
        Ok(probe)
    }

    fn at_rate(&self, base: &Point, rate: f64) -> Point {
        Point {
            rate_per_sec: Some(rate.max(1.0) as u64),
            ..*base
        }
    }

    /// Halves from half the ceiling until healthy: `Some((good, first bad))`,
    /// or `None` when nothing down to the floor was healthy.
    fn bracket_rate(&mut self, ceiling: &Probe) -> Result<Option<(Probe, Probe)>, Stop<M::Error>> {
        let top = ceiling.measured.delivered_per_sec;
        let mut rate = top / 2.0;
        let mut bad = ceiling.clone();
        while rate >= (top / MIN_RATE_FRACTION).max(1.0) {
            let probe = self.probe(Phase::Rate, self.at_rate(&self.plan.start, rate))?;
            if probe.healthy() {
                return Ok(Some((probe, bad)));
            }
            bad = probe;
            rate /= 2.0;
        }
        Ok(None)
    }

    /// Bisects between a good and a bad rate; returns the final pair.
    fn bisect_rate(&mut self, mut good: Probe, mut bad: Probe) -> (Probe, Probe) {
        let top = bad.measured.delivered_per_sec;
        loop {
            let lo = rate_of(&good);
            let hi = bad.point.rate_per_sec.map_or(top * 1.1, |r| r as f64);
            if hi / lo <= RATE_RESOLUTION {
                return (good, bad);
            }
            let point = self.at_rate(&good.point, (lo * hi).sqrt());
            let probe = match self.probe(Phase::Rate, point) {
                Ok(probe) if narrow_miss(&probe) => match self.probe(Phase::Rate, point) {
                    Ok(again) => again,
                    Err(_) => return (good, bad),
                },
                Ok(probe) => probe,
                Err(_) => return (good, bad),
            };
            if probe.healthy() {
                good = probe;
            } else {
                bad = probe;
            }
        }
    }

    /// At the operating rate, probes the starting shape, then each
    /// alternative; an alternative wins only if healthy with at most
    /// [`SHAPE_WIN`] of the incumbent's p99, so noise does not flip it.
    fn choose_shape(&mut self, edge: &Probe, operating_rate: u64) -> Probe {
        let base = Point {
            rate_per_sec: Some(operating_rate),
            ..edge.point
        };
        let Ok(mut best) = self.probe(Phase::Shape, base) else {
            return edge.clone();
        };
        if !best.healthy() {
            // The edge was healthy at a higher rate: a failure at the operating rate is
            // most likely noise, so it is probed once more before alternatives may win.
            match self.probe(Phase::Shape, base) {
                Ok(again) => best = again,
                Err(_) => return edge.clone(),
            }
        }
        for &(interval_us, max_batch_bytes) in &self.plan.shapes.clone() {
            let point = Point {
                interval_us,
                max_batch_bytes,
                ..base
            };
            match self.probe(Phase::Shape, point) {
                Ok(p) if p.healthy() && (!best.healthy() || wins(&p, &best)) => best = p,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        best
    }
}

fn rate_of(probe: &Probe) -> f64 {
    probe
        .point
        .rate_per_sec
        .map_or(probe.measured.delivered_per_sec, |r| r as f64)
}

/// Whether `challenger`'s p99 is clearly (by [`SHAPE_WIN`]) below `incumbent`'s, and the
/// incumbent needs it: one comfortably within its target (under [`SHAPE_NEED`] of it) is
/// kept, so a noise-level improvement never changes the shape (and with it the target).
fn wins(challenger: &Probe, incumbent: &Probe) -> bool {
    let needs = incumbent.measured.p99_us as f64 > SHAPE_NEED * incumbent.target_us as f64;
    needs && (challenger.measured.p99_us as f64) <= SHAPE_WIN * incumbent.measured.p99_us as f64
}

/// Runs the whole search against `machine` within `plan.budget_s`, calling
/// `on_probe(probe, spent_s)` after each probe (for a progress bar).
///
/// # Errors
/// The machine's error, if a probe could not be taken at all.
pub fn search<M: Machine>(
    machine: &mut M,
    plan: &Plan,
    on_probe: &mut dyn FnMut(&Probe, f64),
) -> Result<SearchOutcome, M::Error> {
    let mut s = Search {
        machine,
        plan,
        probes: Vec::new(),
        spent_s: 0.0,
        on_probe,
    };
    let found = run_steps(&mut s);
    let (edge, message) = match found {
        Ok(found) => found,
        Err(Stop::Budget) => (
            None,
            format!(
                "the budget ({:.1} s) ran out before a healthy point was found",
                plan.budget_s
            ),
        ),
        Err(Stop::Machine(e)) => return Err(e),
    };
    Ok(SearchOutcome {
        probes: s.probes,
        edge,
        message,
        spent_s: s.spent_s,
    })
}

fn run_steps<M: Machine>(s: &mut Search<'_, M>) -> Result<(Option<Edge>, String), Stop<M::Error>> {
    let ceiling = s.probe(
        Phase::Ceiling,
        Point {
            rate_per_sec: None,
            ..s.plan.start
        },
    )?;
    if ceiling.measured.delivered_per_sec <= 0.0 {
        return Ok((None, "nothing healthy: nothing was delivered at all".into()));
    }
    let Some((good, bad)) = s.bracket_rate(&ceiling)? else {
        return Ok((None, nothing_healthy(&ceiling, &s.probes)));
    };
    let (good, bad) = s.bisect_rate(good, bad);
    let best = good;
    let operating = ((rate_of(&best) * OPERATING_FRACTION) as u64).max(1);
    let shape = s.choose_shape(&best, operating);
    let message = format!(
        "edge found at {} after {} probes",
        runlog::human::rate(rate_of(&best)),
        s.probes.len()
    );
    let edge = Edge {
        best,
        shape,
        operating_rate_per_sec: operating,
        failing: (!bad.healthy()).then_some(bad),
    };
    Ok((Some(edge), message))
}

fn nothing_healthy(ceiling: &Probe, probes: &[Probe]) -> String {
    let floor = probes
        .iter()
        .filter_map(|p| p.point.rate_per_sec)
        .min()
        .unwrap_or(0);
    let why = probes
        .last()
        .and_then(|p| p.problem.clone())
        .unwrap_or_else(|| "unhealthy".into());
    format!(
        "nothing healthy: no offered rate from {} down to {} met the target \
         (last: {why}); try a larger --latency-target or a lighter payload",
        runlog::human::rate(ceiling.measured.delivered_per_sec / 2.0),
        runlog::human::rate(floor)
    )
}
