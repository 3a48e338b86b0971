//! PNG decoding (the `png` crate) converted to RGB8 exactly like Pillow 13's
//! `Image.open(f).convert("RGB")`.
//!
//! Pillow's PNG modes (`PngImagePlugin._MODES`) and what `convert("RGB")` does with them:
//! * gray 1/2/4/8-bit -> `"1"`/`"L"` (low bit depths scaled by 255/85/17) -> replicated;
//!   the `png` crate's `EXPAND` transformation scales with the same factors.
//! * gray 16-bit -> `"I;16"`; `I16_RGB` **clips** to 255 (`v > 255 ? 255 : v`), it does not
//!   scale: a 16-bit photo becomes almost white. Reproduced here (also with a tRNS chunk).
//! * RGB/RGBA/gray+alpha 16-bit -> 8-bit via the rawmodes `RGB;16B`, `RGBA;16B`, `LA;16B`,
//!   which keep the **high byte** (truncation, not rounding); alpha is then dropped.
//! * palette -> palette colours; RGBA/LA -> alpha dropped without premultiplication;
//!   `tRNS` transparency ignored. No colour management (gAMA/iCCP/sRGB ignored by both).
//!
//! Damaged files are judged the way Pillow's reader (`PngImagePlugin`) judges them:
//! * chunks *before* the first IDAT must be complete with correct CRCs (`_open` checks them:
//!   "broken PNG file");
//! * the image data is the concatenation of consecutive IDAT chunks, read without CRC checks,
//!   stopping at the first other chunk or at the end of the file; decoding fails only if the
//!   rows cannot all be produced from it (`image file is truncated`) or zlib reports corrupt
//!   data (including a wrong Adler-32 that is present);
//! * after the image, a missing IEND is fine, but a later chunk whose data is cut short is an
//!   error (`load_end` -> `_safe_read`: "Truncated File Read").
//!
//! To get exactly that from the `png` crate, the IDAT payload Pillow would see is re-wrapped into
//! a well-formed PNG (header chunks + one IDAT + IEND) before decoding.
//!
//! [`decode_png_tf`] gives `tf.io.decode_png(contents, channels=3)` (= `tf.io.decode_image` of a
//! PNG with `channels=3`, TF 2.21): the same pixels as Pillow except 16-bit grayscale, where TF
//! keeps the high byte of every sample like for all other 16-bit PNGs (checked on every PNG mode
//! in `testdata/png`). Damaged files are judged as for Pillow above (TF's libpng may be stricter
//! about checksums after the header chunks).

use std::fmt;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use png::{BitDepth, ColorType, Transformations};

pub use crate::jpeg::RgbImage;

/// PNG decoding failure, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PngError(pub String);

impl fmt::Display for PngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PNG decoding failed: {}", self.0)
    }
}

impl std::error::Error for PngError {}

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
/// Pillow's decompression-bomb error threshold (2 * Image.MAX_IMAGE_PIXELS).
const MAX_PIXELS: u64 = 2 * 89_478_485;

/// Whose 16-bit grayscale conversion to reproduce (the only difference between the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// Pillow's `I;16` -> RGB: clip to 255.
    Pillow,
    /// TF: the high byte.
    Tf,
}

/// Decode a PNG and convert like Pillow's `convert("RGB")` (see the module docs).
pub fn decode_png_rgb(bytes: &[u8]) -> Result<RgbImage, PngError> {
    decode(bytes, Flavour::Pillow)
}

/// Decode a PNG like `tf.io.decode_png(contents, channels=3)` (see the module docs).
pub fn decode_png_tf(bytes: &[u8]) -> Result<RgbImage, PngError> {
    decode(bytes, Flavour::Tf)
}

