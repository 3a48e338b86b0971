//! Rows for the subcommands that read images (`classify`, `features`, `embed`, `compare`,
//! `detect`, `align`, the last two also as `embed --detect` and `compare --detect`): broken and
//! hostile image files, odd but valid ones that must work, odd folders, absurd options, outputs,
//! CSV quoting, NaN batches, concurrency and signals.
//!
//! The commands run the smallest nets that serve them: the tiny fixture ResNet for `classify`
//! and `features`, the shipped MTCNN for detection, facenet (a second to load) for `embed` and
//! `compare`, so the facenet trials give every broken file at once where they can.

use super::common::{face_reference, fixture, reference};
use super::{AsArg, Class, Inputs, Outcome, Trial, concurrency_trial, excerpt, f32_bytes, mkfifo, nothing_at, npy_bytes, signal_trial};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The image subcommands, as trial names spell them.
const COMMANDS: [&str; 8] = ["classify", "features", "embed", "compare", "detect", "align", "embed-detect", "compare-detect"];

/// The weights the commands run with.
struct Nets {
    /// The tiny fixture ResNet v2 (7 classes), for `classify` and `features`.
    tiny: PathBuf,
    /// facenet (a V2 checkpoint folder), for `embed` and `compare`.
    facenet: PathBuf,
}

/// `slimzoo CMD … EXTRA… INPUTS…` for one of [`COMMANDS`]; what it writes goes to the trial's
/// folder (`f.safetensors`, `aligned/`) unless `extra` has its own `-o`.
fn command(cmd: &str, nets: &Nets, inputs: &[&Path], extra: &[&dyn AsArg]) -> Vec<OsString> {
    let (name, detect) = cmd.split_once('-').map_or((cmd, false), |(n, _)| (n, true));
    let mut args: Vec<OsString> = vec![name.into()];
    match name {
        "classify" | "features" => args.extend(["--weights".into(), nets.tiny.clone().into()]),
        "embed" | "compare" => args.extend(["--weights".into(), nets.facenet.clone().into()]),
        _ => {}
    }
    let output = match name {
        "features" => Some("f.safetensors"),
        "align" => Some("aligned"),
        _ => None,
    };
    if let Some(o) = output.filter(|_| !extra.iter().any(|a| a.os() == "-o")) {
        args.extend(["-o".into(), o.into()]);
    }
    if detect {
        args.push("--detect".into());
    }
    args.extend(extra.iter().map(|a| a.os()));
    if name == "features" {
        args.push("--input".into());
    }
    args.extend(inputs.iter().map(|p| p.as_os_str().to_owned()));
    args
}

/// The trial `CMD/CASE`: [`command`] on `inputs`.
fn trial(cmd: &str, case: &str, nets: &Nets, inputs: &[&Path], extra: &[&dyn AsArg]) -> Trial {
    Trial::from_args(format!("{cmd}/{case}"), command(cmd, nets, inputs, extra))
}

/// The last component of `p`, for [`Trial::says`].
fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

// ------------------------------------------------------------------------------------------------
// generated images

/// PNG bytes: IHDR (`color` type, bit `depth`), PLTE when given, one IDAT holding `samples`
/// (rows unfiltered), IEND.
fn png_bytes(width: u32, height: u32, color: u8, depth: u8, samples: &[u8], palette: Option<&[u8]>) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = [width.to_be_bytes(), height.to_be_bytes()].concat();
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    if let Some(p) = palette {
        png_chunk(&mut out, b"PLTE", p);
    }
    let row = samples.len() / (height.max(1) as usize);
    let mut raw = Vec::new();
    for r in samples.chunks(row.max(1)) {
        raw.push(0);
        raw.extend_from_slice(r);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).expect("zlib");
    png_chunk(&mut out, b"IDAT", &z.finish().expect("zlib"));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// The offset of the first JPEG segment with `marker` (`FF marker`), walking the headers.
