//! `slimzoo detect` and `slimzoo align`: faces in photos as facenet finds and crops them
//! (`detect_face.py`, `align_dataset_mtcnn.py`).

use crate::common::{JpegDct, collect_images, note_skipped, progress_bar};
use anyhow::{Context, Result, bail};
use clap::Args;
use slimzoo::faces::align::{self, AlignOptions};
use slimzoo::faces::{DetectOptions, Detector, Face};
use slimzoo::photo::{self, Decoder, Rgb8};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::Device;

/// `--thresholds P,R,O`: three numbers in 0..=1.
fn thresholds(s: &str) -> Result<[f64; 3], String> {
    let expected = || "expected three numbers P,R,O in 0..=1 (facenet: 0.6,0.7,0.7)".to_string();
    let v: Vec<f64> = s.split(',').map(|p| p.trim().parse::<f64>().map_err(|_| expected())).collect::<Result<_, _>>()?;
    match v.as_slice() {
        [a, b, c] if v.iter().all(|t| (0.0..=1.0).contains(t)) => Ok([*a, *b, *c]),
        _ => Err(expected()),
    }
}

/// What every face-detecting subcommand takes.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Smallest face searched for, in pixels, 1..=1000000 (detect_face's minsize)
    #[arg(long, default_value_t = 20.0, value_parser = crate::float_in(1.0, 1e6), allow_negative_numbers = true)]
    pub min_size: f64,
    /// P-Net, R-Net and O-Net score thresholds, each in 0..=1
    #[arg(long, default_value = "0.6,0.7,0.7", value_parser = thresholds, allow_hyphen_values = true)]
    pub thresholds: [f64; 3],
    /// Scale step of the image pyramid, strictly between 0 and 1
    #[arg(long, default_value_t = 0.709, value_parser = crate::float_between(0.0, 1.0), allow_negative_numbers = true)]
    pub factor: f64,
    /// MTCNN weights (.safetensors with detect_face's names; default: the shipped copy of facenet's det1-3.npy)
    #[arg(long)]
    pub mtcnn_weights: Option<PathBuf>,
}

/// How photos are read for detection: decoder and batch.
#[derive(Debug, Args)]
pub struct PhotoArgs {
    /// JPEG decoding: accurate (Pillow's, what facenet reads photos with) or fast (TF's default decode_jpeg)
    #[arg(long, value_enum, default_value = "accurate")]
    pub jpeg_dct: JpegDct,
    /// Photos per batch, 1..=1024 (R-Net and O-Net run on all their faces at once)
    #[arg(long, default_value_t = 8, value_parser = crate::int_in(1usize, 1024), allow_negative_numbers = true)]
    pub batch: usize,
}

impl DetectArgs {
    /// The options, checked.
    pub fn options(&self) -> Result<DetectOptions> {
        let opts = DetectOptions { min_size: self.min_size, thresholds: self.thresholds, factor: self.factor };
        opts.validate().context("bad detection option")?;
        Ok(opts)
    }

    /// The detector (the shipped weights unless `--mtcnn-weights`).
    pub fn detector(&self) -> Result<Detector> {
        match &self.mtcnn_weights {
            Some(p) => {
                slimzoo::io::check_not_special(p)?;
                Detector::from_file(p, Device::Cpu).with_context(|| format!("cannot load MTCNN weights {}", p.display()))
            }
            None => Ok(Detector::shipped(Device::Cpu)?),
        }
    }
}

/// A photo with its faces, or why it could not be read.
pub struct Detected {
    pub file: PathBuf,
    pub result: Result<(Rgb8, Vec<Face>), String>,
}

/// Decodes (with `decoder`) and detects `files`, `batch` photos at a time, calling `each` in
/// input order; returns how many photos could not be read.
pub fn detect_files(
    args: &DetectArgs,
    decoder: Decoder,
    batch: usize,
    files: &[PathBuf],
    mut each: impl FnMut(Detected) -> Result<()>,
) -> Result<usize> {
    let opts = args.options()?;
    let detector = args.detector()?;
    let bar = progress_bar(files.len() as u64, "detecting");
    let mut failed = 0;
    for chunk in files.chunks(batch.max(1)) {
        let decoded: Vec<(PathBuf, Result<Rgb8, String>)> = chunk
            .iter()
            .map(|f| {
                let r = photo::read_rgb8(f, decoder).and_then(|img| {
                    opts.check_image(img.height, img.width)?;
                    Ok(img)
                });
                (f.clone(), r.map_err(|e| e.to_string()))
            })
            .collect();
        let ok: Vec<&Rgb8> = decoded.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        let mut faces = detector.detect_batch(&ok, &opts)?.into_iter();
        for (file, r) in decoded {
            let result = match r {
                Ok(img) => Ok((img, faces.next().unwrap_or_default())),
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| note_skipped(&file, &e));
                    Err(e)
                }
            };
            each(Detected { file, result })?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(failed)
}

