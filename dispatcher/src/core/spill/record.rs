//! How an admission becomes one disk record, and back.
//!
//! ```text
//! 0 | partition u16 LE | the codec's bytes of the event            (one event)
//! 1 | partition u16 LE | count u32 LE | (length u32 LE | bytes)*   (a group)
//! ```
//!
//! A group admitted with `try_enqueue_all` is one record, so it reaches the
//! disk whole or not at all. The partition is the producer's, so an event
//! read back joins the partition its producer's other events are in and
//! keeps their order.

use crate::spill::{Codec, DecodeError};

/// A [`Codec`] as the core holds it: the codec's `'static` bound stays
/// with the codec, not with the dispatcher's event type.
pub(crate) trait Coder<T>: Send + Sync {
    fn encode(&self, item: &T, out: &mut Vec<u8>);
    fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError>;
}

/// The user's codec behind [`Coder`].
pub(crate) struct ByCodec<C>(pub(crate) C);

impl<T, C: Codec<T>> Coder<T> for ByCodec<C> {
    fn encode(&self, item: &T, out: &mut Vec<u8>) {
        self.0.encode(item, out);
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        self.0.decode(bytes)
    }
}

const ONE: u8 = 0;
const GROUP: u8 = 1;

/// The most a dispatcher's disk tier writes for one event beyond its
/// codec's bytes: the record header (kind and partition, 3 B), the frame
/// header (8 B) and the header of a segment it may have to start (24 B).
/// An event whose encoding is larger than `max_disk_bytes` less this can
/// never go to disk.
///
/// # Examples
///
/// ```
/// assert_eq!(dispatcher::spill::EVENT_DISK_OVERHEAD, 35);
/// ```
pub const EVENT_DISK_OVERHEAD: u64 =
    3 + crate::spill::FRAME_HEADER_BYTES + crate::spill::SEGMENT_HEADER_BYTES;

/// Appends the record of `items` admitted through partition `part`.
pub(crate) fn encode<'a, T: 'a>(
    codec: &dyn Coder<T>,
    part: usize,
    items: impl ExactSizeIterator<Item = &'a T>,
    group: bool,
    out: &mut Vec<u8>,
) {
    out.push(if group { GROUP } else { ONE });
    // At most 256 partitions (checked by the builder).
    out.extend_from_slice(&(part as u16).to_le_bytes());
    if !group {
        for item in items {
            codec.encode(item, out);
        }
        return;
    }
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        codec.encode(item, out);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// The events of one record a dispatcher's disk tier wrote (what
/// [`SpillLog::read_next`](crate::spill::SpillLog::read_next) returns for
/// it), in order, decoded by `codec`: for reading a tier's directory
/// without a dispatcher. A `try_enqueue_all` group is one record.
///
/// # Errors
///
/// [`DecodeError`] when the record is damaged or `codec` refuses an event.
///
/// # Examples
///
/// ```
/// use dispatcher::Dispatcher;
/// use dispatcher::spill::{Raw, Spill, decode_record};
///
/// let dir = tempfile::tempdir()?;
/// let spill = Spill::new(dir.path()).write_ahead(true);
/// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder().spill(spill.open()?, Raw).build()?;
/// dispatcher.producer().try_enqueue_all(vec![b"a".to_vec(), b"bc".to_vec()])?;
/// drop(dispatcher.stop()); // what was read back stays on disk, unacknowledged
///
/// let (mut log, _) = spill.open()?;
/// let (_, record) = log.read_next()?.expect("the group");
/// let events: Vec<Vec<u8>> = decode_record(&Raw, &record)?;
/// assert_eq!(events, [b"a".to_vec(), b"bc".to_vec()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_record<T, C: Codec<T>>(codec: &C, record: &[u8]) -> Result<Vec<T>, DecodeError> {
    decode(&Borrowed(codec), record).map(|(_, items)| items)
}

/// A borrowed [`Codec`] behind [`Coder`].
struct Borrowed<'a, C>(&'a C);

