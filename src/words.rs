//! Finding the first byte of a kind, looking at eight bytes at a time: how the
//! output path gets over plain text quickly (the screen's skip scan, output
//! events' JSON).
//!
//! The tests on words are the usual ones ("has a byte below n", "has a zero
//! byte"). Each is exact for the lowest byte it flags, may flag bytes above that
//! one, and never flags a byte of 0x80 or more.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Flags the bytes of `x` below `n` (for `n` ≤ 0x80).
#[must_use]
pub const fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGH
}

/// Flags the bytes of `x` equal to `b` (for `b` < 0x80).
#[must_use]
pub const fn equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * b as u64);
    y.wrapping_sub(ONES) & !y & HIGH
}

/// Flags the bytes of `x` of 0x80 or more (exactly).
#[must_use]
pub const fn high(x: u64) -> u64 {
    x & HIGH
}

/// Where the first byte of `bytes` that `is` holds for is. `flags` is given eight
/// bytes at a time (little-endian) and must not give zero when `is` holds for one
/// of them; a word it gives zero for is passed over whole, any other is looked at
/// byte by byte.
pub fn position(bytes: &[u8], flags: impl Fn(u64) -> u64, is: impl Fn(u8) -> bool) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        // A failed conversion (it cannot fail) gives 0, which is then checked byte by byte.
        let x = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
        if flags(x) != 0 || x == 0 {
            if let Some(k) = word.iter().position(|b| is(*b)) {
                return Some(at + k);
            }
        }
        at += 8;
    }
    words.remainder().iter().position(|b| is(*b)).map(|k| at + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn finds_what_a_byte_by_byte_search_finds(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let controls = |b: u8| b < 0x20 || b == b'"';
            proptest::prop_assert_eq!(
                position(&bytes, |x| below(x, 0x20) | equal(x, b'"'), controls),
                bytes.iter().position(|b| controls(*b))
            );
            let unprintable = |b: u8| !(0x20..=0x7e).contains(&b);
            proptest::prop_assert_eq!(
                position(&bytes, |x| below(x, 0x20) | equal(x, 0x7f) | high(x), unprintable),
                bytes.iter().position(|b| unprintable(*b))
            );
        }
    }
}
