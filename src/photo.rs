//! Photos decoded exactly as the reference pipelines decode them, and image files found in folders.
//!
//! facenet reads photos with Pillow (`align_dataset_mtcnn.py`: `misc.imread`; `compare.py`:
//! `misc.imread(path, mode='RGB')`); TF-slim's and facenet's TF input pipelines with
//! `tf.image.decode_jpeg` / `tf.io.decode_image`. The two differ: TF's default JPEG inverse DCT is
//! the fast integer one (IFAST), Pillow's the accurate one (ISLOW); on real photos they disagree by
//! up to a few levels on most pixels. [`Decoder`] picks whose pixels to reproduce.
//!
//! The format is recognized by content (magic bytes, [`Format::sniff`]), never by the file name.
//!
//! | format | [`Decoder::Pillow`] (`Image.open(f).convert("RGB")`) | [`Decoder::Tf`] (`decode_image(channels=3)`), [`Decoder::TfAccurate`] |
//! |---|---|---|
//! | JPEG | `imgops` (libjpeg-turbo, ISLOW) | `imgops` (libjpeg-turbo, IFAST; ISLOW for `TfAccurate`) |
//! | PNG | `imgops` | `imgops`; differs from Pillow only for 16-bit gray |
//! | GIF, BMP, WebP, TIFF | the `image` crate, Pillow's conversions | the same, TF's conversions (TF cannot read TIFF) |
//!
//! Every row is bit-exact against the reference on the files of `tests/photo.rs` (real camera
//! JPEGs, every PNG mode, 24/32-bit and gray BMP, opaque and transparent GIF, lossy, lossless and
//! RGBA WebP, raw, LZW, gray, RGBA and 16-bit gray TIFF). What is reproduced:
//! - Grayscale is replicated to three channels, alpha is dropped without premultiplication,
//!   palettes are expanded, EXIF orientation is ignored (by both references).
//! - CMYK JPEGs: Pillow mode gives `convert("RGB")` (`compare.py`'s `imread(mode='RGB')`), TF mode
//!   TF's own integer formula. facenet's `align_dataset_mtcnn.py` (`imread` without a mode, then
//!   `img[:, :, 0:3]`) would instead keep Pillow's inverted C, M and Y planes as "RGB", which is
//!   not a picture; for every other JPEG and for L, RGB and RGBA PNGs the two facenet paths give
//!   the same array, the one returned here.
//! - 16 bits to 8: the high byte, except 16-bit grayscale in Pillow mode, which Pillow clips to
//!   255 (`I;16` → RGB): a 16-bit gray photo is nearly white in facenet, as here.
//! - Transparent GIF pixels: their palette colour in Pillow mode, 0 in TF mode (TF's GIF decoder).
//! - Where TF refuses what Pillow reads, TF mode decodes it as Pillow does rather than failing:
//!   TIFF files, and WebP files with alpha (`decode_image(channels=3)` refuses them).
//! - Damaged files: data that ends early is an error (as in Pillow and TF); corrupt JPEG entropy
//!   data that libjpeg decodes with a warning decodes here too, to the references' pixels.
//!
//! Before anything is decoded, the header's dimensions are checked against [`Limits`] (by default
//! 2^28 bytes of RGB, 1 GiB once converted to float32): a tiny file declaring a huge image is
//! refused without allocating its pixels. Paths that are not regular files (FIFOs, sockets,
//! devices) are refused without being opened, so a reader never blocks on them.

use crate::error::{Error, Result};
use std::collections::HashSet;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// An 8-bit RGB image, row-major HWC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `height * width * 3` bytes.
    pub data: Vec<u8>,
}

