//! One record on disk: `u32 length LE | u32 checksum LE | payload`.
//!
//! The checksum is the CRC-32C (Castagnoli; SSE4.2 / ARMv8 instructions
//! through the `crc32c` crate) of the payload, *masked* as LevelDB and
//! RocksDB do: rotated right by 15 bits plus a constant. Masking keeps the
//! format's strength (it is a bijection of the CRC) and makes an all-zero
//! frame invalid: unmasked, a length of 0 with a CRC of 0 is a valid empty
//! record, so a run of zeros (a file extended but not yet written when the
//! power failed, which some filesystems expose) would read as a stream of
//! empty records.

/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 8;

/// The largest payload a frame carries.
pub(crate) const MAX_PAYLOAD: u64 = u32::MAX as u64;

const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC-32C of `payload`.
pub(crate) fn checksum(payload: &[u8]) -> u32 {
    mask(crc32c::crc32c(payload))
}

/// Masks a raw CRC-32C (see the module docs).
pub(crate) fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Appends the frame of `payload` to `out`.
///
/// The caller has checked `payload.len() <= MAX_PAYLOAD`.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() as u64 <= MAX_PAYLOAD);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The payload's length.
    pub(crate) len: u32,
    /// The payload's masked CRC-32C.
    pub(crate) checksum: u32,
}

impl FrameHeader {
    pub(crate) fn parse(bytes: [u8; FRAME_HEADER_LEN]) -> Self {
        let [a, b, c, d, e, f, g, h] = bytes;
        FrameHeader {
            len: u32::from_le_bytes([a, b, c, d]),
            checksum: u32::from_le_bytes([e, f, g, h]),
        }
    }
}

/// The on-disk length of a frame carrying `payload_len` bytes.
pub(crate) fn frame_len(payload_len: usize) -> u64 {
    FRAME_HEADER_LEN as u64 + payload_len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse() {
        let mut out = Vec::new();
        encode(b"abc", &mut out);
        assert_eq!(out.len(), 11);
        let h = FrameHeader::parse(out[..8].try_into().unwrap());
        assert_eq!(h.len, 3);
        assert_eq!(h.checksum, checksum(b"abc"));
        assert_eq!(frame_len(h.len as usize), 11);
        assert_eq!(&out[8..], b"abc");
    }

    #[test]
    fn zeros_are_not_a_valid_empty_frame() {
        assert_eq!(crc32c::crc32c(b""), 0);
        assert_ne!(checksum(b""), 0);
    }

    #[test]
    fn known_crc32c_vector() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
    }
}
