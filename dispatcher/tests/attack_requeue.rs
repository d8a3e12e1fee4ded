//! Attack: a sink batch dropped unsettled (async driver dropped mid-write)
//! goes back to the head of its partition's queue and is returned exactly
//! once, oldest first (contracts 1 and 2). Needs `--features async`.

#![cfg(feature = "async")]
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatcher::nonblocking::AsyncSink;
use dispatcher::sink::{FlushContext, SinkError};
use dispatcher::{Batch, Dispatcher, Weight};

#[derive(Debug, Clone, PartialEq, Eq)]
struct E {
    p: usize,
    seq: u64,
}
impl Weight for E {
    fn weight(&self) -> usize {
        4
    }
}

/// Writes the first `ok` calls, then hangs forever.
struct HangAfter {
    calls: AtomicUsize,
    ok: usize,
    written: Arc<Mutex<Vec<E>>>,
}

impl AsyncSink<E> for HangAfter {
    async fn write(&self, batch: &Batch<E>, _ctx: &FlushContext) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n >= self.ok {
            std::future::pending::<()>().await;
        }
        self.written.lock().unwrap().extend(batch.iter().cloned());
        Ok(())
    }
}

#[test]
fn dropped_driver_requeues_batch_at_head_and_it_is_returned_once() {
    for (use_stop, workers, ok) in [(true, 1, 0), (false, 1, 0), (true, 2, 1), (false, 3, 2)] {
        let written = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let f2 = Arc::clone(&failed);
        let (d, driver) = Dispatcher::<E>::builder()
            .partitions(3)
            .interval(Duration::from_secs(3600))
            .max_batch_items(3)
            .flush_workers(workers)
            .on_flush_error(move |_f, b: Batch<E>| f2.lock().unwrap().extend(b.iter().cloned()))
            .build_with_async_sink(HangAfter {
                calls: AtomicUsize::new(0),
                ok,
                written: Arc::clone(&written),
            })
            .unwrap();
        let hs: Vec<_> = (0..3).map(|_| d.producer()).collect();
        let mut seqs = [0u64; 3];
        for i in 0..40usize {
            let p = (i * 5 + i / 3) % 3;
            hs[p].try_enqueue(E { p, seq: seqs[p] }).unwrap();
            seqs[p] += 1;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Poll the driver for a while, then drop it mid-write.
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(100), driver).await;
        });
        let inflight_before = d.stats().in_flight_items;
        let (v, stats) = if use_stop {
            (d.stop().into_vec(), None)
        } else {
            let t = d.shutdown(Duration::from_millis(20)).unwrap_err();
            assert_eq!(t.undelivered.len() as u64, t.report.stats.returned);
            (t.undelivered.into_vec(), Some(t.report.stats))
        };
        std::thread::sleep(Duration::from_millis(50));
        let w = written.lock().unwrap().clone();
        let f = failed.lock().unwrap().clone();
        let ctx = format!(
            "stop={use_stop} workers={workers} ok={ok}: in_flight before {inflight_before}; written {} failed {} returned {}; stats {stats:?}",
            w.len(),
            f.len(),
            v.len()
        );
        eprintln!("{ctx}");
        assert_eq!(
            inflight_before, 0,
            "{ctx}: dropped driver left batches in flight"
        );
        if let Some(s) = stats {
            assert_eq!(s.in_flight_items, 0, "{ctx}");
        }
        for (p, &sent) in seqs.iter().enumerate().take(3) {
            let mut all: Vec<u64> = w
                .iter()
                .chain(&f)
                .chain(&v)
                .filter(|x| x.p == p)
                .map(|x| x.seq)
                .collect();
            let got_v: Vec<u64> = v.iter().filter(|x| x.p == p).map(|x| x.seq).collect();
            assert!(
                got_v.windows(2).all(|x| x[0] < x[1]),
                "{ctx}: partition {p} not oldest first: {got_v:?}"
            );
            all.sort();
            assert_eq!(
                all,
                (0..sent).collect::<Vec<_>>(),
                "{ctx}: partition {p} lost/dup"
            );
        }
        assert!(
            f.is_empty(),
            "{ctx}: requeued batch went to the hook although stop/shutdown could return it"
        );
    }
}
