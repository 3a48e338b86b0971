//! TensorFlow's OrderedCode encoding of `(tensor name, slice)` pairs, the table keys of V1
//! checkpoints and of the slices of partitioned variables in V2 bundles
//! (`EncodeTensorNameSlice` in `core/util/saved_tensor_slice_util.cc`, primitives in
//! `core/lib/strings/ordered_code.cc`):
//!
//! ```text
//! key = NumIncreasing(0) | String(name) | NumIncreasing(rank)
//!       | for each dim: SignedNumIncreasing(start) SignedNumIncreasing(length)
//! ```
//!
//! * `NumIncreasing(v)`: one length byte (number of big-endian bytes, leading zeros dropped),
//!   then those bytes: `0 → 00`, `2 → 01 02`.
//! * `String(s)`: the bytes with `00 → 00 FF` and `FF → FF 00`, then the terminator `00 01`.
//! * `SignedNumIncreasing(v)`: with `x = v < 0 ? !v : v`, values with `x < 64` are the single
//!   byte `0x80 ^ v` (`0 → 80`, `-1 → 7F`). Longer values are the two's-complement big-endian
//!   number, sign-extended to 10 bytes, cut to `len` bytes, where the first bits (after
//!   the sign bit) hold `len - 1` in unary: header bits per length are given by
//!   `LENGTH_TO_HEADER_BITS`, XOR-ed into the first two bytes.
//!
//! A whole dimension has start 0 and length -1 (`kFullExtent`), encoded `80 7F`.

/// Header bits XOR-ed into the first two bytes of a signed number of each encoded length.
const LENGTH_TO_HEADER_BITS: [[u8; 2]; 11] =
    [[0, 0], [0x80, 0], [0xc0, 0], [0xe0, 0], [0xf0, 0], [0xf8, 0], [0xfc, 0], [0xfe, 0], [0xff, 0], [0xff, 0x80], [0xff, 0xc0]];

/// Appends `NumIncreasing(v)`.
pub fn write_num_increasing(out: &mut Vec<u8>, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    let significant = bytes.get(skip..).unwrap_or_default();
    out.push(significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Appends `String(s)`: escaped bytes and the `00 01` separator.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            other => out.push(other),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Appends `SignedNumIncreasing(v)`.
pub fn write_signed_num_increasing(out: &mut Vec<u8>, v: i64) {
    let x: u64 = if v < 0 { !(v as u64) } else { v as u64 };
    if x < 64 {
        out.push(0x80 ^ (v as u8));
        return;
    }
    // Encoded length: ceil((bits + 1) / 7) bytes, where bits = significant bits of x,
    // i.e. n bytes cover [-2^(7n-1), 2^(7n-1)).
    let bits = 64 - x.leading_zeros() as usize; // >= 7 here
    let len = (bits + 1).div_ceil(7).clamp(2, 10);
    let sign_byte = if v < 0 { 0xff } else { 0x00 };
    let mut buf = [sign_byte; 10];
    buf[2..].copy_from_slice(&v.to_be_bytes());
    let start = 10 - len;
    let header = LENGTH_TO_HEADER_BITS[len];
    buf[start] ^= header[0];
    buf[start + 1] ^= header[1];
    out.extend_from_slice(&buf[start..]);
}

/// `EncodeTensorNameSlice(name, slice)`: `extents` holds `(start, length)` per dimension,
/// with length -1 for a whole dimension.
pub fn encode_tensor_name_slice(name: &[u8], extents: &[(i64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 4 + extents.len() * 4);
    write_num_increasing(&mut out, 0);
    write_string(&mut out, name);
    write_num_increasing(&mut out, extents.len() as u64);
    for &(start, length) in extents {
        write_signed_num_increasing(&mut out, start);
        write_signed_num_increasing(&mut out, length);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn v1_key_for_full_rank2_tensor() {
        // From the spec: full-slice rank-2 tensor "w".
        assert_eq!(encode_tensor_name_slice(b"w", &[(0, -1), (0, -1)]), [0x00, 0x77, 0x00, 0x01, 0x01, 0x02, 0x80, 0x7f, 0x80, 0x7f]);
        // Scalars: rank 0.
        assert_eq!(encode_tensor_name_slice(b"s", &[]), [0x00, 0x73, 0x00, 0x01, 0x00]);
    }

    #[test]
    fn num_increasing() {
        let enc = |v| {
            let mut o = Vec::new();
            write_num_increasing(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(2), [0x01, 0x02]);
        assert_eq!(enc(0x100), [0x02, 0x01, 0x00]);
        assert_eq!(enc(u64::MAX), [8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn string_escapes() {
        let mut o = Vec::new();
        write_string(&mut o, &[b'a', 0x00, 0xff, b'b']);
        assert_eq!(o, [b'a', 0x00, 0xff, 0xff, 0x00, b'b', 0x00, 0x01]);
    }

    #[test]
    fn signed_known_values() {
        // Examples from the comments of ordered_code.cc.
        assert_eq!(signed(0), [0x80]);
        assert_eq!(signed(-1), [0x7f]);
        assert_eq!(signed(5), [0x85]);
        assert_eq!(signed(63), [0xbf]);
        assert_eq!(signed(-64), [0x40]);
        assert_eq!(signed(0x424242), [0xf0, 0x42, 0x42, 0x42]);
        assert_eq!(signed(-0x800), [0x38, 0x00]);
        assert_eq!(signed(64), [0xc0, 0x40]);
        assert_eq!(signed(-65), [0x3f, 0xbf]);
        assert_eq!(signed(i64::MAX).len(), 10);
        assert_eq!(signed(i64::MIN).len(), 10);
        assert_eq!(signed(i64::MAX)[..2], [0xff, 0xc0]);
        assert_eq!(signed(i64::MIN)[..2], [0x00, 0x3f]);
    }

    #[test]
    fn signed_lengths_follow_the_ranges() {
        // n bytes cover [-2^(7n-1), 2^(7n-1)).
        for n in 1..=9u32 {
            let hi = 1i64 << (7 * n - 1);
            assert_eq!(signed(hi - 1).len(), n as usize, "{n}");
            assert_eq!(signed(-hi).len(), n as usize, "{n}");
            assert_eq!(signed(hi).len(), n as usize + 1, "{n}");
            assert_eq!(signed(-hi - 1).len(), n as usize + 1, "{n}");
        }
    }

    #[test]
    fn signed_encoding_preserves_order() {
        let mut values: Vec<i64> = vec![i64::MIN, i64::MIN + 1, -1 << 40, -65, -64, -1, 0, 1, 63, 64, 8191, 8192, 1 << 40, i64::MAX];
        for s in 0..62 {
            values.push(1i64 << s);
            values.push(-(1i64 << s));
            values.push((1i64 << s) - 1);
        }
        values.sort();
        values.dedup();
        for w in values.windows(2) {
            assert!(signed(w[0]) < signed(w[1]), "{} vs {}", w[0], w[1]);
        }
    }
}