impl<T, C: Codec<T>> Coder<T> for Borrowed<'_, C> {
    fn encode(&self, item: &T, out: &mut Vec<u8>) {
        self.0.encode(item, out);
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        self.0.decode(bytes)
    }
}

/// The partition and the events of one record.
pub(crate) fn decode<T>(
    codec: &dyn Coder<T>,
    bytes: &[u8],
) -> Result<(usize, Vec<T>), DecodeError> {
    let (&kind, rest) = bytes
        .split_first()
        .ok_or_else(|| DecodeError::new("empty spill record"))?;
    let (part, mut rest) = take::<2>(rest)?;
    let part = usize::from(u16::from_le_bytes(part));
    match kind {
        ONE => Ok((part, vec![codec.decode(rest)?])),
        GROUP => {
            let (count, tail) = take::<4>(rest)?;
            rest = tail;
            let count = u32::from_le_bytes(count) as usize;
            // Every event takes four bytes at least: a count beyond that is damage.
            if count > rest.len() / 4 {
                return Err(DecodeError::new(format!(
                    "spill record claims {count} events in {} bytes",
                    rest.len()
                )));
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let (len, tail) = take::<4>(rest)?;
                let len = u32::from_le_bytes(len) as usize;
                if len > tail.len() {
                    return Err(DecodeError::new("spill record cut short inside an event"));
                }
                let (event, tail) = tail.split_at(len);
                items.push(codec.decode(event)?);
                rest = tail;
            }
            if !rest.is_empty() {
                return Err(DecodeError::new(
                    "spill record has bytes after its last event",
                ));
            }
            Ok((part, items))
        }
        other => Err(DecodeError::new(format!(
            "unknown spill record kind {other}"
        ))),
    }
}

fn take<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), DecodeError> {
    if bytes.len() < N {
        return Err(DecodeError::new("spill record cut short"));
    }
    let (head, rest) = bytes.split_at(N);
    Ok((head.try_into().expect("N bytes"), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::Raw;

    const RAW: ByCodec<Raw> = ByCodec(Raw);

    fn round_trip(items: &[Vec<u8>], group: bool, part: usize) -> (usize, Vec<Vec<u8>>) {
        let mut buf = Vec::new();
        encode(&RAW, part, items.iter(), group, &mut buf);
        decode(&RAW, &buf).unwrap()
    }

    #[test]
    fn one_event_and_groups_come_back_whole() {
        assert_eq!(
            round_trip(&[b"abc".to_vec()], false, 3),
            (3, vec![b"abc".to_vec()])
        );
        let group = vec![b"".to_vec(), b"x".to_vec(), vec![7; 300]];
        assert_eq!(round_trip(&group, true, 255), (255, group));
        assert_eq!(round_trip(&[], true, 0), (0, vec![]));
    }

    #[test]
    fn records_written_by_hand_decode_or_are_refused() {
        let events = |record: &[u8]| decode_record::<Vec<u8>, _>(&Raw, record);
        assert!(events(&[]).is_err());
        assert!(events(&[0, 1]).is_err());
        assert_eq!(events(&[0, 1, 0, 9, 9]).expect("one"), [vec![9u8, 9]]);
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

    #[test]
    fn damage_is_a_decode_error_not_a_panic() {
        let mut buf = Vec::new();
        let group = [b"hello".to_vec(), b"world".to_vec()];
        encode(&RAW, 1, group.iter(), true, &mut buf);
        for cut in 0..buf.len() {
            assert!(
                decode::<Vec<u8>>(&RAW, &buf[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = buf.clone();
        bad[3] = 0xff; // a count far beyond the bytes
        assert!(decode::<Vec<u8>>(&RAW, &bad).is_err());
        let mut trailing = buf;
        trailing.push(0);
        assert!(decode::<Vec<u8>>(&RAW, &trailing).is_err());
        assert!(decode::<Vec<u8>>(&RAW, &[9, 0, 0]).is_err());
    }
}
