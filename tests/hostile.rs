//! The hostile-input suite: the built `slimzoo` binary on generated hostile inputs, one trial per
//! row of a table, each with a timeout, classified by how it ended.
//!
//! Nearly every trial is one where an error is due. Its only acceptable ending is a **clean
//! error**: exit code 1, exactly one `slimzoo: error:` message (saying what [`Trial::says`] asks,
//! if anything), no panic, no libtorch exception text, nothing left behind (no temporary file in
//! the trial's folder, the inputs intact). A few trials ([`Trial::works`]) give odd but valid
//! input (16-bit, palette or 1x1 images, NaN in a batch): they must succeed, with the warnings
//! asked for. Any other ending is classified ([`Class`]) and makes the test fail, listing every
//! such trial; the counts by class are printed either way
//! (`cargo test --test hostile -- --nocapture`; `SLIMZOO_HOSTILE=a,b` runs only the trials whose
//! name contains `a` or `b`).
//!
//! The table is built per subcommand ([`checkpoint_rows`], [`archive_rows`], [`safetensors_rows`],
//! [`npy_rows`], [`output_rows`], [`option_rows`], [`folder_rows`], and for the image commands
//! [`images::rows`]); rows for another subcommand are one more `Trial::new(..)` each. A few trials
//! run a scenario instead of one command ([`signal_trial`], [`concurrency_trial`]).

mod common;
#[path = "hostile/images.rs"]
mod images;

use common::fixture;
use slimzoo::ckpt::writer::{BundleEntryProto, BundleOptions, BundleWriter, V1Options, V1Writer};
use slimzoo::ckpt::{DType, TensorData, crc};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A trial that runs longer is a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------------------------
// classification

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Exit 1, one `slimzoo: error:` message, nothing else wrong.
    Clean,
    /// A Rust panic.
    Panic,
    /// Killed by a signal, or an exit code other than 0, 1 and 101.
    Abort,
    /// Still running at the timeout.
    Hang,
    /// Exit 0 where an error was due.
    Silent,
    /// Exit 1 but not one clean message (libtorch's exception text, several messages, none).
    Messy,
    /// An error, but the inputs changed or a temporary file was left behind.
    Damage,
    /// Success where success was due ([`Trial::works`]), with the warnings asked for.
    Ok,
    /// A clean error where success was due.
    Refused,
}

const CLASSES: [Class; 9] =
    [Class::Clean, Class::Ok, Class::Panic, Class::Abort, Class::Hang, Class::Silent, Class::Messy, Class::Damage, Class::Refused];

/// What a trial did.
struct Outcome {
    class: Class,
    detail: String,
}

/// Classifies a finished process from its status and stderr.
fn classify(status: ExitStatus, stderr: &str) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let detail = match stderr.lines().find(|l| l.starts_with("slimzoo: error:")) {
        Some(error) => format!("{status}; {}; stderr: {}", excerpt(error), excerpt(stderr)),
        None => format!("{status}; stderr: {}", excerpt(stderr)),
    };
    let class = if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") || status.code() == Some(101) {
        Class::Panic
    } else if status.signal().is_some() || !matches!(status.code(), Some(0 | 1)) {
        Class::Abort
    } else if status.success() {
        Class::Silent
    } else if stderr.matches("slimzoo: error:").count() != 1
        || stderr.contains("Exception raised from")
        || stderr.contains("frame #")
        || !stderr.lines().any(|l| l.starts_with("slimzoo: error:"))
    {
        Class::Messy
    } else {
        Class::Clean
    };
    Outcome { class, detail }
}

/// The outcome against what the trial expects: success with its warnings for a trial that
/// works, an error saying what it must for the others.
fn expected(t: &Trial, o: Outcome, stderr: &str) -> Outcome {
    let missing: Vec<&str> = t.says.iter().filter(|s| !stderr.contains(s.as_str())).map(|s| s.as_str()).collect();
    let lacks = |o: Outcome| Outcome { detail: format!("stderr lacks {missing:?}; {}", o.detail), ..o };
    match (t.works, o.class) {
        (true, Class::Silent) if missing.is_empty() => Outcome { class: Class::Ok, ..o },
        (true, Class::Silent) => lacks(o),
        (true, Class::Clean) => Outcome { class: Class::Refused, ..o },
        (false, Class::Clean) if !missing.is_empty() => lacks(Outcome { class: Class::Messy, ..o }),
        _ => o,
    }
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    let cut: String = s.chars().take(600).collect();
    if cut.len() < s.len() { format!("{cut}…") } else { cut }
}

