//! NumPy `.npy` files: float32 batches in (what one feeds TF), float32 arrays out.
//!
//! Format (numpy's `format.py`): magic `\x93NUMPY`, major/minor version bytes, a little-endian
//! header length (u16 for version 1, u32 for 2 and 3), an ASCII header that is a Python dict
//! literal with `descr`, `fortran_order` and `shape`, padded with spaces and a newline, then the
//! raw data. Only what slimzoo needs is read: C-order arrays of float32/float64/float16 and the
//! integer types, converted to f32. The header and the data size are checked against the file's
//! length before the data is read. NaN and infinities are read as they are (TF accepts them and
//! propagates them); [`Array::non_finite`] finds them for a warning.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy itself refuses headers above this size.
const MAX_HEADER: usize = 1 << 20;

/// Converts one stored element (its bytes, big-endian or not) to f32.
type Convert = fn(&[u8], bool) -> f32;

/// A float32 array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Reads a `.npy` file as float32 (other numeric dtypes are converted). Only a regular file is
/// opened; its header is parsed, and the data size it implies checked against the file's
/// length, before the data is read. NaN and infinite values are kept.
pub fn read(path: &Path) -> Result<Array> {
    crate::io::check_input(path)?;
    let bad = |reason: String| Error::bad_file(path, format!("not a usable .npy file: {reason}"));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut bytes = Vec::new();
    (&file).take(12 + MAX_HEADER as u64).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    let header = parse_header(&bytes).map_err(bad)?;
    header.check_data_len(len.saturating_sub(header.data_start as u64)).map_err(bad)?;
    (&file).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(bad)
}

/// Where an array holds NaN or infinities: how many values, and the first one.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    /// How many values are NaN or infinite.
    pub count: usize,
    /// The index of the first one, outermost dimension first.
    pub first: Vec<usize>,
    /// Its value.
    pub value: f32,
}

impl Array {
    /// The NaN and infinite values, if any.
    pub fn non_finite(&self) -> Option<NonFinite> {
        let at = self.data.iter().position(|v| !v.is_finite())?;
        let mut first = vec![0usize; self.shape.len()];
        let mut rest = at;
        for (i, &d) in self.shape.iter().enumerate().rev() {
            if d > 0 {
                first[i] = rest % d;
                rest /= d;
            }
        }
        let count = self.data[at..].iter().filter(|v| !v.is_finite()).count();
        Some(NonFinite { count, first, value: self.data[at] })
    }
}

/// Reads a float32 NHWC batch (`[N, H, W, C]`, what one feeds TF) as an NCHW tensor.
pub fn read_nchw(path: &Path) -> Result<tch::Tensor> {
    let a = read(path)?;
    if a.shape.len() != 4 {
        return Err(Error::bad_file(path, format!("expected an NHWC batch [N, H, W, C], got shape {:?}", a.shape)));
    }
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    Ok(tch::Tensor::f_from_slice(&a.data)?.f_view(dims.as_slice())?.f_permute([0, 3, 1, 2])?.f_contiguous()?)
}

/// What a `.npy` header says.
struct Header {
    shape: Vec<usize>,
    descr: String,
    elem: usize,
    convert: Convert,
    /// Offset of the data.
    data_start: usize,
    /// Bytes of data the shape and dtype need.
    data_bytes: usize,
}

impl Header {
    fn check_data_len(&self, have: u64) -> std::result::Result<(), String> {
        if have == self.data_bytes as u64 {
            return Ok(());
        }
        Err(format!("shape {:?} of '{}' needs {} data bytes, the file has {have}", self.shape, self.descr, self.data_bytes))
    }
}

