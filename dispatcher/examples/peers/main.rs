//! The dispatcher side by side with the peers a user would pick instead, in
//! interleaved rounds, with a verdict that survives a noisy machine.
//!
//! Each group (an event size and a producer count) runs the same workload as
//! the `enqueue_to_batch` benchmark: P producer threads hand `Vec<u8>`
//! events to one consumer, a 64 MiB bound (its item equivalent for the
//! channels), 64 KiB batches. A round runs the dispatcher and every peer
//! once each, in an order that alternates from round to round, so a drift
//! of the machine (another tenant, the placement of the two processors)
//! falls on both sides. The ratio of a round (dispatcher / peer) is the
//! unit of the verdict: its median over the rounds, with a 95% bootstrap
//! interval. "ahead" and "behind" need the whole interval above 1.05 or
//! below 0.95; anything else is "even": two runs of the dispatcher itself
//! differ by that much on a shared machine (see `stats::EVEN_WITHIN`).
//!
//! `--peers control` runs the dispatcher against itself, an A/A control:
//! how often it is called anything but "even" is how often the machine's
//! noise alone decides a verdict.
//!
//! `--peers crossbeam,crossbeam-full` splits the ratio to the crossbeam
//! batcher in two: crossbeam-full is that batcher held to the dispatcher's
//! batches (see `held.rs`), and for each group `peers` prints the batches'
//! share, crossbeam-full / crossbeam in the same rounds.
//!
//! With `--isolate` every run is a process of its own (this binary again),
//! after a warm-up run there: targets sharing one process also share its
//! heap, and a round of one starts on the heap the other's round shaped.
//!
//! Run with `cargo run --release -p dispatcher --example peers -- --rounds 15`
//! (`--help` for the groups, peers and scale). Nothing else should run
//! meanwhile.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

mod held;
mod isolate;
// The bench's own runs; this example uses only some of them.
#[allow(dead_code)]
#[path = "../../benches/runs/mod.rs"]
mod runs;
mod staged;
mod stats;

use isolate::{Child, Timing};
use runs::{Run, busy};
use stats::{Spread, Verdict};

/// Interleaved rounds of the dispatcher against its peers.
#[derive(Debug, Parser)]
#[command(name = "peers")]
struct Args {
    /// Rounds per group (each runs every target once).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(3..=1000))]
    rounds: u32,
    /// Event sizes in bytes, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 1024, 10240],
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    sizes: Vec<u32>,
    /// Producer threads, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 32],
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    producers: Vec<u32>,
    /// The peers, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [Peer::Crossbeam])]
    peers: Vec<Peer>,
    /// Each run takes this many times the benchmark's events.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    scale: u32,
    /// Run every measured run in a process of its own, after a warm-up run
    /// there, so no target runs on a heap another target shaped.
    #[arg(long)]
    isolate: bool,
    /// Also print each target's producer threads' time on a processor
    /// (CLOCK_THREAD_CPUTIME_ID): per event, and as a share of the run. With
    /// one producer and a faster consumer the producer works the whole run,
    /// and its time per event is what sets the rate.
    #[arg(long)]
    producer_time: bool,
    /// Internal: make one isolated run (TARGET:PRODUCERS:EVENTS:SIZE) and
    /// print its nanoseconds (then, with --producer-time, its producers').
    #[arg(long, hide = true, value_parser = Child::parse)]
    child: Option<Child>,
}

/// A peer a user would pick instead of the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Peer {
    /// A bounded crossbeam channel, its consumer draining it in batches.
    Crossbeam,
    /// Not a peer: the crossbeam batcher held to the dispatcher's batches
    /// (its consumer waits for 64 KiB or 1 ms; see `held.rs`), to split
    /// the ratio to `crossbeam` into the batches' share and the
    /// dispatcher's own.
    CrossbeamFull,
    /// std's bounded `sync_channel`, one event at a time.
    Channel,
    /// tokio's bounded mpsc with `chunks_timeout`.
    Tokio,
    /// Not a peer: one simple staged design (each producer owns its open
    /// batch, one compare-and-swap an event on a shared byte count, the
    /// dispatcher's 64 KiB batches over a channel; see `staged.rs`).
    Staged,
    /// Not a peer: the dispatcher again, an A/A control. Its verdicts show
    /// what the machine's noise alone decides: anything but "even" there
    /// is a verdict the noise made.
    Control,
}

