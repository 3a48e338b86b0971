//! `slimzoo::photo` against the references: every file of the on-demand reference set
//! (`tools/imgops_refs.py photos`: real camera JPEGs, the face photos, every PNG mode, BMP, GIF,
//! WebP, TIFF) decoded like Pillow (`Image.open(f).convert("RGB")`) and like TF
//! (`tf.image.decode_jpeg` with the fast and the accurate DCT, `tf.io.decode_image`), then the
//! limits, damaged and special files, and folder walking.

mod common;

use common::{repo, run_tf_tool};
use slimzoo::photo::{self, Decoder, Limits};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------------
// the largest single allocation made by the current thread (for "refused before allocating")
// ------------------------------------------------------------------------------------------------

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

// SAFETY: forwards to the system allocator; only records sizes in a const thread-local Cell (no
// allocation, no destructor).
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// `f()`, the largest single allocation it made on this thread, and how long it took.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    LARGEST.with(|m| m.set(0));
    let t = Instant::now();
    let r = f();
    (r, LARGEST.with(|m| m.get()), t.elapsed())
}

// ------------------------------------------------------------------------------------------------
// the reference set
// ------------------------------------------------------------------------------------------------

const PHOTO_REFS_VERSION: &str = "\"photo_refs_version\": 4";

/// `<cache>/photo`, made by `tools/imgops_refs.py photos` when missing; panics with the
/// generator's output when it cannot be made (these tests never pass without the references).
fn photo_refs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cache = std::env::var_os("SLIMZOO_REFS").map(PathBuf::from).unwrap_or_else(|| repo().join(".cache/refs"));
        let dir = cache.join("photo");
        let done = |d: &Path| std::fs::read_to_string(d.join("DONE")).is_ok_and(|s| s.contains(PHOTO_REFS_VERSION));
        if done(&dir) {
            return dir;
        }
        eprintln!("making the photo references (tools/imgops_refs.py photos)…");
        run_tf_tool(
            "imgops_refs.py",
            [std::ffi::OsStr::new("photos"), "--force".as_ref(), "--out".as_ref(), dir.as_os_str()],
            "the photo references",
        );
        assert!(done(&dir), "tools/imgops_refs.py photos ran but {} is incomplete", dir.display());
        dir
    })
}

fn decoder_of(key: &str) -> Decoder {
    match key {
        "pillow" => Decoder::Pillow,
        "tf" | "tf_fast" => Decoder::Tf,
        "tf_accurate" => Decoder::TfAccurate,
        other => panic!("unknown reference decoder '{other}'"),
    }
}

/// Per (format, reference decoder): files compared, files identical, the largest difference.
#[derive(Default)]
struct Tally(std::collections::BTreeMap<(String, String), (usize, usize, u8)>);

impl Tally {
    fn add(&mut self, format: &str, key: &str, got: &[u8], want: &[u8]) {
        let e = self.0.entry((format.to_string(), key.to_string())).or_default();
        e.0 += 1;
        let worst = got.iter().zip(want).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        e.1 += usize::from(worst == 0 && got.len() == want.len());
        e.2 = e.2.max(worst);
    }
}

