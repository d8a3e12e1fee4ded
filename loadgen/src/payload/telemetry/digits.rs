//! Fixed-width number formatting for patching templates in place: no
//! branches on the value, no length to compute, no allocation.

/// Digits of [`hex`]: a full `u64`.
pub(super) const HEX_WIDTH: usize = 16;

/// Digits of [`dec`]: every value below 10^13 (epoch milliseconds until
/// the year 2286).
pub(super) const DEC_WIDTH: usize = 13;

/// `value` as [`HEX_WIDTH`] lowercase hex digits, zero-padded.
///
/// SWAR: each 32-bit half is spread to one nibble per byte, then all eight
/// bytes become ASCII at once (`'0' + n`, plus `'a' - '0' - 10` where `n > 9`).
pub(super) fn hex(value: u64) -> [u8; HEX_WIDTH] {
    let mut out = [0u8; HEX_WIDTH];
    out[..8].copy_from_slice(&ascii_nibbles(spread_nibbles(value >> 32)).to_be_bytes());
    out[8..].copy_from_slice(&ascii_nibbles(spread_nibbles(value & 0xFFFF_FFFF)).to_be_bytes());
    out
}

/// The eight nibbles of a 32-bit `half`, one per byte, most significant in
/// the most significant byte.
fn spread_nibbles(half: u64) -> u64 {
    let x = (half | half << 16) & 0x0000_FFFF_0000_FFFF;
    let x = (x | x << 8) & 0x00FF_00FF_00FF_00FF;
    (x | x << 4) & 0x0F0F_0F0F_0F0F_0F0F
}

/// Bytes each holding 0..=15 as ASCII `0-9a-f` (no byte ever carries into the next).
fn ascii_nibbles(nibbles: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Adding 6 sets bit 4 of exactly the bytes holding 10..=15.
    let letters = ((nibbles + 6 * ONES) >> 4) & ONES;
    nibbles + u64::from(b'0') * ONES + letters * u64::from(b'a' - b'0' - 10)
}

/// "00" "01" ... "99": two decimal digits per table read.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// `value` (below 10^13; higher digits are dropped) as [`DEC_WIDTH`]
/// decimal digits, zero-padded. The value is split into independent groups
/// of four digits first, so the divisions (multiplications, as compiled)
/// run side by side rather than in one long chain.
pub(super) fn dec(value: u64) -> [u8; DEC_WIDTH] {
    let high = value / 100_000_000 % 100_000;
    // Both below 10^8 and 10^5, so the casts keep every bit.
    let low = (value % 100_000_000) as u32;
    let high = high as u32;
    let mut out = [0u8; DEC_WIDTH];
    out[0] = b'0' + (high / 10_000) as u8;
    out[1..5].copy_from_slice(&four_digits(high % 10_000));
    out[5..9].copy_from_slice(&four_digits(low / 10_000));
    out[9..].copy_from_slice(&four_digits(low % 10_000));
    out
}

/// `n` (below 10^4) as four decimal digits.
fn four_digits(n: u32) -> [u8; 4] {
    let (hi, lo) = ((n / 100) as usize * 2, (n % 100) as usize * 2);
    [PAIRS[hi], PAIRS[hi + 1], PAIRS[lo], PAIRS[lo + 1]]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn edges_are_exact() {
        assert_eq!(&hex(0), b"0000000000000000");
        assert_eq!(&hex(0x1a2f), b"0000000000001a2f");
        assert_eq!(&hex(u64::MAX), b"ffffffffffffffff");
        assert_eq!(&hex(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        assert_eq!(&dec(0), b"0000000000000");
        assert_eq!(&dec(1_704_067_200_000), b"1704067200000");
        assert_eq!(&dec(9_999_999_999_999), b"9999999999999");
    }

    proptest! {
        #[test]
        fn match_std_formatting(value in any::<u64>()) {
            prop_assert_eq!(hex(value).to_vec(), format!("{value:016x}").into_bytes());
            let small = value % 10_000_000_000_000;
            prop_assert_eq!(dec(small).to_vec(), format!("{small:013}").into_bytes());
        }
    }
}