/// Whose decoder to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// Pillow 13 (facenet: `misc.imread`, `Image.open(..).convert("RGB")`): JPEGs with libjpeg's
    /// accurate integer DCT (ISLOW).
    Pillow,
    /// TensorFlow 2.21's `tf.io.decode_image` / `tf.image.decode_jpeg` with `channels=3` and the
    /// default `dct_method=""`: JPEGs with libjpeg's fast integer DCT (IFAST).
    Tf,
    /// TF's `tf.image.decode_jpeg(channels=3, dct_method="INTEGER_ACCURATE")` (ISLOW: the same
    /// pixels as Pillow on every valid JPEG but CMYK ones); other formats as [`Decoder::Tf`].
    TfAccurate,
}

/// An image file format, recognized by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `FF D8 FF`.
    Jpeg,
    /// `89 50 4E 47 0D 0A 1A 0A`.
    Png,
    /// `GIF87a` / `GIF89a`.
    Gif,
    /// `BM`.
    Bmp,
    /// `RIFF....WEBP`.
    WebP,
    /// `II*\0` / `MM\0*`.
    Tiff,
}

impl Format {
    /// The format `bytes` start like, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        let starts = |m: &[u8]| bytes.starts_with(m);
        if starts(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if starts(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(Format::Gif)
        } else if starts(b"BM") {
            Some(Format::Bmp)
        } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(Format::WebP)
        } else if starts(b"II*\0") || starts(b"MM\0*") {
            Some(Format::Tiff)
        } else {
            None
        }
    }

    /// The format's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::WebP => "WebP",
            Format::Tiff => "TIFF",
        }
    }

    /// The `image` crate's name for the formats it decodes here.
    fn image_format(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::Gif => image::ImageFormat::Gif,
            Format::Bmp => image::ImageFormat::Bmp,
            Format::WebP => image::ImageFormat::WebP,
            Format::Tiff => image::ImageFormat::Tiff,
        }
    }
}

/// The default [`Limits::max_rgb_bytes`]: 2^28 bytes of RGB (89 478 485 pixels, which is also
/// Pillow's `Image.MAX_IMAGE_PIXELS`), 1 GiB once converted to float32.
pub const DEFAULT_MAX_RGB_BYTES: u64 = 1 << 28;

/// Size limits checked before any pixel memory is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decoded image accepted, in bytes of 8-bit RGB (`width * height * 3`); the float32
    /// copy the models take is 4 times that.
    pub max_rgb_bytes: u64,
    /// Largest file read into memory (default: twice `max_rgb_bytes`, room for PNGs that do not
    /// compress and 16-bit samples).
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_rgb_bytes: DEFAULT_MAX_RGB_BYTES, max_file_bytes: 2 * DEFAULT_MAX_RGB_BYTES }
    }
}

/// Reads an image file as 8-bit RGB the way `decoder` does, within the default [`Limits`].
pub fn read_rgb8(path: &Path, decoder: Decoder) -> Result<Rgb8> {
    read_rgb8_with(path, decoder, &Limits::default())
}

/// Reads an image file as 8-bit RGB the way `decoder` does, refusing images beyond `limits`
/// before decoding them.
pub fn read_rgb8_with(path: &Path, decoder: Decoder, limits: &Limits) -> Result<Rgb8> {
    let bad = |reason: String| Error::bad_file(path, reason);
    let bytes = read_regular_file(path, limits.max_file_bytes)?;
    let Some(format) = Format::sniff(&bytes) else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!("not a JPEG, PNG, GIF, BMP, WebP or TIFF file (it starts with {})", head.join(" "))));
    };
    let (width, height) = dimensions(&bytes, format).map_err(|e| bad(format!("cannot read the {} header: {e}", format.name())))?;
    check_size(width, height, limits).map_err(bad)?;
    let rgb = decode(&bytes, format, decoder, limits).map_err(|e| bad(format!("cannot decode the {} image: {e}", format.name())))?;
    if (rgb.width, rgb.height) != (width, height) || rgb.data.len() != width * height * 3 {
        return Err(bad(format!(
            "the {} decoder returned a {}x{} image for a {width}x{height} header",
            format.name(),
            rgb.width,
            rgb.height
        )));
    }
    Ok(rgb)
}

