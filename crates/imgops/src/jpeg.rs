//! JPEG decoding with libjpeg-turbo (the copy vendored by `mozjpeg-sys`, used through its C API)
//! that reproduces what facenet (Pillow) and TF-slim (`tf.image.decode_jpeg`) see.
//!
//! * [`decode_jpeg`] returns the image in Pillow's native mode (`L`, `RGB` or `CMYK`) exactly as
//!   `np.array(Image.open(f))` would hold it (Pillow 13 / libjpeg-turbo, accurate integer DCT,
//!   fancy upsampling, block smoothing on, CMYK read with Adobe polarity = inverted bytes).
//! * [`decode_jpeg_rgb`] additionally applies Pillow's `convert("RGB")`.
//! * [`decode_jpeg_tf`] reproduces `tf.image.decode_jpeg(contents, channels=3)` (pass
//!   [`Dct::IntegerFast`] for TF's default `dct_method=""`, [`Dct::IntegerSlow`] for
//!   `dct_method="INTEGER_ACCURATE"`), including TF's CMYK -> RGB formula.
//!
//! EXIF orientation is ignored (as by both references). No function here panics or aborts on
//! any input: libjpeg's fatal errors (`error_exit`, which by default calls `exit()`) are routed
//! to a Rust callback that unwinds (`extern "C-unwind"`, the C code is built with
//! `-fexceptions` by `mozjpeg-sys`' `unwinding` feature) and are caught with `catch_unwind`.
//! This requires the default `panic = "unwind"` strategy; with `panic = "abort"` a corrupt file
//! would abort the process.
//!
//! Input handling follows each reference exactly:
//! * Pillow flavour: Pillow feeds libjpeg through a *suspending* source, 65536 bytes at a time
//!   (`ImageFile.load` + `JpegDecode.c`). That is emulated here chunk by chunk, so every
//!   outcome is Pillow's: data that ends before the decoder has finished is
//!   [`JpegError::Truncated`] (`OSError: image file is truncated`), and libjpeg's arithmetic
//!   decoder, which cannot suspend, fails on arithmetic-coded files whose entropy data crosses a
//!   chunk boundary (`OSError: broken data stream`), just as in Pillow.
//! * TF flavour: the whole buffer at once; any request for bytes past the end is an error
//!   (TF's source manager raises `JERR_FILE_READ`); libjpeg's own memory source would instead
//!   warn `JWRN_JPEG_EOF` ("Premature end of JPEG file") and fill the rest with gray, so that
//!   warning is turned into [`JpegError::Truncated`].
//!
//! Other libjpeg warnings (e.g. corrupt entropy data) are ignored, as both references do.
//!
//! Library versions: the C code is libjpeg-turbo 2.1 as vendored by mozjpeg-sys 2.2.3; Pillow
//! 13.0.0's wheel bundles libjpeg-turbo 3.2.0 and TF 2.21 a 2.1.x. For 8-bit baseline,
//! progressive and arithmetic JPEGs the decoders are identical. Known differences:
//! * libjpeg-turbo's SIMD IDCTs differ from its C IDCTs when coefficients are out of range,
//!   which only happens in corrupt files; Pillow and TF use SIMD, so build with the `simd`
//!   feature (default, needs `nasm`) to match them on corrupt files too.
//! * 3.x rejects a second SOF marker before reading it; emulated for the one place where the
//!   2.1 behaviour would change Pillow's verdict (a SOF marker at the very end of the data).
//! * 3.x decodes lossless JPEG (SOF3); 2.1 refuses it ("Unsupported JPEG process"), so such
//!   files (rare outside medical imaging) are an error here but decode in Pillow 13.

use std::ffi::c_ulong;
use std::fmt;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use mozjpeg_sys as ffi;
use mozjpeg_sys::{J_COLOR_SPACE, J_DCT_METHOD, jpeg_common_struct, jpeg_decompress_struct, jpeg_error_mgr};

