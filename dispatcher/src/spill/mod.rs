//! The spill tier's storage layer (feature `spill`): a durable, bounded,
//! checksummed log of records in a directory.
//!
//! When an event does not fit in the dispatcher's memory it can be appended
//! here, read back into batches as memory frees, acknowledged once
//! delivered, and replayed after a crash (at-least-once). This module is the
//! store; [`Codec`] turns events into record payloads; the dispatcher's
//! disk tier ([`Builder::spill`](crate::Builder::spill)) is built on it.
//!
//! - [`Spill`]: settings and builder; [`SyncPolicy`]: when data is forced to
//!   the device.
//! - [`SpillLog`]: `open` (lock + recovery), `append`, `sync`, `read_next`,
//!   `ack`, `stats`.
//! - [`Recovered`]: what `open` found; [`SpillStats`]: counters.
//! - [`SpillError`] / [`DecodeError`].
//!
//! # On disk
//!
//! ```text
//! <dir>/lock                        flock'ed while a SpillLog is open; never removed
//! <dir>/ack                         the acknowledged sequence number (24 bytes, replaced atomically)
//! <dir>/00000000000000000001.seg    segments, named by their first sequence number
//! <dir>/00000000000000052318.seg
//! ```
//!
//! A segment is a 24-byte header (`"MTRSPILL"`, format version `u32`, first
//! sequence `u64`, header checksum) followed by frames:
//! `u32 length LE | u32 checksum LE | payload`, where the checksum is the
//! CRC-32C of the payload, masked (rotated and offset, as in LevelDB) so
//! that a run of zero bytes is not a valid empty frame. Sequence numbers
//! are implicit: the n-th frame of segment `S` is record `S + n`.
//!
//! # Recovery
//!
//! Every frame after the acknowledged point is verified at open. A torn or
//! damaged frame truncates its segment there; later whole segments are
//! kept; sequence numbers are never given twice. A directory holding
//! anything else than these files is refused ([`SpillError::Foreign`]) and
//! left untouched. The full rules are on [`Recovered`].
//!
//! # Example
//!
//! ```
//! use dispatcher::spill::{Codec, Raw, Spill, SyncPolicy};
//!
//! let dir = tempfile::tempdir()?;
//! let spill = Spill::new(dir.path()).segment_bytes(64 << 10).sync(SyncPolicy::EveryBatch);
//! let (mut log, _) = spill.open()?;
//!
//! // The dispatcher is full: spill a batch of events.
//! let mut buf = Vec::new();
//! for event in ["a", "b", "c"].map(String::from) {
//!     buf.clear();
//!     Raw.encode(&event, &mut buf);
//!     log.append(&buf)?;
//! }
//! log.sync()?;
//!
//! // Memory freed: read them back and deliver them, then acknowledge.
//! let mut delivered = Vec::new();
//! let mut last = 0;
//! while let Some((seq, bytes)) = log.read_next()? {
//!     let event: String = Raw.decode(&bytes)?;
//!     delivered.push(event);
//!     last = seq;
//! }
//! log.ack(last)?;
//! assert_eq!(delivered, ["a", "b", "c"]);
//! assert_eq!(log.stats().pending_events, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ack;
mod codec;
mod config;
mod error;
mod frame;
mod lock;
mod log;
mod recovery;
mod segment;
mod stats;

#[cfg(feature = "spill-serde")]
pub use codec::Postcard;
pub use codec::{Codec, Raw};
pub use config::{MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, Spill, SyncPolicy};
pub use error::{DecodeError, SpillError};
pub use log::SpillLog;
pub use recovery::Recovered;
pub use stats::SpillStats;

pub use crate::core::spill::record::{EVENT_DISK_OVERHEAD, decode_record};

/// A frame's header on disk: length and checksum.
pub(crate) const FRAME_HEADER_BYTES: u64 = frame::FRAME_HEADER_LEN as u64;
/// A segment's header on disk.
pub(crate) const SEGMENT_HEADER_BYTES: u64 = segment::HEADER_LEN as u64;