/// Temporary files (`.NAME.XXXX.tmp`, the atomic writer's) under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temp_files(&p));
        } else if name.ends_with(".tmp") || name.contains(".tmp-") {
            out.push(p);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// trials

type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;
type Scenario = Box<dyn Fn(&Path) -> Outcome + Send + Sync>;

/// One row: a command line (or a scenario) where an error is due (or, [`Trial::works`], success).
struct Trial {
    /// Short unique name (class of input / case).
    name: String,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    /// Must hold afterwards (e.g. the input is unchanged).
    after: Vec<Check>,
    /// Runs instead of `args` when set; gets the trial's own folder.
    scenario: Option<Scenario>,
    /// Success is due, not an error.
    works: bool,
    /// What stderr must contain (the error message, or the warnings of a trial that works).
    says: Vec<String>,
}

impl Trial {
    fn new(name: impl Into<String>, args: &[&dyn AsArg]) -> Trial {
        Trial::from_args(name, args.iter().map(|a| a.os()).collect())
    }

    fn from_args(name: impl Into<String>, args: Vec<OsString>) -> Trial {
        Trial { name: name.into(), args, env: vec![], after: vec![], scenario: None, works: false, says: vec![] }
    }

    /// Success is due (odd but valid input).
    fn works(mut self) -> Trial {
        self.works = true;
        self
    }

    /// Stderr must contain `text` (in the error message, or a warning).
    fn says(mut self, text: impl Into<String>) -> Trial {
        self.says.push(text.into());
        self
    }

    fn env(mut self, k: &str, v: &str) -> Trial {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The file must be byte-for-byte what it is now, afterwards.
    fn keeps(mut self, path: &Path) -> Trial {
        let path = path.to_path_buf();
        let before = std::fs::read(&path).ok();
        self.after.push(Box::new(move || {
            if std::fs::read(&path).ok() == before { Ok(()) } else { Err(format!("{} was changed", path.display())) }
        }));
        self
    }

    /// The path must not exist afterwards.
    fn leaves_no(mut self, path: &Path) -> Trial {
        let path = path.to_path_buf();
        self.after.push(Box::new(move || {
            if std::fs::symlink_metadata(&path).is_err() { Ok(()) } else { Err(format!("{} was written", path.display())) }
        }));
        self
    }

    fn scenario(name: &str, f: impl Fn(&Path) -> Outcome + Send + Sync + 'static) -> Trial {
        Trial { scenario: Some(Box::new(f)), ..Trial::from_args(name, vec![]) }
    }
}

/// Arguments: strings and paths alike.
trait AsArg {
    fn os(&self) -> OsString;
}
impl AsArg for &str {
    fn os(&self) -> OsString {
        (*self).into()
    }
}
impl AsArg for String {
    fn os(&self) -> OsString {
        self.into()
    }
}
impl AsArg for PathBuf {
    fn os(&self) -> OsString {
        self.as_os_str().to_owned()
    }
}
impl AsArg for &Path {
    fn os(&self) -> OsString {
        self.as_os_str().to_owned()
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_slimzoo")
}

/// Runs `cmd` with stdout/stderr in files under `dir`, killing it at the timeout.
fn run_command(mut cmd: Command, dir: &Path) -> (Option<ExitStatus>, String) {
    let out = std::fs::File::create(dir.join("stdout")).expect("stdout file");
    let err = std::fs::File::create(dir.join("stderr")).expect("stderr file");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).current_dir(dir);
    let mut child = cmd.spawn().expect("cannot start slimzoo");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (status, std::fs::read_to_string(dir.join("stderr")).unwrap_or_default())
}

fn run_trial(t: &Trial, dir: &Path) -> Outcome {
    std::fs::create_dir_all(dir).expect("trial folder");
    let mut outcome = match &t.scenario {
        Some(f) => f(dir),
        None => {
            let mut cmd = Command::new(bin());
            cmd.args(&t.args).env_remove("RUST_BACKTRACE");
            for (k, v) in &t.env {
                cmd.env(k, v);
            }
            match run_command(cmd, dir) {
                (None, stderr) => {
                    Outcome { class: Class::Hang, detail: format!("still running after {TIMEOUT:?}; stderr: {}", excerpt(&stderr)) }
                }
                (Some(status), stderr) => expected(t, classify(status, &stderr), &stderr),
            }
        }
    };
    if matches!(outcome.class, Class::Clean | Class::Ok) {
        let mut problems: Vec<String> = t.after.iter().filter_map(|c| c().err()).collect();
        problems.extend(temp_files(dir).iter().map(|p| format!("temporary file left: {}", p.display())));
        if !problems.is_empty() {
            outcome = Outcome { class: Class::Damage, detail: format!("{}; {}", problems.join("; "), outcome.detail) };
        }
    }
    outcome
}

// ------------------------------------------------------------------------------------------------
// generated inputs

fn f32_tensor(shape: &[u64], seed: f32) -> TensorData {
    let n: u64 = shape.iter().product();
    let data = (0..n).flat_map(|i| (seed + i as f32 * 0.25).to_le_bytes()).collect();
    TensorData { dtype: DType::F32, shape: shape.to_vec(), data }
}

fn suffixed(prefix: &Path, s: &str) -> PathBuf {
    let mut p = prefix.as_os_str().to_owned();
    p.push(s);
    PathBuf::from(p)
}

/// Writes a V2 checkpoint at `prefix` (one shard) built by `f`.
fn v2(prefix: &Path, f: impl FnOnce(&mut BundleWriter<Vec<u8>>)) {
    let mut w = BundleWriter::new("gen", vec![Vec::new()], BundleOptions::default()).expect("writer");
    f(&mut w);
    let (index, shards) = w.finish().expect("finish");
    std::fs::create_dir_all(prefix.parent().expect("parent")).expect("mkdir");
    std::fs::write(suffixed(prefix, ".index"), index).expect("index");
    std::fs::write(suffixed(prefix, ".data-00000-of-00001"), &shards[0]).expect("data");
}

/// The small valid net: one 1x1 conv.
fn good_tensors(w: &mut BundleWriter<Vec<u8>>) {
    w.add("net/conv/weights", &f32_tensor(&[1, 1, 2, 2], 0.5)).expect("add");
    w.add("net/conv/biases", &f32_tensor(&[2], -1.0)).expect("add");
}

/// A raw index entry with its bytes appended to shard 0.
fn raw(w: &mut BundleWriter<Vec<u8>>, key: &str, dtype: i32, dims: Vec<i64>, bytes: &[u8]) {
    let offset = w.append_raw(0, bytes).expect("append");
    let mut e = BundleEntryProto {
        dtype,
        shard_id: 0,
        offset: offset as i64,
        size: bytes.len() as i64,
        crc32c: crc::mask(crc::value(bytes)),
        ..Default::default()
    };
    e.shape.dims = dims;
    w.add_raw_entry(key.as_bytes(), e).expect("raw entry");
}

fn v1_file(path: &Path) {
    let mut w = V1Writer::new(V1Options::default());
    w.add("net/conv/weights", &f32_tensor(&[1, 1, 2, 2], 0.5)).expect("add");
    w.add("net/conv/biases", &f32_tensor(&[2], -1.0)).expect("add");
    std::fs::write(path, w.finish().expect("v1")).expect("write v1");
}

/// A zip written by hand (so that it can hold duplicates and lie about sizes).
struct ZipMember<'a> {
    name: &'a str,
    data: &'a [u8],
    deflate: bool,
    /// Declared uncompressed size instead of the real one.
    declared: Option<u32>,
}

fn zip_bytes(members: &[ZipMember]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let mut c = flate2::Crc::new();
        c.update(m.data);
        let stored: Vec<u8> = if m.deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(m.data).expect("deflate");
            e.finish().expect("deflate")
        } else {
            m.data.to_vec()
        };
        let method: u16 = if m.deflate { 8 } else { 0 };
        let size = m.declared.unwrap_or(m.data.len() as u32);
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&method.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
            v.extend_from_slice(&c.sum().to_le_bytes());
            v.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(&stored);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&[0; 8]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(m.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A tar (gzipped if `gz`) with raw header names and optionally lying sizes.
fn tar_bytes(files: &[(&str, &[u8], Option<u64>)], gz: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut bytes);
        for (name, data, declared) in files {
            let mut h = tar::Header::new_gnu();
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(declared.unwrap_or(data.len() as u64));
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, *data).expect("tar append");
        }
        b.finish().expect("tar finish");
    }
    if !gz {
        return bytes;
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&bytes).expect("gz");
    e.finish().expect("gz")
}

/// The files of a V2 checkpoint as (name, bytes), for archives.
fn v2_files(prefix: &str, f: impl FnOnce(&mut BundleWriter<Vec<u8>>)) -> Vec<(String, Vec<u8>)> {
    let mut w = BundleWriter::new("gen", vec![Vec::new()], BundleOptions::default()).expect("writer");
    f(&mut w);
    let (index, mut shards) = w.finish().expect("finish");
    vec![(format!("{prefix}.index"), index), (format!("{prefix}.data-00000-of-00001"), shards.remove(0))]
}

/// A safetensors file from a header (JSON text, padded) and data bytes.
fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// `.npy` bytes from a header dict and data.
fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}

/// Every generated input, under one folder.
struct Inputs {
    dir: PathBuf,
    /// A valid small V2 checkpoint (prefix).
    good_v2: PathBuf,
    /// A valid safetensors file (the good net converted) and an NHWC batch for the tiny fixture.
    good_st: PathBuf,
    good_npy: PathBuf,
}

impl Inputs {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn new(dir: &Path) -> Inputs {
        let good_v2 = dir.join("good/v2/model.ckpt");
        v2(&good_v2, good_tensors);
        let good_st = dir.join("good/net.safetensors");
        let header = r#"{"net/conv/biases":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"net/conv/weights":{"dtype":"F32","shape":[2,2,1,1],"data_offsets":[8,24]}}"#;
        std::fs::write(&good_st, safetensors_bytes(header, &f32_bytes((0..6).map(|i| i as f32)))).expect("st");
        let good_npy = dir.join("good/input.npy");
        std::fs::copy(fixture("tiny/input.npy"), &good_npy).expect("npy");
        Inputs { dir: dir.to_path_buf(), good_v2, good_st, good_npy }
    }
}

// ------------------------------------------------------------------------------------------------
// rows

/// `slimzoo features --weights WEIGHTS --input INPUT -o OUTPUT EXTRA…`.
fn features(name: impl Into<String>, weights: &dyn AsArg, input: &dyn AsArg, output: &dyn AsArg, extra: &[&str]) -> Trial {
    let mut args: Vec<&dyn AsArg> = vec![&"features", &"--weights", weights, &"--input", input, &"-o", output];
    args.extend(extra.iter().map(|s| s as &dyn AsArg));
    Trial::new(name, &args)
}