/// True when libjpeg-turbo was built with its x86 SIMD kernels (the `simd` feature and `nasm`
/// at build time), as Pillow's and TF's copies are. Without them the C kernels decode every valid
/// JPEG to the same pixels; only corrupt files with out-of-range DCT coefficients can come out
/// differently from Pillow/TF (see the crate README).
pub const SIMD: bool = cfg!(imgops_simd);

/// Inverse-DCT algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dct {
    /// `JDCT_ISLOW`, accurate integer: Pillow's (libjpeg's) default, TF's `INTEGER_ACCURATE`.
    IntegerSlow,
    /// `JDCT_IFAST`, fast integer: TF's default (`dct_method=""` / `"INTEGER_FAST"`).
    IntegerFast,
}

/// Pillow image mode of a decoded JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 1 channel.
    L,
    /// 3 channels.
    Rgb,
    /// 4 channels, Adobe polarity as Pillow stores it (`rawmode "CMYK;I"`: libjpeg's bytes
    /// inverted).
    Cmyk,
}

impl Mode {
    /// Samples per pixel: 1, 3 or 4.
    pub fn channels(self) -> usize {
        match self {
            Mode::L => 1,
            Mode::Rgb => 3,
            Mode::Cmyk => 4,
        }
    }
}

/// A decoded image, interleaved, row-major, `height * width * mode.channels()` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Pillow's mode, which fixes the samples per pixel.
    pub mode: Mode,
    /// `height * width * mode.channels()` samples.
    pub data: Vec<u8>,
}

impl JpegImage {
    /// Samples per pixel (of [`JpegImage::mode`]).
    pub fn channels(&self) -> usize {
        self.mode.channels()
    }
}

/// An RGB8 image, interleaved, row-major, `height * width * 3` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `height * width * 3` bytes, R, G, B.
    pub data: Vec<u8>,
}

/// Decoding failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegError {
    /// The data ended before the image was complete.
    Truncated,
    /// libjpeg rejected the data (its message).
    Corrupt(String),
    /// A valid JPEG the reference refuses too (e.g. 2-component images in Pillow).
    Unsupported(String),
    /// Larger than the decompression-bomb limit of the reference.
    TooLarge {
        /// Columns the header declares.
        width: usize,
        /// Rows the header declares.
        height: usize,
    },
    /// Could not allocate the output.
    OutOfMemory,
}

impl fmt::Display for JpegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegError::Truncated => write!(f, "JPEG data is truncated"),
            JpegError::Corrupt(m) => write!(f, "corrupt JPEG data: {m}"),
            JpegError::Unsupported(m) => write!(f, "unsupported JPEG: {m}"),
            JpegError::TooLarge { width, height } => write!(f, "JPEG too large: {width}x{height}"),
            JpegError::OutOfMemory => write!(f, "out of memory"),
        }
    }
}

impl std::error::Error for JpegError {}

/// Pillow's decompression-bomb error threshold: `2 * Image.MAX_IMAGE_PIXELS` (89478485) pixels.
pub const PILLOW_MAX_PIXELS: u64 = 2 * 89_478_485;
/// TF refuses `height * width * num_components >= 2^29`.
const TF_MAX_SAMPLES: u64 = 1 << 29;

/// Decode like Pillow 13: `np.array(Image.open(io.BytesIO(bytes)))` (mode L, RGB or CMYK).
/// `Dct::IntegerSlow` is what Pillow uses.
pub fn decode_jpeg(bytes: &[u8], dct: Dct) -> Result<JpegImage, JpegError> {
    let raw = decode_pillow(bytes, dct)?;
    let mut data = raw.data;
    let mode = match raw.out_space {
        OutSpace::Gray => Mode::L,
        OutSpace::Rgb => Mode::Rgb,
        OutSpace::Cmyk => {
            // Pillow's unpacker "CMYK;I" stores 255 - value.
            data.iter_mut().for_each(|v| *v = 255 - *v);
            Mode::Cmyk
        }
    };
    Ok(JpegImage { width: raw.width, height: raw.height, mode, data })
}

