//! Push delivery to a realistic sink: every batch is appended to a file as
//! newline-delimited JSON and made durable with `fsync` before the
//! dispatcher counts it delivered. A failed write is rolled back (the file
//! is cut back to its length before the batch), so a retry does not leave
//! half a batch behind; batches that fail every attempt go to a dead-letter
//! hook.
//!
//! Run with `cargo run -p dispatcher --example ndjson_sink`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use dispatcher::sink::{FlushContext, Retry, Sink, SinkError};
use dispatcher::{Batch, Dispatcher, Policy, Weight};
use serde::Serialize;

/// One event: a sensor reading.
#[derive(Debug, Serialize)]
struct Reading {
    sensor: u32,
    seq: u64,
    celsius: f64,
}

impl Weight for Reading {
    fn weight(&self) -> usize {
        std::mem::size_of::<Reading>()
    }
}

/// Appends batches to one file as NDJSON, durably.
struct NdjsonFile {
    file: Mutex<File>,
}

impl NdjsonFile {
    fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(NdjsonFile {
            file: Mutex::new(file),
        })
    }

    fn append(file: &File, batch: &Batch<Reading>) -> Result<(), SinkError> {
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        for reading in batch.iter() {
            serde_json::to_writer(&mut out, reading)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        // Durable before we say so: the dispatcher frees the batch on Ok.
        file.sync_data()?;
        Ok(())
    }
}

impl Sink<Reading, PathBuf> for NdjsonFile {
    fn write(&self, batch: &Batch<Reading>, ctx: &FlushContext<PathBuf>) -> Result<(), SinkError> {
        let file = self.file.lock().map_err(|_| "file lock poisoned")?;
        let before = file.metadata()?.len();
        Self::append(&file, batch).inspect_err(|err| {
            // Roll back a partial batch so the retry writes it once.
            let _ = file.set_len(before);
            eprintln!(
                "{}: attempt {} failed: {err}",
                ctx.metadata().display(),
                ctx.attempt()
            );
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("metronome-ndjson-{}.ndjson", std::process::id()));
    let dispatcher = Dispatcher::<Reading>::builder()
        .interval(Duration::from_millis(50))
        .max_batch_bytes(64 * 1024)
        .max_buffered_bytes(4 * 1024 * 1024)
        .policy(Policy::Block {
            timeout: Duration::from_secs(2),
        })
        .flush_timeout(Duration::from_secs(5))
        .retry(Retry::new(
            4,
            Duration::from_millis(20),
            Duration::from_secs(1),
        ))
        .on_flush_error(|failure, batch| {
            // Dead-letter route: here, just say what was lost and why.
            eprintln!(
                "dead letter: {} readings after {} attempts: {}",
                batch.len(),
                failure.attempts,
                failure.error
            );
        })
        .build_with_sink_meta(path.clone(), NdjsonFile::create(&path)?)?;

    let producers: Vec<_> = (0..4u32)
        .map(|sensor| {
            let producer = dispatcher.producer();
            thread::spawn(move || {
                for seq in 0..25_000u64 {
                    let reading = Reading {
                        sensor,
                        seq,
                        celsius: 20.0 + (seq % 100) as f64 / 10.0,
                    };
                    producer.enqueue(reading).expect("room within two seconds");
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("producer");
    }
    let report = dispatcher.shutdown(Duration::from_secs(10))?;

    let lines = std::fs::read_to_string(&path)?.lines().count();
    println!(
        "{} readings in {} fsynced batches -> {} ({lines} lines, {} retries, {} failed)",
        report.delivered_total,
        report.stats.batches,
        path.display(),
        report.stats.retries,
        report.stats.failed,
    );
    assert_eq!(lines as u64, report.delivered_total);
    std::fs::remove_file(&path)?;
    Ok(())
}
