//! Attacks on when a stream of batches may end: a receiver's stream
//! (`recv`, iteration, `recv_timeout` / `try_recv` answering
//! `Disconnected`, the async batch stream), or a sink's workers, end only
//! once every accepted event has been handed over, unless `stop()` handed
//! the rest back or a shutdown deadline passed (and shutdown handed them
//! back). No accepted event is lost or delivered twice, and one handle's
//! events arrive in the order they were accepted.
//!
//! The scenarios hold one producer, P, inside its admission (a hook that
//! runs under P's partition's lock waits at a gate) while the dispatcher
//! ends: dropped, shut down (blocking or async), stopped, or its last
//! receiver gone. Meanwhile probes on the other partitions enqueue until
//! admission reads closed, and the receivers take the probes' batches and
//! look again. Then P is let go, and every accepted event must be found
//! exactly once: delivered, evicted (DropOldest), or handed back. The
//! same scenarios are also drawn at random with other producers running,
//! and a randomized stress test checks the same with many producers, no
//! gate, and hooks that now and then linger under the lock.
//!
//! Checked against the code before the fix of 30377f8 ("a receiver's
//! stream could end with an accepted event still to come"): the scenarios
//! ending by drop with P on the last partition lost P's event in nearly
//! every run there (pull, sink and async sink modes alike).
//!
//! Every scenario runs under a watchdog: a stream that never ends fails
//! the test, naming the scenario, instead of hanging the suite.

mod attack_kit;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use attack_kit::ledger::{Fates, sample, verify};
use attack_kit::{Ev, Gate, Id, LONG, Progress, ev, watchdog};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{
    Batch, Batches, Builder, Dispatcher, EnqueueError, Policy, Producer, RecvTimeoutError,
    ShutdownReport, TryEnqueueError, TryRecvError,
};

fn id(e: &Ev) -> Id {
    (e.handle, e.seq)
}

/// The held producer's handle.
const P: u32 = 100;
/// Another handle on P's partition.
const OTHER: u32 = 200;
/// The weight of a scenario event.
const W: usize = 8;
/// How long a gate waits before the scenario is declared broken.
const GATE_LIMIT: Duration = Duration::from_secs(10);
/// Shutdown's deadline in the scenarios: far more than a drain needs once
/// P is let go, so a timeout means a stream ended early. It runs from
/// before P's release (the end has to start while P is held, some 0.2 s),
/// so it also has to cover the hold and a slow, noisy host's stalls.
const DEADLINE: Duration = Duration::from_secs(5);
/// Time for receivers (or workers) to take the probes' batches and look
/// again while P is held.
const LOOK_AGAIN: Duration = Duration::from_millis(15);

/// The limit of the `n`th case of a table: every other case leases budget
/// ahead (8 MiB) or does not (64 KiB).
fn limit_for(n: usize) -> usize {
    if n % 2 == 0 { 64 << 10 } else { 8 * MIB }
}

/// Holds P once, inside a hook, on its marked event.
struct Holder {
    mark: u32,
    armed: AtomicBool,
    entered: Gate,
    release: Gate,
}

impl Holder {
    fn new(mark: u32) -> Arc<Self> {
        Arc::new(Holder {
            mark,
            armed: AtomicBool::new(true),
            entered: Gate::default(),
            release: Gate::default(),
        })
    }

    fn marked(&self, e: &Ev) -> bool {
        e.handle == P && e.seq == self.mark
    }

    /// Waits at the gate the first time; says whether it did.
    fn hold(&self) -> bool {
        if !self.armed.swap(false, SeqCst) {
            return false;
        }
        self.entered.open();
        self.release.wait(GATE_LIMIT);
        true
    }
}

/// Which hook holds P, and what it answers once P is released.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Hold {
    /// `should_flush`, after P's event is counted; `cut` emits the batch.
    Flush { cut: bool },
    /// `can_add`, before anything changes; admits.
    CanAdd,
    /// `will_overflow`, before P's event joins a non-empty batch; `cut`
    /// emits the open batch first.
    Overflow { cut: bool },
}

/// What P's partition holds when P's marked event arrives.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Join {
    /// Nothing: P's event opens a batch.
    Alone,
    /// P's own earlier event.
    Own,
    /// An event of another handle on P's partition.
    Other,
    /// Nothing, and the budget is full: P waits for room (Block), is let in
    /// by a receiver's delivery and is held after that.
    Waiter,
}

/// How P enqueues.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Call {
    Try,
    Enqueue,
    /// `try_enqueue_all` of seqs 1, 2, 3 (the mark is one of them).
    Group,
}

/// How a receiver takes batches.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Style {
    /// `for batch in &batches`.
    Iter,
    /// `while let Ok(batch) = batches.recv()`.
    Recv,
    /// `recv_timeout(1 ms)` until `Disconnected`.
    Timeout,
    /// `try_recv` (100 us naps when `Empty`) until `Disconnected`.
    Try,
    /// `into_stream()` on a current-thread tokio runtime.
    #[cfg(feature = "async")]
    Stream,
}

/// Where batches go.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Pull {
        style: Style,
        receivers: usize,
    },
    Sink {
        workers: usize,
    },
    #[cfg(feature = "async")]
    AsyncSink {
        workers: usize,
    },
}

/// How the dispatcher ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    Drop,
    Shutdown,
    Stop,
    /// Every receiver drops its handle; then `shutdown` hands back the rest.
    ReceiversGone,
    #[cfg(feature = "async")]
    ShutdownAsync,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    partitions: usize,
    limit: usize,
    policy: Policy,
    hold: Hold,
    join: Join,
    call: Call,
    /// P's held event's sequence number (1..=3; only a group has 2 and 3).
    mark: u32,
    /// P takes the last partition (handles take them in turn), so an
    /// ending that goes through the partitions in order reaches P's last;
    /// otherwise the first.
    p_last: bool,
    /// `max_batch_items`, so a group can span batches.
    items: Option<usize>,
    /// Producer threads making random calls meanwhile, on handles of
    /// their own, until admission reads closed.
    background: usize,
    mode: Mode,
    end: End,
}

