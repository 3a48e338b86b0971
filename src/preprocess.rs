//! The preprocessing each model family expects, with TF's arithmetic, on images decoded by
//! [`crate::photo`] (TF's decoder for slim's preprocessing, Pillow's for facenet's, as the caller
//! picks).
//!
//! - slim's ResNet v2 zoo weights: inception eval preprocessing (`inception_preprocessing.py`,
//!   `preprocess_for_eval`): RGB in [0, 1], `central_crop(0.875)`, bilinear resize (TF's legacy
//!   `resize_bilinear`, `align_corners=False`, no half-pixel centers) to the net's size (299 for
//!   the zoo), then `(x - 0.5) * 2` into [-1, 1].
//! - facenet: RGB in [0, 255], resized to 160x160 with the same TF bilinear resize when the image
//!   is not already that size (facenet's aligned crops are), then fixed standardization
//!   `(x - 127.5) / 128` (the 2018 models) or `prewhiten` (per-image standardization).
//!
//! Images are returned as HWC float32 (TF's layout); batches are stacked NHWC.

use crate::error::{Error, Result};
use crate::photo::{self, Decoder, Rgb8};
use std::path::Path;

/// How a model's inputs must be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessing {
    /// slim's inception eval preprocessing: central crop 0.875, bilinear resize, `[-1, 1]`.
    Inception,
    /// facenet's fixed standardization `(x - 127.5) / 128` on aligned 160x160 RGB faces.
    FacenetFixed,
    /// MTCNN's `(x - 127.5) * 0.0078125` (done by the face detector).
    Mtcnn,
    /// None known: the net takes prepared tensors.
    None,
}

impl Preprocessing {
    /// One line for people.
    pub fn describe(&self) -> &'static str {
        match self {
            Preprocessing::Inception => "inception: RGB [0,1], central crop 0.875, bilinear resize, then (x-0.5)*2 into [-1,1]",
            Preprocessing::FacenetFixed => "facenet fixed standardization: aligned RGB face, (x-127.5)/128",
            Preprocessing::Mtcnn => "MTCNN: RGB, (x-127.5)*0.0078125, x and y transposed (the face detector does it)",
            Preprocessing::None => "none: the net takes prepared tensors",
        }
    }

    /// The image side the published weights expect (slim's zoo ResNets were evaluated at 299).
    pub fn default_size(&self) -> usize {
        match self {
            Preprocessing::Inception => 299,
            Preprocessing::FacenetFixed => 160,
            Preprocessing::Mtcnn => 12,
            Preprocessing::None => 224,
        }
    }
}

/// An HWC float32 image.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// RGB, row-major HWC.
    pub data: Vec<f32>,
}

/// Decodes an image file like `decoder` ([`photo::read_rgb8`], default limits) to RGB with values
/// 0..=255 as float32 (grayscale is replicated, alpha dropped).
pub fn load_rgb(path: &Path, decoder: Decoder) -> Result<Image> {
    Image::from_rgb8(&photo::read_rgb8(path, decoder)?)
}

impl Image {
    /// The float32 copy (values 0..=255) of an 8-bit RGB image; fails instead of aborting when the
    /// memory cannot be had.
    pub fn from_rgb8(rgb: &Rgb8) -> Result<Image> {
        let mut data = Vec::new();
        data.try_reserve_exact(rgb.data.len()).map_err(|_| {
            Error::invalid(format!("cannot allocate {} bytes for a {}x{} float32 image", rgb.data.len() * 4, rgb.width, rgb.height))
        })?;
        data.extend(rgb.data.iter().map(|&v| f32::from(v)));
        Ok(Image { height: rgb.height, width: rgb.width, data })
    }

    /// TF's `tf.image.central_crop(image, fraction)`:
    /// `start = int((size - size * fraction) / 2)`, `extent = size - 2 * start`, per dimension.
    pub fn central_crop(&self, fraction: f64) -> Image {
        let start = |size: usize| ((size as f64 - size as f64 * fraction) / 2.0) as usize;
        let (top, left) = (start(self.height), start(self.width));
        let (h, w) = (self.height - 2 * top, self.width - 2 * left);
        let mut data = Vec::with_capacity(h * w * 3);
        for y in top..top + h {
            let row = (y * self.width + left) * 3;
            data.extend_from_slice(&self.data[row..row + w * 3]);
        }
        Image { height: h, width: w, data }
    }