#[test]
fn decodes_like_pillow_and_tensorflow() {
    let dir = photo_refs();
    let list: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("files.json")).unwrap()).unwrap();
    let blob = std::fs::read(dir.join("decoded.safetensors")).unwrap();
    let refs = safetensors::SafeTensors::deserialize(&blob).unwrap();
    let mut tally = Tally::default();
    let mut refused = 0;
    let mut inexact: Vec<String> = Vec::new();
    for e in list["files"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let format = e["format"].as_str().unwrap();
        let path = dir.join("files").join(file);
        for key in e["decoded"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            let want = refs.tensor(&format!("{file}/{key}")).unwrap();
            let got = photo::read_rgb8(&path, decoder_of(key)).unwrap_or_else(|err| panic!("{file} ({key} decodes it): {err}"));
            assert_eq!(want.shape(), [got.height, got.width, 3], "{file} ({key})");
            tally.add(format, key, &got.data, want.data());
            if got.data != want.data() {
                inexact.push(format!("{file} ({key})"));
            }
        }
        for (key, why) in e["errors"].as_object().unwrap() {
            let got = photo::read_rgb8(&path, decoder_of(key));
            if (file, key.as_str()) == ("formats/rgba_lossless.webp", "tf") {
                // TF's decode_image refuses channels=3 for a WebP with alpha; we drop the alpha
                // as for every other format (Pillow's pixels, checked above).
                assert!(why.as_str().is_some_and(|w| w.contains("channels")), "{why}");
                assert_eq!(got.unwrap(), photo::read_rgb8(&path, Decoder::Pillow).unwrap());
                continue;
            }
            assert!(got.is_err(), "{file}: {key} refuses it ({why}), we decoded it");
            refused += 1;
        }
    }
    for ((format, key), (n, exact, worst)) in &tally.0 {
        eprintln!("{format:5} {key:12} {n:3} files, {exact:3} identical, max |diff| {worst}");
    }
    let count = |format: &str| tally.0.iter().filter(|((f, _), _)| f == format).map(|(_, v)| v.0).sum::<usize>();
    // Real JPEGs (camera files, Pillow-, cjpeg- and jpegtran-made variants) and every PNG mode,
    // three decoders each for JPEG, two for PNG.
    assert!(count("jpeg") >= 3 * 30 && count("png") >= 2 * 25, "{:?}", tally.0);
    // The one file Pillow refuses (arithmetic coding across its 64 KiB read blocks) is refused too.
    assert_eq!(refused, 1);
    // Every decode bit for bit, the image crate's formats (BMP, GIF, WebP, TIFF) included.
    assert!(inexact.is_empty(), "not identical: {inexact:?}");
    assert!(count("bmp") + count("gif") + count("webp") + count("tiff") >= 12, "{:?}", tally.0);
}

#[test]
fn png_modes_differ_only_in_16_bit_gray() {
    let dir = photo_refs().join("files/png");
    let mut compared = 0;
    for name in ["l8.png", "la8.png", "rgba8.png", "rgba16.png", "rgb16.png", "p8.png", "p4_trns.png", "i16_gray.png", "g16_trns.png"] {
        let pillow = photo::read_rgb8(&dir.join(name), Decoder::Pillow).unwrap();
        let tf = photo::read_rgb8(&dir.join(name), Decoder::Tf).unwrap();
        // Pillow clips 16-bit gray (I;16) to 255, TF keeps the high byte (both checked against the
        // references above).
        assert_eq!(pillow == tf, !name.contains("16_") && !name.starts_with("i16"), "{name}");
        compared += 1;
    }
    assert_eq!(compared, 9);
}

// ------------------------------------------------------------------------------------------------
// limits, damaged files, special files
// ------------------------------------------------------------------------------------------------

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(&out[start..]);
    let crc = crc.sum();
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A valid-looking 8-bit RGB PNG header declaring `w` x `h`, with a few bytes of image data.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn huge_declared_images_are_refused_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.png");
    std::fs::write(&path, png_declaring(20000, 20000)).unwrap();
    let (r, largest, took) = measured(|| photo::read_rgb8(&path, Decoder::Pillow));
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("bomb.png") && msg.contains("20000x20000") && msg.contains("1200000000 bytes"), "{msg}");
    assert!(msg.contains(&format!("limit of {} bytes", photo::DEFAULT_MAX_RGB_BYTES)), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains("--"), "one line, no flag: {msg}");
    assert!(largest < 1 << 16, "refusing it allocated {largest} bytes at once");
    assert!(took < Duration::from_secs(1), "refusing it took {took:?}");

    // A real JPEG whose frame header is patched to 60000 x 60000 (libjpeg's limit is 65500):
    // refused from the header.
    let mut jpeg = std::fs::read(photo_refs().join("files/jpeg/tiny_17x9.jpg")).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline SOF0");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let path = tmp.path().join("huge.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    let (r, largest, _) = measured(|| photo::read_rgb8(&path, Decoder::Tf));
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("huge.jpg") && msg.contains("60000x60000"), "{msg}");
    assert!(largest < 1 << 16, "refusing it allocated {largest} bytes at once");

    // A BMP (decoded by the image crate) declaring 30000 x 30000, 24 bits.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0u8; 8]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&30000i32.to_le_bytes());
    bmp.extend_from_slice(&30000i32.to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0]);
    bmp.extend_from_slice(&[0u8; 24]);
    let path = tmp.path().join("huge.bmp");
    std::fs::write(&path, &bmp).unwrap();
    let msg = photo::read_rgb8(&path, Decoder::Pillow).unwrap_err().to_string();
    assert!(msg.contains("huge.bmp") && msg.contains("30000x30000"), "{msg}");
}

