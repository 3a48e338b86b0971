//! Face crops as facenet makes them (`align_dataset_mtcnn.py` lines 100-129, `compare.py`
//! `load_and_align_data`).
//!
//! - The margin is split evenly (`margin / 2` on each side, float), clipped to the photo, and
//!   stored into an int32 box (truncation toward zero, as numpy's assignment does).
//! - The crop is `img[bb1:bb3, bb0:bb2]` with Python's slicing rules.
//! - It is resized as `misc.imresize(cropped, (size, size), interp='bilinear')` did: Pillow's
//!   `Image.resize(.., BILINEAR)` on the uint8 RGB crop (antialiased when shrinking), reproduced
//!   exactly by `imgops::pillow_bilinear_rgb8`.
//! - With one face per photo, facenet keeps the largest box penalized by twice the squared
//!   distance of its centre to the photo's centre ([`choose_face`]).

use super::Face;
use crate::error::{Error, Result};
use crate::photo::Rgb8;

/// How faces are cropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignOptions {
    /// Side of the square crop (facenet: 160).
    pub image_size: usize,
    /// Pixels added around the box in total, half on each side (facenet: 44).
    pub margin: f64,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions { image_size: 160, margin: 44.0 }
    }
}

impl AlignOptions {
    /// Checks the values, with the allowed ranges in the message.
    pub fn validate(&self) -> Result<()> {
        if !(1..=4096).contains(&self.image_size) {
            return Err(Error::invalid(format!("the crop size must be in 1..=4096 pixels, got {}", self.image_size)));
        }
        if !(self.margin >= 0.0 && self.margin <= 1e5) {
            return Err(Error::invalid(format!("the margin must be in 0..=100000 pixels, got {}", self.margin)));
        }
        Ok(())
    }
}

/// align_dataset_mtcnn.py's choice of one face among several: the index of the largest
/// `(x2 - x1) * (y2 - y1) - 2 * |centre - photo centre|²` (the first on ties).
pub fn choose_face(faces: &[Face], height: usize, width: usize) -> Option<usize> {
    let (cy, cx) = (height as f64 / 2.0, width as f64 / 2.0);
    let value = |f: &Face| {
        let [x1, y1, x2, y2] = f.bbox;
        let size = (x2 - x1) * (y2 - y1);
        let (ox, oy) = ((x1 + x2) / 2.0 - cx, (y1 + y2) / 2.0 - cy);
        size - (ox * ox + oy * oy) * 2.0
    };
    let mut best: Option<(usize, f64)> = None;
    for (i, f) in faces.iter().enumerate() {
        let v = value(f);
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// The int32 crop box `[x1, y1, x2, y2]` of `face` with `margin`, clipped to the photo.
pub fn crop_box(face: &Face, margin: f64, height: usize, width: usize) -> [i32; 4] {
    let [x1, y1, x2, y2] = face.bbox;
    let half = margin / 2.0;
    // numpy assigns floats into an int32 array by truncating toward zero.
    [(x1 - half).max(0.0) as i32, (y1 - half).max(0.0) as i32, (x2 + half).min(width as f64) as i32, (y2 + half).min(height as f64) as i32]
}

/// Python's `a[start:stop]` bounds on a sequence of `len`.
fn py_range(start: i32, stop: i32, len: usize) -> (usize, usize) {
    let len = len as i64;
    let norm = |v: i64| if v < 0 { (v + len).max(0) } else { v.min(len) };
    let (a, b) = (norm(start as i64), norm(stop as i64));
    (a as usize, b.max(a) as usize)
}

/// `img[bb1:bb3, bb0:bb2]`.
pub fn crop(img: &Rgb8, bb: [i32; 4]) -> Rgb8 {
    let (y0, y1) = py_range(bb[1], bb[3], img.height);
    let (x0, x1) = py_range(bb[0], bb[2], img.width);
    let mut data = Vec::with_capacity((y1 - y0) * (x1 - x0) * 3);
    for y in y0..y1 {
        data.extend_from_slice(&img.data[(y * img.width + x0) * 3..(y * img.width + x1) * 3]);
    }
    Rgb8 { height: y1 - y0, width: x1 - x0, data }
}

/// The aligned face: the crop of [`crop_box`], resized like `misc.imresize(.., 'bilinear')`.
/// Returns the crop box too (what `bounding_boxes.txt` records).
pub fn aligned(img: &Rgb8, face: &Face, opts: &AlignOptions) -> Result<(Rgb8, [i32; 4])> {
    opts.validate()?;
    let bb = crop_box(face, opts.margin, img.height, img.width);
    let c = crop(img, bb);
    if c.height == 0 || c.width == 0 {
        return Err(Error::invalid(format!(
            "the face at {:?} leaves an empty crop {bb:?} of the {}x{} photo",
            face.bbox, img.height, img.width
        )));
    }
    let s = opts.image_size;
    let data = imgops::pillow_bilinear_rgb8(&c.data, c.height, c.width, s, s).map_err(|e| Error::invalid(format!("crop resize: {e}")))?;
    Ok((Rgb8 { height: s, width: s, data }, bb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(b: [f64; 4]) -> Face {
        Face { bbox: b, score: 0.99, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn margin_is_clipped_and_truncated() {
        assert_eq!(crop_box(&face([10.7, 30.2, 50.9, 80.5]), 44.0, 100, 60), [0, 8, 60, 100]);
        assert_eq!(crop_box(&face([40.7, 30.2, 50.9, 60.5]), 44.0, 100, 100), [18, 8, 72, 82]);
    }

    #[test]
    fn choice_prefers_big_central_faces() {
        let faces = [face([0.0, 0.0, 30.0, 30.0]), face([40.0, 40.0, 60.0, 60.0]), face([70.0, 70.0, 99.0, 99.0])];
        assert_eq!(choose_face(&faces, 100, 100), Some(1));
        assert_eq!(choose_face(&[], 100, 100), None);
    }

    #[test]
    fn crops_follow_python_slices() {
        let img = Rgb8 { height: 4, width: 5, data: (0..60).map(|v| v as u8).collect() };
        let c = crop(&img, [1, 1, 3, 2]);
        assert_eq!((c.height, c.width), (1, 2));
        assert_eq!(c.data, vec![18, 19, 20, 21, 22, 23]);
        // A negative stop counts from the end, as numpy does.
        let c = crop(&img, [0, 0, -1, 4]);
        assert_eq!((c.height, c.width), (4, 4));
    }
}