fn jpeg_segment(bytes: &[u8], marker: u8) -> usize {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        if bytes[at + 1] == marker {
            return at;
        }
        at += 2 + u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
    }
    panic!("no JPEG marker {marker:#x} in the fixture");
}

/// The image files of the trials.
struct Images {
    /// A 128x128 RGB PNG photo with one face (facenet's test astronaut, scaled down).
    face: PathBuf,
    /// Valid files every command must read: (case, file, whether align finds a face in it).
    valid: Vec<(&'static str, PathBuf, bool)>,
    /// The folder of `valid`.
    valid_dir: PathBuf,
    /// Broken or hostile files: (case, file).
    hostile: Vec<(&'static str, PathBuf)>,
    /// The folder of `hostile`.
    hostile_dir: PathBuf,
}

impl Images {
    fn new(inp: &Inputs) -> Images {
        let photo = face_reference().join("../photos/astronaut.png");
        let big = slimzoo::photo::read_rgb8(&photo, slimzoo::photo::Decoder::Pillow).expect("astronaut.png");
        let s = 128;
        let rgb = imgops::pillow_bilinear_rgb8(&big.data, big.height, big.width, s, s).expect("resize");
        let luma: Vec<u8> = rgb.chunks(3).map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as u8).collect();
        let wide = |v: &[u8]| -> Vec<u8> { v.iter().flat_map(|&x| (x as u16 * 257).to_be_bytes()).collect() };
        let rgba: Vec<u8> = rgb.chunks(3).enumerate().flat_map(|(i, p)| [p[0], p[1], p[2], 64 + (i % 192) as u8]).collect();
        let gray_palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
        let s = s as u32;
        let face = inp.write("img/face.png", &png_bytes(s, s, 2, 8, &rgb, None));
        let valid = vec![
            ("rgb16", inp.write("img/valid/face_rgb16.png", &png_bytes(s, s, 2, 16, &wide(&rgb), None)), true),
            ("gray", inp.write("img/valid/face_gray.png", &png_bytes(s, s, 0, 8, &luma, None)), true),
            // Pillow clips 16-bit gray to 255 (facenet sees a white picture): no face.
            ("gray16", inp.write("img/valid/face_gray16.png", &png_bytes(s, s, 0, 16, &wide(&luma), None)), false),
            ("rgba", inp.write("img/valid/face_rgba.png", &png_bytes(s, s, 6, 8, &rgba, None)), true),
            ("palette", inp.write("img/valid/face_palette.png", &png_bytes(s, s, 3, 8, &luma, Some(&gray_palette))), true),
            ("one_pixel", inp.write("img/valid/one_pixel.png", &png_bytes(1, 1, 2, 8, &[200, 30, 90], None)), false),
        ];

        let jpeg = std::fs::read(fixture("images/rgb_121x89.jpg")).expect("jpeg fixture");
        let png = std::fs::read(&face).expect("face");
        let mut huge_jpeg = jpeg.clone();
        let sof = jpeg_segment(&jpeg, 0xC0);
        huge_jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]); // 60000 x 60000
        let mut bad_marker = jpeg.clone();
        bad_marker[jpeg_segment(&jpeg, 0xC4) + 1] = 0x02;
        let mut bad_crc = png.clone();
        bad_crc[29] ^= 0xFF; // IHDR's CRC
        let hostile = vec![
            ("jpeg_truncated", inp.write("img/hostile/truncated.jpg", &jpeg[..jpeg.len() / 2])),
            ("jpeg_headers_only", inp.write("img/hostile/headers_only.jpg", &jpeg[..jpeg_segment(&jpeg, 0xDA) + 14])),
            ("jpeg_bad_marker", inp.write("img/hostile/bad_marker.jpg", &bad_marker)),
            ("jpeg_60000x60000", inp.write("img/hostile/huge.jpg", &huge_jpeg)),
            ("png_truncated", inp.write("img/hostile/truncated.png", &png[..png.len() / 2])),
            ("png_20000x20000", inp.write("img/hostile/huge.png", &png_bytes(20000, 20000, 2, 8, &[], None))),
            ("png_0x16", inp.write("img/hostile/empty_image.png", &png_bytes(0, 16, 2, 8, &[], None))),
            ("png_bad_crc", inp.write("img/hostile/bad_crc.png", &bad_crc)),
            ("png_no_idat", inp.write("img/hostile/no_idat.png", &png[..33])),
            ("garbage_named_jpg", inp.write("img/hostile/garbage.jpg", &[0x5a; 512])),
            ("bmp_magic_garbage", inp.write("img/hostile/garbage.bmp", &[b"BM".as_slice(), &[0xff; 60]].concat())),
            ("empty_file", inp.write("img/hostile/empty.png", b"")),
        ];
        Images { face, valid, valid_dir: inp.path("img/valid"), hostile, hostile_dir: inp.path("img/hostile") }
    }
}