/// Which commands try a hostile checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// The commands that list or read a checkpoint (the problem shows when it is listed).
    All,
    /// The commands that read tensor data (listing it alone is fine).
    Data,
    /// `inspect`, `convert`, `features` (the problem shows when the path is opened).
    Open,
}

/// The trials of `set` on `ckpt`.
fn reading_commands(name: &str, ckpt: &Path, set: Set, inputs: &Inputs, out: &Path) -> Vec<Trial> {
    let o = out.join(format!("{name}.safetensors"));
    let ckpt = ckpt.to_path_buf();
    let mut v = vec![
        Trial::new(format!("convert/{name}"), &[&"convert", &ckpt, &"-o", &o, &"--no-validate"]).leaves_no(&o),
        features(format!("features-weights/{name}"), &ckpt, &inputs.good_npy, &out.join(format!("{name}.f.st")), &[]),
    ];
    if set != Set::Open {
        v.push(Trial::new(format!("check/{name}"), &[&"check", &"--checkpoint", &ckpt]));
    }
    if set == Set::Data {
        v.push(Trial::new(format!("bench-read/{name}"), &[&"bench", &"--read", &ckpt, &"--repeat", &"1"]));
    }
    if set != Set::Data {
        v.push(Trial::new(format!("inspect/{name}"), &[&"inspect", &ckpt]));
    }
    v
}

/// Truncated, corrupted and hostile checkpoints (V1 and V2).
fn checkpoint_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    let mut hostile = |name: &str, set: Set, f: &dyn Fn(&mut BundleWriter<Vec<u8>>)| {
        let prefix = inp.path(&format!("ckpt/{name}/model.ckpt"));
        v2(&prefix, f);
        rows.extend(reading_commands(name, &prefix, set, inp, out));
    };
    hostile("dtype_9999", Set::All, &|w| {
        good_tensors(w);
        raw(w, "net/odd", 9999, vec![2], &[0; 8]);
    });
    hostile("dtype_9999_only", Set::All, &|w| raw(w, "odd", 9999, vec![2], &[0; 8]));
    hostile("dtype_invalid", Set::All, &|w| raw(w, "zero", 0, vec![2], &[0; 8]));
    hostile("rank_100000", Set::All, &|w| raw(w, "deep", 1, vec![1; 100_000], &[0; 4]));
    hostile("rank_255", Set::All, &|w| raw(w, "deep", 1, vec![1; 255], &[0; 4]));
    hostile("negative_dim", Set::All, &|w| raw(w, "neg", 1, vec![-2], &[0; 8]));
    hostile("huge_dims", Set::All, &|w| raw(w, "huge", 1, vec![1 << 40, 1 << 40], &[0; 8]));
    hostile("size_mismatch", Set::All, &|w| raw(w, "w", 1, vec![3], &[0; 8]));
    hostile("offset_past_end", Set::All, &|w| {
        good_tensors(w);
        let mut e = BundleEntryProto { dtype: 1, shard_id: 0, offset: 1 << 20, size: 8, ..Default::default() };
        e.shape.dims = vec![2];
        w.add_raw_entry(b"net/far", e).expect("raw");
    });
    hostile("bad_shard_id", Set::All, &|w| {
        let mut e = BundleEntryProto { dtype: 1, shard_id: 7, offset: 0, size: 8, ..Default::default() };
        e.shape.dims = vec![2];
        w.add_raw_entry(b"w", e).expect("raw");
    });
    // Listing it is fine; converting it would write an empty file.
    hostile("strings_only", Set::Data, &|w| w.add_strings("names", &[2], &[b"a".to_vec(), b"b".to_vec()]).expect("strings"));

    // Data corruption: listing is fine, reading is not.
    let flipped = inp.path("ckpt/data_flip/model.ckpt");
    v2(&flipped, good_tensors);
    let data = suffixed(&flipped, ".data-00000-of-00001");
    let mut bytes = std::fs::read(&data).expect("data");
    bytes[3] ^= 0x40;
    std::fs::write(&data, bytes).expect("data");
    rows.extend(reading_commands("data_flip", &flipped, Set::Data, inp, out));
    rows.push(Trial::new("inspect-tensor/data_flip", &[&"inspect", &flipped, &"--tensor", &"net/conv/weights"]));

    let missing = inp.path("ckpt/missing_shard/model.ckpt");
    v2(&missing, good_tensors);
    std::fs::remove_file(suffixed(&missing, ".data-00000-of-00001")).expect("rm");
    rows.extend(reading_commands("missing_shard", &missing, Set::Open, inp, out));

    // The JSON listing too, where the listing is the problem.
    for name in ["dtype_9999", "rank_100000"] {
        rows.push(Trial::new(format!("inspect-json/{name}"), &[&"inspect", &"--json", &inp.path(&format!("ckpt/{name}/model.ckpt"))]));
    }

    // Every truncation and every sixth byte flipped of a small index (inspect), some through
    // convert; the same, sampled, for a small V1 file.
    let small = |w: &mut BundleWriter<Vec<u8>>| w.add("w", &f32_tensor(&[1], 1.0)).expect("add");
    let small_prefix = inp.path("ckpt/small/model.ckpt");
    v2(&small_prefix, small);
    let index = std::fs::read(suffixed(&small_prefix, ".index")).expect("index");
    for cut in 0..index.len() {
        let p = inp.path(&format!("ckpt/trunc/{cut}/model.ckpt"));
        v2(&p, small);
        std::fs::write(suffixed(&p, ".index"), &index[..cut]).expect("cut");
        rows.push(Trial::new(format!("inspect/index_cut_{cut}"), &[&"inspect", &p]));
        if cut % 32 == 0 {
            rows.push(Trial::new(format!("convert/index_cut_{cut}"), &[&"convert", &p, &"-o", &out.join(format!("cut{cut}.st"))]));
        }
    }
    for i in (0..index.len()).step_by(6) {
        let p = inp.path(&format!("ckpt/flip/{i}/model.ckpt"));
        v2(&p, small);
        let mut b = index.clone();
        b[i] ^= 0x04;
        std::fs::write(suffixed(&p, ".index"), &b).expect("flip");
        rows.push(Trial::new(format!("inspect/index_flip_{i}"), &[&"inspect", &p]));
    }
    let mut wrong_magic = index.clone();
    let n = wrong_magic.len();
    wrong_magic[n - 1] ^= 0xff;
    let p = inp.path("ckpt/wrong_magic/model.ckpt");
    v2(&p, small);
    std::fs::write(suffixed(&p, ".index"), wrong_magic).expect("magic");
    rows.extend(reading_commands("wrong_magic", &p, Set::Open, inp, out));

    let mut w = V1Writer::new(V1Options::default());
    w.add("w", &f32_tensor(&[1], 1.0)).expect("add");
    let v1 = w.finish().expect("v1");
    for cut in (0..v1.len()).step_by(12) {
        let p = inp.write(&format!("ckpt/v1cut/{cut}.ckpt"), &v1[..cut]);
        rows.push(Trial::new(format!("inspect/v1_cut_{cut}"), &[&"inspect", &p]));
    }
    for i in (0..v1.len()).step_by(14) {
        let mut b = v1.clone();
        b[i] ^= 0x20;
        let p = inp.write(&format!("ckpt/v1flip/{i}.ckpt"), &b);
        rows.push(Trial::new(format!("inspect/v1_flip_{i}"), &[&"inspect", &p]));
    }
    let p = inp.write("ckpt/garbage.ckpt", &[0x5a; 300]);
    rows.extend(reading_commands("garbage_file", &p, Set::Open, inp, out));
    let lone = inp.write("ckpt/lone.data-00000-of-00001", &[1; 64]);
    rows.extend(reading_commands("lone_data_shard", &lone, Set::Open, inp, out));
    let empty = inp.write("ckpt/empty.ckpt", b"");
    rows.extend(reading_commands("empty_file", &empty, Set::Open, inp, out));
    rows
}

