//! Helpers of the attack tests (`tests/attack_*.rs`): a test event that
//! carries its producer handle and sequence number, a watchdog that names
//! what a stuck scenario was doing, a gate for sinks and wakers, and panics
//! raised on purpose that are not printed. The hammers' shared vocabulary is
//! in [`hammer`], the thread hammer's plan and load in [`thread_hammer`], and the
//! exactly-once check in [`ledger`].

#![allow(dead_code, missing_docs, unreachable_pub, unused_imports)]

use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use dispatcher::Weight;

pub mod hammer;
pub mod ledger;
pub mod thread_hammer;

/// An event's identity: its producer handle and its sequence number on
/// that handle.
pub type Id = (u32, u32);

/// A test event: the producer handle that made it, its sequence number on
/// that handle, and the weight admission charges (0 is charged as 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub handle: u32,
    pub seq: u32,
    pub weight: usize,
}

impl Weight for Ev {
    fn weight(&self) -> usize {
        self.weight
    }
}

pub fn ev(handle: u32, seq: u32, weight: usize) -> Ev {
    Ev {
        handle,
        seq,
        weight,
    }
}

/// The sequence numbers of `events`, in order.
pub fn seqs<'a>(events: impl IntoIterator<Item = &'a Ev>) -> Vec<u32> {
    events.into_iter().map(|e| e.seq).collect()
}

/// Long enough that time never cuts a batch during a test.
pub const LONG: Duration = Duration::from_secs(3600);

/// How long any scenario may take before the watchdog calls it stuck.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// What a scenario is doing now, for the watchdog's message.
#[derive(Clone, Default)]
pub struct Progress(Arc<Mutex<String>>);

impl Progress {
    pub fn set(&self, what: impl Into<String>) {
        *self.0.lock().unwrap() = what.into();
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// Runs `body` on its own thread; fails if it does not finish within
/// [`WATCHDOG`], printing what it was doing; resumes its panic if it panicked.
pub fn watchdog<R: Send + 'static>(
    name: &str,
    body: impl FnOnce(Progress) -> R + Send + 'static,
) -> R {
    watchdog_within(name, WATCHDOG, body)
}

/// [`watchdog`] with a limit of its own.
pub fn watchdog_within<R: Send + 'static>(
    name: &str,
    limit: Duration,
    body: impl FnOnce(Progress) -> R + Send + 'static,
) -> R {
    let progress = Progress::default();
    let (tx, rx) = mpsc::sync_channel(1);
    let seen = progress.clone();
    let handle = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(body(seen));
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = handle.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("{name}: ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name}: not finished within {limit:?} (deadlock or lost wake-up?); stuck at: {}",
            progress.get()
        ),
    }
}

/// Polls `cond` until it holds; fails after 10 s (the shared
/// [`common::wait_for`] with the attacks' limit).
pub fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    common::wait_for(Duration::from_secs(10), what, cond);
}

// The balance and the sink gate are the other integration tests' own.
#[path = "../common/mod.rs"]
pub mod common;
pub use common::{Gate, assert_balanced};

/// Panics raised on purpose start with this, and are not printed.
pub const CHAOS: &str = "chaos:";

/// Keeps the panics raised on purpose (their message starts with
/// [`CHAOS`]) out of the output, for the whole test process.
pub fn quiet_chaos_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !text.starts_with(CHAOS) {
                previous(info);
            }
        }));
    });
}