/// `1 face`, `2 faces`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// One photo's JSON line, keys in this order: `{"file", "faces": [{"box", "score", "landmarks"}]}`.
fn json_line(file: &Path, faces: &[Face]) -> String {
    let faces: Vec<String> = faces
        .iter()
        .map(|f| {
            format!(
                "{{\"box\":{},\"score\":{},\"landmarks\":{}}}",
                serde_json::json!(f.bbox),
                serde_json::json!(f.score),
                serde_json::json!(f.landmarks)
            )
        })
        .collect();
    format!("{{\"file\":{},\"faces\":[{}]}}", serde_json::json!(file.display().to_string()), faces.join(","))
}

/// Find faces in photos with facenet's MTCNN (detect_face): boxes, scores, five landmarks.
#[derive(Debug, Args)]
pub struct Detect {
    /// Photos, or folders of photos
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// One JSON line per photo: {"file", "faces": [{"box": [x1, y1, x2, y2], "score", "landmarks": [[x, y] x5]}]}
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    detect: DetectArgs,
    #[command(flatten)]
    photos: PhotoArgs,
}

impl Detect {
    pub fn run(self) -> Result<()> {
        self.detect.options()?;
        let files = collect_images(&self.inputs)?;
        let mut out = std::io::stdout().lock();
        let (mut n_faces, mut n_photos) = (0usize, 0usize);
        let decoder = self.photos.jpeg_dct.facenet_decoder();
        let failed = detect_files(&self.detect, decoder, self.photos.batch, &files, |d| {
            let Ok((_, faces)) = &d.result else { return Ok(()) };
            n_photos += 1;
            n_faces += faces.len();
            if self.json {
                writeln!(out, "{}", json_line(&d.file, faces))?;
            } else {
                writeln!(out, "{}: {}", d.file.display(), count(faces.len(), "face"))?;
                for f in faces {
                    let [x1, y1, x2, y2] = f.bbox;
                    let marks: Vec<String> = f.landmarks.iter().map(|[x, y]| format!("({x:.1}, {y:.1})")).collect();
                    writeln!(out, "  box {x1:.1} {y1:.1} {x2:.1} {y2:.1}  score {:.4}  landmarks {}", f.score, marks.join(" "))?;
                }
            }
            Ok(())
        })?;
        eprintln!("slimzoo: {} in {}", count(n_faces, "face"), count(n_photos, "photo"));
        if failed > 0 {
            bail!("{failed} of {} photos could not be read", files.len());
        }
        Ok(())
    }
}

/// Crop faces as facenet's align_dataset_mtcnn.py does: OUTDIR/<stem>.png (or <stem>_<i>.png)
/// and OUTDIR/bounding_boxes.txt.
#[derive(Debug, Args)]
pub struct Align {
    /// Photos, or folders of photos
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder (created if missing)
    #[arg(short, long)]
    output: PathBuf,
    /// Side of the square crops, 1..=4096
    #[arg(long, default_value_t = 160, value_parser = crate::int_in(1usize, 4096), allow_negative_numbers = true)]
    image_size: usize,
    /// Pixels added around each box in total (half on each side), 0..=100000
    #[arg(long, default_value_t = 44.0, value_parser = crate::float_in(0.0, 1e5), allow_negative_numbers = true)]
    margin: f64,
    /// Every face of each photo (<stem>_<i>.png); without it, facenet's choice of one
    #[arg(long)]
    multiple_faces: bool,
    /// Overwrite existing crops and bounding_boxes.txt
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    detect: DetectArgs,
    #[command(flatten)]
    photos: PhotoArgs,
}

/// The file align writes next to the crops.
const BOXES_FILE: &str = "bounding_boxes.txt";

