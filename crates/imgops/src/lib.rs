//! Bit-exact image building blocks for reproducing facenet's face pipeline in Rust.
//!
//! * [`inter_area`]: OpenCV 4.x `cv2.resize(..., interpolation=cv2.INTER_AREA)` for `u8` and `f64`.
//! * [`pillow_bilinear`]: Pillow 13 `Image.resize(size, Image.BILINEAR)` for 8-bit RGB / L.
//! * [`jpeg`]: JPEG decoding through libjpeg-turbo (`mozjpeg-sys`) that matches Pillow
//!   (accurate integer DCT) or `tf.image.decode_jpeg` (fast integer DCT), returning `Result`s.
//! * [`png`]: PNG decoding (the `png` crate) converted like Pillow's `convert("RGB")`.

#![warn(missing_docs)]

mod common;
pub mod inter_area;
pub mod jpeg;
pub mod pillow_bilinear;
pub mod png;

pub use common::ResizeError;
pub use inter_area::{resize_area_f64, resize_area_u8};
pub use pillow_bilinear::{pillow_bilinear_rgb8, pillow_bilinear_u8};