/// The whole file, after checking (without opening it) that it is a regular file, not empty and
/// not larger than `max_bytes`.
fn read_regular_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::bad_file(path, format!("not a regular file ({}); not opened", kind_of(&meta.file_type()))));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // Checked again on the open file, in case the path was replaced in between.
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::bad_file(path, "empty file"));
    }
    if len > max_bytes {
        return Err(Error::bad_file(path, format!("the file has {len} bytes, more than the limit of {max_bytes} bytes for an image file")));
    }
    let mut bytes = Vec::new();
    let cannot = || Error::bad_file(path, format!("cannot allocate {len} bytes to read it"));
    bytes.try_reserve_exact(usize::try_from(len).map_err(|_| cannot())?).map_err(|_| cannot())?;
    file.take(max_bytes).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// What kind of file system object `t` is, for messages.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        } else if t.is_socket() {
            return "a socket";
        } else if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_dir() { "a folder" } else { "not a regular file" }
}

/// (width, height) from the header only.
fn dimensions(bytes: &[u8], format: Format) -> std::result::Result<(usize, usize), String> {
    match format {
        Format::Jpeg => imgops::jpeg::read_jpeg_header(bytes).map(|h| (h.width, h.height)).map_err(|e| e.to_string()),
        Format::Png => imgops::png::read_png_header(bytes).map(|h| (h.width, h.height)).map_err(|e| e.to_string()),
        _ => {
            let mut reader = image::ImageReader::new(Cursor::new(bytes));
            reader.set_format(format.image_format());
            reader.into_dimensions().map(|(w, h)| (w as usize, h as usize)).map_err(|e| e.to_string())
        }
    }
}

/// Refuses empty images and images whose RGB bytes exceed the limit.
fn check_size(width: usize, height: usize, limits: &Limits) -> std::result::Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("the header declares an empty {width}x{height} image"));
    }
    let rgb = (width as u64).saturating_mul(height as u64).saturating_mul(3);
    if rgb > limits.max_rgb_bytes {
        return Err(format!(
            "the image is {width}x{height} pixels: {rgb} bytes as RGB ({} as float32), more than the limit of {} bytes of RGB",
            rgb.saturating_mul(4),
            limits.max_rgb_bytes
        ));
    }
    Ok(())
}

fn decode(bytes: &[u8], format: Format, decoder: Decoder, limits: &Limits) -> std::result::Result<Rgb8, String> {
    use imgops::jpeg::{self, Dct};
    let rgb = |r: imgops::jpeg::RgbImage| Rgb8 { height: r.height, width: r.width, data: r.data };
    match (format, decoder) {
        (Format::Jpeg, Decoder::Pillow) => jpeg::decode_jpeg_rgb(bytes, Dct::IntegerSlow).map(rgb).map_err(|e| e.to_string()),
        (Format::Jpeg, Decoder::Tf) => jpeg::decode_jpeg_tf(bytes, Dct::IntegerFast).map(rgb).map_err(|e| e.to_string()),
        (Format::Jpeg, Decoder::TfAccurate) => jpeg::decode_jpeg_tf(bytes, Dct::IntegerSlow).map(rgb).map_err(|e| e.to_string()),
        (Format::Png, Decoder::Pillow) => imgops::png::decode_png_rgb(bytes).map(rgb).map_err(|e| e.to_string()),
        (Format::Png, Decoder::Tf | Decoder::TfAccurate) => imgops::png::decode_png_tf(bytes).map(rgb).map_err(|e| e.to_string()),
        (_, _) => decode_with_image_crate(bytes, format, decoder, limits),
    }
}