#[test]
fn limits_are_configurable() {
    let path = photo_refs().join("files/jpeg/tiny_17x9.jpg");
    let exact = Limits { max_rgb_bytes: 17 * 9 * 3, ..Limits::default() };
    assert_eq!(photo::read_rgb8_with(&path, Decoder::Pillow, &exact).unwrap().data.len(), 17 * 9 * 3);
    let smaller = Limits { max_rgb_bytes: 17 * 9 * 3 - 1, ..Limits::default() };
    let msg = photo::read_rgb8_with(&path, Decoder::Pillow, &smaller).unwrap_err().to_string();
    assert!(msg.contains("17x9") && msg.contains("limit of 458 bytes"), "{msg}");
    let short_file = Limits { max_file_bytes: 100, ..Limits::default() };
    let msg = photo::read_rgb8_with(&path, Decoder::Pillow, &short_file).unwrap_err().to_string();
    assert!(msg.contains("more than the limit of 100 bytes"), "{msg}");
}

#[test]
fn truncated_empty_and_foreign_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let refs = photo_refs().join("files");
    for (name, cut) in [("faces/obama2.jpg", 2), ("faces/astronaut.png", 2), ("jpeg/real_skimage_rocket.jpg", 10), ("png/rgb16.png", 3)] {
        let bytes = std::fs::read(refs.join(name)).unwrap();
        let path = tmp.path().join(Path::new(name).file_name().unwrap());
        std::fs::write(&path, &bytes[..bytes.len() * (cut - 1) / cut]).unwrap();
        for decoder in [Decoder::Pillow, Decoder::Tf, Decoder::TfAccurate] {
            let msg = photo::read_rgb8(&path, decoder).unwrap_err().to_string();
            assert!(msg.contains(&path.display().to_string()) && msg.contains("truncated"), "{name} ({decoder:?}): {msg}");
        }
    }
    let empty = tmp.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let msg = photo::read_rgb8(&empty, Decoder::Pillow).unwrap_err().to_string();
    assert_eq!(msg, format!("{}: empty file", empty.display()));
    let text = tmp.path().join("notes.png");
    std::fs::write(&text, b"hello, world").unwrap();
    let msg = photo::read_rgb8(&text, Decoder::Pillow).unwrap_err().to_string();
    assert!(msg.contains("not a JPEG, PNG, GIF, BMP, WebP or TIFF file (it starts with 68 65 6c 6c"), "{msg}");
    let missing = tmp.path().join("missing.jpg");
    assert!(photo::read_rgb8(&missing, Decoder::Pillow).unwrap_err().to_string().contains("missing.jpg"));
}

/// `f` on another thread, failing the test instead of hanging when it blocks.
fn within_seconds<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).expect("blocked: a FIFO was opened")
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success());
}