// ------------------------------------------------------------------------------------------------
// rows

/// Every row of the image commands.
pub(super) fn rows(inp: &Inputs) -> Vec<Trial> {
    let nets = Nets { tiny: fixture("tiny/v2"), facenet: reference("facenet_512").join("20990101-000000") };
    let img = Images::new(inp);
    let mut rows = file_rows(&nets, &img);
    rows.extend(folder_rows(inp, &nets, &img));
    rows.extend(option_rows(inp, &nets, &img));
    rows.extend(output_rows(inp, &nets, &img));
    rows.extend(scenarios(inp, &nets, &img));
    rows
}

/// Broken files (an error naming each) and odd valid ones (they work).
fn file_rows(nets: &Nets, img: &Images) -> Vec<Trial> {
    let mut rows = Vec::new();
    // Each file through both decoders: TF's (classify, features) and Pillow's (detect, align).
    for (i, (case, file)) in img.hostile.iter().enumerate() {
        for cmd in [["classify", "features"][i % 2], ["detect", "align"][i % 2]] {
            rows.push(trial(cmd, case, nets, &[file], &[]).says(name_of(file)).keeps(file));
        }
    }
    // facenet loads once for all of them: each is skipped with its reason, then the error.
    for cmd in ["embed", "compare", "embed-detect", "compare-detect"] {
        let t = trial(cmd, "hostile_files", nets, &[&img.hostile_dir], &[]);
        rows.push(img.hostile.iter().fold(t, |t, (_, f)| t.says(format!("skipping {}", f.display()))));
    }
    for (case, file, face) in &img.valid {
        for cmd in ["classify", "features", "detect"] {
            rows.push(trial(cmd, case, nets, &[file], &[]).works());
        }
        let align = trial("align", case, nets, &[file], &[]);
        // A photo without a face is reported, not an error (issue #13).
        rows.push(if *face { align.works() } else { align.works().says("no face found in 1 photo") });
    }
    rows.push(trial("embed", "valid_files", nets, &[&img.valid_dir], &[]).works());
    rows.push(trial("compare-detect", "valid_files", nets, &[&img.valid_dir], &[]).works());
    rows
}

