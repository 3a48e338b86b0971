//! TF ↔ tch tensor layouts, decided in one place.
//!
//! TF stores conv kernels HWIO (`[height, width, in, out]`) and fully connected kernels `[in, out]`;
//! libtorch wants OIHW and `[out, in]`. Every other tensor (biases, batch-norm parameters, …) is the
//! same in both. A tensor's layout is decided by its TF name and rank: `…/weights` (slim) or
//! `…/kernel` (Keras) of rank 4 or 2.

/// How a tensor is rearranged from TF's layout into tch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Same in both.
    Same,
    /// HWIO → OIHW: axes (3, 2, 0, 1).
    ConvKernel,
    /// `[in, out]` → `[out, in]`.
    DenseKernel,
}

impl Layout {
    /// The layout change for the TF variable `name` of rank `rank`.
    pub fn of(name: &str, rank: usize) -> Layout {
        let leaf = name.rsplit('/').next().unwrap_or(name);
        match (leaf, rank) {
            ("weights" | "kernel", 4) => Layout::ConvKernel,
            ("weights" | "kernel", 2) => Layout::DenseKernel,
            _ => Layout::Same,
        }
    }

    /// The axis order taking a TF-layout tensor to tch's (`out[i] = in[perm[i]]`).
    pub fn to_torch_perm(self) -> Option<&'static [usize]> {
        match self {
            Layout::Same => None,
            Layout::ConvKernel => Some(&[3, 2, 0, 1]),
            Layout::DenseKernel => Some(&[1, 0]),
        }
    }

    /// The axis order taking a tch-layout tensor back to TF's.
    pub fn to_tf_perm(self) -> Option<&'static [usize]> {
        match self {
            Layout::Same => None,
            Layout::ConvKernel => Some(&[2, 3, 1, 0]),
            Layout::DenseKernel => Some(&[1, 0]),
        }
    }

    /// A short description for file metadata.
    pub const DESCRIPTION: &'static str =
        "torch: conv kernels OIHW (TF HWIO permuted 3,2,0,1), fully connected [out, in] (TF [in, out] transposed), others as in TF";
}

/// `shape` permuted by `perm` (`out[i] = shape[perm[i]]`).
pub fn permute_shape<T: Copy>(shape: &[T], perm: Option<&[usize]>) -> Vec<T> {
    match perm {
        None => shape.to_vec(),
        Some(p) => p.iter().map(|&i| shape[i]).collect(),
    }
}

/// Permutes a row-major tensor of `shape` with `elem`-byte elements: the result has shape
/// `permute_shape(shape, perm)` and `out[j0, j1, …] = in[…]` with `j_k` indexing axis `perm[k]`.
///
/// The kernel layouts ([`Layout`]) are done as tiled 2-D transposes of whole elements, so the
/// big nets' kernels (tens of MB) move at close to memory speed; other permutations take a
/// generic element-by-element path. `data.len()` must equal the product of `shape` times `elem`
/// (checked by the caller).
pub fn permute_bytes(data: &[u8], shape: &[usize], elem: usize, perm: &[usize]) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    if data.is_empty() {
        return out;
    }
    let done = match elem {
        4 => permute_fast::<u32>(data, &mut out, shape, perm),
        2 => permute_fast::<u16>(data, &mut out, shape, perm),
        8 => permute_fast::<u64>(data, &mut out, shape, perm),
        _ => false,
    };
    if !done {
        permute_generic(data, &mut out, shape, elem, perm);
    }
    out
}

/// An integer element type moved as a whole (every bit pattern is valid, so byte buffers may be
/// viewed as slices of it).
trait Elem: Copy {}
impl Elem for u16 {}
impl Elem for u32 {}
impl Elem for u64 {}

/// The two kernel layouts and their inverses, as strided 2-D copies; false when `perm` is
/// another permutation or the buffers are not aligned for `T`.
fn permute_fast<T: Elem>(data: &[u8], out: &mut [u8], shape: &[usize], perm: &[usize]) -> bool {
    // SAFETY: every bit pattern is a valid u16/u32/u64; `align_to` only yields the aligned middle.
    let (pre, src, post) = unsafe { data.align_to::<T>() };
    let (pre2, dst, post2) = unsafe { out.align_to_mut::<T>() };
    if !pre.is_empty() || !post.is_empty() || !pre2.is_empty() || !post2.is_empty() {
        return false;
    }
    match (shape, perm) {
        // HWIO -> OIHW: per (h, w), the [I, O] matrix goes to out[o, i, h, w].
        ([h, w, i, o], [3, 2, 0, 1]) => {
            let hw = h * w;
            for p in 0..hw {
                copy_2d(src, p * i * o, *o, 1, dst, p, hw, i * hw, *i, *o);
            }
            true
        }
        // OIHW -> HWIO: per (h, w), the [O, I] matrix (strides I*HW, HW) goes to out[h, w, i, o].
        ([o, i, h, w], [2, 3, 1, 0]) => {
            let hw = h * w;
            for p in 0..hw {
                copy_2d(src, p, i * hw, hw, dst, p * i * o, 1, *o, *o, *i);
            }
            true
        }
        ([r, c], [1, 0]) => {
            copy_2d(src, 0, *c, 1, dst, 0, 1, *r, *r, *c);
            true
        }
        _ => false,
    }
}

