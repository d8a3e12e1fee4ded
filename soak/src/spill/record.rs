//! A dispatcher's disk record read from the soak's side: the crash test reads what the
//! last run left in the tier's directory, without a dispatcher, to tell events still on
//! disk (not lost) from events lost.
//!
//! The layout is the dispatcher's (`dispatcher/src/core/spill/record.rs`, private to it),
//! restated here; a test below writes records through a real dispatcher and reads them
//! back with this, so a change on its side fails here rather than miscounting:
//!
//! ```text
//! 0 | partition u16 LE | the codec's bytes of the event            (one event)
//! 1 | partition u16 LE | count u32 LE | (length u32 LE | bytes)*   (a group)
//! ```

/// The codec bytes of each event in one record, in order.
///
/// # Errors
///
/// A record cut short, of an unknown kind, or with bytes after its last event.
pub fn events(record: &[u8]) -> Result<Vec<&[u8]>, String> {
    let (&kind, rest) = record.split_first().ok_or("an empty record")?;
    let rest = rest.get(2..).ok_or("a record cut short in its partition")?;
    match kind {
        0 => Ok(vec![rest]),
        1 => {
            let (count, mut rest) = split::<4>(rest).ok_or("a group cut short in its count")?;
            let count = u32::from_le_bytes(count) as usize;
            if count > rest.len() / 4 {
                return Err(format!("a group of {count} events in {} bytes", rest.len()));
            }
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let (len, tail) = split::<4>(rest).ok_or("a group cut short in a length")?;
                let len = u32::from_le_bytes(len) as usize;
                if len > tail.len() {
                    return Err("a group cut short inside an event".into());
                }
                let (event, tail) = tail.split_at(len);
                out.push(event);
                rest = tail;
            }
            if !rest.is_empty() {
                return Err("a group with bytes after its last event".into());
            }
            Ok(out)
        }
        other => Err(format!("a record of unknown kind {other}")),
    }
}

fn split<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let head = bytes.get(..N)?;
    Some((head.try_into().ok()?, &bytes[N..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::EventCodec;
    use dispatcher::spill::Codec as _;
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
            for bytes in events(&record).expect("a record") {
                let event = codec.decode(bytes).expect("an event");
                seen.push((event.producer(), event.seq(), event.payload.len()));
            }
        }
        // The first event may have been read back and handed back by `stop` (acknowledged).
        let written = [(7, 1, 10), (7, 2, 3), (7, 3, 3), (7, 4, 3), (7, 5, 10)];
        assert!(seen.len() >= 4 && written.ends_with(&seen), "{seen:?}");
    }

    #[test]
    fn damage_is_an_error() {
        assert!(events(&[]).is_err());
        assert!(events(&[0, 1]).is_err());
        assert_eq!(events(&[0, 1, 0, 9, 9]).expect("one"), [&[9u8, 9][..]]);
        assert_eq!(
            events(&[1, 0, 0, 0, 0, 0, 0]).expect("empty group").len(),
            0
        );
        assert!(
            events(&[1, 0, 0, 1, 0, 0, 0]).is_err(),
            "a count past the bytes"
        );
        assert!(
            events(&[1, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 1]).is_err(),
            "cut short"
        );
        assert!(events(&[1, 0, 0, 0, 0, 0, 0, 7]).is_err(), "trailing bytes");
        assert!(events(&[2, 0, 0]).is_err(), "unknown kind");
    }
}
