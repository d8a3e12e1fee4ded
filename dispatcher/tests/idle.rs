//! An idle dispatcher sleeps: receivers and producers that wait do so on a
//! condition variable, not in a spin. Measured as this process's CPU time
//! over an idle second (Linux only: it reads /proc/self/stat).

#![allow(missing_docs)]
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Ev, LONG, PROMPTLY, ev};
use dispatcher::{Dispatcher, Policy};

const IDLE: Duration = Duration::from_secs(1);

/// utime + stime of this process, in clock ticks (fields 14 and 15 of
/// /proc/self/stat, counted after the parenthesised command name).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("(comm)") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): field n is at index n - 3.
    let utime: u64 = fields[14 - 3].parse().expect("utime");
    let stime: u64 = fields[15 - 3].parse().expect("stime");
    utime + stime
}

fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[test]
fn waiting_receivers_and_producers_do_not_spin() {
    // 1. A receiver blocked in recv() with nothing open; its producer idle.
    let (empty, empty_batches) = Dispatcher::<Ev>::builder().build().unwrap();
    let idle_receiver = common::spawn(move || empty_batches.recv().is_err());
    let idle_producer = empty.producer();
    let (release, wait_for_release) = mpsc::channel::<()>();
    let holder = common::spawn(move || {
        let _ = wait_for_release.recv(); // holds a producer, enqueues nothing
        drop(idle_producer);
    });

    // 2. A receiver waiting on an open batch due in an hour.
    let (open, open_batches) = Dispatcher::<Ev>::builder().interval(LONG).build().unwrap();
    open.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    let due_receiver = common::spawn(move || open_batches.recv().map(|b| b.len()));

    // 3. A producer blocked for room, and nobody receiving.
    let (full, _full_batches) = Dispatcher::<Ev>::builder()
        .interval(LONG)
        .max_buffered_bytes(1)
        .policy(Policy::Block { timeout: LONG })
        .build()
        .unwrap();
    let blocked_producer = full.producer();
    blocked_producer.enqueue(ev(0, 0, 1)).unwrap();
    let blocked = common::spawn(move || blocked_producer.enqueue(ev(0, 1, 1)).is_err());

    thread::sleep(Duration::from_millis(100)); // let every thread settle into its wait
    let before = cpu_ticks();
    thread::sleep(IDLE);
    let used = cpu_ticks() - before;
    let budget = ticks_per_second() / 20; // 5% of one core over the idle second
    eprintln!("idle for {IDLE:?}: the process used {used} ticks of CPU (budget {budget})");

    // Wake everything and make sure it all ends (before asserting, so a
    // failure does not leave threads blocked).
    drop(empty);
    release.send(()).unwrap();
    drop(open);
    drop(full);
    assert!(idle_receiver.join_within(PROMPTLY, "idle receiver"));
    holder.join("producer holder");
    assert_eq!(due_receiver.join("due receiver"), Ok(1));
    assert!(blocked.join("blocked producer"));

    assert!(
        used <= budget,
        "idle for {IDLE:?}, the process used {used} ticks of CPU (budget {budget}): busy waiting?"
    );
}