/// Odd folders and special files as image inputs.
fn folder_rows(inp: &Inputs, nets: &Nets, img: &Images) -> Vec<Trial> {
    let dir = |rel: &str| {
        let d = inp.path(rel);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    };
    let link = |target: &str, at: PathBuf| std::os::unix::fs::symlink(target, at).expect("symlink");
    let empty = dir("img/folders/empty");
    let no_images = dir("img/folders/no_images");
    std::fs::write(no_images.join("notes.txt"), "not an image").expect("write");
    std::fs::copy(&inp.good_npy, no_images.join("batch.npy")).expect("copy");
    std::fs::copy(&img.face, no_images.join("face_without_extension")).expect("copy");
    let loops = dir("img/folders/loops");
    link(".", loops.join("self"));
    link("../loops", loops.join("again"));
    link("b.png", loops.join("a.png"));
    link("a.png", loops.join("b.png"));
    let fifo_only = dir("img/folders/fifo");
    mkfifo(&fifo_only.join("b.png"));
    let dangling = dir("img/folders/dangling");
    link("nowhere.png", dangling.join("a.png"));
    // What the message must say: the folder has no image, and why.
    let mut cases: Vec<(&str, PathBuf, &str)> = vec![
        ("folder_empty", empty, "no image files"),
        ("folder_without_images", no_images, "3 other files, without an image name"),
        ("folder_symlink_loops", loops, "a.png: Too many levels of symbolic links"),
        ("folder_only_a_fifo", fifo_only.clone(), "b.png: a FIFO, not a regular file"),
        ("folder_dangling_link", dangling.clone(), "a.png: No such file or directory"),
        ("fifo_named_png", fifo_only.join("b.png"), "(a FIFO); not opened"),
    ];
    let mut rows = Vec::new();
    let locked = dir("img/folders/locked");
    // SAFETY: geteuid has no preconditions. Permissions do not stop root: those rows only run
    // for other users.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let file = locked.join("locked.png");
        std::fs::copy(&img.face, &file).expect("copy");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let sub = dir("img/folders/locked/sub");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        cases.push(("unreadable_file", file, "locked.png"));
        cases.push(("unreadable_folder", sub, "sub"));
    }
    // Every command gets the FIFOs (a reader would block); the other cases go to every other
    // command (they all list their inputs the same way).
    for (i, (case, path, says)) in cases.iter().enumerate() {
        let (skip, step) = if case.contains("fifo") { (0, 1) } else { (i % 2, 2) };
        for cmd in COMMANDS.iter().skip(skip).step_by(step) {
            rows.push(trial(cmd, case, nets, &[path], &[]).says(*says));
        }
    }
    let direct: [(&str, PathBuf, &str); 3] = [
        ("dangling_link", dangling.join("a.png"), "a.png"),
        ("dev_null", PathBuf::from("/dev/null"), "/dev/null"),
        ("missing_file", inp.path("img/nowhere/face.png"), "nowhere/face.png"),
    ];
    for (case, path, says) in &direct {
        for cmd in ["classify", "features", "embed", "align"] {
            rows.push(trial(cmd, case, nets, &[path], &[]).says(*says));
        }
    }
    // Loops and FIFOs beside images: the images are read, the rest skipped with a note.
    let loops_ok = dir("img/folders/loops_ok");
    link(".", loops_ok.join("self"));
    link("..", loops_ok.join("parent_is_walked_once"));
    std::fs::copy(&img.face, loops_ok.join("face.png")).expect("copy");
    let fifo_ok = dir("img/folders/fifo_ok");
    std::fs::copy(&img.face, fifo_ok.join("a.png")).expect("copy");
    mkfifo(&fifo_ok.join("b.png"));
    for cmd in ["classify", "detect"] {
        rows.push(trial(cmd, "folder_with_a_fifo", nets, &[&fifo_ok], &[]).works().says("FIFO"));
    }
    rows.push(trial("features", "folder_with_a_fifo", nets, &[&fifo_ok], &[]).works().says("FIFO"));
    rows.push(trial("detect", "folder_with_loops", nets, &[&inp.path("img/folders/loops_ok/self")], &[]).works().says("already walked"));
    rows
}

