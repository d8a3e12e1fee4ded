//! The dispatcher side by side with the peers a user would pick instead, in
//! interleaved rounds, with a verdict that survives a noisy machine.
//!
//! Each group (an event size and a producer count) runs the same workload as
//! the `enqueue_to_batch` benchmark: P producer threads hand `Vec<u8>`
//! events to one consumer, an 8 MiB bound, 64 KiB batches. A round runs the
//! dispatcher and every peer once each, in an order that alternates from
//! round to round, so a drift of the machine (another tenant, the placement
//! of the two processors) falls on both sides. The ratio of a round
//! (dispatcher / peer) is the unit of the verdict: its median over the
//! rounds, with a 95% bootstrap interval. "ahead" and "behind" need the
//! whole interval above or below 1; anything else is "even".
//!
//! Run with `cargo run --release -p dispatcher --example peers -- --rounds 15`
//! (`--help` for the groups, peers and scale). Nothing else should run
//! meanwhile.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

// The bench's own runs; this example uses only some of them.
#[allow(dead_code)]
#[path = "../../benches/runs/mod.rs"]
mod runs;
mod stats;

use runs::Run;
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
}

/// A peer a user would pick instead of the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Peer {
    /// A bounded crossbeam channel, its consumer draining it in batches.
    Crossbeam,
    /// std's bounded `sync_channel`, one event at a time.
    Channel,
    /// tokio's bounded mpsc with `chunks_timeout`.
    Tokio,
}

impl Peer {
    fn run(self) -> Run {
        match self {
            Peer::Crossbeam => runs::crossbeam_run,
            Peer::Channel => runs::channel_run,
            Peer::Tokio => runs::tokio_run,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Peer::Crossbeam => "crossbeam",
            Peer::Channel => "channel",
            Peer::Tokio => "tokio",
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
        "{:<14} {:>18} {:<10} {:>18} {:>22}  verdict",
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
        let rates = group_rates(&peers, args.rounds, producers, total, size);
        let ours = Spread::of(&rates[0]);
        for (peer, theirs) in peers.iter().zip(&rates[1..]) {
            let ratios: Vec<f64> = rates[0].iter().zip(theirs).map(|(a, b)| a / b).collect();
            let ratio = Spread::of(&ratios);
            let (lo, hi) = stats::median_interval(&ratios, 0x5eed ^ at as u64);
            println!(
                "{:<14} {:>18} {:<10} {:>18} {:>22}  {}",
                format!("{} x {producers}", size_label(size)),
                ours.to_string(),
                peer.name(),
                Spread::of(theirs).to_string(),
                format!("{:.2} ({lo:.2}-{hi:.2})", ratio.median),
                Verdict::of(lo, hi),
            );
        }
    }
    ExitCode::SUCCESS
}

/// Every target's rate (M events/s) in each round: the dispatcher first,
/// then the peers in order. Odd rounds run the targets in reverse.
fn group_rates(
    peers: &[Peer],
    rounds: u32,
    producers: usize,
    total: usize,
    size: usize,
) -> Vec<Vec<f64>> {
    let targets: Vec<Run> = std::iter::once(runs::dispatcher_run as Run)
        .chain(peers.iter().map(|peer| peer.run()))
        .collect();
    let mut rates = vec![Vec::with_capacity(rounds as usize); targets.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for at in order {
            let elapsed = targets[at](producers, total, size);
            rates[at].push(rate(total, elapsed));
        }
    }
    rates
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
