//! Pull delivery: your own consumer threads receive batches.
//!
//! Four producers enqueue readings; two consumer threads take batches and
//! "upload" them; shutdown drains everything accepted.
//!
//! Run with `cargo run -p dispatcher --example pull`.

use std::thread;
use std::time::Duration;

use dispatcher::{Dispatcher, Policy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dispatcher, batches) = Dispatcher::<String>::builder()
        .interval(Duration::from_millis(20))
        .max_batch_bytes(16 * 1024)
        .max_buffered_bytes(1024 * 1024)
        .policy(Policy::Block {
            timeout: Duration::from_secs(1),
        })
        .build()?;

    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let batches = batches.clone();
            thread::spawn(move || {
                let mut events = 0;
                for batch in &batches {
                    // Upload `batch` here; its buffer is reused when it drops.
                    events += batch.len();
                }
                events
            })
        })
        .collect();
    drop(batches);

    let producers: Vec<_> = (0..4)
        .map(|p| {
            let producer = dispatcher.producer();
            thread::spawn(move || {
                for i in 0..10_000 {
                    producer
                        .enqueue(format!("{{\"sensor\":{p},\"seq\":{i}}}"))
                        .expect("room within a second");
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("producer");
    }

    let report = dispatcher.shutdown(Duration::from_secs(5))?;
    let received: usize = consumers
        .into_iter()
        .map(|c| c.join().expect("consumer"))
        .sum();
    println!(
        "delivered {} events in {} batches (mean {:.0} bytes), consumers saw {received}",
        report.delivered_total,
        report.stats.batches,
        report.stats.delivered_bytes as f64 / report.stats.batches.max(1) as f64,
    );
    assert_eq!(received as u64, report.delivered_total);
    Ok(())
}