/// Decode like Pillow 13 and convert like `Image.convert("RGB")`: L is replicated; CMYK uses
/// Pillow's `cmyk2rgb` (`r = clip(nk - muldiv255(c, nk))` with `nk = 255 - k`).
pub fn decode_jpeg_rgb(bytes: &[u8], dct: Dct) -> Result<RgbImage, JpegError> {
    let img = decode_jpeg(bytes, dct)?;
    let n = img.width * img.height;
    let mut out = Vec::new();
    out.try_reserve_exact(n * 3).map_err(|_| JpegError::OutOfMemory)?;
    match img.mode {
        Mode::Rgb => out.extend_from_slice(&img.data),
        Mode::L => img.data.iter().for_each(|&v| out.extend_from_slice(&[v, v, v])),
        Mode::Cmyk => {
            for px in img.data.chunks_exact(4) {
                let nk = 255 - px[3] as i32;
                for &c in &px[..3] {
                    out.push((nk - muldiv255(c as i32, nk)).clamp(0, 255) as u8);
                }
            }
        }
    }
    Ok(RgbImage { width: img.width, height: img.height, data: out })
}

/// Decode the way facenet's `align/align_dataset_mtcnn.py` reads a photo:
/// `img = misc.imread(path)` (= `np.array(Image.open(path))`), then `facenet.to_rgb(img)` for a
/// 2-D (grayscale) array and `img[:, :, 0:3]`. Identical to [`decode_jpeg_rgb`] except for CMYK
/// JPEGs, where this keeps Pillow's first three (inverted) CMYK channels instead of converting.
/// (`compare.py` uses `misc.imread(path, mode='RGB')`, i.e. [`decode_jpeg_rgb`].)
pub fn decode_jpeg_facenet_align(bytes: &[u8]) -> Result<RgbImage, JpegError> {
    let img = decode_jpeg(bytes, Dct::IntegerSlow)?;
    let c = img.channels();
    let mut out = Vec::new();
    out.try_reserve_exact(img.width * img.height * 3).map_err(|_| JpegError::OutOfMemory)?;
    if c == 1 {
        img.data.iter().for_each(|&v| out.extend_from_slice(&[v, v, v]));
    } else {
        img.data.chunks_exact(c).for_each(|px| out.extend_from_slice(&px[..3]));
    }
    Ok(RgbImage { width: img.width, height: img.height, data: out })
}