const BASE: Case = Case {
    partitions: 2,
    limit: 8 << 20,
    policy: Policy::Reject,
    hold: Hold::Flush { cut: false },
    join: Join::Alone,
    call: Call::Try,
    mark: 1,
    p_last: true,
    items: None,
    background: 0,
    mode: Mode::Pull {
        style: Style::Iter,
        receivers: 1,
    },
    end: End::Drop,
};

const MIB: usize = 1 << 20;

/// What a sink wrote, per flush worker, in the order each wrote it.
#[derive(Default)]
struct Written(Mutex<Vec<Vec<Id>>>);

impl Written {
    fn record(&self, worker: usize, items: &[Ev]) {
        let mut per_worker = self.0.lock().unwrap();
        if per_worker.len() <= worker {
            per_worker.resize(worker + 1, Vec::new());
        }
        per_worker[worker].extend(items.iter().map(id));
    }

    fn total(&self) -> usize {
        self.0.lock().unwrap().iter().map(Vec::len).sum()
    }

    fn streams(&self) -> Vec<(String, Vec<Id>)> {
        let per_worker = self.0.lock().unwrap();
        per_worker
            .iter()
            .enumerate()
            .map(|(w, ids)| (format!("sink worker {w}"), ids.clone()))
            .collect()
    }
}

#[cfg(feature = "async")]
struct AsyncCounting(Arc<Written>);

#[cfg(feature = "async")]
impl dispatcher::nonblocking::AsyncSink<Ev> for AsyncCounting {
    async fn write(
        &self,
        batch: &Batch<Ev>,
        ctx: &FlushContext,
    ) -> Result<(), dispatcher::sink::SinkError> {
        self.0.record(ctx.worker(), batch.items());
        Ok(())
    }
}

