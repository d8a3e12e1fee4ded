//! What the last child left in the disk tier: after it ends, the tier's directory is read
//! directly (opened, recovered as the next start would, read to its end, never
//! acknowledged: it is left as it was for the next run on it) and the ids of the events
//! still there are listed. An accepted event that was never delivered but is still on disk
//! is not lost: the next run on the directory delivers it first.

use dispatcher::spill::Codec as _;
use runlog::SpillConfig;

use super::ledger;
use crate::spill::{EventCodec, record};

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
        let events = record::events(&bytes).map_err(|e| format!("record {seq}: {e}"))?;
        for event in events {
            let event = codec
                .decode(event)
                .map_err(|e| format!("record {seq}: {e}"))?;
            ids.push(ledger::id(&event));
        }
    }
    Ok(ids)
}