/// Archives: duplicate names, bombs, traversal, lies.
fn archive_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    let good = v2_files("m/model.ckpt", good_tensors);
    let member = |i: usize, deflate: bool| ZipMember { name: &good[i].0, data: &good[i].1, deflate, declared: None };

    let dup = zip_bytes(&[member(0, false), member(1, false), ZipMember { data: &[9; 24], ..member(1, false) }]);
    rows.extend(reading_commands("zip_duplicate", &inp.write("arch/dup.zip", &dup), Set::Open, inp, out));
    let dup_index = zip_bytes(&[member(0, true), member(0, false), member(1, true)]);
    rows.extend(reading_commands("zip_duplicate_index", &inp.write("arch/dup_index.zip", &dup_index), Set::Open, inp, out));

    // A bomb: 64 MiB of zeros (a legal tensor) deflated to ~64 KiB.
    let zeros = v2_files("m/model.ckpt", |w| {
        w.add("w", &TensorData { dtype: DType::F32, shape: vec![16 << 20], data: vec![0; 64 << 20] }).expect("zeros")
    });
    let bomb = zip_bytes(&[
        ZipMember { name: &zeros[0].0, data: &zeros[0].1, deflate: false, declared: None },
        ZipMember { name: &zeros[1].0, data: &zeros[1].1, deflate: true, declared: None },
    ]);
    rows.extend(reading_commands("zip_bomb", &inp.write("arch/bomb.zip", &bomb), Set::Data, inp, out));
    let tgz_bomb = tar_bytes(&[(&zeros[0].0, &zeros[0].1, None), (&zeros[1].0, &zeros[1].1, None)], true);
    rows.extend(reading_commands("tgz_bomb", &inp.write("arch/bomb.tar.gz", &tgz_bomb), Set::Open, inp, out));

    let liar = zip_bytes(&[member(0, true), ZipMember { declared: Some(4), ..member(1, true) }]);
    rows.extend(reading_commands("zip_size_lie", &inp.write("arch/liar.zip", &liar), Set::Data, inp, out));
    let huge = zip_bytes(&[member(0, true), ZipMember { declared: Some(u32::MAX - 1), ..member(1, true) }]);
    rows.extend(reading_commands("zip_huge_declared", &inp.write("arch/huge.zip", &huge), Set::Data, inp, out));
    let truncated = zip_bytes(&[member(0, true), member(1, true)]);
    let half = &truncated[..truncated.len() / 2];
    rows.extend(reading_commands("zip_truncated", &inp.write("arch/half.zip", half), Set::Open, inp, out));
    rows.extend(reading_commands("zip_garbage", &inp.write("arch/garbage.zip", &[0x33; 200]), Set::Open, inp, out));

    let files: Vec<(&str, &[u8], Option<u64>)> = good.iter().map(|(n, d)| (n.as_str(), d.as_slice(), None)).collect();
    let mut traversal = files.clone();
    traversal.push(("../evil.ckpt", b"x", None));
    rows.extend(reading_commands("tgz_dotdot", &inp.write("arch/dotdot.tar.gz", &tar_bytes(&traversal, true)), Set::Open, inp, out));
    let abs = vec![("/etc/model.ckpt.index", good[0].1.as_slice(), None)];
    rows.extend(reading_commands("tar_absolute", &inp.write("arch/abs.tar", &tar_bytes(&abs, false)), Set::Open, inp, out));
    let mut dup_tar = files.clone();
    dup_tar.push((good[1].0.as_str(), &[7; 24], None));
    rows.extend(reading_commands("tgz_duplicate", &inp.write("arch/dup.tar.gz", &tar_bytes(&dup_tar, true)), Set::Open, inp, out));
    let lies = vec![(good[0].0.as_str(), good[0].1.as_slice(), None), (good[1].0.as_str(), good[1].1.as_slice(), Some(1 << 40))];
    rows.extend(reading_commands("tgz_huge_declared", &inp.write("arch/lies.tar.gz", &tar_bytes(&lies, true)), Set::Open, inp, out));
    let tgz = tar_bytes(&files, true);
    rows.extend(reading_commands("tgz_truncated", &inp.write("arch/cut.tar.gz", &tgz[..tgz.len() / 2]), Set::Open, inp, out));
    let good_zip = inp.write("arch/good.zip", &zip_bytes(&[member(0, true), member(1, true)]));
    let mut missing_member = good_zip.clone().into_os_string();
    missing_member.push("!m/nope.ckpt");
    rows.extend(reading_commands("zip_missing_member", &PathBuf::from(missing_member), Set::Open, inp, out));
    rows.push(
        Trial::new("convert/zip_member_limit", &[&"convert", &good_zip, &"-o", &out.join("limit.st"), &"--no-validate"])
            .env("SLIMZOO_MAX_MEMBER_BYTES", "10"),
    );
    rows.push(Trial::new("inspect/zip_limit_not_a_number", &[&"inspect", &good_zip]).env("SLIMZOO_MAX_MEMBER_BYTES", "lots"));
    rows.push(Trial::new("inspect/zip_ratio_not_a_number", &[&"inspect", &good_zip]).env("SLIMZOO_MAX_MEMBER_RATIO", "-3"));
    rows
}