/// Pillow's `MULDIV255(a, b)`: `t = a*b + 128; ((t >> 8) + t) >> 8`.
#[inline]
fn muldiv255(a: i32, b: i32) -> i32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// Decode like `tf.image.decode_jpeg(bytes, channels=3, dct_method=...)` (TF 2.21,
/// `tensorflow/core/lib/jpeg/jpeg_mem.cc`): grayscale is expanded by libjpeg, CMYK/YCCK are
/// decoded to CMYK and converted with TF's integer formula (`r = k*c/255` when an Adobe APP14
/// marker is present, else `(255-k)*(255-c)/255`).
pub fn decode_jpeg_tf(bytes: &[u8], dct: Dct) -> Result<RgbImage, JpegError> {
    let raw = decode_tf(bytes, dct)?;
    match raw.out_space {
        OutSpace::Rgb => Ok(RgbImage { width: raw.width, height: raw.height, data: raw.data }),
        OutSpace::Cmyk => {
            let mut out = Vec::new();
            out.try_reserve_exact(raw.width * raw.height * 3).map_err(|_| JpegError::OutOfMemory)?;
            for px in raw.data.chunks_exact(4) {
                let k = px[3] as i32;
                for &c in &px[..3] {
                    let c = c as i32;
                    let v = if raw.saw_adobe { k * c / 255 } else { (255 - k) * (255 - c) / 255 };
                    out.push(v as u8);
                }
            }
            Ok(RgbImage { width: raw.width, height: raw.height, data: out })
        }
        OutSpace::Gray => Err(JpegError::Unsupported("unexpected grayscale output".into())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutSpace {
    Gray,
    Rgb,
    Cmyk,
}

struct Raw {
    width: usize,
    height: usize,
    out_space: OutSpace,
    saw_adobe: bool,
    data: Vec<u8>,
}

/// Error manager: libjpeg's struct first, so callbacks can recover the extra fields from
/// `cinfo.err`.
#[repr(C)]
struct ErrorMgr {
    pub_: jpeg_error_mgr,
    /// Turn `JWRN_JPEG_EOF` into an error (memory source, TF flavour).
    eof_is_fatal: bool,
}

/// Payload of the unwinds started in the libjpeg callbacks.
enum Unwind {
    Fatal(String),
    Truncated,
}

/// Replaces libjpeg's `error_exit` (which would print and call `exit()`): unwind to the
/// `catch_unwind` in [`run_guarded`] with the formatted message. `resume_unwind` does not run
/// the panic hook, so nothing is printed.
unsafe extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    let mut msg = String::from("libjpeg error");
    // SAFETY: `cinfo.err` points to our live ErrorMgr; format_message writes at most
    // JMSG_LENGTH_MAX (80) bytes, NUL terminated.
    if let Some(err) = unsafe { cinfo.err.as_ref() }
        && let Some(fmt) = err.format_message
    {
        let buf = [0u8; 80];
        unsafe { fmt(cinfo, &buf) };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        msg = String::from_utf8_lossy(&buf[..end]).into_owned();
    }
    resume_unwind(Box::new(Unwind::Fatal(msg)));
}

/// Replaces libjpeg's `emit_message`: counts warnings like the default handler and prints
/// nothing; "Premature end of JPEG file" becomes an unwind when `eof_is_fatal`.
unsafe extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, msg_level: c_int) {
    if msg_level >= 0 {
        return; // trace messages
    }
    // SAFETY: `cinfo.err` is the `pub_` field (offset 0) of our #[repr(C)] ErrorMgr.
    let em = unsafe { &mut *(cinfo.err as *mut ErrorMgr) };
    em.pub_.num_warnings += 1;
    if em.eof_is_fatal && em.pub_.msg_code == ffi::JWRN_JPEG_EOF as c_int {
        resume_unwind(Box::new(Unwind::Truncated));
    }
}

/// Owns an initialised decompressor (and the things its pointers refer to); destroys it on
/// drop, also while unwinding.
struct Decompressor {
    cinfo: Box<jpeg_decompress_struct>,
    /// Referenced by `cinfo.common.err`.
    _err: Box<ErrorMgr>,
    /// Referenced by `cinfo.src` in the Pillow flavour.
    _src: Option<Box<ChunkSource>>,
}

impl Decompressor {
    /// `jpeg_create_decompress` with our error manager.
    ///
    /// # Safety
    /// Must run inside [`run_guarded`] (libjpeg errors unwind).
    unsafe fn new(eof_is_fatal: bool) -> Decompressor {
        // SAFETY: plain C structs; jpeg_std_error fills in the error manager.
        let mut err: Box<ErrorMgr> = Box::new(ErrorMgr { pub_: unsafe { std::mem::zeroed() }, eof_is_fatal });
        unsafe { ffi::jpeg_std_error(&mut err.pub_) };
        err.pub_.error_exit = Some(error_exit);
        err.pub_.emit_message = Some(emit_message);
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut err.pub_;
        unsafe { ffi::jpeg_CreateDecompress(&mut *cinfo, ffi::JPEG_LIB_VERSION, std::mem::size_of::<jpeg_decompress_struct>()) };
        Decompressor { cinfo, _err: err, _src: None }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: created by jpeg_CreateDecompress; destroy is valid in any state, also after an
        // error_exit (that is how setjmp-based callers recover). The error manager and source
        // are dropped after this (field order).
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

/// Runs `f` and turns the unwinds of the libjpeg callbacks (and any panic) into errors.
fn run_guarded<T>(f: impl FnOnce() -> Result<T, JpegError>) -> Result<T, JpegError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => match payload.downcast::<Unwind>() {
            Ok(u) => Err(match *u {
                Unwind::Truncated => JpegError::Truncated,
                Unwind::Fatal(m) => JpegError::Corrupt(m),
            }),
            // A panic from Rust code (not expected): report it, never propagate.
            Err(_) => Err(JpegError::Corrupt("internal error while decoding".into())),
        },
    }
}

const JPEG_APP14: c_int = 0xEE;
const JPEG_SUSPENDED: c_int = 0;
const JPEG_HEADER_TABLES_ONLY: c_int = 2;
/// `ImageFile.MAXBLOCK`: Pillow reads and feeds the file in blocks of this size.
const PILLOW_BLOCK: usize = 65536;

/// Pillow's suspending source manager (`jpeg_buffer_src` in JpegDecode.c).
#[repr(C)]
struct ChunkSource {
    pub_: ffi::jpeg_source_mgr,
    /// Bytes still to skip (a marker skipped past the end of the current buffer).
    skip: usize,
}

unsafe extern "C-unwind" fn src_stub(_cinfo: &mut jpeg_decompress_struct) {}

/// Always suspend: the caller supplies more data on the next call.
unsafe extern "C-unwind" fn src_fill(_cinfo: &mut jpeg_decompress_struct) -> ffi::boolean {
    0
}

unsafe extern "C-unwind" fn src_skip(cinfo: &mut jpeg_decompress_struct, num_bytes: std::os::raw::c_long) {
    // SAFETY: `cinfo.src` is the `pub_` field (offset 0) of our #[repr(C)] ChunkSource.
    let src = unsafe { &mut *(cinfo.src as *mut ChunkSource) };
    let n = usize::try_from(num_bytes).unwrap_or(0);
    skip_in(src, n);
}

fn skip_in(src: &mut ChunkSource, n: usize) {
    if n > src.pub_.bytes_in_buffer {
        src.skip = n - src.pub_.bytes_in_buffer;
        // SAFETY: moves the pointer to one past the end of the current buffer.
        src.pub_.next_input_byte = unsafe { src.pub_.next_input_byte.add(src.pub_.bytes_in_buffer) };
        src.pub_.bytes_in_buffer = 0;
    } else {
        src.pub_.bytes_in_buffer -= n;
        // SAFETY: n <= bytes_in_buffer.
        src.pub_.next_input_byte = unsafe { src.pub_.next_input_byte.add(n) };
        src.skip = 0;
    }
}

/// State of Pillow's `ImagingJpegDecode` between calls.
enum PillowState {
    Header,
    Start,
    Scan { y: usize },
    Finish,
}

struct PillowDecoder {
    d: Decompressor,
    dct: Dct,
    state: PillowState,
    out_space: OutSpace,
    width: usize,
    height: usize,
    data: Vec<u8>,
}

enum Step {
    /// Suspended after consuming this many bytes of the buffer.
    Consumed(usize),
    Done,
}

impl PillowDecoder {
    /// One `decoder.decode(b)` call of `ImageFile.load`.
    ///
    /// # Safety
    /// Must run inside [`run_guarded`]; `buf` must stay alive and unmoved until the next call
    /// replaces `cinfo.src`'s pointers (libjpeg keeps no other pointer into it).
    unsafe fn decode(&mut self, buf: &[u8]) -> Result<Step, JpegError> {
        let cinfo = &mut *self.d.cinfo;
        let src_ptr = cinfo.src as *mut ChunkSource;
        // Bytes of `buf` libjpeg has consumed so far in this call.
        let consumed = |cinfo: &jpeg_decompress_struct| {
            // SAFETY: cinfo.src points to our live ChunkSource; no libjpeg call is in progress.
            let next = unsafe { (*cinfo.src).next_input_byte } as usize;
            next.saturating_sub(buf.as_ptr() as usize)
        };
        {
            // SAFETY: cinfo.src is our ChunkSource (set in decode_pillow); libjpeg is not running,
            // so this is the only live reference.
            let src = unsafe { &mut *src_ptr };
            src.pub_.next_input_byte = buf.as_ptr();
            src.pub_.bytes_in_buffer = buf.len();
            if src.skip > 0 {
                let n = src.skip;
                skip_in(src, n);
                if src.skip > 0 {
                    return Ok(Step::Consumed(buf.len()));
                }
            }
        }
        loop {
            match self.state {
                PillowState::Header => {
                    let mut ok;
                    loop {
                        ok = unsafe { ffi::jpeg_read_header(cinfo, 0) };
                        if ok != JPEG_HEADER_TABLES_ONLY {
                            break;
                        }
                    }
                    if ok == JPEG_SUSPENDED {
                        return Ok(Step::Consumed(consumed(cinfo)));
                    }
                    // JpegImagePlugin.SOF: the mode follows the number of components.
                    self.out_space = match cinfo.num_components {
                        1 => OutSpace::Gray,
                        3 => OutSpace::Rgb,
                        4 => OutSpace::Cmyk,
                        n => return Err(JpegError::Unsupported(format!("cannot handle {n}-layer images"))),
                    };
                    self.width = cinfo.image_width as usize;
                    self.height = cinfo.image_height as usize;
                    let pixels = self.width as u64 * self.height as u64;
                    if self.width == 0 || self.height == 0 || pixels > PILLOW_MAX_PIXELS {
                        return Err(JpegError::TooLarge { width: self.width, height: self.height });
                    }
                    cinfo.out_color_space = match self.out_space {
                        OutSpace::Gray => J_COLOR_SPACE::JCS_GRAYSCALE,
                        OutSpace::Rgb => J_COLOR_SPACE::JCS_RGB,
                        OutSpace::Cmyk => J_COLOR_SPACE::JCS_CMYK,
                    };
                    // jpeg_read_header reset the parameters to libjpeg's defaults (ISLOW, fancy
                    // upsampling, block smoothing), which is what Pillow decodes with.
                    cinfo.dct_method = dct_method(self.dct);
                    self.state = PillowState::Start;
                }
                PillowState::Start => {
                    if unsafe { ffi::jpeg_start_decompress(cinfo) } == 0 {
                        return Ok(Step::Consumed(consumed(cinfo)));
                    }
                    let oc = cinfo.output_components as usize;
                    if cinfo.output_width as usize != self.width
                        || cinfo.output_height as usize != self.height
                        || oc != ncomp_for(self.out_space)
                    {
                        return Err(JpegError::Corrupt("unexpected output geometry".into()));
                    }
                    let total =
                        (self.width * oc).checked_mul(self.height).ok_or(JpegError::TooLarge { width: self.width, height: self.height })?;
                    self.data.try_reserve_exact(total).map_err(|_| JpegError::OutOfMemory)?;
                    self.data.resize(total, 0);
                    self.state = PillowState::Scan { y: 0 };
                }
                PillowState::Scan { ref mut y } => {
                    let stride = self.width * ncomp_for(self.out_space);
                    while *y < self.height {
                        let row = &mut self.data[*y * stride..(*y + 1) * stride];
                        let mut ptr = row.as_mut_ptr();
                        // SAFETY: `row` holds one scanline of output_width * output_components.
                        if unsafe { ffi::jpeg_read_scanlines(cinfo, &mut ptr, 1) } != 1 {
                            return Ok(Step::Consumed(consumed(cinfo)));
                        }
                        *y += 1;
                    }
                    self.state = PillowState::Finish;
                }
                PillowState::Finish => {
                    // Pillow treats a suspended finish as done once every line is decoded.
                    if unsafe { ffi::jpeg_finish_decompress(cinfo) } == 0 {
                        // Pillow 13 bundles libjpeg-turbo 3.x, whose get_sof() rejects a second
                        // SOF marker before reading its parameters; the 2.1-based copy here
                        // first reads them and so suspends when the data ends inside them.
                        // libjpeg resumes right after the marker it suspended in.
                        let n = consumed(cinfo);
                        let marker = n.checked_sub(2).and_then(|k| buf.get(k..n));
                        if matches!(marker, Some(&[0xFF, code]) if is_sof(code)) {
                            return Err(JpegError::Corrupt("Invalid JPEG file structure: two SOF markers".into()));
                        }
                    }
                    return Ok(Step::Done);
                }
            }
        }
    }
}

/// Pillow flavour: `ImageFile.load`'s loop over 64 KiB blocks around `ImagingJpegDecode`.
fn decode_pillow(bytes: &[u8], dct: Dct) -> Result<Raw, JpegError> {
    // JpegImagePlugin._accept: the file must start with FF D8 FF.
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(JpegError::Corrupt("not a JPEG file".into()));
    }
    run_guarded(|| unsafe {
        let mut d = Decompressor::new(false);
        let mut src = Box::new(ChunkSource {
            pub_: ffi::jpeg_source_mgr {
                next_input_byte: std::ptr::null(),
                bytes_in_buffer: 0,
                init_source: Some(src_stub),
                fill_input_buffer: Some(src_fill),
                skip_input_data: Some(src_skip),
                resync_to_restart: Some(ffi::jpeg_resync_to_restart),
                term_source: Some(src_stub),
            },
            skip: 0,
        });
        d.cinfo.src = &mut src.pub_;
        d._src = Some(src);
        let mut dec = PillowDecoder { d, dct, state: PillowState::Header, out_space: OutSpace::Rgb, width: 0, height: 0, data: Vec::new() };
        let mut b: Vec<u8> = Vec::new();
        let mut pos = 0;
        loop {
            let end = (pos + PILLOW_BLOCK).min(bytes.len());
            let s = &bytes[pos..end];
            pos = end;
            if s.is_empty() {
                // "image file is truncated (N bytes not processed)"
                return Err(JpegError::Truncated);
            }
            b.extend_from_slice(s);
            match dec.decode(&b)? {
                Step::Done => break,
                Step::Consumed(n) => {
                    b.drain(..n.min(b.len()));
                }
            }
        }
        Ok(Raw { width: dec.width, height: dec.height, out_space: dec.out_space, saw_adobe: false, data: dec.data })
    })
}

