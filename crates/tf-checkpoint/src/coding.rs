//! Varints and fixed-width little-endian integers, as in TF's `core/coding.cc` and protobuf.
//!
//! A varint is LEB128: 7 bits per byte, least significant group first, the high bit set on
//! every byte but the last. A 64-bit varint takes at most 10 bytes, a 32-bit one at most 5.
//! Fixed32/fixed64 values are little-endian on every platform.

/// Decodes a varint of at most 64 bits from the start of `buf`.
///
/// Returns the value and the number of bytes used, or `None` if `buf` ends inside the varint
/// or the varint is longer than 10 bytes or overflows 64 bits.
pub fn decode_varint64(buf: &[u8]) -> Option<(u64, usize)> {
    let mut result: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        let part = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return None; // the 10th byte may only carry the 64th bit
        }
        result |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Some((result, i + 1));
        }
    }
    None
}

/// Decodes a varint that must fit in 32 bits (at most 5 bytes), as LevelDB's `GetVarint32`.
pub fn decode_varint32(buf: &[u8]) -> Option<(u32, usize)> {
    let mut result: u32 = 0;
    for (i, &byte) in buf.iter().enumerate().take(5) {
        let part = u32::from(byte & 0x7f);
        if i == 4 && byte > 0x0f {
            return None; // more than 32 bits
        }
        result |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Some((result, i + 1));
        }
    }
    None
}

/// Appends `v` as a varint.
pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a little-endian `u32` at `pos`, if the 4 bytes are there.
pub fn fixed32_at(buf: &[u8], pos: usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let bytes: [u8; 4] = buf.get(pos..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Reads a little-endian `u64` at `pos`, if the 8 bytes are there.
pub fn fixed64_at(buf: &[u8], pos: usize) -> Option<u64> {
    let end = pos.checked_add(8)?;
    let bytes: [u8; 8] = buf.get(pos..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for &(v, bytes) in cases {
            let mut out = Vec::new();
            put_varint64(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(decode_varint64(bytes), Some((v, bytes.len())));
        }
        // -1 as an int64/int32 protobuf varint is 10 bytes.
        let mut out = Vec::new();
        put_varint64(&mut out, -1i64 as u64);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn bad_varints() {
        assert_eq!(decode_varint64(&[]), None);
        assert_eq!(decode_varint64(&[0x80]), None, "truncated");
        assert_eq!(decode_varint64(&[0xff; 11]), None, "too long");
        assert_eq!(decode_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), None, "overflow");
        assert_eq!(decode_varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Some((u32::MAX, 5)));
        assert_eq!(decode_varint32(&[0xff, 0xff, 0xff, 0xff, 0x10]), None);
        assert_eq!(decode_varint32(&[0x80, 0x80]), None);
    }

    #[test]
    fn fixed() {
        assert_eq!(fixed32_at(&[1, 2, 3, 4, 5], 1), Some(0x0504_0302));
        assert_eq!(fixed32_at(&[1, 2, 3], 0), None);
        assert_eq!(fixed32_at(&[1, 2, 3, 4], usize::MAX), None);
        assert_eq!(fixed64_at(&[1, 0, 0, 0, 0, 0, 0, 0], 0), Some(1));
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = Vec::new();
            put_varint64(&mut out, v);
            let n = out.len();
            out.extend_from_slice(&tail);
            prop_assert_eq!(decode_varint64(&out), Some((v, n)));
            if let Ok(v32) = u32::try_from(v) {
                prop_assert_eq!(decode_varint32(&out), Some((v32, n)));
            } else {
                prop_assert_eq!(decode_varint32(&out), None);
            }
        }

        #[test]
        fn varint_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode_varint64(&bytes);
            let _ = decode_varint32(&bytes);
        }
    }
}