fn decode(bytes: &[u8], flavour: Flavour) -> Result<RgbImage, PngError> {
    let (normalized, complete) = pillow_view(bytes)?;
    // The png crate reports bad data as errors; catch_unwind is a second line of defence so a
    // bug in a dependency cannot take the caller down.
    let r = catch_unwind(AssertUnwindSafe(|| decode_inner(&normalized, flavour)))
        .map_err(|_| PngError("internal error in the PNG decoder".into()))?;
    // Image data that ends early (a cut file) is what Pillow calls a truncated image.
    r.map_err(|e| if !complete || e.0.contains("InsufficientInput") { PngError(format!("image file is truncated ({})", e.0)) } else { e })
}

/// What a PNG's `IHDR` chunk declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngHeader {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

/// Reads the signature and the `IHDR` chunk (which must come first, 13 bytes, correct CRC) and
/// returns the image size, without decoding or allocating: lets a caller refuse an image by its
/// size first.
pub fn read_png_header(bytes: &[u8]) -> Result<PngHeader, PngError> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(PngError("not a PNG file".into()));
    }
    let ihdr = bytes.get(8..8 + 4 + 4 + 13 + 4).ok_or_else(|| PngError("truncated PNG file".into()))?;
    if be32(ihdr) != 13 || &ihdr[4..8] != b"IHDR" {
        return Err(PngError("broken PNG file (the first chunk is not a 13-byte IHDR)".into()));
    }
    if crc32(&ihdr[4..21]) != be32(&ihdr[21..]) {
        return Err(PngError("broken PNG file (bad header checksum in \"IHDR\")".into()));
    }
    Ok(PngHeader { width: be32(&ihdr[8..]) as usize, height: be32(&ihdr[12..]) as usize })
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Pillow's `is_cid`: four bytes matching `\w` (ASCII letters, digits, underscore).
fn is_cid(t: &[u8]) -> bool {
    t.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The PNG as Pillow's reader sees it, re-wrapped as header chunks + one IDAT + IEND, and whether
/// its last IDAT chunk was complete.
fn pillow_view(bytes: &[u8]) -> Result<(Vec<u8>, bool), PngError> {
    let idat_pos = check_header_chunks(bytes)?;
    // ImageFile.load + PngImageFile.load_read: payloads of consecutive IDAT chunks.
    let mut payload = Vec::new();
    let mut pos = idat_pos;
    let mut complete = true;
    while let Some(head) = bytes.get(pos..pos + 8) {
        if &head[4..8] != b"IDAT" {
            break;
        }
        let len = be32(head) as usize;
        let start = pos + 8;
        let end = start.saturating_add(len);
        if end > bytes.len() {
            payload.extend_from_slice(&bytes[start.min(bytes.len())..]);
            complete = false;
            break;
        }
        payload.extend_from_slice(&bytes[start..end]);
        pos = end + 4; // the CRC is skipped, not checked
    }
    if complete {
        check_trailing_chunks(bytes, pos)?;
    }
    let mut out = Vec::with_capacity(idat_pos + payload.len() + 24);
    out.extend_from_slice(&bytes[..idat_pos]);
    push_chunk(&mut out, b"IDAT", &payload);
    push_chunk(&mut out, b"IEND", &[]);
    Ok((out, complete))
}

fn push_chunk(out: &mut Vec<u8>, ctype: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let body_start = out.len();
    out.extend_from_slice(ctype);
    out.extend_from_slice(data);
    let crc = crc32(&out[body_start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// `PngImageFile.load_end`: chunks after the image until IEND, a short header, or a bad chunk
/// type; a chunk whose data is cut short fails `_safe_read`.
fn check_trailing_chunks(bytes: &[u8], mut pos: usize) -> Result<(), PngError> {
    while let Some(head) = bytes.get(pos..pos + 8) {
        if !is_cid(&head[4..8]) || &head[4..8] == b"IEND" {
            return Ok(());
        }
        let end = (pos + 8).saturating_add(be32(head) as usize);
        if end > bytes.len() {
            return Err(PngError("Truncated File Read".into()));
        }
        pos = end + 4;
    }
    Ok(())
}

/// Pillow `PngImageFile._open`: signature, then every chunk up to the first IDAT must be
/// complete and carry a correct CRC. Returns the offset of the first IDAT chunk.
fn check_header_chunks(bytes: &[u8]) -> Result<usize, PngError> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(PngError("not a PNG file".into()));
    }
    let mut pos = 8;
    loop {
        let head = bytes.get(pos..pos + 8).ok_or_else(|| PngError("truncated PNG file".into()))?;
        let len = be32(head) as usize;
        let ctype = &head[4..8];
        if !is_cid(ctype) {
            return Err(PngError("broken PNG file (bad chunk type)".into()));
        }
        if ctype == b"IDAT" {
            return Ok(pos);
        }
        let end = pos.checked_add(12).and_then(|e| e.checked_add(len)).ok_or_else(|| PngError("bad chunk length".into()))?;
        let whole = bytes.get(pos..end).ok_or_else(|| PngError("truncated PNG file".into()))?;
        let (body, crc_bytes) = whole[4..].split_at(whole.len() - 8);
        if crc32(body) != be32(crc_bytes) {
            return Err(PngError(format!("broken PNG file (bad header checksum in {:?})", String::from_utf8_lossy(ctype))));
        }
        if ctype == b"IEND" {
            return Err(PngError("no image data".into()));
        }
        pos = end;
    }
}

/// CRC-32 (IEEE), as used by PNG chunks.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn decode_inner(bytes: &[u8], flavour: Flavour) -> Result<RgbImage, PngError> {
    let err = |e: png::DecodingError| PngError(e.to_string());
    // Chunk CRCs are not checked past the header chunks (Pillow does not), but the zlib stream's
    // Adler-32 is (zlib does, inside Pillow's ZipDecode).
    let mut opts = png::DecodeOptions::default();
    opts.set_ignore_crc(true);
    opts.set_ignore_adler32(false);
    let mut decoder = png::Decoder::new_with_options(Cursor::new(bytes), opts);
    decoder.set_transformations(Transformations::EXPAND);
    decoder.set_limits(png::Limits { bytes: 1 << 30 });
    let mut reader = decoder.read_info().map_err(err)?;
    let (orig_color, orig_depth) = {
        let info = reader.info();
        (info.color_type, info.bit_depth)
    };
    let (w, h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(PngError(format!("image too large: {w}x{h}")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| PngError("image too large".into()))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size).map_err(|_| PngError("out of memory".into()))?;
    buf.resize(size, 0);
    let out_info = reader.next_frame(&mut buf).map_err(err)?;
    let line = out_info.line_size;
    let (ct, depth) = (out_info.color_type, out_info.bit_depth);
    let channels = match ct {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => return Err(PngError("unexpected indexed output".into())),
    };
    let bps = match depth {
        BitDepth::Eight => 1,
        BitDepth::Sixteen => 2,
        _ => return Err(PngError("unexpected bit depth after expansion".into())),
    };
    // A 16-bit grayscale source (with or without tRNS) is Pillow mode "I;16": clip.
    let gray16_clip = flavour == Flavour::Pillow && orig_color == ColorType::Grayscale && orig_depth == BitDepth::Sixteen;
    let mut out = Vec::new();
    out.try_reserve_exact(w * h * 3).map_err(|_| PngError("out of memory".into()))?;
    for y in 0..h {
        let row = buf.get(y * line..y * line + w * channels * bps).ok_or_else(|| PngError("short image data".into()))?;
        for px in row.chunks_exact(channels * bps) {
            // Sample k of the pixel as Pillow's 8-bit value.
            let sample = |k: usize| -> u8 {
                if bps == 1 {
                    px[k]
                } else if gray16_clip {
                    let v = u16::from_be_bytes([px[2 * k], px[2 * k + 1]]);
                    v.min(255) as u8
                } else {
                    px[2 * k] // high byte of the big-endian sample
                }
            };
            match channels {
                1 | 2 => {
                    let v = sample(0);
                    out.extend_from_slice(&[v, v, v]);
                }
                _ => out.extend_from_slice(&[sample(0), sample(1), sample(2)]),
            }
        }
    }
    Ok(RgbImage { width: w, height: h, data: out })
}