/// Absurd option values and weights: refused before any work, naming the option or file.
fn option_rows(inp: &Inputs, nets: &Nets, img: &Images) -> Vec<Trial> {
    let detection: [(&str, [&str; 2]); 14] = [
        ("min_size_0", ["--min-size", "0"]),
        ("min_size_-1", ["--min-size", "-1"]),
        ("min_size_1e308", ["--min-size", "1e308"]),
        ("min_size_nan", ["--min-size", "nan"]),
        ("factor_0", ["--factor", "0"]),
        ("factor_1", ["--factor", "1"]),
        ("factor_1.5", ["--factor", "1.5"]),
        ("factor_nan", ["--factor", "nan"]),
        ("thresholds_2,0,0", ["--thresholds", "2,0,0"]),
        ("thresholds_a,b", ["--thresholds", "a,b"]),
        ("thresholds_0.6,0.7", ["--thresholds", "0.6,0.7"]),
        ("batch_0", ["--batch", "0"]),
        ("batch_-1", ["--batch", "-1"]),
        ("batch_1000000000", ["--batch", "1000000000"]),
    ];
    let mut cases: Vec<(&str, &str, [&str; 2])> = detection.iter().map(|(n, o)| ("detect", *n, *o)).collect();
    for (cmd, case) in [("align", 3), ("align", 7), ("align", 9), ("embed-detect", 0), ("embed-detect", 6), ("compare-detect", 10)] {
        cases.push((cmd, detection[case].0, detection[case].1));
    }
    let sizes = [
        ("image_size_0", ["--image-size", "0"]),
        ("image_size_-1", ["--image-size", "-1"]),
        ("image_size_100000", ["--image-size", "100000"]),
    ];
    let margins = [("margin_-1", ["--margin", "-1"]), ("margin_nan", ["--margin", "nan"]), ("margin_1e20", ["--margin", "1e20"])];
    for cmd in ["align", "embed", "classify", "features"] {
        cases.extend(sizes.iter().map(|(n, o)| (cmd, *n, *o)));
    }
    cases.extend(margins.iter().map(|(n, o)| ("align", *n, *o)));
    cases.extend(margins.iter().map(|(n, o)| ("embed-detect", *n, *o)));
    cases.extend(detection[11..].iter().map(|(n, o)| ("embed", *n, *o)));
    cases.extend([("compare", "image_size_100000", sizes[2].1), ("compare", "batch_0", detection[11].1)]);
    cases.extend([
        ("classify", "top_0", ["--top", "0"]),
        ("classify", "top_-1", ["--top", "-1"]),
        ("classify", "top_100000", ["--top", "100000"]),
    ]);
    cases.extend([
        ("features", "num_classes_-5", ["--num-classes", "-5"]),
        ("features", "num_classes_100000000000", ["--num-classes", "100000000000"]),
        ("features", "output_stride_1e9", ["--output-stride", "1e9"]),
        ("features", "output_stride_-8", ["--output-stride", "-8"]),
    ]);
    let mut rows: Vec<Trial> = cases
        .iter()
        .map(|(cmd, case, [flag, value])| {
            trial(cmd, &format!("option_{case}"), nets, &[&img.face], &[flag as &dyn AsArg, value]).says(*flag)
        })
        .collect();
    // slim's `if num_classes:`: 0 is a net without logits.
    rows.push(trial("features", "option_num_classes_0", nets, &[&img.face], &[&"--num-classes", &"0"]).works());
    rows.push(trial("compare", "one_image", nets, &[&img.face], &[]).says("two or more"));
    // Weights that are FIFOs or not weights at all (a reader would block on a FIFO).
    let fifo = inp.path("img/weights.fifo");
    mkfifo(&fifo);
    let garbage = inp.write("img/garbage.safetensors", &[0x5a; 64]);
    for (case, weights) in [("weights_fifo", &fifo), ("weights_garbage", &garbage)] {
        for cmd in ["classify", "embed"] {
            rows.push(Trial::new(format!("{cmd}/{case}"), &[&cmd, &"--weights", weights, &img.face]).says(name_of(weights)));
        }
        rows.push(Trial::new(format!("detect/mtcnn_{case}"), &[&"detect", &"--mtcnn-weights", weights, &img.face]).says(name_of(weights)));
    }
    rows.push(Trial::new("embed/no_input", &[&"embed", &"--weights", &nets.facenet]).says("<IMAGES>"));
    rows.push(
        Trial::new("embed/input_and_detect", &[&"embed", &"--weights", &nets.facenet, &"--detect", &"--input", &"x.npy"]).says("--detect"),
    );
    rows
}