/// The dispatcher's name among the targets.
const DISPATCHER: &str = "dispatcher";

/// A target's run by its name (a `--child`'s target).
fn run_of(target: &str) -> Option<Run> {
    if target == DISPATCHER {
        return Some(runs::dispatcher_run);
    }
    Peer::from_str(target, true).ok().map(Peer::run)
}

impl Peer {
    fn run(self) -> Run {
        match self {
            Peer::Crossbeam => runs::crossbeam_run,
            Peer::CrossbeamFull => held::crossbeam_full_run,
            Peer::Channel => runs::channel_run,
            Peer::Tokio => runs::tokio_run,
            Peer::Staged => staged::staged_run,
            Peer::Control => runs::dispatcher_run,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Peer::Crossbeam => "crossbeam",
            Peer::CrossbeamFull => "crossbeam-full",
            Peer::Channel => "channel",
            Peer::Tokio => "tokio",
            Peer::Staged => "staged",
            Peer::Control => "control",
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.producer_time {
        busy::count();
    }
    if let Some(child) = &args.child {
        let Some(run) = run_of(&child.target) else {
            eprintln!("peers: --child: unknown target `{}`", child.target);
            return ExitCode::from(2);
        };
        println!("{}", child.measure(run).line());
        return ExitCode::SUCCESS;
    }
    let mut peers: Vec<Peer> = Vec::new();
    for &peer in &args.peers {
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    let groups: Vec<(usize, usize)> = args
        .sizes
        .iter()
        .flat_map(|&size| {
            args.producers
                .iter()
                .map(move |&p| (size as usize, p as usize))
        })
        .collect();
    println!(
        "{:<14} {:>18} {:<14} {:>18} {:>22}  verdict",
        "group", "dispatcher M/s", "peer", "peer M/s", "ratio (95% interval)"
    );
    for (at, &(size, producers)) in groups.iter().enumerate() {
        let total = runs::events_per_run(size, args.scale as usize);
        eprintln!(
            "group {}/{}: {} x {producers} producers, {} rounds of {total} events",
            at + 1,
            groups.len(),
            size_label(size),
            args.rounds
        );
        let measured = match group_runs(&peers, &args, producers, total, size) {
            Ok(measured) => measured,
            Err(error) => {
                eprintln!("peers: {error}");
                return ExitCode::FAILURE;
            }
        };
        let rates: Vec<Vec<f64>> = measured
            .iter()
            .map(|runs| runs.iter().map(|run| rate(total, run.elapsed)).collect())
            .collect();
        let ours = Spread::of(&rates[0]);
        for (peer, theirs) in peers.iter().zip(&rates[1..]) {
            let ratios: Vec<f64> = rates[0].iter().zip(theirs).map(|(a, b)| a / b).collect();
            let ratio = Spread::of(&ratios);
            let (lo, hi) = stats::median_interval(&ratios, 0x5eed ^ at as u64);
            println!(
                "{:<14} {:>18} {:<14} {:>18} {:>22}  {}",
                format!("{} x {producers}", size_label(size)),
                ours.to_string(),
                peer.name(),
                Spread::of(theirs).to_string(),
                format!("{:.2} ({lo:.2}-{hi:.2})", ratio.median),
                Verdict::of(lo, hi),
            );
        }
        if let Some(shares) = batches_share(&peers, &rates) {
            let share = Spread::of(&shares);
            let (lo, hi) = stats::median_interval(&shares, 0xba7c ^ at as u64);
            println!(
                "{:<14} batches' share: crossbeam-full / crossbeam {:.2} ({lo:.2}-{hi:.2})",
                format!("{} x {producers}", size_label(size)),
                share.median,
            );
        }
        let names = std::iter::once(DISPATCHER).chain(peers.iter().map(|peer| peer.name()));
        for (target, runs) in names.zip(&measured) {
            if let Some(busy) = Busy::of(runs, producers, total) {
                println!(
                    "{:<14} producer time: {target:<14} {:>7.0} ns an event, {:.1}% of the run",
                    format!("{} x {producers}", size_label(size)),
                    busy.nanos_per_event,
                    busy.share * 100.0,
                );
            }
        }
    }
    println!(
        "\nratio: dispatcher / peer, median of the rounds (95% bootstrap interval); \
         ahead or behind only when the whole interval is beyond 1 ± {:.0}%, \
         what two runs of the dispatcher itself stay within (--peers control)",
        stats::EVEN_WITHIN * 100.0
    );
    if args.producer_time {
        println!(
            "producer time: the producer threads' time on a processor, added up, per event and \
             as a share of the run's time x producers (medians of the rounds); what is not \
             that share they waited"
        );
    }
    if split(&peers).is_some() {
        println!(
            "batches' share: crossbeam-full / crossbeam in the same rounds, what waiting for \
             the dispatcher's batches costs that consumer here; the dispatcher / crossbeam-full \
             ratio is what is the dispatcher's own"
        );
    }
    ExitCode::SUCCESS
}

/// With both `crossbeam` and `crossbeam-full` among the peers, each
/// round's ratio of the second's rate to the first's: what waiting for the
/// dispatcher's batches cost that consumer on this machine.
fn batches_share(peers: &[Peer], rates: &[Vec<f64>]) -> Option<Vec<f64>> {
    let (full, greedy) = split(peers)?;
    let (full, greedy) = (rates.get(full + 1)?, rates.get(greedy + 1)?);
    Some(full.iter().zip(greedy).map(|(f, g)| f / g).collect())
}

/// Where `crossbeam-full` and `crossbeam` are among `peers`, when both are.
fn split(peers: &[Peer]) -> Option<(usize, usize)> {
    let at = |peer| peers.iter().position(|&p| p == peer);
    Some((at(Peer::CrossbeamFull)?, at(Peer::Crossbeam)?))
}

/// The producers' time on a processor in a target's runs (medians of the
/// rounds), when every run counted it.
struct Busy {
    nanos_per_event: f64,
    /// Of the run's time times the producers.
    share: f64,
}

impl Busy {
    fn of(runs: &[Timing], producers: usize, total: usize) -> Option<Busy> {
        let mut per_event = Vec::with_capacity(runs.len());
        let mut shares = Vec::with_capacity(runs.len());
        for run in runs {
            let busy = run.producer_time?.as_secs_f64();
            per_event.push(busy * 1e9 / total as f64);
            shares.push(busy / (run.elapsed.as_secs_f64().max(1e-9) * producers as f64));
        }
        (!runs.is_empty()).then(|| Busy {
            nanos_per_event: Spread::of(&per_event).median,
            share: Spread::of(&shares).median,
        })
    }
}

/// Every target's runs in each round: the dispatcher first, then the peers
/// in order. Odd rounds run the targets in reverse. With `isolate`, each
/// run is a child process of its own (see [`isolate`]), told to count its
/// producers' time on a processor with `--producer-time`.
fn group_runs(
    peers: &[Peer],
    args: &Args,
    producers: usize,
    total: usize,
    size: usize,
) -> Result<Vec<Vec<Timing>>, String> {
    let targets: Vec<(&str, Run)> = std::iter::once((DISPATCHER, runs::dispatcher_run as Run))
        .chain(peers.iter().map(|peer| (peer.name(), peer.run())))
        .collect();
    let mut measured = vec![Vec::with_capacity(args.rounds as usize); targets.len()];
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for at in order {
            let (target, run) = targets[at];
            let run = if args.isolate {
                Child {
                    target: target.to_owned(),
                    producers,
                    total,
                    size,
                }
                .spawn(args.producer_time)?
            } else {
                Timing::of_run(run, producers, total, size).counted(args.producer_time)?
            };
            measured[at].push(run);
        }
    }
    Ok(measured)
}

/// Millions of events a second.
fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batches_share_needs_both_crossbeam_targets() {
        // The dispatcher's rates first, then the peers' in `peers` order.
        let rates = vec![vec![9.0, 9.0], vec![2.0, 4.0], vec![1.0, 3.0]];
        let peers = [Peer::CrossbeamFull, Peer::Crossbeam];
        assert_eq!(batches_share(&peers, &rates), Some(vec![2.0, 4.0 / 3.0]));
        let swapped = [Peer::Crossbeam, Peer::CrossbeamFull];
        assert_eq!(batches_share(&swapped, &rates), Some(vec![0.5, 0.75]));
        assert_eq!(
            batches_share(&[Peer::Crossbeam, Peer::Control], &rates),
            None
        );
        assert_eq!(batches_share(&[Peer::CrossbeamFull], &rates[..2]), None);
    }
}