#[cfg(feature = "async")]
fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Takes batches in `style` until the stream ends (or, for the loops,
/// until `quit` is set); then drops the receiver.
fn receive(batches: Batches<Ev>, style: Style, quit: &AtomicBool) -> Vec<Id> {
    let mut got = Vec::new();
    match style {
        Style::Iter => {
            for batch in &batches {
                got.extend(batch.items().iter().map(id));
            }
        }
        Style::Recv => {
            while let Ok(batch) = batches.recv() {
                got.extend(batch.items().iter().map(id));
            }
        }
        Style::Timeout => {
            while !quit.load(SeqCst) {
                match batches.recv_timeout(Duration::from_millis(1)) {
                    Ok(batch) => got.extend(batch.items().iter().map(id)),
                    Err(RecvTimeoutError::Timeout) => {}
                    // Disconnected: closed and drained.
                    Err(_) => break,
                }
            }
        }
        Style::Try => {
            while !quit.load(SeqCst) {
                match batches.try_recv() {
                    Ok(batch) => got.extend(batch.items().iter().map(id)),
                    Err(TryRecvError::Empty) => thread::sleep(Duration::from_micros(100)),
                    // Disconnected: closed and drained.
                    Err(_) => break,
                }
            }
        }
        #[cfg(feature = "async")]
        Style::Stream => {
            use futures_util::StreamExt;
            current_thread_runtime().block_on(async {
                let mut stream = batches.into_stream();
                while let Some(batch) = stream.next().await {
                    got.extend(batch.items().iter().map(id));
                }
            });
        }
    }
    got
}

/// Starts `count` receivers of `style`.
fn start_receivers(
    batches: Batches<Ev>,
    style: Style,
    count: usize,
    quit: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Vec<Id>>> {
    let mut all = vec![batches];
    while all.len() < count {
        let clone = all[0].clone();
        all.push(clone);
    }
    all.into_iter()
        .map(|b| {
            let quit = Arc::clone(quit);
            thread::spawn(move || receive(b, style, &quit))
        })
        .collect()
}

/// What ending the dispatcher handed back.
#[derive(Default)]
struct Ending {
    returned: Vec<Id>,
    report: Option<ShutdownReport>,
    timed_out: bool,
}

fn shutdown_outcome(outcome: Result<ShutdownReport, dispatcher::ShutdownTimeout<Ev>>) -> Ending {
    match outcome {
        Ok(report) => Ending {
            returned: Vec::new(),
            report: Some(report),
            timed_out: false,
        },
        Err(timeout) => {
            let report = *timeout.report;
            Ending {
                returned: timeout.into_inner().iter().map(id).collect(),
                report: Some(report),
                timed_out: true,
            }
        }
    }
}

/// Ends `dispatcher` as `end` says (not `ReceiversGone`: that is the
/// receivers' doing).
fn end_with(dispatcher: Dispatcher<Ev>, end: End, deadline: Duration) -> Ending {
    match end {
        End::Drop => {
            drop(dispatcher);
            Ending::default()
        }
        End::Shutdown | End::ReceiversGone => shutdown_outcome(dispatcher.shutdown(deadline)),
        End::Stop => Ending {
            returned: dispatcher.stop().iter().map(id).collect(),
            ..Ending::default()
        },
        #[cfg(feature = "async")]
        End::ShutdownAsync => {
            shutdown_outcome(current_thread_runtime().block_on(dispatcher.shutdown_async(deadline)))
        }
    }
}

/// `ends`, plus `shutdown_async` when the `async` feature is on.
fn with_async_end(ends: Vec<End>) -> Vec<End> {
    #[cfg(feature = "async")]
    let ends = {
        let mut ends = ends;
        ends.push(End::ShutdownAsync);
        ends
    };
    ends
}

fn is_shutdown(end: End) -> bool {
    match end {
        End::Shutdown => true,
        #[cfg(feature = "async")]
        End::ShutdownAsync => true,
        _ => false,
    }
}

/// The builder of a scenario: its limits, P's hook, and eviction records.
fn configure(case: &Case, holder: &Arc<Holder>, evicted: &Arc<Mutex<Vec<Id>>>) -> Builder<Ev> {
    let out = Arc::clone(evicted);
    let builder = Dispatcher::<Ev>::builder()
        .partitions(case.partitions)
        .max_buffered_bytes(case.limit)
        .interval(LONG)
        .policy(case.policy)
        .on_evict(move |e| out.lock().unwrap().push(id(&e)));
    let builder = match case.items {
        Some(n) => builder.max_batch_items(n),
        None => builder,
    };
    let h = Arc::clone(holder);
    match case.hold {
        Hold::Flush { cut } => builder
            .should_flush(move |open| open.items().iter().any(|e| h.marked(e)) && h.hold() && cut),
        Hold::CanAdd => builder.can_add(move |_, next: &Ev| {
            if h.marked(next) {
                h.hold();
            }
            true
        }),
        Hold::Overflow { cut } => {
            builder.will_overflow(move |_, next: &Ev| h.marked(next) && h.hold() && cut)
        }
    }
}

/// How a refused call is described, after checking it handed back `sent`.
fn refusal<E: std::fmt::Debug, T: PartialEq + std::fmt::Debug>(
    err: E,
    back: impl FnOnce(E) -> T,
    sent: &T,
) -> String {
    let what = format!("{err:?}");
    let returned = back(err);
    if &returned == sent {
        format!("refused: {what}")
    } else {
        format!("refused: {what}, HANDING BACK {returned:?} instead of {sent:?}")
    }
}

/// P's calls: its optional first event, then the marked event (or group).
fn run_p(p: &Producer<Ev>, case: &Case, accepted: &mut Vec<Id>) -> String {
    if case.join == Join::Own {
        if let Err(err) = p.try_enqueue(ev(P, 0, W)) {
            return format!("P's first event refused: {err:?}");
        }
        accepted.push((P, 0));
    }
    match case.call {
        Call::Try => {
            let sent = ev(P, 1, W);
            match p.try_enqueue(sent.clone()) {
                Ok(()) => {
                    accepted.push((P, 1));
                    "accepted".into()
                }
                Err(err) => refusal(err, TryEnqueueError::into_inner, &sent),
            }
        }
        Call::Enqueue => {
            let sent = ev(P, 1, W);
            match p.enqueue(sent.clone()) {
                Ok(()) => {
                    accepted.push((P, 1));
                    "accepted".into()
                }
                Err(err) => refusal(err, EnqueueError::into_inner, &sent),
            }
        }
        Call::Group => {
            let sent: Vec<Ev> = (1..=3).map(|seq| ev(P, seq, W)).collect();
            match p.try_enqueue_all(sent.clone()) {
                Ok(()) => {
                    accepted.extend(sent.iter().map(id));
                    "accepted".into()
                }
                Err(err) => refusal(err, TryEnqueueError::into_inner, &sent),
            }
        }
    }
}

/// Probes enqueue on their partitions (from seq 1) until admission reads
/// closed (or 60 ms pass); returns what they got accepted.
fn probe(probes: Vec<(u32, Producer<Ev>)>) -> Vec<Id> {
    let deadline = Instant::now() + Duration::from_millis(60);
    let mut open: Vec<(u32, Producer<Ev>, u32)> =
        probes.into_iter().map(|(h, p)| (h, p, 1)).collect();
    let mut accepted = Vec::new();
    while !open.is_empty() && Instant::now() < deadline && accepted.len() < 50_000 {
        open.retain_mut(|(handle, p, seq)| {
            let e = ev(*handle, *seq, W);
            *seq += 1;
            match p.try_enqueue(e) {
                Ok(()) => {
                    accepted.push((*handle, *seq - 1));
                    true
                }
                Err(TryEnqueueError::Closed(_)) => false,
                Err(_) => true,
            }
        });
    }
    accepted
}

/// Waits for `handle` up to `limit`; `None` if it is still running.
fn join_within<T>(handle: JoinHandle<T>, limit: Duration) -> Option<T> {
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
    Some(handle.join().expect("scenario thread panicked"))
}

/// Where a scenario's batches go, while it runs.
enum Delivery {
    Pull(Vec<JoinHandle<Vec<Id>>>),
    Sink(Arc<Written>),
    #[cfg(feature = "async")]
    AsyncSink {
        written: Arc<Written>,
        driver: tokio::task::JoinHandle<()>,
        _runtime: tokio::runtime::Runtime,
    },
}

/// Runs one held-producer scenario; `Err` describes every broken promise.
fn run_held(case: Case, progress: &Progress) -> Result<(), String> {
    let stage = |what: &str| progress.set(format!("{case:?}: {what}"));
    stage("building");
    let holder = Holder::new(case.mark);
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let builder = configure(&case, &holder, &evicted);
    let quit = Arc::new(AtomicBool::new(false));
    let (dispatcher, pending_batches, mut delivery) = match case.mode {
        Mode::Pull { .. } => {
            let (d, b) = builder.build().unwrap();
            (d, Some(b), None)
        }
        Mode::Sink { workers } => {
            let written = Arc::new(Written::default());
            let out = Arc::clone(&written);
            let d = builder
                .flush_workers(workers)
                .build_with_sink(sink::from_fn(
                    move |batch: &Batch<Ev>, ctx: &FlushContext| {
                        out.record(ctx.worker(), batch.items());
                        Ok::<(), std::io::Error>(())
                    },
                ))
                .unwrap();
            (d, None, Some(Delivery::Sink(written)))
        }
        #[cfg(feature = "async")]
        Mode::AsyncSink { workers } => {
            let written = Arc::new(Written::default());
            let (d, driver) = builder
                .flush_workers(workers)
                .build_with_async_sink(AsyncCounting(Arc::clone(&written)))
                .unwrap();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let driver = runtime.spawn(driver);
            (
                d,
                None,
                Some(Delivery::AsyncSink {
                    written,
                    driver,
                    _runtime: runtime,
                }),
            )
        }
    };
    // Handles take the partitions in turn: probes on every partition but
    // P's, P on the first or the last, then OTHER back on P's.
    let slot = if case.p_last { case.partitions - 1 } else { 0 };
    let mut probes: Vec<(u32, Producer<Ev>)> = Vec::new();
    for _ in 0..slot {
        probes.push((probes.len() as u32 + 1, dispatcher.producer()));
    }
    let p = dispatcher.producer();
    for _ in slot + 1..case.partitions {
        probes.push((probes.len() as u32 + 1, dispatcher.producer()));
    }
    let mut accepted = Vec::new();
    if case.join == Join::Other {
        for _ in 0..slot {
            drop(dispatcher.producer());
        }
        let other = dispatcher.producer();
        other.try_enqueue(ev(OTHER, 0, W)).unwrap();
        accepted.push((OTHER, 0));
    }
    if case.join == Join::Waiter {
        // The whole budget, sealed: P's marked event has to wait for room.
        p.try_enqueue(ev(P, 0, case.limit)).unwrap();
        accepted.push((P, 0));
        dispatcher.flush();
    }
    let start_pull = |batches: Batches<Ev>| match case.mode {
        Mode::Pull { style, receivers } => {
            Delivery::Pull(start_receivers(batches, style, receivers, &quit))
        }
        _ => unreachable!("pull mode only"),
    };
    let mut pending_batches = pending_batches;
    if case.join != Join::Waiter {
        if let Some(b) = pending_batches.take() {
            delivery = Some(start_pull(b));
        }
    }
    // Light enough (at most 4 B an event, 20 000 calls a second) never to
    // fill the 64 KiB the scenarios allow at least, so P finds room.
    let background: Vec<_> = (0..case.background as u32)
        .map(|i| {
            let handle = dispatcher.producer();
            let pause = Some(Duration::from_micros(50));
            thread::spawn(move || stress_producer(1000 + i, handle, u64::from(i), 4, pause))
        })
        .collect();
    stage("P enters its hook");
    let p_case = case;
    let p_thread = thread::spawn(move || {
        let mut p_accepted = Vec::new();
        let outcome = run_p(&p, &p_case, &mut p_accepted);
        (p_accepted, outcome)
    });
    if let Some(b) = pending_batches.take() {
        // P is waiting for room: the receivers' first delivery lets it in.
        thread::sleep(Duration::from_millis(20));
        delivery = Some(start_pull(b));
    }
    let delivery = delivery.expect("a delivery was started");
    if !holder.entered.opened_within(Duration::from_secs(2)) {
        holder.release.open();
        let (_, outcome) = p_thread.join().unwrap();
        drop(dispatcher);
        return Err(format!(
            "SETUP: P never reached its hook (P: {outcome}); the scenario is wrong"
        ));
    }
    // A batch waiting in every other partition: the end seals it and
    // tells the receivers, who take it and look again while P is held.
    for (handle, probe) in &probes {
        if probe.try_enqueue(ev(*handle, 0, W)).is_ok() {
            accepted.push((*handle, 0));
        }
    }
    stage("ending while P is held");
    let mut dispatcher = Some(dispatcher);
    let closer = if case.end == End::ReceiversGone {
        quit.store(true, SeqCst);
        None
    } else {
        let d = dispatcher.take().unwrap();
        let end = case.end;
        Some(thread::spawn(move || end_with(d, end, DEADLINE)))
    };
    stage("probes enqueue until admission reads closed");
    let probing = thread::spawn(move || probe(probes));
    let deadline = Instant::now() + Duration::from_millis(200);
    while !probing.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(LOOK_AGAIN);
    stage("P released");
    holder.release.open();
    let (p_accepted, p_outcome) = p_thread.join().unwrap();
    accepted.extend(p_accepted);
    accepted.extend(probing.join().unwrap());
    for t in background {
        let (ids, refused) = t.join().expect("a background producer panicked");
        accepted.extend(ids);
        if !refused.is_empty() {
            return Err(format!("background refusals: {}", sample(&refused)));
        }
    }
    let mut problems = Vec::new();
    let mut fates = Fates::default();
    stage("streams end");
    let mut ending = closer.map(|c| c.join().expect("the closer panicked"));
    match delivery {
        Delivery::Pull(receivers) => {
            for (i, r) in receivers.into_iter().enumerate() {
                fates.streams.push((
                    format!("receiver {i}"),
                    r.join().expect("a receiver panicked"),
                ));
            }
        }
        Delivery::Sink(written) => {
            if !is_shutdown(case.end) {
                let want = accepted.len();
                let got_all = Instant::now() + DEADLINE;
                while written.total() + ending.as_ref().map_or(0, |e| e.returned.len()) < want
                    && Instant::now() < got_all
                {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            fates.streams = written.streams();
        }
        #[cfg(feature = "async")]
        Delivery::AsyncSink {
            written,
            driver,
            _runtime,
        } => {
            if join_within_task(&driver, DEADLINE) {
                fates.streams = written.streams();
            } else {
                fates.streams = written.streams();
                problems.push(format!(
                    "the sink driver did not complete within {DEADLINE:?} of the end"
                ));
            }
        }
    }
    if let Some(d) = dispatcher.take() {
        // Every receiver is gone: shutdown hands back what they left.
        ending = Some(end_with(d, End::Shutdown, Duration::from_millis(50)));
    }
    let ending = ending.unwrap_or_default();
    fates.evicted = evicted.lock().unwrap().clone();
    fates.returned = ending.returned.clone();
    if let Err(broken) = verify(&accepted, &fates) {
        problems.push(broken);
    }
    if is_shutdown(case.end) && ending.timed_out {
        problems.push(format!(
            "shutdown({DEADLINE:?}) TIMED OUT although the stream's consumers were alive \
             and P was let go within ~0.2 s: the consumers stopped early"
        ));
    }
    if let Some(report) = ending.report {
        let stats = report.stats;
        if stats.accepted != accepted.len() as u64 {
            problems.push(format!(
                "stats.accepted {} but the producers got Ok for {}",
                stats.accepted,
                accepted.len()
            ));
        }
        if stats.delivered != fates.delivered() as u64 {
            problems.push(format!(
                "stats.delivered {} but the consumers got {}",
                stats.delivered,
                fates.delivered()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("P {p_outcome}; {}", problems.join("; ")))
    }
}

#[cfg(feature = "async")]
fn join_within_task(task: &tokio::task::JoinHandle<()>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !task.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Runs every case under one watchdog; fails listing each broken case.
fn run_cases(name: &str, cases: Vec<Case>) {
    run_cases_within(name, cases, Duration::MAX);
}

/// As [`run_cases`], starting no case once `budget` has passed.
fn run_cases_within(name: &str, cases: Vec<Case>, budget: Duration) {
    let started = Instant::now();
    let (total, failures) = watchdog(name, move |progress| {
        let mut failures = Vec::new();
        let mut total = 0;
        for case in cases {
            if started.elapsed() > budget {
                break;
            }
            total += 1;
            if let Err(broken) = run_held(case, &progress) {
                failures.push(format!("{case:?}\n    -> {broken}"));
            }
        }
        (total, failures)
    });
    println!("{name}: {total} scenario(s) run");
    assert!(
        failures.is_empty(),
        "{} of {total} scenario(s) broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Contract: a receiver's stream (iteration over `&Batches`) ends only once
/// every accepted event was handed to it, whichever way the dispatcher
/// ends (drop, `shutdown`, `stop` handing back the rest): P's event opens a
/// batch while P is held in `should_flush`, across 1, 2, 4 and 8
/// partitions, with and without leases (64 KiB and 8 MiB limits).
#[test]
fn a_held_first_event_is_never_lost_whatever_ends_the_stream() {
    let ends = with_async_end(vec![End::Drop, End::Shutdown, End::Stop]);
    let mut cases = Vec::new();
    for partitions in [1, 2, 4, 8] {
        for limit in [64 << 10, 8 * MIB] {
            for &end in &ends {
                for p_last in [true, false] {
                    if p_last || partitions > 1 {
                        cases.push(Case {
                            partitions,
                            limit,
                            end,
                            p_last,
                            ..BASE
                        });
                    }
                }
            }
        }
    }
    run_cases("held first event", cases);
}

/// Contract: the stream ends only after every accepted event, also when
/// P's held event joins a batch already open in its partition (its own
/// earlier event, or another handle's), held in each hook: `should_flush`
/// (cutting or not), `can_add`, `will_overflow` (cutting the open batch
/// first or not).
#[test]
fn a_held_event_joining_an_open_batch_is_never_lost() {
    let holds = [
        Hold::Flush { cut: false },
        Hold::Flush { cut: true },
        Hold::CanAdd,
        Hold::Overflow { cut: false },
        Hold::Overflow { cut: true },
    ];
    let ends = [End::Drop, End::Stop, End::Shutdown];
    let mut cases = Vec::new();
    for join in [Join::Own, Join::Other] {
        for hold in holds {
            for partitions in [1, 3] {
                cases.push(Case {
                    partitions,
                    hold,
                    join,
                    end: ends[cases.len() % ends.len()],
                    ..BASE
                });
            }
        }
    }
    // `can_add` and a cutting `should_flush` on an event that opens a batch.
    for (i, hold) in [Hold::CanAdd, Hold::Flush { cut: true }]
        .into_iter()
        .enumerate()
    {
        for partitions in [2, 4] {
            cases.push(Case {
                partitions,
                hold,
                limit: if i == 0 { 64 << 10 } else { 8 * MIB },
                end: ends[cases.len() % ends.len()],
                ..BASE
            });
        }
    }
    run_cases("held event joining a batch", cases);
}

/// Contract: under every policy (Reject, Block, DropOldest: evictions are
/// a fate too) and through `try_enqueue`, `enqueue` and `try_enqueue_all`
/// (held on the group's first or last event), an event accepted while the
/// dispatcher ends is delivered exactly once or handed back; a group is
/// all or nothing.
#[test]
fn a_held_event_is_never_lost_under_any_policy_or_call() {
    let policies = [
        Policy::Reject,
        Policy::Block {
            timeout: Duration::from_secs(1),
        },
        Policy::DropOldest,
    ];
    let calls = [
        (Call::Try, 1),
        (Call::Enqueue, 1),
        (Call::Group, 1),
        (Call::Group, 3),
    ];
    let ends = [End::Drop, End::Shutdown, End::Stop];
    let mut cases = Vec::new();
    for policy in policies {
        for (call, mark) in calls {
            for limit in [64 << 10, 8 * MIB] {
                let n = cases.len();
                cases.push(Case {
                    partitions: if n % 2 == 0 { 2 } else { 4 },
                    limit,
                    policy,
                    call,
                    mark,
                    hold: if n % 4 < 2 {
                        Hold::Flush { cut: false }
                    } else {
                        Hold::CanAdd
                    },
                    end: ends[n % ends.len()],
                    ..BASE
                });
            }
        }
    }
    // Groups spanning batches (one or two events a batch), held on their
    // first, middle or last event, ending by drop or stop.
    for (items, hold, mark) in [
        (2, Hold::Flush { cut: false }, 1),
        (2, Hold::Flush { cut: true }, 3),
        (2, Hold::Overflow { cut: true }, 2),
        (2, Hold::CanAdd, 3),
        (1, Hold::CanAdd, 2),
    ] {
        for end in [End::Drop, End::Stop] {
            cases.push(Case {
                call: Call::Group,
                items: Some(items),
                hold,
                mark,
                end,
                partitions: 3,
                ..BASE
            });
        }
    }
    run_cases("held event under each policy", cases);
}

/// Contract: `recv` answers `RecvError`, `recv_timeout` and `try_recv`
/// answer `Disconnected`, and iteration ends, only once every accepted
/// event was handed over, with one receiver or three taking at once: none
/// of them may be told "over" while P's accepted event is still inside its
/// admission.
#[test]
fn every_kind_of_receive_loop_and_several_receivers_see_the_held_event() {
    let mut cases = Vec::new();
    for style in [Style::Iter, Style::Recv, Style::Timeout, Style::Try] {
        for receivers in [1, 3] {
            for partitions in [2, 5] {
                for end in [End::Drop, End::Shutdown] {
                    cases.push(Case {
                        partitions,
                        mode: Mode::Pull { style, receivers },
                        end,
                        limit: if cases.len() / 2 % 2 == 0 {
                            64 << 10
                        } else {
                            8 * MIB
                        },
                        ..BASE
                    });
                }
            }
        }
    }
    run_cases("receive loops", cases);
}

/// Contract: when the last receiver goes away, admission closes and the
/// events nobody took stay for `shutdown` to hand back: P's event, accepted
/// while the receivers left, is handed back by shutdown's error (or was
/// delivered), never lost.
#[test]
fn the_last_receiver_leaving_while_a_producer_is_held_loses_nothing() {
    let mut cases = Vec::new();
    for style in [Style::Timeout, Style::Try] {
        for receivers in [1, 2] {
            for partitions in [1, 2, 4] {
                let n = cases.len();
                cases.push(Case {
                    partitions,
                    mode: Mode::Pull { style, receivers },
                    end: End::ReceiversGone,
                    limit: limit_for(n),
                    hold: if n % 3 == 0 {
                        Hold::CanAdd
                    } else {
                        Hold::Flush { cut: false }
                    },
                    ..BASE
                });
            }
        }
    }
    run_cases("last receiver leaving", cases);
}

/// Contract: a producer waiting for room (Block) that a delivery lets in
/// has an accepted event like any other: held in `should_flush` right after
/// that delivery admitted it, while the dispatcher ends, it is delivered
/// or handed back, never lost (without and with leases).
#[test]
fn a_waiter_let_in_by_a_delivery_and_held_is_never_lost() {
    let mut cases = Vec::new();
    for partitions in [1, 2, 4] {
        for limit in [64, MIB] {
            for end in [End::Drop, End::Shutdown, End::Stop] {
                cases.push(Case {
                    partitions,
                    limit,
                    policy: Policy::Block {
                        timeout: Duration::from_secs(5),
                    },
                    join: Join::Waiter,
                    call: Call::Enqueue,
                    end,
                    ..BASE
                });
            }
        }
    }
    run_cases("woken waiter held", cases);
}

/// Contract: in sink mode the flush workers stop only once every accepted
/// event was written: P's event, held in admission while the dispatcher
/// is shut down (which must then succeed well within its deadline),
/// dropped, or stopped (the rest handed back), reaches the counting sink
/// exactly once, with one and three workers.
#[test]
fn sink_workers_stop_only_after_the_held_event_is_written() {
    let mut cases = Vec::new();
    for workers in [1, 3] {
        for partitions in [1, 2, 4] {
            for end in [End::Shutdown, End::Drop, End::Stop] {
                let n = cases.len();
                cases.push(Case {
                    partitions,
                    mode: Mode::Sink { workers },
                    end,
                    limit: limit_for(n),
                    hold: if n % 4 == 3 {
                        Hold::CanAdd
                    } else {
                        Hold::Flush { cut: false }
                    },
                    ..BASE
                });
            }
        }
    }
    run_cases("sink workers", cases);
}

#[cfg(feature = "async")]
mod async_streams {
    use super::*;

    /// Contract: the async batch stream ends only once every accepted event
    /// was handed over (or handed back by `stop`), with one or two streams,
    /// whichever way the dispatcher ends (drop, `shutdown`,
    /// `shutdown_async`, `stop`).
    #[test]
    fn the_async_stream_ends_only_after_the_held_event() {
        let mut cases = Vec::new();
        for partitions in [1, 2, 4] {
            for end in [End::Drop, End::Shutdown, End::ShutdownAsync, End::Stop] {
                for receivers in [1, 2] {
                    let n = cases.len();
                    cases.push(Case {
                        partitions,
                        mode: Mode::Pull {
                            style: Style::Stream,
                            receivers,
                        },
                        end,
                        limit: limit_for(n),
                        join: if n % 3 == 2 { Join::Own } else { Join::Alone },
                        ..BASE
                    });
                }
            }
        }
        run_cases("async stream", cases);
    }

    /// Contract: an async sink's driver "completes once the dispatcher is
    /// closed and every batch is written": it must not complete while P's
    /// accepted event is still inside its admission, and that event must
    /// be written exactly once.
    #[test]
    fn the_async_sink_driver_completes_only_after_the_held_event_is_written() {
        let mut cases = Vec::new();
        for workers in [1, 2] {
            for partitions in [2, 4] {
                for end in [End::Drop, End::Shutdown, End::ShutdownAsync] {
                    let n = cases.len();
                    cases.push(Case {
                        partitions,
                        mode: Mode::AsyncSink { workers },
                        end,
                        limit: limit_for(n),
                        ..BASE
                    });
                }
            }
        }
        run_cases("async sink driver", cases);
    }
}

/// Where the randomized tests' seeds start: `STREAM_END_SEED`, or 0.
fn seed_base() -> u64 {
    std::env::var("STREAM_END_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A held-producer scenario drawn at random over every dimension above,
/// with 0-3 producers making random calls meanwhile.
fn draw_case(seed: u64) -> Case {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pick = |rng: &mut fastrand::Rng, n: usize| rng.usize(0..n);
    let join = [Join::Alone, Join::Own, Join::Other][pick(&mut rng, 3)];
    let (call, mark) = match pick(&mut rng, 4) {
        0 => (Call::Try, 1),
        1 => (Call::Enqueue, 1),
        _ => (Call::Group, rng.u32(1..=3)),
    };
    let joins_a_batch = join != Join::Alone || mark > 1;
    let hold = match pick(&mut rng, 5) {
        0 => Hold::Flush { cut: false },
        1 => Hold::Flush { cut: true },
        2 => Hold::CanAdd,
        _ if joins_a_batch => Hold::Overflow { cut: rng.bool() },
        _ => Hold::CanAdd,
    };
    let mode = match pick(&mut rng, 10) {
        0..=6 => Mode::Pull {
            style: [Style::Iter, Style::Recv, Style::Timeout, Style::Try][pick(&mut rng, 4)],
            receivers: rng.usize(1..=3),
        },
        #[cfg(feature = "async")]
        7 => Mode::AsyncSink {
            workers: rng.usize(1..=2),
        },
        _ => Mode::Sink {
            workers: rng.usize(1..=3),
        },
    };
    let mut ends = vec![End::Drop, End::Shutdown];
    match mode {
        Mode::Pull { style, .. } => {
            ends.push(End::Stop);
            if matches!(style, Style::Timeout | Style::Try) {
                ends.push(End::ReceiversGone);
            }
        }
        Mode::Sink { .. } => ends.push(End::Stop),
        #[cfg(feature = "async")]
        Mode::AsyncSink { .. } => {}
    }
    let ends = with_async_end(ends);
    Case {
        partitions: rng.usize(1..=6),
        limit: [64 << 10, MIB, 8 * MIB][pick(&mut rng, 3)],
        policy: match pick(&mut rng, 3) {
            0 => Policy::Reject,
            1 => Policy::Block {
                timeout: Duration::from_secs(1),
            },
            _ => Policy::DropOldest,
        },
        hold,
        join,
        call,
        mark,
        p_last: rng.u8(0..4) != 0,
        // A batch-size cut can come before `should_flush` or
        // `will_overflow` is asked; `can_add` is asked in any case.
        items: (hold == Hold::CanAdd && rng.bool()).then(|| rng.usize(1..=3)),
        background: rng.usize(0..=3),
        mode,
        end: ends[pick(&mut rng, ends.len())],
    }
}

/// Contract, over random combinations of everything the scenarios above
/// vary (partitions, limits with and without leases, policy, hook, the
/// batch P joins, the call, receivers or sink, the end) and with other
/// producers enqueueing meanwhile, some of them blocked behind P's lock:
/// every accepted event is delivered, evicted or handed back exactly once,
/// in each handle's order, and every stream ends.
#[test]
fn randomized_held_scenarios_under_background_load() {
    let base = seed_base();
    let cases = (base..base + 60).map(draw_case).collect();
    run_cases_within("randomized held scenarios", cases, Duration::from_secs(3));
}

// ---------------------------------------------------------------------
// Randomized stress
// ---------------------------------------------------------------------

/// One producer thread of the stress: random calls until admission is
/// closed (or 1 s). Returns the accepted ids, in acceptance order, and
/// any refusal that did not hand back what was sent.
fn stress_producer(
    handle: u32,
    p: Producer<Ev>,
    seed: u64,
    max_weight: usize,
    pause: Option<Duration>,
) -> (Vec<Id>, Vec<String>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut accepted = Vec::new();
    let mut problems = Vec::new();
    let mut seq = 0u32;
    let cap = Instant::now() + Duration::from_secs(1);
    let mut next = |rng: &mut fastrand::Rng| {
        seq += 1;
        ev(handle, seq, rng.usize(1..=max_weight))
    };
    let mut ops = 0u32;
    loop {
        ops += 1;
        if ops % 64 == 0 {
            if Instant::now() > cap {
                break;
            }
            thread::yield_now();
        }
        let closed = match rng.u8(0..10) {
            0..=4 => {
                let e = next(&mut rng);
                let sent = e.clone();
                match p.try_enqueue(e) {
                    Ok(()) => {
                        accepted.push(id(&sent));
                        false
                    }
                    Err(err) => {
                        let closed = matches!(err, TryEnqueueError::Closed(_));
                        if err.into_inner() != sent {
                            problems.push(format!("{sent:?} handed back as something else"));
                        }
                        closed
                    }
                }
            }
            5..=7 => {
                let e = next(&mut rng);
                let sent = e.clone();
                match p.enqueue(e) {
                    Ok(()) => {
                        accepted.push(id(&sent));
                        false
                    }
                    Err(err) => {
                        let closed = matches!(err, EnqueueError::Closed(_));
                        if err.into_inner() != sent {
                            problems.push(format!("{sent:?} handed back as something else"));
                        }
                        closed
                    }
                }
            }
            _ => {
                let n = rng.usize(2..=4);
                let group: Vec<Ev> = (0..n).map(|_| next(&mut rng)).collect();
                let sent = group.clone();
                match p.try_enqueue_all(group) {
                    Ok(()) => {
                        accepted.extend(sent.iter().map(id));
                        false
                    }
                    Err(err) => {
                        let closed = matches!(err, TryEnqueueError::Closed(_));
                        if err.into_inner() != sent {
                            problems.push(format!("group {sent:?} handed back changed"));
                        }
                        closed
                    }
                }
            }
        };
        if closed {
            break;
        }
        if let Some(pause) = pause {
            thread::sleep(pause);
        }
    }
    (accepted, problems)
}

/// One randomized round; `Ok` carries a one-line summary.
fn stress_round(seed: u64, progress: &Progress) -> Result<String, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let partitions = [1, 2, 3, 4, 8][rng.usize(0..5)];
    let limit = [512, 16 << 10, MIB, 4 * MIB][rng.usize(0..4)];
    let policy = match rng.u8(0..3) {
        0 => Policy::Reject,
        1 => Policy::Block {
            timeout: Duration::from_micros(rng.u64(500..=3000)),
        },
        _ => Policy::DropOldest,
    };
    let items = rng.bool().then(|| rng.usize(1..=24));
    let interval = Duration::from_micros(rng.u64(500..=5000));
    let flush_hook = (rng.u8(0..4) != 0).then(|| rng.usize(2..=20));
    let filter = rng.u8(0..4) == 0;
    let ends = with_async_end(vec![
        End::Drop,
        End::Shutdown,
        End::Stop,
        End::ReceiversGone,
    ]);
    let end = ends[rng.usize(0..ends.len())];
    let mut styles = vec![Style::Timeout, Style::Try];
    if end != End::ReceiversGone {
        styles.push(Style::Iter);
        styles.push(Style::Recv);
        #[cfg(feature = "async")]
        styles.push(Style::Stream);
    }
    let receivers: Vec<Style> = (0..rng.usize(1..=3))
        .map(|_| styles[rng.usize(0..styles.len())])
        .collect();
    let producers = rng.usize(1..=6);
    let run_for = Duration::from_millis(rng.u64(3..=25));
    let max_weight = (limit / 32).clamp(1, 2048);
    let plan = format!(
        "seed {seed}: {partitions} partition(s), limit {limit}, {policy:?}, items {items:?}, \
         interval {interval:?}, flush hook {flush_hook:?}, filter {filter}, {producers} \
         producers, receivers {receivers:?}, end {end:?} after {run_for:?}"
    );
    progress.set(plan.clone());

    let evicted = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&evicted);
    let mut builder = Dispatcher::<Ev>::builder()
        .partitions(partitions)
        .max_buffered_bytes(limit)
        .interval(interval)
        .policy(policy)
        .on_evict(move |e| out.lock().unwrap().push(id(&e)));
    if let Some(n) = items {
        builder = builder.max_batch_items(n);
    }
    if let Some(cut_at) = flush_hook {
        // Now and then a producer lingers inside its admission, under
        // its partition's lock, widening every window around it.
        let calls = std::sync::atomic::AtomicUsize::new(0);
        builder = builder.should_flush(move |open| {
            let n = calls.fetch_add(1, SeqCst);
            if open.len() == 1 && n % 4 == 0 {
                // The event that opened the batch: the receivers do not
                // know of it until its producer lets go.
                thread::sleep(Duration::from_micros(200));
            } else if n % 8 == 0 {
                thread::yield_now();
            }
            open.len() >= cut_at
        });
    }
    if filter {
        builder = builder.can_add(|_, e: &Ev| e.seq % 97 != 13);
    }
    let (dispatcher, batches) = builder.build().unwrap();
    let quit = Arc::new(AtomicBool::new(false));
    let mut all = vec![batches];
    while all.len() < receivers.len() {
        let clone = all[0].clone();
        all.push(clone);
    }
    let receiver_threads: Vec<JoinHandle<Vec<Id>>> = all
        .into_iter()
        .zip(receivers.iter().copied())
        .map(|(b, style)| {
            let quit = Arc::clone(&quit);
            thread::spawn(move || receive(b, style, &quit))
        })
        .collect();
    let producer_threads: Vec<_> = (0..producers as u32)
        .map(|h| {
            let p = dispatcher.producer();
            let s = seed.wrapping_mul(1000).wrapping_add(u64::from(h));
            thread::spawn(move || stress_producer(h, p, s, max_weight, None))
        })
        .collect();
    thread::sleep(run_for);
    progress.set(format!("{plan}: ending"));
    let mut dispatcher = Some(dispatcher);
    let mut ending = if end == End::ReceiversGone {
        quit.store(true, SeqCst);
        None
    } else {
        dispatcher
            .take()
            .map(|d| end_with(d, end, Duration::from_secs(5)))
    };
    let mut problems = Vec::new();
    let mut accepted = Vec::new();
    progress.set(format!("{plan}: producers see the end"));
    for t in producer_threads {
        let (ids, refused) = t.join().expect("a producer panicked");
        accepted.extend(ids);
        problems.extend(refused);
    }
    progress.set(format!("{plan}: streams end"));
    let mut fates = Fates::default();
    for (i, t) in receiver_threads.into_iter().enumerate() {
        match join_within(t, Duration::from_secs(5)) {
            Some(ids) => fates.streams.push((format!("receiver {i}"), ids)),
            None => {
                return Err(format!(
                    "{plan}: receiver {i}'s stream did not end within 5 s of the end"
                ));
            }
        }
    }
    if let Some(d) = dispatcher.take() {
        // Every receiver is gone: shutdown hands back what they left.
        ending = Some(end_with(d, End::Shutdown, Duration::from_millis(100)));
    }
    let ending = ending.unwrap_or_default();
    fates.evicted = evicted.lock().unwrap().clone();
    fates.returned = ending.returned.clone();
    if let Err(broken) = verify(&accepted, &fates) {
        problems.push(broken);
    }
    if is_shutdown(end) && ending.timed_out {
        problems.push("shutdown(5 s) TIMED OUT with live receivers".into());
    }
    if let Some(report) = ending.report {
        let s = report.stats;
        let ours = (
            accepted.len() as u64,
            fates.delivered() as u64,
            fates.evicted.len() as u64,
            fates.returned.len() as u64,
        );
        if (s.accepted, s.delivered, s.dropped, s.returned) != ours {
            problems.push(format!(
                "final stats (accepted, delivered, dropped, returned) = {:?}, counted {ours:?}",
                (s.accepted, s.delivered, s.dropped, s.returned)
            ));
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{plan}: {} accepted, {} delivered, {} evicted, {} returned",
            accepted.len(),
            fates.delivered(),
            fates.evicted.len(),
            fates.returned.len()
        ))
    } else {
        Err(format!("{plan}\n    -> {}", problems.join("; ")))
    }
}

/// Contract, under randomized load (2-6 producer threads with a handle
/// each, random `try_enqueue` / `enqueue` / `try_enqueue_all` calls, 1-8
/// partitions, limits from 512 B to 4 MiB, every policy, cutting and
/// filtering hooks, 1-3 receivers of mixed kinds, and a random end):
/// every accepted event is delivered, evicted or handed back exactly once,
/// each receiver sees each handle's events in acceptance order, every
/// stream ends, and shutdown's final counters agree with what the
/// producers and receivers saw.
#[test]
fn randomized_ends_deliver_every_accepted_event_exactly_once_in_order() {
    let (summaries, failures) = watchdog("randomized stress", |progress| {
        let started = Instant::now();
        let mut summaries = Vec::new();
        let mut failures = Vec::new();
        let base = seed_base();
        for seed in base..base + 40 {
            if started.elapsed() > Duration::from_secs(4) {
                break;
            }
            match stress_round(seed, &progress) {
                Ok(summary) => summaries.push(summary),
                Err(broken) => failures.push(broken),
            }
        }
        (summaries, failures)
    });
    let rounds = summaries.len() + failures.len();
    println!("randomized stress: {rounds} round(s) run");
    assert!(rounds >= 10, "only {rounds} rounds ran");
    assert!(
        failures.is_empty(),
        "{} of {rounds} round(s) broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