/// Parses the magic, version and header of `.npy` bytes (the data may be absent).
fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < 10 || bytes.get(..6) != Some(MAGIC) {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated header length")?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    if header_len > MAX_HEADER {
        return Err(format!("header of {header_len} bytes is too large"));
    }
    let end = start.checked_add(header_len).ok_or("header length overflows")?;
    let header = bytes.get(start..end).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    if fortran != "False" {
        return Err("Fortran-order arrays are not supported (save with np.ascontiguousarray)".into());
    }
    let shape_txt = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let shape = parse_shape(shape_txt)?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape overflows")?;
    let (elem, convert): (usize, Convert) = match descr.trim_start_matches(['<', '>', '|', '=']) {
        "f4" => (4, |b, be| f32::from_bits(read_u32(b, be))),
        "f8" => (8, |b, be| f64::from_bits(read_u64(b, be)) as f32),
        "f2" => (2, |b, be| f16_to_f32(read_u16(b, be))),
        "i1" => (1, |b, _| b[0] as i8 as f32),
        "u1" => (1, |b, _| b[0] as f32),
        "i2" => (2, |b, be| read_u16(b, be) as i16 as f32),
        "u2" => (2, |b, be| read_u16(b, be) as f32),
        "i4" => (4, |b, be| read_u32(b, be) as i32 as f32),
        "u4" => (4, |b, be| read_u32(b, be) as f32),
        "i8" => (8, |b, be| read_u64(b, be) as i64 as f32),
        "u8" => (8, |b, be| read_u64(b, be) as f32),
        "b1" => (1, |b, _| if b[0] != 0 { 1.0 } else { 0.0 }),
        other => return Err(format!("unsupported dtype '{other}'")),
    };
    let data_bytes = count.checked_mul(elem).ok_or("shape overflows")?;
    Ok(Header { shape, descr: descr.to_string(), elem, convert, data_start: end, data_bytes })
}

/// Parses `.npy` bytes.
pub fn parse(bytes: &[u8]) -> std::result::Result<Array, String> {
    let h = parse_header(bytes)?;
    let data = bytes.get(h.data_start..).unwrap_or_default();
    h.check_data_len(data.len() as u64)?;
    let big_endian = h.descr.starts_with('>');
    let data = data.chunks_exact(h.elem).map(|c| (h.convert)(c, big_endian)).collect();
    Ok(Array { shape: h.shape, data })
}

fn read_u16(b: &[u8], be: bool) -> u16 {
    let a = [b[0], b[1]];
    if be { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) }
}
fn read_u32(b: &[u8], be: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if be { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) }
}
fn read_u64(b: &[u8], be: bool) -> u64 {
    let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
    if be { u64::from_be_bytes(a) } else { u64::from_le_bytes(a) }
}

