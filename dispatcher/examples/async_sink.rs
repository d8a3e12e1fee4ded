//! Async delivery: tasks enqueue with `enqueue(..).await` (waiting for room
//! without blocking the runtime), an async sink writes batches, and the
//! sink's driver runs on the same runtime — here a current-thread one, the
//! case where a blocking shutdown would starve the sink.
//!
//! Run with `cargo run -p dispatcher --features async --example async_sink`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dispatcher::nonblocking::AsyncSink;
use dispatcher::sink::{FlushContext, SinkError};
use dispatcher::{Batch, Dispatcher, Policy};

/// Pretends to upload each batch: one round trip of 2 ms.
struct Upload {
    requests: AtomicUsize,
    events: AtomicUsize,
}

impl AsyncSink<Vec<u8>, &'static str> for Upload {
    async fn write(
        &self,
        batch: &Batch<Vec<u8>>,
        ctx: &FlushContext<&'static str>,
    ) -> Result<(), SinkError> {
        // A real sink would await an HTTP or broker client here, e.g.
        // client.post(*ctx.metadata()).body(encode(batch)).send().await?;
        let _endpoint = ctx.metadata();
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sink = std::sync::Arc::new(Upload {
            requests: AtomicUsize::new(0),
            events: AtomicUsize::new(0),
        });
        let (dispatcher, driver) = Dispatcher::<Vec<u8>>::builder()
            .max_batch_bytes(32 * 1024)
            .max_buffered_bytes(256 * 1024)
            .flush_workers(4)
            .policy(Policy::Block {
                timeout: Duration::from_secs(5),
            })
            .build_with_async_sink_meta(
                "https://collector.invalid/v1/events",
                std::sync::Arc::clone(&sink),
            )?;
        let driver = tokio::spawn(driver);

        let tasks: Vec<_> = (0..8u8)
            .map(|task| {
                let producer = dispatcher.async_producer();
                tokio::spawn(async move {
                    for i in 0..5_000u32 {
                        let mut event = vec![task; 100];
                        event.extend_from_slice(&i.to_le_bytes());
                        producer
                            .enqueue(event)
                            .await
                            .expect("room within five seconds");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        let report = dispatcher.shutdown_async(Duration::from_secs(10)).await?;
        driver.await?;
        println!(
            "{} events in {} requests, peak buffered {} KiB",
            report.delivered_total,
            sink.requests.load(Ordering::Relaxed),
            report.stats.peak_buffered_bytes / 1024,
        );
        assert_eq!(report.delivered_total, 40_000);
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
