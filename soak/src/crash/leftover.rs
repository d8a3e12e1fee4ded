//! What the last child left in the disk tier: after it ends, the tier's directory is read
//! directly (opened, recovered as the next start would, read to its end, never
//! acknowledged: it is left as it was for the next run on it) and the ids of the events
//! still there are listed. An accepted event that was never delivered but is still on disk
//! is not lost: the next run on the directory delivers it first.

use runlog::SpillConfig;

use super::ledger;
use crate::spill::EventCodec;

/// The ids of the events unacknowledged in `spill`'s directory, in the order they would be
/// delivered.
///
/// # Errors
///
/// The directory cannot be opened or read, or a record cannot be decoded (the tally
/// would not know what it holds).
pub(super) fn ids(spill: &SpillConfig) -> Result<Vec<u64>, String> {
    let (mut log, _) = crate::spill::open(spill)?.keep();
    let codec = EventCodec::new(loadgen::Clock::new());
    let mut ids = Vec::new();
    while let Some((seq, bytes)) = log.read_next().map_err(|e| e.to_string())? {
        let events = dispatcher::spill::decode_record(&codec, &bytes)
            .map_err(|e| format!("record {seq}: {e}"))?;
        ids.extend(events.iter().map(ledger::id));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use crate::spill::EventCodec;
    use loadgen::{Clock, Event};

    #[test]
    fn what_a_dispatcher_wrote_reads_back_event_by_event() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = runlog::SpillConfig {
            dir: tmp.path().join("spill"),
            max_disk_bytes: 1 << 20,
            write_ahead: true,
            ..runlog::SpillConfig::default()
        };
        let codec = EventCodec::new(Clock::new());
        {
            let opened = crate::spill::open(&config).expect("opens").keep();
            // Memory holds the first event at most: the group waits on disk (or in transit,
            // unacknowledged) behind it, and so does the last event.
            let (d, _batches) = dispatcher::Dispatcher::<Event>::builder()
                .max_buffered_bytes(16)
                .max_batch_bytes(16)
                .partitions(4)
                .spill(opened, codec.clone())
                .build()
                .expect("builds");
            let producer = d.producer();
            producer
                .try_enqueue(Event::new(vec![1; 10], 0, 7, 1))
                .expect("one");
            let group = (2..5)
                .map(|seq| Event::new(vec![2; 3], 0, 7, seq))
                .collect();
            producer.try_enqueue_all(group).expect("a group");
            producer
                .try_enqueue(Event::new(vec![3; 10], 0, 7, 5))
                .expect("one");
            drop(d.stop());
        }
        let (mut log, _) = crate::spill::settings(&config).open().expect("reopens");
        let mut seen = Vec::new();
        while let Some((_, record)) = log.read_next().expect("reads") {
            for event in dispatcher::spill::decode_record(&codec, &record).expect("a record") {
                seen.push((event.producer(), event.seq(), event.payload.len()));
            }
        }
        // The first event may have been read back and handed back by `stop` (acknowledged).
        let written = [(7, 1, 10), (7, 2, 3), (7, 3, 3), (7, 4, 3), (7, 5, 10)];
        assert!(seen.len() >= 4 && written.ends_with(&seen), "{seen:?}");
    }
}