/// GIF (first frame), BMP, WebP and TIFF through the `image` crate, within `limits`, with the
/// references' conversions to 8-bit RGB where they differ from the crate's own.
fn decode_with_image_crate(bytes: &[u8], format: Format, decoder: Decoder, limits: &Limits) -> std::result::Result<Rgb8, String> {
    use image::DynamicImage as D;
    let mut reader = image::ImageReader::new(Cursor::new(bytes));
    reader.set_format(format.image_format());
    let mut l = image::Limits::default();
    // The decoders' own buffers (RGBA, 16-bit samples) can be larger than the RGB result.
    l.max_alloc = Some(limits.max_rgb_bytes.saturating_mul(4));
    reader.limits(l);
    let img = reader.decode().map_err(|e| e.to_string())?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let gray = |v: u8| [v, v, v];
    // 16-bit gray: Pillow's `I;16` -> RGB clips to 255; TF's convention (as for PNG) is the high
    // byte. 16-bit colour: the high byte (Pillow's and TF's `;16B` unpacking).
    let gray16 = |v: u16| gray(if decoder == Decoder::Pillow { v.min(255) as u8 } else { (v >> 8) as u8 });
    let data: Vec<u8> = match img {
        D::ImageLuma16(g) => g.pixels().flat_map(|p| gray16(p.0[0])).collect(),
        D::ImageLumaA16(g) => g.pixels().flat_map(|p| gray16(p.0[0])).collect(),
        D::ImageRgb16(c) => c.pixels().flat_map(|p| p.0.map(|v| (v >> 8) as u8)).collect(),
        D::ImageRgba16(c) => c.pixels().flat_map(|p| [p.0[0], p.0[1], p.0[2]].map(|v| (v >> 8) as u8)).collect(),
        // TF's GIF decoder leaves transparent pixels of the first frame at 0; Pillow (and the
        // crate) give them their palette colour.
        D::ImageRgba8(c) if format == Format::Gif && decoder != Decoder::Pillow => {
            c.pixels().flat_map(|p| if p.0[3] == 0 { [0, 0, 0] } else { [p.0[0], p.0[1], p.0[2]] }).collect()
        }
        other => other.into_rgb8().into_raw(),
    };
    Ok(Rgb8 { height, width, data })
}

/// File name endings of the images looked for in folders (compared without case). Files given
/// directly are decoded by content whatever their name.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"];

/// The image files [`collect_images`] found, and notes on what it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Files in input order; within a folder sorted by path. Each file once.
    pub files: Vec<PathBuf>,
    /// One line per skipped entry (links to folders already walked, the same file reached twice,
    /// FIFOs, sockets, devices, unreadable entries) and a count of files without an image name.
    pub notes: Vec<String>,
}

/// The image files of `inputs`: files as given, folders walked recursively for names ending in
/// one of [`IMAGE_EXTENSIONS`].
///
/// Links are followed, but every folder is walked once (a link to `.` or to a parent cannot
/// loop) and every file is listed once (the first path that reaches it, however many links or
/// inputs lead to it). Entries that are not regular files (FIFOs, sockets, devices) are skipped
/// with a note and never opened. Fails when an input does not exist, or yields no image file.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Collected> {
    let mut out = Collected::default();
    let mut seen_files = HashSet::new();
    let mut seen_dirs = HashSet::new();
    let mut ignored = 0usize;
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            let (notes_before, ignored_before) = (out.notes.len(), ignored);
            walk(input, &meta, &mut seen_dirs, &mut found, &mut out.notes, &mut ignored)?;
            if found.is_empty() {
                return Err(Error::bad_file(input, no_images(&out.notes[notes_before..], ignored - ignored_before)));
            }
            found.sort();
        } else if meta.is_file() {
            found.push((input.clone(), file_id(input, &meta)));
        } else {
            return Err(Error::bad_file(input, format!("not an image file or a folder ({}); not opened", kind_of(&meta.file_type()))));
        }
        for (path, id) in found {
            if seen_files.insert(id) {
                out.files.push(path);
            } else {
                out.notes
                    .push(format!("skipped {}: a file already listed (reached again through a link or another input)", path.display()));
            }
        }
    }
    if ignored > 0 {
        out.notes.push(format!("ignored {ignored} files in folders without an image name (.{})", IMAGE_EXTENSIONS.join(", .")));
    }
    Ok(out)
}