/// Broken safetensors files, given to every command that reads one.
fn safetensors_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header_len_huge", {
            let mut b = u64::MAX.to_le_bytes().to_vec();
            b.extend_from_slice(b"{\"a\":1}");
            b
        }),
        ("header_len_past_end", {
            let mut b = 1000u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{\"a\": {}}");
            b
        }),
        ("header_garbage", safetensors_bytes("{this is not json at all", &[])),
        ("header_not_object", safetensors_bytes("{\"a\": 5}", &[])),
        ("offsets_out_of_range", safetensors_bytes(r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,4000]}}"#, &[0; 16])),
        (
            "offsets_overlap",
            safetensors_bytes(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &[0; 12],
            ),
        ),
        ("dtype_shape_mismatch", safetensors_bytes(r#"{"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,8]}}"#, &[0; 8])),
        ("unknown_dtype", safetensors_bytes(r#"{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8])),
        (
            "huge_shape",
            safetensors_bytes(r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#, &[0; 8]),
        ),
        ("truncated", {
            let b = std::fs::read(&inp.good_st).expect("st");
            b[..b.len() - 3].to_vec()
        }),
    ];
    for (name, bytes) in cases {
        let p = inp.write(&format!("st/{name}.safetensors"), &bytes);
        let o = out.join(format!("{name}.st"));
        rows.push(features(format!("features-weights/st_{name}"), &p, &inp.good_npy, &o, &[]));
        rows.push(Trial::new(format!("check-expect/st_{name}"), &[&"check", &"--expect", &p]));
        rows.push(Trial::new(format!("export/st_{name}"), &[&"export", &p, &"-o", &out.join(format!("{name}_ckpt/model"))]));
    }
    // Well-formed files that do not fit: TF's end points of another dtype or shape.
    let n = 2 * 7; // tiny fixture: batch 2, 7 classes
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("bool_output", format!(r#"{{"output":{{"dtype":"BOOL","shape":[2,7],"data_offsets":[0,{n}]}}}}"#), vec![1; n]),
        ("int_output", format!(r#"{{"output":{{"dtype":"I32","shape":[2,7],"data_offsets":[0,{}]}}}}"#, 4 * n), vec![0; 4 * n]),
        (
            "nan_output",
            format!(r#"{{"output":{{"dtype":"F32","shape":[2,7],"data_offsets":[0,{}]}}}}"#, 4 * n),
            f32_bytes(std::iter::repeat_n(f32::NAN, n)),
        ),
        ("u16_output", format!(r#"{{"output":{{"dtype":"U16","shape":[2,7],"data_offsets":[0,{}]}}}}"#, 2 * n), vec![0; 2 * n]),
    ];
    for (name, header, data) in cases {
        let p = inp.write(&format!("st/{name}.safetensors"), &safetensors_bytes(&header, &data));
        rows.push(Trial::new(format!("check-expect/st_{name}"), &[&"check", &"--expect", &p]));
    }
    let u16w =
        inp.write("st/u16_weights.safetensors", &safetensors_bytes(r#"{"w":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}}"#, &[0; 4]));
    rows.push(features("features-weights/st_u16", &u16w, &inp.good_npy, &out.join("u16.st"), &[]));
    rows
}

/// Broken `.npy` inputs to `check --input` and `features --input`.
fn npy_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    let tiny = fixture("tiny/v2");
    let dict = |descr: &str, fortran: &str, shape: &str| format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let image = |n: usize| f32_bytes((0..n).map(|i| (i % 17) as f32 / 17.0));
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_magic", b"\x93NUMPX\x01\x00\x10\x00{'descr': '<f4'}    ".to_vec()),
        ("not_npy_at_all", b"hello, I am not an array".to_vec()),
        ("huge_shape", npy_bytes(&dict("<f4", "False", "(1000000000, 1000000000, 1000000, 3)"), &image(12))),
        ("overflowing_shape", npy_bytes(&dict("<f4", "False", "(4294967296, 4294967296, 4294967296, 3)"), &image(12))),
        ("truncated_data", npy_bytes(&dict("<f4", "False", "(2, 8, 8, 3)"), &image(2 * 8 * 8 * 3 - 5))),
        ("fortran_order", npy_bytes(&dict("<f4", "True", "(2, 8, 8, 3)"), &image(2 * 8 * 8 * 3))),
        ("object_dtype", npy_bytes(&dict("|O", "False", "(2, 8, 8, 3)"), &image(2 * 8 * 8 * 3))),
        ("string_dtype", npy_bytes(&dict("<U5", "False", "(2, 8, 8, 3)"), &image(2 * 8 * 8 * 3))),
        ("wrong_rank", npy_bytes(&dict("<f4", "False", "(8, 8, 3)"), &image(8 * 8 * 3))),
        ("four_channels", npy_bytes(&dict("<f4", "False", "(1, 8, 8, 4)"), &image(8 * 8 * 4))),
        ("empty_batch", npy_bytes(&dict("<f4", "False", "(0, 8, 8, 3)"), &[])),
        ("zero_size_image", npy_bytes(&dict("<f4", "False", "(1, 0, 0, 3)"), &[])),
        ("bad_shape_text", npy_bytes(&dict("<f4", "False", "(2, eight, 8, 3)"), &image(12))),
        ("no_shape_key", npy_bytes("{'descr': '<f4', 'fortran_order': False, }", &image(3))),
        ("header_len_past_end", {
            let mut b = b"\x93NUMPY\x01\x00\xff\xff".to_vec();
            b.extend_from_slice(b"{'descr': '<f4'}");
            b
        }),
        ("v2_header_len_huge", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{'descr'".to_vec()),
        (
            "nan_values",
            npy_bytes(&dict("<f4", "False", "(1, 8, 8, 3)"), &f32_bytes((0..192).map(|i| if i == 100 { f32::NAN } else { 0.5 }))),
        ),
        (
            "inf_values",
            npy_bytes(&dict("<f4", "False", "(1, 8, 8, 3)"), &f32_bytes((0..192).map(|i| if i == 7 { f32::INFINITY } else { 0.5 }))),
        ),
        ("empty_file", vec![]),
    ];
    cases.push(("only_magic", b"\x93NUMPY".to_vec()));
    for (name, bytes) in cases {
        let p = inp.write(&format!("npy/{name}.npy"), &bytes);
        rows.push(Trial::new(format!("check-input/npy_{name}"), &[&"check", &"--input", &p]));
        let f = features(format!("features-input/npy_{name}"), &tiny, &p, &out.join(format!("npy_{name}.st")), &[]);
        // NaN and infinities are valid input (TF computes on them): the run works and warns,
        // naming the value and the rows.
        rows.push(match name {
            "nan_values" | "inf_values" => {
                f.works().says("element [0, ").says("NaN or infinity in 1 row of the batch (in ").says(format!("{name}.npy[0]"))
            }
            _ => f,
        });
    }
    let fifo = inp.path("npy/fifo.npy");
    mkfifo(&fifo);
    rows.push(Trial::new("check-input/npy_fifo", &[&"check", &"--input", &fifo]));
    // Devices are only ever read here (/dev/null: empty); /dev/zero would never end.
    rows.push(Trial::new("check-input/dev_null", &[&"check", &"--input", &"/dev/null"]));
    rows.push(Trial::new("check-expect/dev_null", &[&"check", &"--expect", &"/dev/null"]));
    rows.push(Trial::new("check-expect/fifo", &[&"check", &"--expect", &fifo]));
    rows.push(features("features-input/npy_fifo", &tiny, &fifo, &out.join("fifo.st"), &[]));
    rows.push(features("features-input/dev_null", &tiny, &"/dev/null", &out.join("null.st"), &[]));
    rows.push(features("features-weights/fifo", &fifo, &inp.good_npy, &out.join("fifo_w.st"), &[]));
    rows
}

/// Outputs: existing files without --force, outputs that are inputs (however spelled), missing
/// folders, folders.
fn output_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    let existing = inp.write("outputs/existing.safetensors", b"precious");
    let v1 = inp.path("outputs/v1/model.ckpt");
    std::fs::create_dir_all(v1.parent().expect("parent")).expect("mkdir");
    v1_file(&v1);
    let v2p = inp.path("outputs/v2/model.ckpt");
    v2(&v2p, good_tensors);
    let index = suffixed(&v2p, ".index");
    let data = suffixed(&v2p, ".data-00000-of-00001");
    let v2dir = v2p.parent().expect("dir").to_path_buf();
    let link = inp.path("outputs/link.ckpt");
    std::os::unix::fs::symlink(&v1, &link).expect("symlink");
    let respelled = inp.path("outputs/v1/../v1/./model.ckpt");
    let st_in = inp.path("outputs/in.safetensors");
    std::fs::copy(&inp.good_st, &st_in).expect("copy");
    let npy_in = inp.path("outputs/in.npy");
    std::fs::copy(&inp.good_npy, &npy_in).expect("copy");

    let convert = |name: &str, input: &Path, output: &Path, force: bool| {
        let mut args: Vec<&dyn AsArg> = vec![&"convert"];
        let (i, o) = (input.to_path_buf(), output.to_path_buf());
        args.extend([&i as &dyn AsArg, &"-o", &o, &"--no-validate"]);
        if force {
            args.push(&"--force");
        }
        Trial::new(format!("convert/{name}"), &args)
    };
    rows.push(convert("output_exists", &inp.good_v2, &existing, false).keeps(&existing));
    rows.push(convert("output_is_v1_input", &v1, &v1, true).keeps(&v1));
    rows.push(convert("output_is_v1_respelled", &v1, &respelled, true).keeps(&v1));
    rows.push(convert("output_is_symlinked_input", &link, &v1, true).keeps(&v1));
    rows.push(convert("output_is_input_through_symlink", &v1, &link, true).keeps(&v1));
    rows.push(convert("output_is_index", &v2p, &index, true).keeps(&index).keeps(&data));
    rows.push(convert("output_is_data_shard", &v2p, &data, true).keeps(&index).keeps(&data));
    rows.push(convert("output_is_index_of_folder_input", &v2dir, &index, true).keeps(&index));
    rows.push(convert("output_is_input_folder", &v2dir, &v2dir, true).keeps(&index));
    rows.push(convert("output_in_missing_folder", &inp.good_v2, &out.join("no/such/folder/x.st"), false));
    rows.push(convert("output_is_a_folder", &inp.good_v2, &inp.path("outputs"), true));
    // A FIFO as the output (never a real device: a rename over /dev/null would replace it).
    let fifo_out = inp.path("outputs/fifo.safetensors");
    mkfifo(&fifo_out);
    rows.push(convert("output_is_fifo", &inp.good_v2, &fifo_out, true));

    // export: both files of the prefix are outputs.
    let exp_existing = inp.path("outputs/exp/model");
    std::fs::create_dir_all(exp_existing.parent().expect("parent")).expect("mkdir");
    let exp_data = inp.write("outputs/exp/model.data-00000-of-00001", b"precious data");
    rows.push(Trial::new("export/data_file_exists", &[&"export", &st_in, &"-o", &exp_existing]).keeps(&exp_data));
    let st_as_index = inp.path("outputs/named/model.index");
    std::fs::create_dir_all(st_as_index.parent().expect("parent")).expect("mkdir");
    std::fs::copy(&inp.good_st, &st_as_index).expect("copy");
    rows.push(
        Trial::new("export/index_is_input", &[&"export", &st_as_index, &"-o", &inp.path("outputs/named/model"), &"--force"])
            .keeps(&st_as_index),
    );
    let st_as_data = inp.path("outputs/named2/model.data-00000-of-00001");
    std::fs::create_dir_all(st_as_data.parent().expect("parent")).expect("mkdir");
    std::fs::copy(&inp.good_st, &st_as_data).expect("copy");
    rows.push(
        Trial::new("export/data_is_input", &[&"export", &st_as_data, &"-o", &inp.path("outputs/named2/model"), &"--force"])
            .keeps(&st_as_data),
    );
    rows.push(Trial::new("export/input_missing", &[&"export", &inp.path("outputs/nope.safetensors"), &"-o", &out.join("m")]));
    rows.push(Trial::new("export/input_is_folder", &[&"export", &inp.path("outputs"), &"-o", &out.join("m2")]));

    // bench --convert writes too.
    rows.push(
        Trial::new("bench-convert/output_exists", &[&"bench", &"--convert", &inp.good_v2, &"-o", &existing, &"--repeat", &"1"])
            .keeps(&existing),
    );
    rows.push(
        Trial::new("bench-convert/output_is_input", &[&"bench", &"--convert", &v1, &"-o", &v1, &"--repeat", &"1", &"--force"]).keeps(&v1),
    );
    rows.push(
        Trial::new("bench-convert/output_is_data_shard", &[&"bench", &"--convert", &v2p, &"-o", &data, &"--repeat", &"1", &"--force"])
            .keeps(&data),
    );

    // features writes its end points.
    let tiny = fixture("tiny/v2");
    rows.push(features("features/output_exists", &tiny, &inp.good_npy, &existing, &[]).keeps(&existing));
    rows.push(features("features/output_is_weights", &st_in, &inp.good_npy, &st_in, &["--force"]).keeps(&st_in));
    rows.push(features("features/output_is_input", &tiny, &npy_in, &npy_in, &["--force"]).keeps(&npy_in));
    rows.push(features("features/output_in_missing_folder", &tiny, &inp.good_npy, &out.join("gone/f.st"), &[]));
    rows
}

/// Absurd option values.
fn option_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    // Everything else small, so that a value that slips through ends quickly.
    let bench = |name: &str, extra: &[&str]| {
        let mut args: Vec<String> = ["bench", "--arch", "resnet_v2_50", "--batch", "1", "--batches", "1", "--burn-in", "0", "--size", "32"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for pair in extra.chunks(2) {
            if let Some(i) = args.iter().position(|a| a == pair[0]) {
                args.remove(i);
                args.remove(i);
            }
            args.extend(pair.iter().map(|s| s.to_string()));
        }
        let refs: Vec<&dyn AsArg> = args.iter().map(|a| a as &dyn AsArg).collect();
        Trial::new(format!("bench/{name}"), &refs)
    };
    for (name, extra) in [
        ("threads_0", &["--threads", "0"][..]),
        ("threads_-1", &["--threads", "-1"]),
        ("threads_100000", &["--threads", "100000"]),
        ("threads_text", &["--threads", "many"]),
        ("batch_0", &["--batch", "0"]),
        ("batch_-5", &["--batch", "-5"]),
        ("batch_1e9", &["--batch", "1e9"]),
        ("batch_1000000000", &["--batch", "1000000000"]),
        ("size_0", &["--size", "0"]),
        ("size_-1", &["--size", "-1"]),
        ("size_100000", &["--size", "100000"]),
        ("batches_0", &["--batches", "0"]),
        ("burn_in_huge", &["--burn-in", "1000000000000"]),
        ("arch_unknown", &["--arch", "vgg_16"]),
        ("rewrites_junk", &["--rewrites", "fold,warp"]),
        ("device_missing_gpu", &["--device", "cuda:7"]),
        ("device_junk", &["--device", "gpu"]),
        ("dtype_junk", &["--dtype", "f64"]),
    ] {
        rows.push(bench(name, extra));
    }
    rows.push(Trial::new("bench/repeat_0", &[&"bench", &"--read", &inp.good_v2, &"--repeat", &"0"]));
    rows.push(Trial::new("bench/repeat_huge", &[&"bench", &"--read", &inp.good_v2, &"--repeat", &"1000000000000"]));
    rows.push(Trial::new("bench/read_and_convert", &[&"bench", &"--read", &inp.good_v2, &"--convert", &inp.good_v2]));

    rows.push(Trial::new("inspect/values_-1", &[&"inspect", &inp.good_v2, &"--tensor", &"net/conv/biases", &"--values", &"-1"]));
    rows.push(Trial::new("inspect/no_such_tensor", &[&"inspect", &inp.good_v2, &"--tensor", &"nope"]));
    rows.push(Trial::new("inspect/no_path", &[&"inspect"]));

    let o = out.join("opt.st");
    for (name, extra) in [
        ("rename_bad_regex", &["--rename", "([=x"][..]),
        ("rename_no_equals", &["--rename", "abc"]),
        ("rename_collision", &["--rename", ".*=same"]),
        ("arch_unknown", &["--arch", "vgg_16"]),
        ("arch_wrong", &["--arch", "resnet_v2_50"]),
        ("blocks_garbage", &["--blocks", "64x3/2,zzz"]),
    ] {
        let mut args: Vec<&dyn AsArg> = vec![&"convert", &inp.good_v2, &"-o", &o];
        args.extend(extra.iter().map(|s| s as &dyn AsArg));
        rows.push(Trial::new(format!("convert/{name}"), &args));
    }
    for (name, extra) in [
        ("tol_nan", &["--tol", "nan"][..]),
        ("tol_negative", &["--tol", "-1"]),
        ("tol_inf", &["--tol", "inf"]),
        ("arch_unknown", &["--arch", "vgg_16"]),
        ("rewrites_junk", &["--rewrites", "everything"]),
        ("checkpoint_missing", &["--checkpoint", "/nonexistent/model.ckpt"]),
    ] {
        let mut args: Vec<&dyn AsArg> = vec![&"check"];
        args.extend(extra.iter().map(|s| s as &dyn AsArg));
        rows.push(Trial::new(format!("check/{name}"), &args));
    }
    let tiny = fixture("tiny/v2");
    for (name, extra) in [
        ("num_classes_negative", &["--num-classes", "-3"][..]),
        ("num_classes_huge", &["--num-classes", "99999999999"]),
        ("output_stride_3", &["--output-stride", "3"]),
        ("output_stride_0", &["--output-stride", "0"]),
        ("output_stride_-8", &["--output-stride", "-8"]),
        ("end_points_unknown", &["--end-points", "nope"]),
        ("device_missing_gpu", &["--device", "cuda:3"]),
        ("rewrites_junk", &["--rewrites", "warp"]),
        ("arch_unknown", &["--arch", "vgg_16"]),
        ("blocks_garbage", &["--blocks", "1x1/1,,"]),
        ("rename_bad", &["--rename", "(=x"]),
    ] {
        rows.push(features(format!("features/{name}"), &tiny, &inp.good_npy, &o, extra));
    }
    rows.push(features("features/weights_missing", &"/nonexistent", &inp.good_npy, &o, &[]));
    rows.push(Trial::new("zoo/extra_argument", &[&"zoo", &"extra"]));
    rows.push(Trial::new("slimzoo/no_subcommand", &[]));
    rows.push(Trial::new("slimzoo/unknown_subcommand", &[&"frobnicate"]));
    rows.push(Trial::new("slimzoo/unknown_flag", &[&"inspect", &"--frobnicate", &inp.good_v2]));
    rows
}

/// Odd folders and special files given as checkpoints.
fn folder_rows(inp: &Inputs, out: &Path) -> Vec<Trial> {
    let mut rows = Vec::new();
    let empty = inp.path("folders/empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    rows.extend(reading_commands("folder_empty", &empty, Set::Open, inp, out));
    let two = inp.path("folders/two");
    v2(&two.join("a.ckpt"), good_tensors);
    v2(&two.join("b.ckpt"), good_tensors);
    rows.extend(reading_commands("folder_two_checkpoints", &two, Set::Open, inp, out));
    let fifo_dir = inp.path("folders/fifo");
    std::fs::create_dir_all(&fifo_dir).expect("mkdir");
    mkfifo(&fifo_dir.join("model.ckpt.index"));
    std::fs::write(fifo_dir.join("model.ckpt.data-00000-of-00001"), [0u8; 8]).expect("data");
    rows.extend(reading_commands("folder_fifo_index", &fifo_dir, Set::Open, inp, out));
    rows.extend(reading_commands("fifo_index_direct", &fifo_dir.join("model.ckpt.index"), Set::Open, inp, out));
    rows.extend(reading_commands("fifo_prefix", &fifo_dir.join("model.ckpt"), Set::Open, inp, out));
    let loops = inp.path("folders/loop");
    std::fs::create_dir_all(&loops).expect("mkdir");
    std::os::unix::fs::symlink("b.ckpt", loops.join("a.ckpt")).expect("symlink");
    std::os::unix::fs::symlink("a.ckpt", loops.join("b.ckpt")).expect("symlink");
    std::os::unix::fs::symlink("model.ckpt.index", loops.join("model.ckpt.index")).expect("symlink");
    rows.extend(reading_commands("folder_symlink_loops", &loops, Set::Open, inp, out));
    rows.extend(reading_commands("symlink_loop_direct", &loops.join("a.ckpt"), Set::Open, inp, out));
    let state = inp.path("folders/state_missing");
    v2(&state.join("real.ckpt"), good_tensors);
    std::fs::write(state.join("checkpoint"), "model_checkpoint_path: \"gone.ckpt\"\n").expect("state");
    rows.extend(reading_commands("state_file_names_missing", &state, Set::Open, inp, out));
    let garbage_state = inp.path("folders/state_garbage");
    std::fs::create_dir_all(&garbage_state).expect("mkdir");
    std::fs::write(garbage_state.join("checkpoint"), [0xff, 0xfe, 0, 1, 2]).expect("state");
    rows.extend(reading_commands("state_file_garbage", &garbage_state, Set::Open, inp, out));
    let escape = inp.path("folders/state_escape");
    std::fs::create_dir_all(&escape).expect("mkdir");
    std::fs::write(escape.join("checkpoint"), "model_checkpoint_path: \"/etc/passwd\"\n").expect("state");
    rows.extend(reading_commands("state_file_points_outside", &escape, Set::Open, inp, out));
    rows.extend(reading_commands("dev_null", Path::new("/dev/null"), Set::Open, inp, out));
    rows.extend(reading_commands("missing_path", &inp.path("folders/nowhere/model.ckpt"), Set::Open, inp, out));
    rows
}

// ------------------------------------------------------------------------------------------------
// scenarios

/// A checkpoint big enough that converting it takes a moment (to be interrupted).
fn big_checkpoint(inp: &Inputs) -> PathBuf {
    let prefix = inp.path("big/model.ckpt");
    v2(&prefix, |w| {
        for i in 0..32 {
            w.add(&format!("t{i:02}"), &f32_tensor(&[1 << 20], i as f32)).expect("add");
        }
    });
    prefix
}

/// A scenario's command line, from the trial's folder (where its outputs go).
type ArgsIn = dyn Fn(&Path) -> Vec<OsString> + Send + Sync;
/// What must hold in the trial's folder afterwards.
type Holds = dyn Fn(&Path) -> Result<(), String> + Send + Sync;

/// `args` interrupted by `signal` once `ready` holds in the trial's folder (the process runs in
/// it, stderr in its file `stderr`): exit 128 + signal, no temporary file, and `left` holds.
fn signal_trial(
    name: &str,
    signal: i32,
    args: impl Fn(&Path) -> Vec<OsString> + Send + Sync + 'static,
    ready: impl Fn(&Path) -> bool + Send + Sync + 'static,
    left: impl Fn(&Path) -> Result<(), String> + Send + Sync + 'static,
) -> Trial {
    Trial::scenario(name, move |dir| {
        let err = std::fs::File::create(dir.join("stderr")).expect("stderr file");
        let mut child = Command::new(bin())
            .args(args(dir))
            .current_dir(dir)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start");
        let start = Instant::now();
        let mut sent = false;
        while start.elapsed() < TIMEOUT {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if ready(dir) {
                // SAFETY: sending a signal to our own child.
                unsafe { libc::kill(child.id() as i32, signal) };
                sent = true;
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        if start.elapsed() >= TIMEOUT {
            let _ = child.kill();
        }
        let status = child.wait().expect("wait");
        let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let left =
            temp_files(dir).iter().map(|p| format!("temporary file left: {}", p.display())).chain(left(dir).err()).collect::<Vec<_>>();
        let want = 128 + signal;
        let detail = format!("signal {signal} sent: {sent}; {status}; {left:?}; stderr: {}", excerpt(&stderr));
        let class = if !sent {
            // The command finished before it was ready to be interrupted: inconclusive, counted
            // as silent so that it shows up.
            Class::Silent
        } else if stderr.contains("panicked") {
            Class::Panic
        } else if status.code() != Some(want) || status.signal().is_some() {
            Class::Abort
        } else if !left.is_empty() {
            Class::Damage
        } else {
            Class::Clean
        };
        Outcome { class, detail }
    })
}

/// Nothing at `path`.
fn nothing_at(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(format!("{} was written", path.display())),
        Err(_) => Ok(()),
    }
}

/// `convert CKPT -o OUT --no-validate`.
fn convert_args(ckpt: &Path, out: &Path) -> Vec<OsString> {
    ["convert".into(), ckpt.into(), "-o".into(), out.into(), "--no-validate".into()].to_vec()
}

/// `convert` interrupted by `signal` once its temporary output exists: no output either.
fn convert_signal_trial(name: &str, ckpt: PathBuf, signal: i32) -> Trial {
    let out = |dir: &Path| dir.join("big.safetensors");
    signal_trial(
        name,
        signal,
        move |dir| convert_args(&ckpt, &out(dir)),
        |dir| !temp_files(dir).is_empty(),
        move |dir| nothing_at(&out(dir)),
    )
}

/// Two runs of `args` at once, writing the same outputs in the trial's folder, without
/// --force: one succeeds, the other fails cleanly, and `complete` holds (nothing half written).
fn concurrency_trial(
    name: &str,
    args: impl Fn(&Path) -> Vec<OsString> + Send + Sync + 'static,
    complete: impl Fn(&Path) -> Result<(), String> + Send + Sync + 'static,
) -> Trial {
    let args: std::sync::Arc<ArgsIn> = std::sync::Arc::new(args);
    let complete: Box<Holds> = Box::new(complete);
    Trial::scenario(name, move |dir| {
        let start = |i: usize| {
            let sub = dir.join(format!("p{i}"));
            std::fs::create_dir_all(&sub).expect("mkdir");
            let mut cmd = Command::new(bin());
            cmd.args(args(dir)).env_remove("RUST_BACKTRACE");
            std::thread::spawn(move || run_command(cmd, &sub))
        };
        let (a, b) = (start(0), start(1));
        let results = [a.join().expect("thread"), b.join().expect("thread")];
        let ok = results.iter().filter(|(s, _)| s.is_some_and(|s| s.success())).count();
        let failed: Vec<Outcome> = results.iter().filter_map(|(s, e)| s.filter(|s| !s.success()).map(|s| classify(s, e))).collect();
        let complete = complete(dir);
        let detail = format!(
            "{ok} succeeded, {} failed ({}), output complete: {complete:?}",
            failed.len(),
            failed.iter().map(|o| o.detail.as_str()).collect::<Vec<_>>().join(" | ")
        );
        let class = if ok == 1 && failed.len() == 1 && failed[0].class == Class::Clean && complete.is_ok() {
            Class::Clean
        } else if let Some(f) = failed.iter().find(|f| f.class != Class::Clean) {
            f.class
        } else if ok == 2 {
            Class::Silent
        } else {
            Class::Damage
        };
        Outcome { class, detail }
    })
}

/// Two `convert`s of `ckpt` (32 tensors) to the same output at once.
fn convert_concurrency_trial(ckpt: PathBuf) -> Trial {
    let out = |dir: &Path| dir.join("same.safetensors");
    concurrency_trial(
        "concurrency/two_converts_one_output",
        move |dir| convert_args(&ckpt, &out(dir)),
        move |dir| match slimzoo::safetensors_file::Mapped::open(&out(dir)).and_then(|m| m.names()).map(|n| n.len()) {
            Ok(32) => Ok(()),
            other => Err(format!("{other:?} tensors instead of 32")),
        },
    )
}

// ------------------------------------------------------------------------------------------------
// the suite

#[test]
fn hostile_inputs_end_in_clean_errors() {
    // No trial may ever replace /dev/null (a rename over it would): checked before and after.
    assert!(dev_null_is_a_device(), "/dev/null is not a character device before the suite: fix the machine first");
    let tmp = tempfile::tempdir().expect("tempdir");
    let inputs_dir = tmp.path().join("in");
    let runs = tmp.path().join("runs");
    let inp = Inputs::new(&inputs_dir);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");

    let mut trials = Vec::new();
    trials.extend(checkpoint_rows(&inp, &out));
    trials.extend(archive_rows(&inp, &out));
    trials.extend(safetensors_rows(&inp, &out));
    trials.extend(npy_rows(&inp, &out));
    trials.extend(output_rows(&inp, &out));
    trials.extend(option_rows(&inp, &out));
    trials.extend(folder_rows(&inp, &out));
    trials.extend(images::rows(&inp));
    let big = big_checkpoint(&inp);
    trials.push(convert_signal_trial("signals/sigint_during_convert", big.clone(), libc::SIGINT));
    trials.push(convert_signal_trial("signals/sigterm_during_convert", big.clone(), libc::SIGTERM));
    trials.push(convert_concurrency_trial(big));
    if let Ok(only) = std::env::var("SLIMZOO_HOSTILE") {
        trials.retain(|t| only.split(',').any(|part| t.name.contains(part)));
    }
    let mut names: Vec<&str> = trials.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    let dups: Vec<&&str> = names.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    assert!(dups.is_empty(), "trial names must be unique: {dups:?}");

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome, f64)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = trials.get(i) else { break };
                    let start = Instant::now();
                    let o = run_trial(t, &runs.join(i.to_string()));
                    let secs = start.elapsed().as_secs_f64();
                    results.lock().unwrap_or_else(|e| e.into_inner()).push((i, o, secs));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _, _)| *i);

    let mut counts: BTreeMap<Class, usize> = CLASSES.iter().map(|c| (*c, 0)).collect();
    let mut by_command: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for (i, o, secs) in &results {
        *counts.entry(o.class).or_default() += 1;
        let command = trials[*i].name.split('/').next().unwrap_or_default();
        let e = by_command.entry(command).or_default();
        e.0 += 1;
        e.1 += secs;
    }
    let summary: Vec<String> = counts.iter().map(|(c, n)| format!("{} {n}", format!("{c:?}").to_lowercase())).collect();
    println!("hostile: {} trials in {:.1} s: {}", results.len(), started.elapsed().as_secs_f64(), summary.join(", "));
    let times: Vec<String> = by_command.iter().map(|(c, (n, s))| format!("{c} {n} ({s:.1} s)")).collect();
    println!("hostile: trials (time) by command: {}", times.join(", "));
    let left = temp_files(&inputs_dir);
    // SLIMZOO_HOSTILE_VERBOSE: every trial's ending, to read the messages.
    let verbose = std::env::var_os("SLIMZOO_HOSTILE_VERBOSE").is_some();
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, o, _)| verbose || !matches!(o.class, Class::Clean | Class::Ok))
        .map(|(i, o, _)| {
            let t = &trials[*i];
            let args: Vec<String> = t.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            format!("[{:?}] {}: slimzoo {}\n    {}", o.class, t.name, args.join(" "), o.detail)
        })
        .collect();
    for b in &bad {
        println!("{b}");
    }
    assert!(dev_null_is_a_device(), "/dev/null is no longer a character device: a trial replaced it");
    assert!(left.is_empty(), "temporary files left among the inputs: {left:?}");
    let bad: Vec<&String> = bad.iter().filter(|b| !b.starts_with("[Clean]") && !b.starts_with("[Ok]")).collect();
    assert!(
        bad.is_empty(),
        "{} of {} hostile trials did not end as due:\n{}",
        bad.len(),
        results.len(),
        bad.iter().map(|b| b.as_str()).collect::<Vec<_>>().join("\n")
    );
}

fn dev_null_is_a_device() -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata("/dev/null").is_ok_and(|m| m.file_type().is_char_device())
}