/// Outputs: never an input or the weights, never an existing file without --force, never a
/// device (the suite checks that /dev/null is still one afterwards).
fn output_rows(inp: &Inputs, nets: &Nets, img: &Images) -> Vec<Trial> {
    let face = &img.face;
    let copy = |from: &Path, rel: &str| {
        let p = inp.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, &p).expect("copy");
        p
    };
    let mut rows = Vec::new();
    let embed = |case: &str, inputs: &[&Path], extra: &[&dyn AsArg]| trial("embed", case, nets, inputs, extra);
    let existing = inp.write("img/out/existing.csv", b"precious");
    rows.push(embed("output_exists", &[face], &[&"-o", &existing]).keeps(&existing).says("already exists"));
    // An image named .csv is read by its content: writing over it is refused.
    let csv_image = copy(face, "img/out/face.csv");
    rows.push(embed("output_is_input_image", &[&csv_image], &[&"-o", &csv_image, &"--force"]).keeps(&csv_image).says("is an input"));
    let batch = copy(&inp.good_npy, "img/out/batch.npy");
    rows.push(
        Trial::new("embed/output_is_input_batch", &[&"embed", &"--weights", &nets.facenet, &"--input", &batch, &"-o", &batch, &"--force"])
            .keeps(&batch)
            .says("is an input"),
    );
    let weights = copy(&inp.good_st, "img/out/w.safetensors");
    rows.push(
        Trial::new("embed/output_is_weights", &[&"embed", &"--weights", &weights, face, &"-o", &weights, &"--force"])
            .keeps(&weights)
            .says("is an input"),
    );
    let null_link = inp.path("img/out/null.csv");
    std::os::unix::fs::symlink("/dev/null", &null_link).expect("symlink");
    let folder = inp.path("img/out/folder.csv");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for (case, out, says) in [
        ("output_dev_null", PathBuf::from("/dev/null"), "/dev/null"),
        ("output_link_to_dev_null", null_link, "is a device"),
        ("output_is_a_folder", folder, "is a folder"),
        ("output_in_missing_folder", inp.path("img/out/nowhere/e.csv"), "does not exist"),
        ("output_unknown_extension", PathBuf::from("e.txt"), "must end in"),
        ("output_trailing_slash", PathBuf::from("e.csv/"), "is not a file name"),
        ("output_under_a_file", face.join("e.csv"), "is not a folder"),
    ] {
        rows.push(embed(case, &[face], &[&"-o", &out, &"--force"]).says(says));
    }

    let features = |case: &str, inputs: &[&Path], out: &Path| trial("features", case, nets, inputs, &[&"-o", &out, &"--force"]);
    rows.push(features("output_is_input_image", &[face], face).keeps(face).says("is an input"));
    let in_folder = copy(face, "img/out/features_in/a.png");
    let folder = in_folder.parent().expect("folder").to_path_buf();
    rows.push(features("output_is_image_in_input_folder", &[&folder], &in_folder).keeps(&in_folder).says("is an input"));
    rows.push(features("output_dev_null", &[face], Path::new("/dev/null")).says("is a device"));

    let align = |case: &str, inputs: &[&Path], out: &Path, extra: &[&dyn AsArg]| {
        let mut e: Vec<&dyn AsArg> = vec![&"-o", &out];
        e.extend_from_slice(extra);
        trial("align", case, nets, inputs, &e)
    };
    let a_file = inp.write("img/out/a_file", b"precious");
    rows.push(align("output_is_a_file", &[face], &a_file, &[]).keeps(&a_file).says("not a folder"));
    rows.push(align("output_dev_null", &[face], Path::new("/dev/null"), &[&"--force"]).says("not a folder"));
    let photos = copy(face, "img/out/align_in/face.png");
    let photos_dir = photos.parent().expect("folder").to_path_buf();
    rows.push(align("output_is_input_folder", &[&photos_dir], &photos_dir, &[&"--force"]).keeps(&photos).says("is an input"));
    let boxes_input = copy(face, "img/out/boxes/bounding_boxes.txt");
    let boxes_dir = boxes_input.parent().expect("folder").to_path_buf();
    rows.push(align("boxes_file_is_input", &[&boxes_input], &boxes_dir, &[&"--force"]).keeps(&boxes_input).says("is an input"));
    let done = inp.write("img/out/done/face.png", b"precious");
    let done_dir = done.parent().expect("folder").to_path_buf();
    rows.push(align("crop_exists", &[face], &done_dir, &[]).keeps(&done).says("already exists"));
    let done_multi = inp.write("img/out/done_multi/face_0.png", b"precious");
    let multi_dir = done_multi.parent().expect("folder").to_path_buf();
    rows.push(align("crop_exists_multiple_faces", &[face], &multi_dir, &[&"--multiple-faces"]).keeps(&done_multi).says("already exists"));
    let same_stem = copy(&fixture("images/rgb_121x89.jpg"), "img/out/stem/face.jpg");
    rows.push(align("same_stem_twice", &[face, &same_stem], &inp.path("img/out/stem_out"), &[]).says("would both be cropped"));
    rows
}