/// SOF0..SOF15 marker codes (excluding DHT C4, JPG C8, DAC CC).
fn is_sof(code: u8) -> bool {
    (0xC0..=0xCF).contains(&code) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

fn dct_method(dct: Dct) -> J_DCT_METHOD {
    match dct {
        Dct::IntegerSlow => J_DCT_METHOD::JDCT_ISLOW,
        Dct::IntegerFast => J_DCT_METHOD::JDCT_IFAST,
    }
}

/// What a JPEG's frame header declares, read without decoding the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegHeader {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Colour components (1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK).
    pub components: usize,
}

/// Reads the markers up to the first scan (libjpeg's `jpeg_read_header` on the whole buffer, as
/// TF does) and returns the frame size, without allocating any pixel memory: lets a caller
/// refuse an image by its size before decoding it. Data that ends before the first scan is
/// [`JpegError::Truncated`].
pub fn read_jpeg_header(bytes: &[u8]) -> Result<JpegHeader, JpegError> {
    run_guarded(|| unsafe {
        let d = open_memory(bytes)?;
        let cinfo = &*d.cinfo;
        Ok(JpegHeader {
            width: cinfo.image_width as usize,
            height: cinfo.image_height as usize,
            components: cinfo.num_components.max(0) as usize,
        })
    })
}

