//! Attack: `BatchSource::abandon` on the reference channels (contract 3).

#![allow(missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::{
    BatchSource, Event, LATE_SENDERS, Offer, Queue, ReferenceBatches, ReferenceTarget, Target,
    channel, crossbeam, tokio_mpsc,
};

type Make<Q> = fn(usize, usize) -> (ReferenceTarget<Q>, ReferenceBatches<Q>);

fn ev(p: u32, seq: u64) -> Event {
    Event::new(Vec::new(), 0, p, seq)
}

fn all_dropped_returns_at_once<Q: Queue>(make: Make<Q>, name: &str)
where
    ReferenceBatches<Q>: Send,
{
    // Counts across many fill levels (crosses internal block boundaries).
    for k in [0usize, 1, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 500] {
        for j in [0usize, 1, 5, 31, 32, 33, 64] {
            if j > k {
                continue;
            }
            let (t, mut b) = make(1024, 7);
            let t2 = t.clone();
            for i in 0..k {
                let who = if i % 2 == 0 { &t } else { &t2 };
                assert!(matches!(who.offer(ev(0, i as u64)), Offer::Accepted));
            }
            let mut taken = 0;
            while taken < j {
                let got = b.try_recv_batch().unwrap();
                let n = got.len().min(j - taken);
                // batches are up to 7; count what was actually taken
                taken += got.len();
                let _ = n;
            }
            drop((t, t2));
            let t0 = Instant::now();
            let left = b.abandon();
            let el = t0.elapsed();
            assert_eq!(left as usize, k - taken, "{name}: k {k} taken {taken}");
            assert!(
                el < Duration::from_millis(750),
                "{name}: abandon with no senders took {el:?}"
            );
        }
    }
}

#[test]
fn all_clones_dropped_abandon_returns_at_once_and_counts_exactly() {
    all_dropped_returns_at_once(channel, "std");
    all_dropped_returns_at_once(crossbeam, "crossbeam");
    all_dropped_returns_at_once(tokio_mpsc, "tokio");
}

fn idle_clone_kept_alive<Q: Queue>(make: Make<Q>, name: &str) {
    let (t, mut b) = make(100, 4);
    for i in 0..10 {
        assert!(matches!(t.offer(ev(0, i)), Offer::Accepted));
    }
    let t0 = Instant::now();
    let left = b.abandon();
    let el = t0.elapsed();
    eprintln!("{name}: idle clone alive: abandon took {el:?}, counted {left}");
    assert_eq!(left, 10);
    assert!(
        el >= LATE_SENDERS - Duration::from_millis(50),
        "{name}: returned early: {el:?}"
    );
    assert!(
        el < LATE_SENDERS + Duration::from_secs(2),
        "{name}: took {el:?}"
    );
    drop(t);
}

#[test]
fn idle_clone_kept_alive_abandon_returns_after_late_senders() {
    idle_clone_kept_alive(channel, "std");
    idle_clone_kept_alive(crossbeam, "crossbeam");
    idle_clone_kept_alive(tokio_mpsc, "tokio");
}

/// A clone kept alive forever that keeps offering: abandon should still come
/// back about LATE_SENDERS later.
fn busy_clone_kept_alive<Q: Queue>(make: Make<Q>, name: &str)
where
    ReferenceBatches<Q>: Send + 'static,
{
    let (t, b) = make(4096, 64);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let sender = thread::spawn(move || {
        let mut seq = 0;
        while !s2.load(Ordering::Relaxed) {
            let _ = t.offer(ev(0, seq));
            seq += 1;
        }
        t // kept until the test ends
    });
    thread::sleep(Duration::from_millis(20));
    let res = {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut b = b;
            let t0 = Instant::now();
            let left = b.abandon();
            let _ = tx.send((t0.elapsed(), left));
            b
        });
        rx.recv_timeout(Duration::from_secs(8))
    };
    stop.store(true, Ordering::Relaxed);
    let t = sender.join().unwrap();
    drop(t);
    match res {
        Ok((el, left)) => {
            eprintln!("{name}: busy clone alive: abandon took {el:?}, counted {left}");
            assert!(
                el < LATE_SENDERS + Duration::from_secs(2),
                "{name}: abandon took {el:?}"
            );
        }
        Err(_) => {
            panic!("{name}: abandon did not return within 8 s while a live clone kept offering")
        }
    }
}

#[test]
fn busy_clone_kept_alive_std() {
    busy_clone_kept_alive(channel, "std");
}

#[test]
fn busy_clone_kept_alive_crossbeam() {
    busy_clone_kept_alive(crossbeam, "crossbeam");
}

#[test]
fn busy_clone_kept_alive_tokio() {
    busy_clone_kept_alive(tokio_mpsc, "tokio");
}

