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
/// Works by blocks so that the kernels of the big nets (tens of MB) move at memory speed.
/// `data.len()` must equal the product of `shape` times `elem` (checked by the caller).
pub fn permute_bytes(data: &[u8], shape: &[usize], elem: usize, perm: &[usize]) -> Vec<u8> {
    let rank = shape.len();
    debug_assert_eq!(perm.len(), rank);
    let out_shape: Vec<usize> = perm.iter().map(|&i| shape[i]).collect();
    // Strides of the input, in elements.
    let mut in_strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        in_strides[k] = in_strides[k + 1] * shape[k + 1];
    }
    // For each output axis, the input stride it walks.
    let walk: Vec<usize> = perm.iter().map(|&i| in_strides[i]).collect();
    let mut out = vec![0u8; data.len()];
    if data.is_empty() {
        return out;
    }
    // Output is written sequentially; the innermost output axis usually has a large input stride,
    // so tile the two innermost output axes to keep reads cache-friendly.
    const TILE: usize = 32;
    let outer: usize = out_shape[..rank.saturating_sub(2)].iter().product();
    let (rows, cols) = match rank {
        0 => (1, 1),
        1 => (1, out_shape[0]),
        _ => (out_shape[rank - 2], out_shape[rank - 1]),
    };
    let (row_walk, col_walk) = match rank {
        0 => (0, 0),
        1 => (0, walk[0]),
        _ => (walk[rank - 2], walk[rank - 1]),
    };
    let mut idx = vec![0usize; rank.saturating_sub(2)];
    for o in 0..outer {
        // Input offset of this outer index.
        let base: usize = idx.iter().zip(&walk).map(|(i, w)| i * w).sum();
        let out_base = o * rows * cols;
        for r0 in (0..rows).step_by(TILE) {
            for c0 in (0..cols).step_by(TILE) {
                for r in r0..(r0 + TILE).min(rows) {
                    for c in c0..(c0 + TILE).min(cols) {
                        let src = (base + r * row_walk + c * col_walk) * elem;
                        let dst = (out_base + r * cols + c) * elem;
                        out[dst..dst + elem].copy_from_slice(&data[src..src + elem]);
                    }
                }
            }
        }
        // Advance the outer multi-index (row-major over out_shape[..rank-2]).
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
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