// ------------------------------------------------------------------------------------------------
// scenarios

/// CSV names with commas, quotes and line breaks, a NaN batch, two aligns at once, signals.
fn scenarios(inp: &Inputs, nets: &Nets, img: &Images) -> Vec<Trial> {
    let mut rows = vec![csv_trial(inp, nets, img)];

    // A NaN in row 1 of a facenet batch: embedded, propagated, warned about by row.
    let n = 160 * 160 * 3;
    let values = (0..2 * n).map(|i| if i == n + 500 { f32::NAN } else { (i % 255) as f32 / 128.0 - 1.0 });
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 160, 160, 3), }";
    let nan = inp.write("img/nan160.npy", &npy_bytes(dict, &f32_bytes(values)));
    rows.push(
        Trial::new("embed/nan_in_input", &[&"embed", &"--weights", &nets.facenet, &"--input", &nan, &"-o", &"e.npy"])
            .works()
            .says("element [1, ")
            .says(format!("NaN or infinity in 1 row of the embeddings: {}[1]", nan.display())),
    );

    // Photos for the scenarios: copies of the face under distinct names.
    let photos = |rel: &str, n: usize| {
        for i in 0..n {
            let p = inp.path(&format!("{rel}/p{i:02}.png"));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&img.face, p).expect("copy");
        }
        inp.path(rel)
    };
    let three = photos("img/three", 3);
    rows.push(concurrency_trial(
        "concurrency/two_aligns_one_folder",
        move |dir| ["align".into(), three.clone().into(), "-o".into(), dir.join("aligned").into()].to_vec(),
        |dir| aligned_complete(&dir.join("aligned"), Some(3)),
    ));
    let many = photos("img/many", 24);
    for (name, signal) in [("signals/sigint_during_align", libc::SIGINT), ("signals/sigterm_during_align", libc::SIGTERM)] {
        let many = many.clone();
        rows.push(signal_trial(
            name,
            signal,
            move |_| ["align".into(), many.clone().into(), "-o".into(), "aligned".into(), "--batch".into(), "1".into()].to_vec(),
            |dir| std::fs::read_dir(dir.join("aligned")).is_ok_and(|mut d| d.next().is_some()),
            |dir| aligned_complete(&dir.join("aligned"), None),
        ));
    }
    let (facenet, many) = (nets.facenet.clone(), many.clone());
    rows.push(signal_trial(
        "signals/sigint_during_embed",
        libc::SIGINT,
        move |_| {
            [
                "embed".into(),
                "--weights".into(),
                facenet.clone().into(),
                many.clone().into(),
                "-o".into(),
                "e.csv".into(),
                "--batch".into(),
                "1".into(),
            ]
            .to_vec()
        },
        |dir| std::fs::read_to_string(dir.join("stderr")).is_ok_and(|e| e.contains("net:")),
        |dir| nothing_at(&dir.join("e.csv")),
    ));
    rows
}