/// A decompressor over the whole of `bytes` (libjpeg's memory source, premature end fatal) with
/// APP14 markers saved, after `jpeg_read_header`. TF's DecodeJpeg first classifies the data by
/// its magic number: JPEG is FF D8 FF.
///
/// # Safety
/// Must run inside [`run_guarded`]; `bytes` must outlive the returned decompressor.
unsafe fn open_memory(bytes: &[u8]) -> Result<Decompressor, JpegError> {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(JpegError::Corrupt("Unknown image file format".into()));
    }
    let len = c_ulong::try_from(bytes.len()).map_err(|_| JpegError::Unsupported("input too large".into()))?;
    // SAFETY: the caller runs this under run_guarded and keeps `bytes` alive.
    unsafe {
        let mut d = Decompressor::new(true);
        let cinfo = &mut *d.cinfo;
        ffi::jpeg_mem_src(cinfo, bytes.as_ptr(), len);
        ffi::jpeg_save_markers(cinfo, JPEG_APP14, 0xFFFF);
        ffi::jpeg_read_header(cinfo, 1);
        Ok(d)
    }
}

/// TF flavour: `UncompressLow` in tensorflow/core/lib/jpeg/jpeg_mem.cc with `channels=3`.
fn decode_tf(bytes: &[u8], dct: Dct) -> Result<Raw, JpegError> {
    run_guarded(|| unsafe {
        // The buffer outlives `d` (borrowed for the whole call).
        let mut d = open_memory(bytes)?;
        let cinfo = &mut *d.cinfo;

        let ncomp = cinfo.num_components;
        let width = cinfo.image_width as usize;
        let height = cinfo.image_height as usize;
        // Always 3 channels; CMYK/YCCK are decoded as CMYK and converted by the caller.
        let out_space = match cinfo.jpeg_color_space {
            J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK => OutSpace::Cmyk,
            _ => OutSpace::Rgb,
        };
        cinfo.out_color_space = match out_space {
            OutSpace::Cmyk => J_COLOR_SPACE::JCS_CMYK,
            _ => J_COLOR_SPACE::JCS_RGB,
        };
        cinfo.do_fancy_upsampling = 1;
        cinfo.scale_num = 1;
        cinfo.scale_denom = 1;
        cinfo.dct_method = dct_method(dct);
        let samples = width as u64 * height as u64 * ncomp.max(0) as u64;
        if width == 0 || height == 0 || samples >= TF_MAX_SAMPLES {
            return Err(JpegError::TooLarge { width, height });
        }
        let saw_adobe = saw_adobe_marker(cinfo);

        ffi::jpeg_start_decompress(cinfo);
        let oc = cinfo.output_components as usize;
        if cinfo.output_width as usize != width || cinfo.output_height as usize != height || oc != ncomp_for(out_space) {
            return Err(JpegError::Corrupt("unexpected output geometry".into()));
        }
        let stride = width * oc;
        let total = stride.checked_mul(height).ok_or(JpegError::TooLarge { width, height })?;
        let mut data: Vec<u8> = Vec::new();
        data.try_reserve_exact(total).map_err(|_| JpegError::OutOfMemory)?;
        data.resize(total, 0);
        for row in data.chunks_exact_mut(stride) {
            let mut ptr = row.as_mut_ptr();
            // SAFETY: `row` holds one scanline of output_width * output_components samples.
            if ffi::jpeg_read_scanlines(cinfo, &mut ptr, 1) != 1 {
                return Err(JpegError::Truncated);
            }
        }
        ffi::jpeg_finish_decompress(cinfo);
        Ok(Raw { width, height, out_space, saw_adobe, data })
    })
}

