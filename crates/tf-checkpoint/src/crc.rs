//! CRC32C (Castagnoli) and TensorFlow's CRC masking.
//!
//! TF stores *masked* CRCs (`tsl/lib/hash/crc32c.h`) so that the CRC of data that itself
//! contains CRCs stays well distributed:
//!
//! ```text
//! mask(crc)   = rotate_right(crc, 15) + 0xa282ead8      (wrapping add)
//! unmask(m)   = rotate_left(m - 0xa282ead8, 15)          (wrapping sub)
//! ```
//!
//! Masked CRCs appear in table block trailers, in `BundleEntryProto.crc32c` and in the
//! length checksum of V2 string tensors.

/// Added to the rotated CRC by [`mask`].
pub const MASK_DELTA: u32 = 0xa282_ead8;

/// CRC32C of `data`.
pub fn value(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues the CRC32C `crc` (of some earlier bytes) over `data`.
pub fn extend(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Masks a CRC the way TensorFlow stores it.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask`].
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_values() {
        // RFC 3720 test vectors (also in leveldb's crc32c_test).
        assert_eq!(value(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(value(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(value(&inc), 0x46dd_794e);
        assert_eq!(value(b"hello world"), extend(value(b"hello "), b"world"));
    }

    #[test]
    fn mask_and_unmask() {
        let crc = value(b"foo");
        assert_ne!(mask(crc), crc);
        assert_ne!(mask(mask(crc)), crc);
        assert_eq!(unmask(mask(crc)), crc);
        assert_eq!(unmask(unmask(mask(mask(crc)))), crc);
        // Worked by hand: rotr(0, 15) = 0, so mask(0) is the delta itself.
        assert_eq!(mask(0), MASK_DELTA);
        assert_eq!(mask(1), (1u32 << 17).wrapping_add(MASK_DELTA));
        assert_eq!(unmask(MASK_DELTA), 0);
        for x in [0u32, 1, 0x8000_0000, 0xffff_ffff, 0x1234_5678] {
            assert_eq!(unmask(mask(x)), x);
        }
    }
}
