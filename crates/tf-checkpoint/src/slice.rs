//! Tensor shapes and slices shared by the V1 and V2 readers: shape validation with checked
//! arithmetic, `TensorSliceProto` resolution against a full shape (TF's
//! `TensorSlice::BuildTensorSlice` rules), coverage checks and copying a slice into the
//! row-major full tensor.
//!
//! An extent is either *full* (no length, or length -1; start must be 0) or *partial*
//! (start ≥ 0, length > 0, start + length ≤ dimension). The OrderedCode key of a slice encodes
//! full extents as `(0, -1)`.

use super::proto::{TensorShapeProto, TensorSliceProto};

/// TF's `TensorShape::MaxDimensions()`: a shape of higher rank is invalid (TF's own reader
/// aborts on one).
pub(crate) const MAX_RANK: usize = 254;

/// Validates a stored shape as TF's `TensorShape::IsValid` does: known rank, at most
/// [`MAX_RANK`] dimensions, none negative; and the element count must fit in u64.
pub(crate) fn validate_shape(shape: &TensorShapeProto) -> Result<Vec<u64>, String> {
    if shape.unknown_rank {
        return Err("the shape has an unknown rank".into());
    }
    if shape.dims.len() > MAX_RANK {
        return Err(format!("its shape has rank {}, more than TensorFlow's limit of {MAX_RANK}", shape.dims.len()));
    }
    let mut dims = Vec::with_capacity(shape.dims.len());
    for (i, &d) in shape.dims.iter().enumerate() {
        let d = u64::try_from(d).map_err(|_| format!("dimension {i} of the shape is negative ({d})"))?;
        dims.push(d);
    }
    if num_elements(&dims).is_none() {
        return Err(format!("the shape {dims:?} has more elements than fit in 64 bits"));
    }
    Ok(dims)
}

/// Product of the dimensions, `None` on overflow.
pub(crate) fn num_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// `numel × elem_size`, `None` on overflow.
pub(crate) fn byte_size(shape: &[u64], elem_size: usize) -> Option<u64> {
    num_elements(shape)?.checked_mul(elem_size as u64)
}

/// A slice resolved against the full shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slice {
    /// `(start, length)` per dimension, as in the OrderedCode key (full = `(0, -1)`).
    pub key_extents: Vec<(i64, i64)>,
    /// `(start, length)` per dimension, full extents resolved to `(0, dim)`.
    pub extents: Vec<(u64, u64)>,
}

impl Slice {
    /// Shape of the slice's own data.
    pub fn shape(&self) -> Vec<u64> {
        self.extents.iter().map(|e| e.1).collect()
    }

    /// Element count of the slice (fits: it is bounded by the validated full shape).
    pub fn num_elements(&self) -> u64 {
        self.extents.iter().try_fold(1u64, |acc, e| acc.checked_mul(e.1)).unwrap_or(u64::MAX)
    }

    /// Whether the slice covers the whole tensor.
    pub fn is_full(&self, shape: &[u64]) -> bool {
        self.extents.iter().zip(shape).all(|(&(s, l), &d)| s == 0 && l == d)
    }

    /// TF's slice notation, e.g. `0,4:-`.
    pub fn describe(&self) -> String {
        if self.key_extents.is_empty() {
            return "(scalar)".into();
        }
        self.key_extents.iter().map(|&(s, l)| if l == -1 { "-".to_string() } else { format!("{s},{l}") }).collect::<Vec<_>>().join(":")
    }
}

/// Resolves a stored slice against the (validated) full shape.
pub(crate) fn resolve_slice(shape: &[u64], proto: &TensorSliceProto) -> Result<Slice, String> {
    if proto.extents.len() != shape.len() {
        return Err(format!("a slice has {} extents but the tensor has rank {}", proto.extents.len(), shape.len()));
    }
    let mut key_extents = Vec::with_capacity(shape.len());
    let mut extents = Vec::with_capacity(shape.len());
    for (i, (e, &dim)) in proto.extents.iter().zip(shape).enumerate() {
        let length = e.length.unwrap_or(-1);
        if length == -1 && e.start == 0 {
            key_extents.push((0, -1));
            extents.push((0, dim));
            continue;
        }
        let (Ok(start), Ok(len)) = (u64::try_from(e.start), u64::try_from(length)) else {
            return Err(format!("slice extent {i} has start {} and length {length}", e.start));
        };
        if len == 0 || start.checked_add(len).is_none_or(|end| end > dim) {
            return Err(format!("slice extent {i} ({start}, length {len}) does not fit in dimension {dim}"));
        }
        key_extents.push((e.start, length));
        extents.push((start, len));
    }
    Ok(Slice { key_extents, extents })
}

/// More slices than this for one tensor are refused (the disjointness check is quadratic;
/// real partitioned variables have at most a few hundred).
pub(crate) const MAX_SLICES: usize = 10_000;

