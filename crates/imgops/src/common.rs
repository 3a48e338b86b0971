//! Shared helpers: argument validation and fallible allocation.

use std::fmt;

/// Error returned by the resize functions for invalid arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeError {
    /// A dimension is zero.
    EmptyImage,
    /// The channel count is not supported by this function.
    UnsupportedChannels(usize),
    /// `src.len()` does not equal `h * w * c`.
    LengthMismatch {
        /// `h * w * c`.
        expected: usize,
        /// The buffer's length.
        actual: usize,
    },
    /// A dimension is too large (the reference libraries use 32-bit `int` sizes).
    TooLarge,
    /// The output buffer could not be allocated.
    OutOfMemory,
}

impl fmt::Display for ResizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResizeError::EmptyImage => write!(f, "image has a zero dimension"),
            ResizeError::UnsupportedChannels(c) => write!(f, "unsupported channel count {c}"),
            ResizeError::LengthMismatch { expected, actual } => {
                write!(f, "buffer has {actual} elements, expected {expected}")
            }
            ResizeError::TooLarge => write!(f, "image dimensions too large"),
            ResizeError::OutOfMemory => write!(f, "could not allocate the output buffer"),
        }
    }
}

impl std::error::Error for ResizeError {}

/// Largest accepted value for any of `h`, `w * c`, and the element count of an image.
/// OpenCV and Pillow keep these in C `int`s.
pub(crate) const MAX_DIM: usize = i32::MAX as usize;

/// Largest accepted number of elements of one image (1 GiB of u8): guards against absurd
/// allocations on hostile input; real photos are far smaller.
pub(crate) const MAX_ELEMS: usize = 1 << 30;

/// Validates `(h, w, c)` against a buffer length; returns the element count.
pub(crate) fn check_dims(len: usize, h: usize, w: usize, c: usize) -> Result<usize, ResizeError> {
    let n = check_out_dims(h, w, c)?;
    if len != n {
        return Err(ResizeError::LengthMismatch { expected: n, actual: len });
    }
    Ok(n)
}

/// Validates dimensions (no zero, within C `int` sizes and [`MAX_ELEMS`]); returns the element
/// count.
pub(crate) fn check_out_dims(h: usize, w: usize, c: usize) -> Result<usize, ResizeError> {
    if h == 0 || w == 0 {
        return Err(ResizeError::EmptyImage);
    }
    let row = w.checked_mul(c).ok_or(ResizeError::TooLarge)?;
    let n = row.checked_mul(h).ok_or(ResizeError::TooLarge)?;
    if h > MAX_DIM || row > MAX_DIM || n > MAX_ELEMS {
        return Err(ResizeError::TooLarge);
    }
    Ok(n)
}

/// `vec![value; n]` that reports allocation failure instead of aborting.
pub(crate) fn try_filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>, ResizeError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| ResizeError::OutOfMemory)?;
    v.resize(n, value);
    Ok(v)
}