fn ncomp_for(s: OutSpace) -> usize {
    match s {
        OutSpace::Gray => 1,
        OutSpace::Rgb => 3,
        OutSpace::Cmyk => 4,
    }
}

/// libjpeg's `saw_Adobe_marker` (private in mozjpeg-sys): an APP14 marker of at least 12 bytes
/// starting with "Adobe" (jdmarker.c `examine_app14`).
///
/// # Safety
/// `cinfo` must have been through `jpeg_read_header` with APP14 markers saved.
unsafe fn saw_adobe_marker(cinfo: &jpeg_decompress_struct) -> bool {
    let mut m = cinfo.marker_list;
    while let Some(mk) = unsafe { m.as_ref() } {
        if c_int::from(mk.marker) == JPEG_APP14 && mk.data_length >= 12 {
            // SAFETY: data_length bytes are valid.
            let d = unsafe { std::slice::from_raw_parts(mk.data, mk.data_length as usize) };
            if &d[..5] == b"Adobe" {
                return true;
            }
        }
        m = mk.next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_jpeg(&[], Dct::IntegerSlow).is_err());
        assert!(decode_jpeg(b"not a jpeg at all", Dct::IntegerSlow).is_err());
        assert!(decode_jpeg(&[0xFF, 0xD8], Dct::IntegerSlow).is_err());
        assert!(decode_jpeg_tf(&[0xFF, 0xD8, 0xFF], Dct::IntegerFast).is_err());
    }
}