/// Checks that `slices` exactly tile the tensor: pairwise disjoint, element counts summing
/// to the tensor's.
pub(crate) fn check_coverage(shape: &[u64], slices: &[Slice]) -> Result<(), String> {
    if slices.len() > MAX_SLICES {
        return Err(format!("it has {} slices, more than the {MAX_SLICES} supported", slices.len()));
    }
    let total = num_elements(shape).unwrap_or(u64::MAX);
    let mut sum: u64 = 0;
    for s in slices {
        sum = sum.checked_add(s.num_elements()).ok_or("the slices hold more elements than fit in 64 bits")?;
    }
    if sum != total {
        return Err(format!("its {} slices hold {sum} elements, the tensor has {total}", slices.len()));
    }
    for (i, a) in slices.iter().enumerate() {
        for b in slices.iter().skip(i + 1) {
            let overlap = a.extents.iter().zip(&b.extents).all(|(&(s1, l1), &(s2, l2))| s1 < s2 + l2 && s2 < s1 + l1);
            if overlap {
                return Err(format!("slices {} and {} overlap", a.describe(), b.describe()));
            }
        }
    }
    Ok(())
}

/// Copies the row-major data of `slice` into the row-major full tensor `full`.
pub(crate) fn copy_slice(full: &mut [u8], shape: &[u64], slice: &Slice, src: &[u8], elem: usize) -> Result<(), String> {
    let rank = shape.len();
    let oob = || "slice copy out of bounds".to_string();
    if slice.extents.len() != rank {
        return Err(oob());
    }
    if rank == 0 {
        let dst = full.get_mut(..src.len()).ok_or_else(oob)?;
        dst.copy_from_slice(src);
        return Ok(());
    }
    if slice.extents.iter().any(|e| e.1 == 0) {
        // Nothing to copy (possible only with a zero-size dimension).
        return if src.is_empty() { Ok(()) } else { Err(oob()) };
    }
    // Row-major strides of the full tensor, in elements. With every slice length >= 1 every
    // dimension is >= 1, so these are bounded by the (validated) element count; checked anyway.
    let mut strides = vec![1u64; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].checked_mul(shape[d + 1]).ok_or_else(oob)?;
    }
    let inner = slice.extents[rank - 1].1;
    let run = usize::try_from(inner).ok().and_then(|n| n.checked_mul(elem)).ok_or_else(oob)?;
    if run == 0 {
        return Ok(());
    }
    // Iterate over every index of the outer rank-1 dimensions of the slice.
    let outer: Vec<u64> = slice.extents[..rank - 1].iter().map(|e| e.1).collect();
    let mut idx = vec![0u64; rank - 1];
    let mut src_pos = 0usize;
    loop {
        let mut off = Some(slice.extents[rank - 1].0);
        for d in 0..rank - 1 {
            off = off.and_then(|o| {
                let i = slice.extents[d].0.checked_add(idx[d])?;
                i.checked_mul(strides[d])?.checked_add(o)
            });
        }
        let start = off.and_then(|o| usize::try_from(o).ok()).and_then(|o| o.checked_mul(elem)).ok_or_else(oob)?;
        let dst = start.checked_add(run).and_then(|end| full.get_mut(start..end)).ok_or_else(oob)?;
        let s = src.get(src_pos..src_pos + run).ok_or_else(oob)?;
        dst.copy_from_slice(s);
        src_pos += run;
        // advance the odometer
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return if src_pos == src.len() { Ok(()) } else { Err(oob()) };
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < outer[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Extent;

    fn sl(extents: &[(i64, Option<i64>)]) -> TensorSliceProto {
        TensorSliceProto { extents: extents.iter().map(|&(start, length)| Extent { start, length }).collect() }
    }

    #[test]
    fn shapes() {
        let ok = TensorShapeProto { dims: vec![2, 0, 3], unknown_rank: false };
        assert_eq!(validate_shape(&ok).unwrap(), [2, 0, 3]);
        assert!(validate_shape(&TensorShapeProto { dims: vec![2, -1], unknown_rank: false }).unwrap_err().contains("negative"));
        assert!(validate_shape(&TensorShapeProto { dims: vec![1 << 40, 1 << 40], unknown_rank: false }).is_err());
        assert!(validate_shape(&TensorShapeProto { dims: vec![], unknown_rank: true }).is_err());
        assert_eq!(validate_shape(&TensorShapeProto { dims: vec![1; MAX_RANK], unknown_rank: false }).unwrap().len(), 254);
        let e = validate_shape(&TensorShapeProto { dims: vec![1; 100_000], unknown_rank: false }).unwrap_err();
        assert_eq!(e, "its shape has rank 100000, more than TensorFlow's limit of 254");
        assert!(validate_shape(&TensorShapeProto { dims: vec![1; 255], unknown_rank: false }).unwrap_err().contains("rank 255"));
        assert_eq!(byte_size(&[1 << 62], 8), None);
        assert_eq!(byte_size(&[], 4), Some(4));
    }

    #[test]
    fn slices_resolve_like_tf() {
        let s = resolve_slice(&[10, 5], &sl(&[(2, Some(3)), (0, None)])).unwrap();
        assert_eq!(s.key_extents, [(2, 3), (0, -1)]);
        assert_eq!(s.extents, [(2, 3), (0, 5)]);
        assert_eq!(s.describe(), "2,3:-");
        assert!(resolve_slice(&[10, 5], &sl(&[(0, Some(-1)), (0, Some(5))])).unwrap().is_full(&[10, 5]));
        assert!(resolve_slice(&[10], &sl(&[(3, None)])).is_err(), "full extent must start at 0");
        assert!(resolve_slice(&[10], &sl(&[(0, Some(0))])).is_err(), "zero length");
        assert!(resolve_slice(&[10], &sl(&[(-1, Some(2))])).is_err());
        assert!(resolve_slice(&[10], &sl(&[(8, Some(3))])).is_err());
        assert!(resolve_slice(&[10], &sl(&[(i64::MAX, Some(i64::MAX))])).is_err());
        assert!(resolve_slice(&[10, 2], &sl(&[(0, None)])).is_err(), "rank mismatch");
    }

    #[test]
    fn coverage() {
        let shape = [4u64, 6];
        let a = resolve_slice(&shape, &sl(&[(0, Some(3)), (0, Some(2))])).unwrap();
        let b = resolve_slice(&shape, &sl(&[(0, Some(3)), (2, Some(4))])).unwrap();
        let c = resolve_slice(&shape, &sl(&[(3, Some(1)), (0, None)])).unwrap();
        check_coverage(&shape, &[a.clone(), b.clone(), c.clone()]).unwrap();
        assert!(check_coverage(&shape, &[a.clone(), b.clone()]).is_err());
        let overlapping = resolve_slice(&shape, &sl(&[(2, Some(2)), (0, Some(2))])).unwrap();
        let rest = resolve_slice(&shape, &sl(&[(0, Some(2)), (0, Some(2))])).unwrap();
        assert!(check_coverage(&shape, &[a, overlapping, rest]).is_err());
        let many = vec![Slice { key_extents: vec![(0, 1)], extents: vec![(0, 1)] }; MAX_SLICES + 1];
        assert!(check_coverage(&[1], &many).unwrap_err().contains("10001 slices"));
        let _ = (b, c);
    }

    #[test]
    fn zero_size_dimension_before_huge_ones() {
        // Nothing to copy, and no overflow computing strides.
        let huge = [0u64, 1 << 40, 1 << 40];
        let full = Slice { key_extents: vec![(0, -1); 3], extents: vec![(0, 0), (0, 1 << 40), (0, 1 << 40)] };
        assert_eq!(full.num_elements(), 0);
        copy_slice(&mut [], &huge, &full, &[], 4).unwrap();
        assert!(copy_slice(&mut [], &huge, &full, &[1], 4).is_err());
    }

    #[test]
    fn copy_uneven_slices_in_two_dims() {
        // 4x6 tensor of u16 values r*10+c, split in 3 uneven slices.
        let shape = [4u64, 6];
        let val = |r: u64, c: u64| ((r * 10 + c) as u16).to_le_bytes();
        let specs = [[(0i64, Some(3i64)), (0, Some(2))], [(0, Some(3)), (2, Some(4))], [(3, Some(1)), (0, None)]];
        let mut full = vec![0u8; 4 * 6 * 2];
        for spec in specs {
            let s = resolve_slice(&shape, &sl(&spec)).unwrap();
            let mut src = Vec::new();
            for r in s.extents[0].0..s.extents[0].0 + s.extents[0].1 {
                for c in s.extents[1].0..s.extents[1].0 + s.extents[1].1 {
                    src.extend_from_slice(&val(r, c));
                }
            }
            copy_slice(&mut full, &shape, &s, &src, 2).unwrap();
        }
        let expected: Vec<u8> = (0..4).flat_map(|r| (0..6).flat_map(move |c| val(r, c))).collect();
        assert_eq!(full, expected);
        // wrong source size is an error, not a panic
        let s = resolve_slice(&shape, &sl(&[(0, Some(1)), (0, Some(1))])).unwrap();
        assert!(copy_slice(&mut full, &shape, &s, &[0; 3], 2).is_err());
        // scalar
        let mut one = [0u8; 4];
        copy_slice(&mut one, &[], &Slice { key_extents: vec![], extents: vec![] }, &[1, 2, 3, 4], 4).unwrap();
        assert_eq!(one, [1, 2, 3, 4]);
    }
}