/// Many producers racing abandon: they notice the stop late (random delay
/// up to ~600 ms, under LATE_SENDERS) and may offer after abandon started.
/// accepted == delivered + abandoned, exactly.
fn race<Q: Queue>(make: Make<Q>, name: &str, seed: u64)
where
    ReferenceBatches<Q>: Send + 'static,
{
    let mut rng = fastrand::Rng::with_seed(seed);
    let nprod = rng.usize(2..=8);
    let cap = if seed % 2 == 1 {
        1 << 17
    } else {
        rng.usize(16..4096)
    };
    let (t, mut b) = make(cap, rng.usize(1..64));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let late_after_abandon_start = Arc::new(AtomicU64::new(0));
    let abandon_started = Arc::new(AtomicBool::new(false));
    let mut prods = Vec::new();
    for p in 0..nprod {
        let t: Arc<dyn Target> = Arc::new(t.clone());
        let stop = Arc::clone(&stop);
        let accepted = Arc::clone(&accepted);
        let late = Arc::clone(&late_after_abandon_start);
        let started = Arc::clone(&abandon_started);
        let delay = Duration::from_millis(rng.u64(0..600));
        let pace = if seed % 2 == 1 {
            rng.u64(2..8)
        } else {
            rng.u64(0..3)
        };
        prods.push(thread::spawn(move || {
            let mut seq = 0;
            let mut stop_seen_at = None;
            loop {
                if stop.load(Ordering::Relaxed) {
                    let at = *stop_seen_at.get_or_insert_with(Instant::now);
                    if at.elapsed() >= delay {
                        break;
                    }
                }
                match t.offer(ev(p as u32, seq)) {
                    Offer::Accepted => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        if started.load(Ordering::SeqCst) {
                            late.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Offer::Refused(_) => thread::yield_now(),
                    Offer::Closed(_) => panic!("closed while the batches live"),
                }
                seq += 1;
                if pace > 0 {
                    thread::sleep(Duration::from_micros(pace * 50));
                }
            }
            // t dropped here
        }));
    }
    drop(t);
    let mut delivered = 0u64;
    let t_end = Instant::now() + Duration::from_millis(rng.u64(20..200));
    while Instant::now() < t_end {
        if let Ok(batch) = b.recv_batch(Duration::from_millis(5)) {
            delivered += batch.len() as u64;
        }
    }
    stop.store(true, Ordering::SeqCst);
    abandon_started.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let abandoned = b.abandon();
    let el = t0.elapsed();
    for p in prods {
        p.join().unwrap();
    }
    let acc = accepted.load(Ordering::SeqCst);
    let late = late_after_abandon_start.load(Ordering::SeqCst);
    assert_eq!(
        acc,
        delivered + abandoned,
        "{name} seed {seed}: accepted {acc} != delivered {delivered} + abandoned {abandoned} \
         (late offers accepted after abandon started: {late}; abandon took {el:?}; {nprod} producers)"
    );
    assert!(
        el < LATE_SENDERS + Duration::from_secs(2),
        "{name}: abandon took {el:?}"
    );
    if seed % 8 <= 1 {
        eprintln!(
            "{name} seed {seed}: accepted {acc} delivered {delivered} abandoned {abandoned} late {late} abandon {el:?}"
        );
    }
}

/// Races of 2-8 producers against `abandon`, seed after seed, for up to 15 s.
fn races<Q: Queue>(make: Make<Q>, name: &str)
where
    ReferenceBatches<Q>: Send + 'static,
{
    let t = Instant::now();
    for seed in 0..40 {
        if t.elapsed() > Duration::from_secs(15) {
            break;
        }
        race(make, name, seed);
    }
}

#[test]
fn racing_producers_std() {
    races(channel, "std");
}

#[test]
fn racing_producers_crossbeam() {
    races(crossbeam, "crossbeam");
}

#[test]
fn racing_producers_tokio() {
    races(tokio_mpsc, "tokio");
}

/// A clone dropped right after one late offer, while abandon already waits.
fn one_late_offer<Q: Queue>(make: Make<Q>, name: &str) {
    // Up to half of abandon's wait for late senders: the rest is the margin
    // a slow host needs to wake the sender and take its offer.
    for delay_ms in [0u64, 1, 10, 100, 250, 500] {
        let (t, mut b) = make(8, 4);
        assert!(matches!(t.offer(ev(0, 0)), Offer::Accepted));
        let t2 = t.clone();
        drop(t);
        let h = thread::spawn(move || {
            thread::sleep(Duration::from_millis(delay_ms));
            assert!(matches!(t2.offer(ev(0, 1)), Offer::Accepted));
            drop(t2);
        });
        let left = b.abandon();
        h.join().unwrap();
        assert_eq!(
            left, 2,
            "{name}: late offer after {delay_ms} ms not counted"
        );
    }
}

#[test]
fn one_late_offer_is_counted() {
    one_late_offer(channel, "std");
    one_late_offer(crossbeam, "crossbeam");
    one_late_offer(tokio_mpsc, "tokio");
}