/// IEEE half → single.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalize.
            let shift = frac.leading_zeros() - 21;
            let frac = (frac << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (frac << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        e => sign | ((e + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// The text of `key`'s value in a Python dict literal (values here never contain `':`).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with('(') {
        let close = rest.find(')')?;
        return Some(&rest[..=close]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn parse_shape(txt: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = txt.trim().strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or("bad shape")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().map_err(|_| format!("bad shape entry '{s}'")))
        .collect()
}

/// `.npy` bytes (version 1.0, `<f4`, C order) for `data` of `shape`.
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("{},", shape[0]),
        _ => shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Pad so that the data starts on a 64-byte boundary, ending with a newline.
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `data` of `shape` as a float32 `.npy` file, atomically; an existing file is replaced
/// only when `overwrite`.
pub fn write(path: &Path, overwrite: bool, shape: &[usize], data: &[f32]) -> Result<()> {
    crate::io::write_atomic(path, overwrite, |f| f.write_all(&to_bytes(shape, data)).map_err(|e| Error::io(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Array { shape: vec![2, 3], data: vec![1.0, -2.5, 3.0, 0.0, 5.5, -0.125] };
        assert_eq!(parse(&to_bytes(&a.shape, &a.data)).unwrap(), a);
        let s = Array { shape: vec![3], data: vec![1.0, 2.0, 3.0] };
        assert_eq!(parse(&to_bytes(&s.shape, &s.data)).unwrap(), s);
        assert_eq!((to_bytes(&[2, 3], &[0.0; 6]).len() - 24) % 64, 0);
    }

    #[test]
    fn reads_numpy_written_headers() {
        // As numpy 2 writes np.arange(4, dtype='>f2').reshape(2,2) and an int8 vector.
        let mut f16 = b"\x93NUMPY\x01\x00v\x00{'descr': '>f2', 'fortran_order': False, 'shape': (2, 2), }".to_vec();
        f16.resize(10 + 0x76 - 1, b' ');
        f16.push(b'\n');
        f16.extend_from_slice(&[0x00, 0x00, 0x3c, 0x00, 0x40, 0x00, 0x42, 0x00]);
        assert_eq!(parse(&f16).unwrap().data, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }

    #[test]
    fn rejects_bad_files() {
        let good = to_bytes(&[2, 2], &[1.0; 4]);
        assert!(parse(&good[..good.len() - 1]).unwrap_err().contains("needs 16 data bytes"));
        assert!(parse(b"hello world").unwrap_err().contains("magic"));
        // Header edits that keep its length.
        let edit = |from: &str, to: &str| -> Vec<u8> {
            assert_eq!(from.len(), to.len());
            let pos = good.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
            let mut b = good.clone();
            b[pos..pos + to.len()].copy_from_slice(to.as_bytes());
            b
        };
        let err = parse(&edit("(2, 2)", "(9, 9)")).unwrap_err();
        assert!(err.contains("needs 324 data bytes"), "{err}");
        let err = parse(&edit(&format!("(2, 2), }}{}", " ".repeat(28)), "(4294967296, 4294967296, 4294967296)}")).unwrap_err();
        assert!(err.contains("overflows"), "{err}");
        let err = parse(&edit("False", "True ")).unwrap_err();
        assert!(err.contains("Fortran"), "{err}");
        assert!(parse(&edit("<f4", "|O8")).unwrap_err().contains("unsupported dtype"));
    }

    #[test]
    fn files_are_checked_before_their_data_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        std::fs::write(&p, to_bytes(&[1, 2, 2, 1], &[0.5, -1.0, 2.0, 3.5])).unwrap();
        assert_eq!(read(&p).unwrap().data, [0.5, -1.0, 2.0, 3.5]);
        // A huge shape with a few bytes of data: refused from the file's length.
        let mut huge = to_bytes(&[1, 2, 2, 1], &[0.0; 4]);
        let pos = huge.windows(12).position(|w| w == b"(1, 2, 2, 1)").unwrap();
        huge[pos..pos + 12].copy_from_slice(b"(9999999999)");
        std::fs::write(&p, &huge).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.ends_with("not a usable .npy file: shape [9999999999] of '<f4' needs 39999999996 data bytes, the file has 16"), "{e}");
        // NaN and infinity are read as they are, and found by index.
        std::fs::write(&p, to_bytes(&[1, 2, 3], &[0.0, 1.0, 2.0, f32::INFINITY, f32::NAN, 5.0])).unwrap();
        let a = read(&p).unwrap();
        assert!(a.data[4].is_nan() && a.data[3] == f32::INFINITY);
        assert_eq!(a.non_finite(), Some(NonFinite { count: 2, first: vec![0, 1, 0], value: f32::INFINITY }));
        std::fs::write(&p, to_bytes(&[2], &[1.0, f32::NEG_INFINITY])).unwrap();
        assert_eq!(read(&p).unwrap().non_finite(), Some(NonFinite { count: 1, first: vec![1], value: f32::NEG_INFINITY }));
        assert_eq!(
            read(&p)
                .map(|mut a| {
                    a.data[1] = 0.0;
                    a.non_finite()
                })
                .unwrap(),
            None
        );
        // Not a regular file: never opened (a FIFO would block).
        let e = read(Path::new("/dev/null")).unwrap_err().to_string();
        assert_eq!(e, "/dev/null: is a device, not a regular file");
        assert!(read(dir.path()).is_err());
    }
}