/// `dst[d0 + r*dr + c*dc] = src[s0 + r*sr + c*sc]` for `r < rows`, `c < cols`, in 32x32 tiles so
/// that both sides stay in cache whichever of them is strided.
#[allow(clippy::too_many_arguments)]
fn copy_2d<T: Copy>(src: &[T], s0: usize, sr: usize, sc: usize, dst: &mut [T], d0: usize, dr: usize, dc: usize, rows: usize, cols: usize) {
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let (s, d) = (s0 + r * sr, d0 + r * dr);
                for c in c0..(c0 + TILE).min(cols) {
                    dst[d + c * dc] = src[s + c * sc];
                }
            }
        }
    }
}

/// Any permutation, one element at a time (used for layouts without a fast path).
fn permute_generic(data: &[u8], out: &mut [u8], shape: &[usize], elem: usize, perm: &[usize]) {
    let rank = shape.len();
    let out_shape: Vec<usize> = perm.iter().map(|&i| shape[i]).collect();
    let mut in_strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        in_strides[k] = in_strides[k + 1] * shape[k + 1];
    }
    let walk: Vec<usize> = perm.iter().map(|&i| in_strides[i]).collect();
    let mut idx = vec![0usize; rank];
    for chunk in out.chunks_exact_mut(elem) {
        let src: usize = idx.iter().zip(&walk).map(|(i, w)| i * w).sum::<usize>() * elem;
        chunk.copy_from_slice(&data[src..src + elem]);
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_by_name_and_rank() {
        assert_eq!(Layout::of("resnet_v2_50/conv1/weights", 4), Layout::ConvKernel);
        assert_eq!(Layout::of("InceptionResnetV1/Bottleneck/weights", 2), Layout::DenseKernel);
        assert_eq!(Layout::of("resnet_v2_50/conv1/biases", 1), Layout::Same);
        assert_eq!(Layout::of("resnet_v2_50/postnorm/gamma", 1), Layout::Same);
        assert_eq!(Layout::of("weights_scalar/weights", 0), Layout::Same);
    }

    /// HWIO → OIHW on concrete values, checked element by element, and back.
    #[test]
    fn conv_kernel_permutation_on_values() {
        let (h, w, i, o) = (3usize, 2usize, 5usize, 4usize);
        let vals: Vec<f32> = (0..h * w * i * o).map(|v| v as f32).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let perm = Layout::ConvKernel.to_torch_perm().unwrap();
        let out = permute_bytes(&bytes, &[h, w, i, o], 4, perm);
        let got: Vec<f32> = out.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        for oo in 0..o {
            for ii in 0..i {
                for hh in 0..h {
                    for ww in 0..w {
                        let tf = vals[((hh * w + ww) * i + ii) * o + oo];
                        let torch = got[((oo * i + ii) * h + hh) * w + ww];
                        assert_eq!(tf, torch);
                    }
                }
            }
        }
        let back = permute_bytes(&out, &permute_shape(&[h, w, i, o], Some(perm)), 4, Layout::ConvKernel.to_tf_perm().unwrap());
        assert_eq!(back, bytes);
    }

    /// The fast paths agree with the generic element-by-element permutation, both directions,
    /// for every element size.
    #[test]
    fn fast_paths_equal_generic() {
        for elem in [1usize, 2, 4, 8] {
            for (shape, perm) in
                [(vec![3usize, 2, 37, 45], vec![3usize, 2, 0, 1]), (vec![45, 37, 3, 2], vec![2, 3, 1, 0]), (vec![70, 33], vec![1, 0])]
            {
                let n: usize = shape.iter().product::<usize>() * elem;
                let data: Vec<u8> = (0..n).map(|v| (v * 7 % 251) as u8).collect();
                let mut generic = vec![0u8; n];
                permute_generic(&data, &mut generic, &shape, elem, &perm);
                assert_eq!(permute_bytes(&data, &shape, elem, &perm), generic, "{shape:?} {perm:?} elem {elem}");
            }
        }
    }

    #[test]
    fn dense_transpose_large_tiles() {
        let (r, c) = (67usize, 45usize);
        let vals: Vec<u16> = (0..(r * c) as u16).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = permute_bytes(&bytes, &[r, c], 2, &[1, 0]);
        for i in 0..r {
            for j in 0..c {
                let got = u16::from_le_bytes([out[(j * r + i) * 2], out[(j * r + i) * 2 + 1]]);
                assert_eq!(got, vals[i * c + j]);
            }
        }
    }
}