/// Why a folder gave no image: what was looked for, what was ignored, and what was skipped
/// (the first few notes).
fn no_images(skipped: &[String], ignored: usize) -> String {
    let mut why = format!("no image files in this folder or below it (looked for names ending in .{})", IMAGE_EXTENSIONS.join(", ."));
    if ignored > 0 {
        why.push_str(&format!("; {ignored} other files, without an image name"));
    }
    const SHOWN: usize = 3;
    for note in skipped.iter().take(SHOWN) {
        why.push_str("; ");
        why.push_str(note);
    }
    if skipped.len() > SHOWN {
        why.push_str(&format!("; and {} more skipped", skipped.len() - SHOWN));
    }
    why
}

/// Identity of a file or folder: device and inode.
#[cfg(unix)]
type FileId = (u64, u64);
/// Identity of a file or folder: the canonical path.
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(_path: &Path, meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(path: &Path, _meta: &std::fs::Metadata) -> FileId {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Walks `root` depth first in name order (so the result is in path order), each folder once.
fn walk(
    root: &Path,
    root_meta: &std::fs::Metadata,
    seen_dirs: &mut HashSet<FileId>,
    found: &mut Vec<(PathBuf, FileId)>,
    notes: &mut Vec<String>,
    ignored: &mut usize,
) -> Result<()> {
    if !seen_dirs.insert(file_id(root, root_meta)) {
        notes.push(format!("skipped {}: a folder already walked", root.display()));
        return Ok(());
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries = Vec::new();
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            // The input itself must be readable; folders below it are skipped with a note.
            Err(e) if dir == root => return Err(Error::io(&dir, e)),
            Err(e) => {
                notes.push(format!("skipped {}: {e}", dir.display()));
                continue;
            }
        };
        for entry in listing {
            match entry {
                Ok(e) => entries.push(e.path()),
                Err(e) => notes.push(format!("skipped an entry of {}: {e}", dir.display())),
            }
        }
        entries.sort();
        let mut subdirs = Vec::new();
        for path in entries {
            // Follows links: a link to a file is that file, a link to a folder that folder.
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    notes.push(format!("skipped {}: {e}", path.display()));
                    continue;
                }
            };
            if meta.is_dir() {
                if seen_dirs.insert(file_id(&path, &meta)) {
                    subdirs.push(path);
                } else {
                    notes.push(format!("skipped {}: a link to a folder already walked", path.display()));
                }
            } else if !meta.is_file() {
                notes.push(format!("skipped {}: {}, not a regular file", path.display(), kind_of(&meta.file_type())));
            } else if has_image_name(&path) {
                found.push((path.clone(), file_id(&path, &meta)));
            } else {
                *ignored += 1;
            }
        }
        // Popped in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

fn has_image_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(Format::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(Format::sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(Format::sniff(b"MM\0*"), Some(Format::Tiff));
        assert_eq!(Format::sniff(b"\x93NUMPY"), None);
        assert_eq!(Format::sniff(&[]), None);
    }

    #[test]
    fn size_limit_counts_rgb_bytes() {
        let limits = Limits { max_rgb_bytes: 300, max_file_bytes: 1000 };
        assert!(check_size(10, 10, &limits).is_ok());
        let msg = check_size(10, 11, &limits).unwrap_err();
        assert!(msg.contains("10x11") && msg.contains("330 bytes") && msg.contains("limit of 300"), "{msg}");
        assert!(check_size(0, 5, &limits).is_err());
        assert!(check_size(usize::MAX, usize::MAX, &limits).is_err());
    }
}
