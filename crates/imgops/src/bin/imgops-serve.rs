//! Test helper: a request/response loop on stdin/stdout used by `tools/imgops_compare.py` to run
//! thousands of randomized comparisons against cv2 / Pillow / TF without fixture files.
//!
//! Request: 7 little-endian u64 (op, h, w, c, out_h, out_w, nbytes) followed by `nbytes`.
//! Response: u64 status (0 ok, 1 error), u64 nbytes, payload (output, or error text).
//! ops: 1 = resize_area_u8, 2 = resize_area_f64, 3 = pillow_bilinear_u8 (payload: the pixels);
//!      decoders (payload: u64 h, u64 w, then the RGB pixels): 4 = decode_jpeg_rgb ISLOW (Pillow),
//!      5 = decode_jpeg_tf IFAST, 8 = decode_jpeg_tf ISLOW, 6 = decode_png_rgb (Pillow),
//!      9 = decode_png_tf; 7 = decode_jpeg ISLOW native (Pillow mode; payload: h, w, channels,
//!      then the samples)
use imgops::jpeg::{self, Dct};
use std::io::{self, Read, Write};

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// `dims` as little-endian u64, then `data`.
fn with_dims(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = dims.iter().flat_map(|&d| (d as u64).to_le_bytes()).collect();
    v.extend_from_slice(data);
    v
}

fn rgb<E: ToString>(r: Result<jpeg::RgbImage, E>) -> Result<Vec<u8>, String> {
    r.map(|img| with_dims(&[img.height, img.width], &img.data)).map_err(|e| e.to_string())
}

fn run(op: u64, [h, w, c, oh, ow]: [usize; 5], data: &[u8]) -> Result<Vec<u8>, String> {
    let err = |e: imgops::ResizeError| e.to_string();
    match op {
        1 => imgops::resize_area_u8(data, h, w, c, oh, ow).map_err(err),
        2 => {
            let src: Vec<f64> = data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
            imgops::resize_area_f64(&src, h, w, c, oh, ow).map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect()).map_err(err)
        }
        3 => imgops::pillow_bilinear_u8(data, h, w, c, oh, ow).map_err(err),
        4 => rgb(jpeg::decode_jpeg_rgb(data, Dct::IntegerSlow)),
        5 => rgb(jpeg::decode_jpeg_tf(data, Dct::IntegerFast)),
        8 => rgb(jpeg::decode_jpeg_tf(data, Dct::IntegerSlow)),
        6 => rgb(imgops::png::decode_png_rgb(data)),
        9 => rgb(imgops::png::decode_png_tf(data)),
        7 => jpeg::decode_jpeg(data, Dct::IntegerSlow)
            .map(|img| with_dims(&[img.height, img.width, img.channels()], &img.data))
            .map_err(|e| e.to_string()),
        _ => Err(format!("unknown op {op}")),
    }
}

fn main() -> io::Result<()> {
    let mut inp = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    while let Ok(op) = read_u64(&mut inp) {
        let mut a = [0usize; 6];
        for v in a.iter_mut() {
            *v = read_u64(&mut inp)? as usize;
        }
        let [h, w, c, oh, ow, n] = a;
        let mut data = vec![0u8; n];
        inp.read_exact(&mut data)?;
        let (status, payload) = match run(op, [h, w, c, oh, ow], &data) {
            Ok(v) => (0u64, v),
            Err(e) => (1u64, e.into_bytes()),
        };
        out.write_all(&status.to_le_bytes())?;
        out.write_all(&(payload.len() as u64).to_le_bytes())?;
        out.write_all(&payload)?;
        out.flush()?;
    }
    Ok(())
}
