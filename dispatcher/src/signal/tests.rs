//! Unit tests of the notification primitive.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Wake as TaskWake;
use std::time::Duration;

struct Count(AtomicUsize);

impl TaskWake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn entries(signal: &Signal) -> usize {
    signal.inner.entries.lock().list.len()
}

#[test]
fn notify_without_listeners_takes_no_lock() {
    let signal = Signal::default();
    let _held = signal.inner.entries.lock();
    signal.notify(); // would deadlock if it locked
    signal.notify_all();
}

#[test]
fn a_blocked_waiter_wakes_on_news_it_can_use() {
    let signal = Signal::default();
    let flag = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (signal, flag) = (signal.clone(), Arc::clone(&flag));
        std::thread::spawn(move || {
            signal.wait(|| match flag.load(SeqCst) {
                true => Check::Ready(()),
                false => Check::Wait(None),
            })
        })
    };
    while signal.inner.listeners.load(SeqCst) == 0 {
        std::thread::yield_now();
    }
    flag.store(true, SeqCst);
    signal.notify();
    waiter.join().unwrap();
    assert_eq!(
        (signal.inner.listeners.load(SeqCst), entries(&signal)),
        (0, 0)
    );
}

#[test]
fn a_wait_ends_when_its_instant_passes() {
    let signal = Signal::default();
    let until = Instant::now() + Duration::from_millis(5);
    let waited = signal.wait(|| match Instant::now() >= until {
        true => Check::Ready("timed out"),
        false => Check::Wait(Some(until)),
    });
    assert_eq!(waited, "timed out");
}

#[test]
fn a_polled_listener_is_woken_once_and_forgotten_when_dropped() {
    let signal = Signal::default();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    let mut listener = signal.listen(0);
    assert!(listener.poll(&mut cx).is_pending());
    assert!(listener.poll(&mut cx).is_pending()); // the same entry, waker refreshed
    assert_eq!(entries(&signal), 1);
    signal.notify();
    signal.notify(); // told once
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(listener.poll(&mut cx).is_ready());
    let mut second = signal.listen(0);
    assert!(second.poll(&mut cx).is_pending());
    drop((second, listener));
    assert_eq!(
        (signal.inner.listeners.load(SeqCst), entries(&signal)),
        (0, 0)
    );
}

/// A room signal tells the first listener whose need fits, skipping those
/// that do not; when a told listener leaves (used or not) the news goes on
/// to the next that fits in what is left then.
#[test]
fn a_room_signal_tells_whoever_fits_one_after_another() {
    let free = Arc::new(AtomicUsize::new(0));
    let room = Arc::clone(&free);
    let signal = Signal::with_room(Arc::new(move || room.load(SeqCst)));
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    let mut big = signal.listen(70);
    let mut small = signal.listen(20);
    let mut other = signal.listen(20);
    for listener in [&mut big, &mut small, &mut other] {
        assert!(listener.poll(&mut cx).is_pending());
    }
    free.store(50, SeqCst);
    signal.notify();
    assert!(big.poll(&mut cx).is_pending(), "70 B do not fit in 50");
    assert!(small.poll(&mut cx).is_ready());
    assert!(other.poll(&mut cx).is_pending(), "one at a time");
    // `small` takes its 20 B and leaves: 30 B left fit `other`.
    free.store(30, SeqCst);
    drop(small);
    assert!(other.poll(&mut cx).is_ready(), "the news was passed on");
    assert!(big.poll(&mut cx).is_pending());
    // `other` leaves without using its room (it timed out): 70 B fit `big`.
    free.store(70, SeqCst);
    drop(other);
    assert!(big.poll(&mut cx).is_ready(), "the news was passed on");
    // Everyone is told when admission closes, whatever fits.
    free.store(0, SeqCst);
    let mut late = signal.listen(10);
    let mut later = signal.listen(10);
    assert!(late.poll(&mut cx).is_pending() && later.poll(&mut cx).is_pending());
    signal.notify_all();
    assert!(late.poll(&mut cx).is_ready() && later.poll(&mut cx).is_ready());
}

#[test]
fn a_room_signal_wakes_a_sleeping_thread_that_fits() {
    let free = Arc::new(AtomicUsize::new(0));
    let room = Arc::clone(&free);
    let signal = Signal::with_room(Arc::new(move || room.load(SeqCst)));
    let sleeper = {
        let (signal, free) = (signal.clone(), Arc::clone(&free));
        std::thread::spawn(move || {
            signal.wait_for(8, || match free.load(SeqCst) >= 8 {
                true => Check::Ready(()),
                false => Check::Wait(None),
            })
        })
    };
    while entries(&signal) == 0 {
        std::thread::yield_now();
    }
    free.store(4, SeqCst);
    signal.notify(); // not enough: the sleeper is not told
    assert!(!sleeper.is_finished());
    free.store(8, SeqCst);
    signal.notify();
    sleeper.join().unwrap();
}