#[test]
fn fifos_and_sockets_are_skipped_never_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::copy(photo_refs().join("files/png/l8.png"), dir.join("a.png")).unwrap();
    mkfifo(&dir.join("b.png"));
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("c.jpg")).unwrap();
    let d = dir.clone();
    let found = within_seconds(10, move || photo::collect_images(&[d]).unwrap());
    assert_eq!(found.files, [dir.join("a.png")]);
    assert_eq!(found.notes.len(), 2, "{:?}", found.notes);
    assert!(found.notes[0].contains("b.png") && found.notes[0].contains("a FIFO"), "{:?}", found.notes);
    assert!(found.notes[1].contains("c.jpg") && found.notes[1].contains("a socket"), "{:?}", found.notes);
    // Given directly: refused without opening (opening a FIFO for reading would block).
    let fifo = dir.join("b.png");
    let msg = within_seconds(10, move || photo::read_rgb8(&fifo, Decoder::Pillow).unwrap_err().to_string());
    assert!(msg.contains("b.png") && msg.contains("not a regular file (a FIFO)"), "{msg}");
    let fifo = dir.join("b.png");
    let msg = within_seconds(10, move || photo::collect_images(&[fifo]).unwrap_err().to_string());
    assert!(msg.contains("b.png") && msg.contains("a FIFO"), "{msg}");
}

#[test]
fn symlink_cycles_end_and_list_each_image_once() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let png = photo_refs().join("files/png/l8.png");
    std::fs::copy(&png, root.join("a.png")).unwrap();
    std::fs::copy(&png, root.join("sub/b.PNG")).unwrap();
    std::fs::write(root.join("sub/readme.txt"), b"not an image").unwrap();
    symlink(".", root.join("l")).unwrap(); // to itself
    symlink("..", root.join("sub/up")).unwrap(); // to its parent
    symlink("sub", root.join("sub2")).unwrap(); // a second way into sub
    symlink("a.png", root.join("m.png")).unwrap(); // a link to a file already listed
    symlink("nowhere.png", root.join("z.png")).unwrap(); // dangling
    let r = root.clone();
    let found = within_seconds(10, move || photo::collect_images(&[r.clone(), r.join("a.png")]).unwrap());
    assert_eq!(found.files, [root.join("a.png"), root.join("sub/b.PNG")]);
    let notes = found.notes.join("\n");
    for skipped in ["photos/l: a link to a folder already walked", "sub/up: a link to a folder already walked", "sub2: a link"] {
        assert!(notes.contains(skipped), "{skipped} missing from:\n{notes}");
    }
    // m.png and the second input reach a.png again; z.png leads nowhere; readme.txt is ignored.
    assert_eq!(notes.matches("a file already listed").count(), 2, "{notes}");
    assert!(notes.contains("z.png") && notes.contains("ignored 1 files"), "{notes}");
    // Deterministic.
    let again = photo::collect_images(&[root.clone(), root.join("a.png")]).unwrap();
    assert_eq!(again, found);
}

#[test]
fn an_input_without_images_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let msg = photo::collect_images(std::slice::from_ref(&empty)).unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}: no image files in this folder", empty.display())), "{msg}");
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("labels.txt"), b"x").unwrap();
    std::fs::copy(photo_refs().join("files/png/l8.png"), tmp.path().join("one.png")).unwrap();
    // Every input must yield an image: the folder of text files is named.
    let msg = photo::collect_images(&[tmp.path().join("one.png"), other.clone()]).unwrap_err().to_string();
    assert!(msg.contains(&other.display().to_string()) && msg.contains("1 other files"), "{msg}");
    assert!(photo::collect_images(&[tmp.path().join("nothing")]).is_err());

    // The CLI says so and fails (classify used to print nothing and exit 0).
    let out = Command::new(env!("CARGO_BIN_EXE_slimzoo"))
        .args(["classify", "--weights"])
        .arg(repo().join("fixtures/tiny/v2"))
        .arg(&empty)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no image files in this folder"), "{err}");
}