/// Every crop in `dir` is a whole 160x160 PNG; with `photos`, there is one per photo and
/// `bounding_boxes.txt` lists each (without, the run was interrupted: no boxes file).
fn aligned_complete(dir: &Path, photos: Option<usize>) -> Result<(), String> {
    let mut crops = 0;
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "png") {
            let img = slimzoo::photo::read_rgb8(&p, slimzoo::photo::Decoder::Pillow).map_err(|e| format!("half a crop: {e}"))?;
            if (img.height, img.width) != (160, 160) {
                return Err(format!("{}: {}x{}", p.display(), img.width, img.height));
            }
            crops += 1;
        }
    }
    let boxes = std::fs::read_to_string(dir.join("bounding_boxes.txt"));
    match (photos, boxes) {
        (Some(n), Ok(text)) if crops == n && text.lines().count() == n && text.lines().all(|l| l.split(' ').count() == 5) => Ok(()),
        (None, Err(_)) => Ok(()),
        (want, boxes) => Err(format!("{crops} crops (want {want:?}), bounding_boxes.txt: {boxes:?}")),
    }
}

/// `embed -o e.csv` on faces named with a comma, quotes and a line break: the CSV parses back
/// (RFC 4180) to one record per image, its name then 512 numbers.
fn csv_trial(inp: &Inputs, nets: &Nets, img: &Images) -> Trial {
    let names = ["a,b.png", "say \"cheese\".png", "two\nlines.png", "plain.png"];
    let dir = inp.path("img/csv");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for n in names {
        std::fs::copy(&img.face, dir.join(n)).expect("copy");
    }
    let facenet = nets.facenet.clone();
    Trial::scenario("embed/csv_names_quoted", move |trial_dir| {
        let out = trial_dir.join("e.csv");
        let mut cmd = std::process::Command::new(super::bin());
        cmd.args([
            OsString::from("embed"),
            "--weights".into(),
            facenet.clone().into(),
            dir.clone().into(),
            "-o".into(),
            out.clone().into(),
        ]);
        let (status, stderr) = super::run_command(cmd, trial_dir);
        let Some(status) = status else { return Outcome { class: Class::Hang, detail: excerpt(&stderr) } };
        let o = super::classify(status, &stderr);
        if o.class != Class::Silent {
            return Outcome { class: if o.class == Class::Clean { Class::Refused } else { o.class }, ..o };
        }
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let want: Vec<String> = {
            let mut w: Vec<String> = names.iter().map(|n| dir.join(n).display().to_string()).collect();
            w.sort();
            w
        };
        let check = parse_csv(&text).and_then(|records| {
            let got: Vec<String> = records.iter().map(|r| r[0].clone()).collect();
            if got != want {
                return Err(format!("names {got:?}, want {want:?}"));
            }
            match records.iter().find(|r| r.len() != 513 || r[1..].iter().any(|v| v.parse::<f32>().is_err())) {
                Some(r) => Err(format!("a record of {} fields: {:?}…", r.len(), &r[..r.len().min(3)])),
                None => Ok(()),
            }
        });
        match check {
            Ok(()) => Outcome { class: Class::Ok, detail: format!("{} records", want.len()) },
            Err(e) => Outcome { class: Class::Damage, detail: format!("the CSV does not parse back: {e}; {}", excerpt(&text)) },
        }
    })
}

/// Records of RFC 4180 CSV text (fields quoted with `"`, quotes doubled, line breaks inside
/// quotes; records end with LF or CRLF).
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, '"') => return Err(format!("a quote inside the unquoted field {field:?}")),
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("an unterminated quoted field".into());
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[test]
fn csv_parser_follows_rfc_4180() {
    let r = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\n\"two\nlines\",x\r\n").unwrap();
    assert_eq!(r, vec![vec!["a", "b,c", "say \"hi\""], vec!["two\nlines", "x"]]);
    assert!(parse_csv("a\"b,c\n").is_err() && parse_csv("\"open\n").is_err());
}