impl Align {
    pub fn run(self) -> Result<()> {
        let opts = AlignOptions { image_size: self.image_size, margin: self.margin };
        opts.validate().context("bad alignment option")?;
        self.detect.options()?;
        let files = collect_images(&self.inputs)?;
        let stems = distinct_stems(&files, &self.output)?;
        // Every output before any work: OUTDIR a folder, no crop over an input or an existing
        // file (without --force).
        self.check_outputs(&files, &stems)?;
        let boxes_file = self.output.join(BOXES_FILE);
        std::fs::create_dir_all(&self.output).with_context(|| format!("cannot create {}", self.output.display()))?;
        let mut lines = Vec::new();
        let (mut aligned, mut no_face) = (0usize, Vec::new());
        let decoder = self.photos.jpeg_dct.facenet_decoder();
        let failed = detect_files(&self.detect, decoder, self.photos.batch, &files, |d| {
            let Ok((img, faces)) = &d.result else { return Ok(()) };
            let stem = d.file.file_stem().unwrap_or_default();
            let chosen: Vec<(usize, &Face)> = if self.multiple_faces {
                faces.iter().enumerate().collect()
            } else {
                align::choose_face(faces, img.height, img.width).map(|i| (0, &faces[i])).into_iter().collect()
            };
            if chosen.is_empty() {
                lines.push(self.output.join(crop_name(stem, None)).display().to_string());
                no_face.push(d.file.clone());
                return Ok(());
            }
            for (i, face) in chosen {
                let path = self.output.join(crop_name(stem, self.multiple_faces.then_some(i)));
                let (crop, bb) = align::aligned(img, face, &opts).with_context(|| format!("{}: face {i}", d.file.display()))?;
                write_png(&path, &crop, self.force, &files)?;
                lines.push(format!("{} {} {} {} {}", path.display(), bb[0], bb[1], bb[2], bb[3]));
                aligned += 1;
            }
            Ok(())
        })?;
        // Written even when no face was found: facenet's path-only lines say which photos those are
        // (a photo without a face is reported, not an error).
        if failed < files.len() {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            slimzoo::io::check_output(&boxes_file, self.force, &files)?;
            slimzoo::io::write_atomic(&boxes_file, self.force, |f| {
                f.write_all(text.as_bytes()).map_err(|e| slimzoo::Error::io(&boxes_file, e))
            })?;
        }
        eprintln!(
            "slimzoo: {} aligned from {} into {}",
            count(aligned, "face"),
            count(files.len() - failed, "photo"),
            self.output.display()
        );
        if !no_face.is_empty() {
            eprintln!("slimzoo: no face found in {}:", count(no_face.len(), "photo"));
            for f in &no_face {
                eprintln!("  {}", f.display());
            }
        }
        if failed > 0 {
            bail!("{failed} of {} photos could not be read", files.len());
        }
        Ok(())
    }

    /// OUTDIR is a folder (or does not exist yet), and what this run would write there is no
    /// input, and exists only with --force.
    fn check_outputs(&self, files: &[PathBuf], stems: &BTreeSet<OsString>) -> Result<()> {
        let shown = self.output.display();
        let listing = match std::fs::metadata(&self.output) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(&self.output).with_context(|| format!("cannot list {shown}"))?,
            Ok(meta) => {
                let kind = slimzoo::ckpt::special_file_kind(&meta).unwrap_or("a file");
                bail!("{shown}: is {kind}, not a folder (align writes its crops and {BOXES_FILE} into a folder)");
            }
            // Created later: nothing in it exists yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot use {shown} as the output folder")),
        };
        for entry in listing {
            let name = entry.with_context(|| format!("cannot list {shown}"))?.file_name();
            if name == BOXES_FILE || is_crop_name(&name, stems, self.multiple_faces) {
                slimzoo::io::check_output(&self.output.join(&name), self.force, files)?;
            }
        }
        Ok(())
    }
}

/// The stems of `files`, refusing two photos with the same stem (they would write the same crop).
fn distinct_stems(files: &[PathBuf], outdir: &Path) -> Result<BTreeSet<OsString>> {
    let mut stems = std::collections::BTreeMap::new();
    for f in files {
        let stem = f.file_stem().unwrap_or_default().to_os_string();
        if let Some(other) = stems.insert(stem.clone(), f) {
            bail!(
                "{} and {} would both be cropped to {} in {}",
                other.display(),
                f.display(),
                crop_name(&stem, None).to_string_lossy(),
                outdir.display()
            );
        }
    }
    Ok(stems.into_keys().collect())
}

/// `<stem>.png`, or `<stem>_<i>.png` for face `i` with --multiple-faces.
fn crop_name(stem: &OsStr, face: Option<usize>) -> OsString {
    let mut name = stem.to_os_string();
    if let Some(i) = face {
        name.push(format!("_{i}"));
    }
    name.push(".png");
    name
}

/// Whether align could write a crop named `name` for one of `stems`.
fn is_crop_name(name: &OsStr, stems: &BTreeSet<OsString>, multiple: bool) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(base) = name.as_bytes().strip_suffix(b".png") else { return false };
    if !multiple {
        return stems.contains(OsStr::from_bytes(base));
    }
    // `<stem>_<digits>`: every `_` followed by digits only may end the stem.
    base.iter().enumerate().filter(|&(_, &b)| b == b'_').any(|(at, _)| {
        let digits = &base[at + 1..];
        !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) && stems.contains(OsStr::from_bytes(&base[..at]))
    })
}

/// Writes an RGB image as PNG, atomically, never over one of `inputs`.
fn write_png(path: &Path, img: &Rgb8, force: bool, inputs: &[PathBuf]) -> Result<()> {
    slimzoo::io::check_output(path, force, inputs)?;
    let mut bytes = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    image::ImageEncoder::write_image(encoder, &img.data, img.width as u32, img.height as u32, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    slimzoo::io::write_atomic(path, force, |f| f.write_all(&bytes).map_err(|e| slimzoo::Error::io(path, e)))?;
    Ok(())
}