    /// TF 1's `resize_bilinear(align_corners=False)` (`half_pixel_centers=False`): the source of
    /// output pixel `y` is `y * in / out`, interpolated between its floor and the next pixel
    /// (clamped at the edge).
    pub fn resize_bilinear(&self, out_h: usize, out_w: usize) -> Image {
        if (out_h, out_w) == (self.height, self.width) {
            return self.clone();
        }
        let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
            let scale = n_in as f32 / n_out as f32;
            (0..n_out)
                .map(|o| {
                    let src = o as f32 * scale;
                    let lo = (src.floor() as usize).min(n_in - 1);
                    let hi = (lo + 1).min(n_in - 1);
                    (lo, hi, src - lo as f32)
                })
                .collect()
        };
        let (ys, xs) = (taps(self.height, out_h), taps(self.width, out_w));
        let px = |y: usize, x: usize, c: usize| self.data[(y * self.width + x) * 3 + c];
        let mut data = Vec::with_capacity(out_h * out_w * 3);
        for &(y0, y1, dy) in &ys {
            for &(x0, x1, dx) in &xs {
                for c in 0..3 {
                    let top = px(y0, x0, c) + (px(y0, x1, c) - px(y0, x0, c)) * dx;
                    let bottom = px(y1, x0, c) + (px(y1, x1, c) - px(y1, x0, c)) * dx;
                    data.push(top + (bottom - top) * dy);
                }
            }
        }
        Image { height: out_h, width: out_w, data }
    }

    /// Every value through `f`.
    pub fn map(mut self, f: impl Fn(f32) -> f32) -> Image {
        self.data.iter_mut().for_each(|v| *v = f(*v));
        self
    }

    /// Mirrors left-right (facenet's `--use_flipped_images`).
    pub fn flip_left_right(&self) -> Image {
        let mut data = Vec::with_capacity(self.data.len());
        for y in 0..self.height {
            for x in (0..self.width).rev() {
                let p = (y * self.width + x) * 3;
                data.extend_from_slice(&self.data[p..p + 3]);
            }
        }
        Image { data, ..*self }
    }
}

/// slim's inception eval preprocessing of a 0..255 RGB image to `size`x`size` in [-1, 1].
pub fn inception_eval(img: &Image, size: usize) -> Image {
    img.clone().map(|v| v * (1.0 / 255.0)).central_crop(0.875).resize_bilinear(size, size).map(|v| (v - 0.5) * 2.0)
}

/// How facenet images are standardized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standardize {
    /// `(x - 127.5) / 128`, what the 2018 models were trained with.
    Fixed,
    /// facenet's `prewhiten`: `(x - mean) / max(std, 1/sqrt(N))` over the whole image, population
    /// std (= `tf.image.per_image_standardization`).
    Prewhiten,
}

/// facenet preprocessing of a 0..255 RGB image to `size`x`size`.
pub fn facenet(img: &Image, size: usize, how: Standardize) -> Image {
    let img = img.resize_bilinear(size, size);
    match how {
        Standardize::Fixed => img.map(|v| (v - 127.5) / 128.0),
        Standardize::Prewhiten => prewhiten(img),
    }
}

/// `facenet.prewhiten`, in f64 sums like numpy.
pub fn prewhiten(img: Image) -> Image {
    let n = img.data.len().max(1) as f64;
    let mean = img.data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = img.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt().max(1.0 / n.sqrt());
    img.map(|v| ((v as f64 - mean) / std) as f32)
}

/// Stacks same-sized images into an NHWC batch.
pub fn stack(images: &[Image]) -> Result<(Vec<usize>, Vec<f32>)> {
    let Some(first) = images.first() else {
        return Err(Error::invalid("no images to stack"));
    };
    let (h, w) = (first.height, first.width);
    if let Some(other) = images.iter().find(|i| (i.height, i.width) != (h, w)) {
        return Err(Error::invalid(format!("images of different sizes in one batch: {h}x{w} and {}x{}", other.height, other.width)));
    }
    Ok((vec![images.len(), h, w, 3], images.iter().flat_map(|i| i.data.iter().copied()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Image {
        Image { height: h, width: w, data: (0..h * w * 3).map(|v| (v % 256) as f32).collect() }
    }

    #[test]
    fn central_crop_matches_tf_rounding() {
        // 173 * 0.875 = 151.375 → start int(10.8125) = 10, extent 153.
        let c = ramp(173, 131).central_crop(0.875);
        assert_eq!((c.height, c.width), (153, 115));
        assert_eq!(c.data[0], ramp(173, 131).data[(10 * 131 + 8) * 3]);
    }

    #[test]
    fn resize_is_tf_legacy_bilinear() {
        // 1-D check: 4 → 3 samples sources 0, 4/3, 8/3.
        let img = Image { height: 1, width: 4, data: [0., 10., 20., 30.].iter().flat_map(|&v| [v, v, v]).collect() };
        let r = img.resize_bilinear(1, 3);
        let got: Vec<f32> = r.data.chunks(3).map(|c| c[0]).collect();
        assert_eq!(got.len(), 3);
        for (g, want) in got.iter().zip([0.0f32, 40.0 / 3.0, 80.0 / 3.0]) {
            assert!((g - want).abs() < 1e-4, "{got:?}");
        }
        // Upscaling clamps at the last pixel.
        let up = img.resize_bilinear(1, 8);
        assert_eq!(up.data[7 * 3], 30.0);
    }

    #[test]
    fn prewhiten_floors_std() {
        let flat = Image { height: 2, width: 2, data: vec![7.0; 12] };
        assert!(prewhiten(flat).data.iter().all(|&v| v == 0.0));
        let p = prewhiten(ramp(5, 7));
        let mean: f32 = p.data.iter().sum::<f32>() / p.data.len() as f32;
        assert!(mean.abs() < 1e-5);
    }

    #[test]
    fn flip_mirrors_columns() {
        let img = ramp(2, 3);
        let f = img.flip_left_right();
        assert_eq!(&f.data[0..3], &img.data[6..9]);
        assert_eq!(f.flip_left_right(), img);
    }
}
