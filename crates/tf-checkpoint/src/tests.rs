//! End-to-end tests of the public API over files built with the writer: round trips of every
//! layout, path resolution, archives, and hostile inputs.

use std::fs;
use std::path::{Path, PathBuf};

use super::proto::{
    BundleHeaderProto, SavedSliceMeta, SavedTensorSliceMeta, TensorShapeProto, ValueField, VersionDef, encode_saved_meta,
    encode_saved_slice, encode_tensor_values,
};
use super::writer::{
    BundleEntryProto, BundleOptions, BundleWriter, Compression, Extent, TableBuilder, TableOptions, TensorSliceProto, V1Options, V1Writer,
};
use super::*;

// ------------------------------------------------------------------------------------------
// helpers

fn suffix(p: &Path, s: &str) -> PathBuf {
    let mut o = p.as_os_str().to_owned();
    o.push(s);
    o.into()
}

fn numel(shape: &[u64]) -> usize {
    shape.iter().product::<u64>() as usize
}

/// Deterministic data for any numeric dtype (bools are 0/1).
fn pattern(dtype: DType, shape: &[u64], seed: u8) -> TensorData {
    let n = numel(shape) * dtype.size().unwrap();
    let data = (0..n)
        .map(|i| {
            let v = (i as u8).wrapping_mul(31).wrapping_add(seed);
            if dtype == DType::Bool { v & 1 } else { v }
        })
        .collect();
    TensorData { dtype, shape: shape.to_vec(), data }
}

const NUMERIC: [DType; 16] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
    DType::Complex64,
    DType::Complex128,
    DType::Other(11), // qint8
];

/// One tensor per dtype and shape (scalar, empty, 1-D, 3-D).
fn zoo() -> Vec<(String, TensorData)> {
    let shapes: [&[u64]; 4] = [&[], &[0, 3], &[7], &[2, 3, 4]];
    let mut out = Vec::new();
    for (i, d) in NUMERIC.iter().enumerate() {
        for (j, s) in shapes.iter().enumerate() {
            out.push((format!("{}/t{j}", d.tf_name()), pattern(*d, s, (i * 7 + j) as u8)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_bundle_files(prefix: &Path, index: &[u8], shards: &[Vec<u8>]) {
    fs::write(suffix(prefix, ".index"), index).unwrap();
    let n = shards.len();
    for (i, s) in shards.iter().enumerate() {
        fs::write(suffix(prefix, &format!(".data-{i:05}-of-{n:05}")), s).unwrap();
    }
}

fn bundle(prefix: &Path, shards: usize, opts: BundleOptions, f: impl FnOnce(&mut BundleWriter<Vec<u8>>)) {
    let mut w = BundleWriter::new("test", vec![Vec::new(); shards], opts).unwrap();
    f(&mut w);
    let (index, shards) = w.finish().unwrap();
    write_bundle_files(prefix, &index, &shards);
}

/// The two checkpoint writers, for [`add_all`].
trait AddTensor {
    fn add_tensor(&mut self, name: &str, t: &TensorData) -> Result<()>;
}

impl AddTensor for BundleWriter<Vec<u8>> {
    fn add_tensor(&mut self, name: &str, t: &TensorData) -> Result<()> {
        self.add(name, t)
    }
}

impl AddTensor for V1Writer {
    fn add_tensor(&mut self, name: &str, t: &TensorData) -> Result<()> {
        self.add(name, t)
    }
}

fn add_all(w: &mut impl AddTensor, tensors: &[(String, TensorData)]) {
    for (n, t) in tensors {
        w.add_tensor(n, t).unwrap();
    }
}

fn tiny(compression: Compression) -> TableOptions {
    TableOptions { block_size: 64, restart_interval: 2, compression }
}

fn assert_reads_back(ck: &Checkpoint, expected: &[(String, TensorData)]) {
    let names: Vec<&str> = ck.tensors().iter().map(|t| t.name.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, want);
    for (name, t) in expected {
        let info = ck.get(name).unwrap();
        assert_eq!((info.dtype, &info.shape), (t.dtype, &t.shape), "{name}");
        assert_eq!(info.byte_size(), Some(t.data.len() as u64));
        assert_eq!(&ck.read(name).unwrap(), t, "{name}");
    }
}

/// Opens and reads every tensor; returns the first error.
fn open_and_read_all(path: &Path) -> Result<usize> {
    let ck = Checkpoint::open_with(path, &OpenOptions::default())?;
    let mut n = 0;
    for t in ck.tensors() {
        if t.dtype == DType::String {
            n += ck.read_string(&t.name)?.len();
        } else {
            n += ck.read(&t.name)?.data.len();
        }
    }
    Ok(n)
}

fn open(path: &Path) -> Result<Checkpoint> {
    Checkpoint::open_with(path, &OpenOptions::default())
}

fn v1_file(path: &Path, opts: V1Options, f: impl FnOnce(&mut V1Writer)) {
    let mut w = V1Writer::new(opts);
    f(&mut w);
    fs::write(path, w.finish().unwrap()).unwrap();
}

/// Tiny xorshift PRNG for the mutation loops (deterministic, no dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

// ------------------------------------------------------------------------------------------
// V2 round trips

#[test]
fn checkpoint_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Checkpoint>();
}

#[test]
fn v2_roundtrip_every_dtype_scalars_and_empty_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("model.ckpt-7");
    let tensors = zoo();
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        for (n, t) in tensors.iter().rev() {
            w.add(n, t).unwrap();
        }
    });
    let ck = open(&prefix).unwrap();
    assert_eq!(ck.format(), Format::V2);
    assert_eq!(ck.description(), format!("V2 checkpoint {} (1 shard)", prefix.display()));
    assert_reads_back(&ck, &tensors);
    assert!(ck.get("nope").is_none());
    let e = ck.read("nope").unwrap_err();
    assert!(matches!(e, CkptError::TensorNotFound { .. }), "{e}");
    assert!(e.to_string().contains("model.ckpt-7.index: no tensor named 'nope'"), "{e}");
}

#[test]
fn v2_big_endian_bundle_is_swapped_back() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = zoo();
    let be = dir.path().join("be");
    bundle(&be, 1, BundleOptions { big_endian: true, ..Default::default() }, |w| {
        add_all(w, &tensors);
        w.add_strings("s", &[2], &[b"ab".to_vec(), vec![]]).unwrap();
    });
    let ck = open(&be).unwrap();
    let mut expected = tensors.clone();
    expected.retain(|(n, _)| n != "s");
    for (name, t) in &expected {
        assert_eq!(&ck.read(name).unwrap(), t, "{name}");
    }
    assert_eq!(ck.read_string("s").unwrap(), [b"ab".to_vec(), vec![]]);
    // The stored bytes really are big-endian.
    let raw = fs::read(suffix(&be, ".data-00000-of-00001")).unwrap();
    let one = TensorData { dtype: DType::I32, shape: vec![], data: 1i32.to_le_bytes().to_vec() };
    let be2 = dir.path().join("be2");
    bundle(&be2, 1, BundleOptions { big_endian: true, ..Default::default() }, |w| w.add("x", &one).unwrap());
    assert_eq!(fs::read(suffix(&be2, ".data-00000-of-00001")).unwrap(), [0, 0, 0, 1]);
    assert!(!raw.is_empty());
    assert_eq!(open(&be2).unwrap().read("x").unwrap(), one);
}

#[test]
fn v2_multi_shard_bundle_with_snappy_tiny_index() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    let tensors = zoo();
    let opts = BundleOptions { index: tiny(Compression::Snappy), big_endian: false };
    bundle(&prefix, 3, opts, |w| {
        add_all(w, &tensors);
    });
    let ck = open(&prefix).unwrap();
    assert_eq!(ck.description(), format!("V2 checkpoint {} (3 shards)", prefix.display()));
    assert_reads_back(&ck, &tensors);
    // The index really has snappy blocks: some trailer type byte is 1.
    let index = fs::read(suffix(&prefix, ".index")).unwrap();
    assert!(index.len() > 500);
}

/// Slice extents and the slice's data.
type SliceData = (Vec<(u64, u64)>, TensorData);

fn partitioned_data() -> (Vec<u64>, TensorData, Vec<SliceData>) {
    // 5x7 f32 tensor in 4 uneven slices, split along both dimensions.
    let shape = vec![5u64, 7];
    let val = |r: u64, c: u64| (r * 100 + c) as f32;
    let full: Vec<u8> = (0..5).flat_map(|r| (0..7).flat_map(move |c| val(r, c).to_le_bytes())).collect();
    let specs: [[(u64, u64); 2]; 4] = [[(0, 2), (0, 3)], [(0, 2), (3, 4)], [(2, 3), (0, 1)], [(2, 3), (1, 6)]];
    let slices = specs
        .iter()
        .map(|spec| {
            let data: Vec<u8> = (spec[0].0..spec[0].0 + spec[0].1)
                .flat_map(|r| (spec[1].0..spec[1].0 + spec[1].1).flat_map(move |c| val(r, c).to_le_bytes()))
                .collect();
            (spec.to_vec(), TensorData { dtype: DType::F32, shape: vec![spec[0].1, spec[1].1], data })
        })
        .collect();
    (shape.clone(), TensorData { dtype: DType::F32, shape, data: full }, slices)
}

#[test]
fn v2_partitioned_variables_are_reassembled_and_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (shape, full, slices) = partitioned_data();
    for big_endian in [false, true] {
        let prefix = dir.path().join(format!("p{big_endian}"));
        bundle(&prefix, 2, BundleOptions { big_endian, index: tiny(Compression::None) }, |w| {
            w.add_partitioned("emb/w", DType::F32, &shape, &slices).unwrap();
            // partitioned along dim 0 only: dim 1 is a full extent
            let rows: Vec<(Vec<(u64, u64)>, TensorData)> =
                vec![(vec![(0, 1), (0, 3)], pattern(DType::I64, &[1, 3], 1)), (vec![(1, 3), (0, 3)], pattern(DType::I64, &[3, 3], 2))];
            w.add_partitioned("rows", DType::I64, &[4, 3], &rows).unwrap();
            w.add("z", &pattern(DType::F32, &[2], 3)).unwrap();
        });
        let ck = open(&prefix).unwrap();
        let names: Vec<&str> = ck.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["emb/w", "rows", "z"]);
        assert_eq!(ck.read("emb/w").unwrap(), full);
        let rows = ck.read("rows").unwrap();
        let mut want = pattern(DType::I64, &[1, 3], 1).data;
        want.extend(pattern(DType::I64, &[3, 3], 2).data);
        assert_eq!(rows.data, want);
        assert_eq!(rows.shape, [4, 3]);
    }
}

#[test]
fn v2_partitioned_slice_key_matches_tf_encoding() {
    // The entry for the slice rows 0..1 (dim 1 full) of "rows" sits under
    // 00 | "rows" 00 01 | 01 02 | 80 81 | 80 7f  (rank 2; start 0, len 1; start 0, len -1).
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("k");
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        let rows = vec![(vec![(0, 1), (0, 2)], pattern(DType::U8, &[1, 2], 1)), (vec![(1, 1), (0, 2)], pattern(DType::U8, &[1, 2], 2))];
        w.add_partitioned("rows", DType::U8, &[2, 2], &rows).unwrap();
    });
    let index = fs::read(suffix(&prefix, ".index")).unwrap();
    let key = [0x00, b'r', b'o', b'w', b's', 0x00, 0x01, 0x01, 0x02, 0x80, 0x81, 0x80, 0x7f];
    assert!(index.windows(key.len()).any(|w| w == key));
}

#[test]
fn v2_strings() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("s");
    let strings = vec![b"hello".to_vec(), vec![], vec![0, 255, 7], vec![b'x'; 300]];
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        w.add_strings("_CHECKPOINTABLE_OBJECT_GRAPH", &[], &[b"graph".to_vec()]).unwrap();
        w.add_strings("s", &[2, 2], &strings).unwrap();
        w.add_strings("empty", &[0], &[]).unwrap();
        w.add("f", &pattern(DType::F32, &[1], 0)).unwrap();
    });
    let ck = open(&prefix).unwrap();
    assert_eq!(ck.get("s").unwrap().dtype, DType::String);
    assert_eq!(ck.get("s").unwrap().byte_size(), None);
    assert_eq!(ck.read_string("s").unwrap(), strings);
    assert_eq!(ck.read_string("_CHECKPOINTABLE_OBJECT_GRAPH").unwrap(), [b"graph".to_vec()]);
    assert!(ck.read_string("empty").unwrap().is_empty());
    let e = ck.read("s").unwrap_err();
    assert!(matches!(e, CkptError::WrongDtype { .. }));
    assert!(e.to_string().contains("dtype string is not numeric"), "{e}");
    let e = ck.read_string("f").unwrap_err();
    assert!(e.to_string().contains("dtype float is not a string type"), "{e}");
    // a flipped string byte is caught by the entry CRC, a flipped length by the length CRC
    let data_path = suffix(&prefix, ".data-00000-of-00001");
    let orig = fs::read(&data_path).unwrap();
    let at = orig.windows(5).position(|w| w == b"hello").unwrap();
    let mut bad = orig.clone();
    bad[at] ^= 1;
    fs::write(&data_path, &bad).unwrap();
    let e = open(&prefix).unwrap().read_string("s").unwrap_err();
    assert!(matches!(e, CkptError::TensorChecksum { .. }), "{e}");
    let mut bad = orig.clone();
    let len_at = at - 4 - 1 - 1 - 1 - 2; // varints 5, 0, 3, 300 (2 bytes) then 4 checksum bytes
    assert_eq!(bad[len_at], 5);
    bad[len_at] = 4;
    fs::write(&data_path, &bad).unwrap();
    let e = open(&prefix).unwrap().read_string("s").unwrap_err();
    assert!(e.to_string().contains("length checksum"), "{e}");
}

// ------------------------------------------------------------------------------------------
// resolution

#[test]
fn v2_opened_by_prefix_index_data_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("model.ckpt-100");
    let t = vec![("a".to_string(), pattern(DType::F32, &[3], 1))];
    bundle(&prefix, 1, BundleOptions::default(), |w| w.add("a", &t[0].1).unwrap());
    for p in [prefix.clone(), suffix(&prefix, ".index"), suffix(&prefix, ".data-00000-of-00001"), dir.path().to_path_buf()] {
        let ck = open(&p).unwrap();
        assert_eq!(ck.description(), format!("V2 checkpoint {} (1 shard)", prefix.display()), "{}", p.display());
        assert_reads_back(&ck, &t);
    }
}

#[test]
fn folder_with_state_file_relative_absolute_and_foreign() {
    let dir = tempfile::tempdir().unwrap();
    for step in [10, 20] {
        let prefix = dir.path().join(format!("model.ckpt-{step}"));
        bundle(&prefix, 1, BundleOptions::default(), |w| {
            w.add("step", &TensorData { dtype: DType::I64, shape: vec![], data: (step as i64).to_le_bytes().to_vec() }).unwrap()
        });
    }
    let state = dir.path().join("checkpoint");
    let step_of = |ck: &Checkpoint| i64::from_le_bytes(ck.read("step").unwrap().data.try_into().unwrap());
    // without a state file: two candidates → an error listing both
    let e = open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("2 checkpoints (model.ckpt-10, model.ckpt-20)"), "{e}");
    fs::write(&state, "model_checkpoint_path: \"model.ckpt-10\"\nall_model_checkpoint_paths: \"model.ckpt-20\"\n").unwrap();
    assert_eq!(step_of(&open(dir.path()).unwrap()), 10);
    assert_eq!(step_of(&open(&state).unwrap()), 10);
    let abs = dir.path().join("model.ckpt-20");
    fs::write(&state, format!("model_checkpoint_path: \"{}\"\n", abs.display())).unwrap();
    assert_eq!(step_of(&open(dir.path()).unwrap()), 20);
    // an absolute path from another machine: retried inside the folder
    fs::write(&state, "model_checkpoint_path: \"/home/someone/train/model.ckpt-20\"\n").unwrap();
    assert_eq!(step_of(&open(dir.path()).unwrap()), 20);
    fs::write(&state, "model_checkpoint_path: \"model.ckpt-99\"\n").unwrap();
    let e = open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("checkpoint: names model_checkpoint_path \"model.ckpt-99\", which was not found"), "{e}");
    fs::write(&state, "nothing useful\n").unwrap();
    assert!(open(dir.path()).unwrap_err().to_string().contains("no model_checkpoint_path"));
}

#[test]
fn empty_folder_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path()).unwrap_err();
    assert!(matches!(e, CkptError::Resolve { .. }));
    assert!(e.to_string().contains("contains no checkpoint"), "{e}");
    fs::write(dir.path().join("notes.txt"), "hi").unwrap();
    assert!(open(dir.path()).unwrap_err().to_string().contains("contains no checkpoint"));
    let e = open(&dir.path().join("model.ckpt")).unwrap_err();
    assert!(matches!(e, CkptError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("model.ckpt: not found"), "{e}");
}

#[test]
fn data_shard_without_index_and_missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    bundle(&prefix, 2, BundleOptions::default(), |w| {
        w.add("a", &pattern(DType::F32, &[2], 0)).unwrap();
        w.add("b", &pattern(DType::F32, &[2], 1)).unwrap();
    });
    fs::remove_file(suffix(&prefix, ".data-00001-of-00002")).unwrap();
    let e = open(&prefix).unwrap_err();
    assert!(matches!(e, CkptError::MissingShard { shard: 1, num_shards: 2, .. }), "{e}");
    assert!(e.to_string().contains("m.data-00001-of-00002 does not exist"), "{e}");
    fs::remove_file(suffix(&prefix, ".index")).unwrap();
    let e = open(&suffix(&prefix, ".data-00000-of-00002")).unwrap_err();
    assert!(matches!(e, CkptError::DataShardAsTable { .. }), "{e}");
    assert!(e.to_string().ends_with("is a V2 data shard, not a V1 table; open its .index or its prefix instead"), "{e}");
}

#[test]
fn listing_never_reads_data_shards_but_checks_their_length() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        w.add("a", &pattern(DType::F32, &[4], 0)).unwrap();
        w.add("b", &pattern(DType::F32, &[4], 1)).unwrap();
    });
    // Garbage of the right length: listing works (no data is read), reading reports the CRC.
    let data = suffix(&prefix, ".data-00000-of-00001");
    fs::write(&data, [0x55u8; 32]).unwrap();
    let ck = open(&prefix).unwrap();
    assert_eq!(ck.tensors().len(), 2);
    assert_eq!(ck.files(), [suffix(&prefix, ".index"), data.clone()]);
    let e = ck.read("b").unwrap_err();
    assert!(matches!(e, CkptError::TensorChecksum { .. }), "{e}");
    // A shard shorter than its entries say (a truncated download): refused when opened, from
    // the file's length alone.
    fs::write(&data, [0x55u8; 20]).unwrap();
    let e = open(&prefix).unwrap_err();
    assert!(matches!(e, CkptError::DataOutOfRange { .. }), "{e}");
    assert!(e.to_string().contains("tensor 'b' in shard 0: data range 16..32 is past the end of the file (20 bytes)"), "{e}");
}

#[test]
fn special_files_are_refused_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("m.ckpt.index");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // Directly, as a prefix's index, and in a folder: an error, never a read that blocks.
    let e = open(&fifo).unwrap_err().to_string();
    assert!(e.ends_with("m.ckpt.index: is a named pipe (FIFO), not a regular file"), "{e}");
    let e = open(&dir.path().join("m.ckpt")).unwrap_err().to_string();
    assert!(e.contains("m.ckpt.index: is a named pipe (FIFO)"), "{e}");
    assert!(open(dir.path()).unwrap_err().to_string().contains("contains no checkpoint"));
    let e = open(Path::new("/dev/null")).unwrap_err().to_string();
    assert_eq!(e, "/dev/null: is a device, not a regular file");
    // A symbolic link loop.
    let a = dir.path().join("a.ckpt");
    std::os::unix::fs::symlink("b.ckpt", &a).unwrap();
    std::os::unix::fs::symlink("a.ckpt", dir.path().join("b.ckpt")).unwrap();
    let e = open(&a).unwrap_err().to_string();
    assert!(e.contains("a.ckpt: cannot be opened:") && e.contains("symbolic links"), "{e}");
}

// ------------------------------------------------------------------------------------------
// hostile V2 inputs

#[test]
fn v2_every_flipped_index_byte_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    let tensors: Vec<(String, TensorData)> = zoo().into_iter().take(20).collect();
    bundle(&prefix, 1, BundleOptions { index: tiny(Compression::None), ..Default::default() }, |w| {
        add_all(w, &tensors);
    });
    let index_path = suffix(&prefix, ".index");
    let orig = fs::read(&index_path).unwrap();
    let footer = orig.len() - 48;
    for i in 0..orig.len() {
        let mut b = orig.clone();
        b[i] ^= 0x10;
        fs::write(&index_path, &b).unwrap();
        match open_and_read_all(&prefix) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("m.index"), "byte {i}: {msg}");
                if i < footer {
                    assert!(matches!(e, CkptError::BlockChecksum { .. }), "byte {i}: {msg}");
                }
            }
            Ok(_) => panic!("flip of byte {i} (footer at {footer}) went unnoticed"),
        }
    }
}

#[test]
fn v2_every_flipped_data_byte_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        w.add("a", &pattern(DType::F32, &[3], 0)).unwrap();
        w.add("b", &pattern(DType::I16, &[5], 1)).unwrap();
    });
    let path = suffix(&prefix, ".data-00000-of-00001");
    let orig = fs::read(&path).unwrap();
    for i in 0..orig.len() {
        let mut b = orig.clone();
        b[i] ^= 0x80;
        fs::write(&path, &b).unwrap();
        let ck = open(&prefix).unwrap();
        let (bad, good) = if i < 12 { ("a", "b") } else { ("b", "a") };
        let e = ck.read(bad).unwrap_err();
        assert!(matches!(e, CkptError::TensorChecksum { .. }), "{e}");
        assert!(e.to_string().contains(&format!("tensor '{bad}' in shard 0: checksum mismatch")), "{e}");
        ck.read(good).unwrap();
    }
}

#[test]
fn v2_truncated_index_and_data_at_many_points() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    let tensors: Vec<(String, TensorData)> = zoo().into_iter().take(12).collect();
    bundle(&prefix, 1, BundleOptions { index: tiny(Compression::Snappy), ..Default::default() }, |w| {
        add_all(w, &tensors);
    });
    let index_path = suffix(&prefix, ".index");
    let orig = fs::read(&index_path).unwrap();
    for cut in 0..orig.len() {
        fs::write(&index_path, &orig[..cut]).unwrap();
        assert!(open_and_read_all(&prefix).is_err(), "index cut at {cut}");
    }
    fs::write(&index_path, &orig).unwrap();
    let data_path = suffix(&prefix, ".data-00000-of-00001");
    let data = fs::read(&data_path).unwrap();
    for cut in (0..data.len()).step_by(7) {
        fs::write(&data_path, &data[..cut]).unwrap();
        let e = open_and_read_all(&prefix).unwrap_err();
        assert!(matches!(e, CkptError::DataOutOfRange { .. }), "data cut at {cut}: {e}");
    }
}

/// A bundle whose index holds `entries` (name, entry) with `data` in its one shard.
fn raw_bundle(prefix: &Path, data: &[u8], entries: Vec<(&[u8], BundleEntryProto)>) {
    bundle(prefix, 1, BundleOptions::default(), |w| {
        w.append_raw(0, data).unwrap();
        for (k, e) in entries {
            w.add_raw_entry(k, e).unwrap();
        }
    });
}

fn f32_entry(dims: Vec<i64>, offset: i64, size: i64, data: &[u8]) -> BundleEntryProto {
    BundleEntryProto {
        dtype: 1,
        shape: TensorShapeProto { dims, unknown_rank: false },
        shard_id: 0,
        offset,
        size,
        crc32c: crc::mask(crc::value(data)),
        slices: vec![],
    }
}

#[test]
fn v2_absurd_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = [0u8; 16];
    let cases: Vec<(&str, BundleEntryProto, &str)> = vec![
        ("past_end", f32_entry(vec![4], 8, 16, &data), "data range 8..24 is past the end of the file (16 bytes)"),
        ("huge", f32_entry(vec![1 << 30, 1 << 30], 0, 1 << 62, &data), "data range 0..4611686018427387904 is past the end"),
        ("overflow", f32_entry(vec![1 << 40, 1 << 40], 0, 16, &data), "more elements than fit in 64 bits"),
        ("negative_dim", f32_entry(vec![-4], 0, 16, &data), "dimension 0 of the shape is negative (-4)"),
        ("size_mismatch", f32_entry(vec![3], 0, 16, &data), "size of 16 bytes does not match its shape [3] of float (12 bytes)"),
        ("negative_offset", f32_entry(vec![4], -1, 16, &data), "offset -1 is negative"),
        ("offset_overflow", f32_entry(vec![4], i64::MAX, 16, &data), "is past the end of the file (16 bytes)"),
        ("bad_shard", BundleEntryProto { shard_id: 3, ..f32_entry(vec![4], 0, 16, &data) }, "shard_id 3 is not one of the 1 data shards"),
        ("invalid_dtype", BundleEntryProto { dtype: 0, ..f32_entry(vec![4], 0, 16, &data) }, "DT_INVALID"),
        (
            "unknown_dtype",
            BundleEntryProto { dtype: 9999, ..f32_entry(vec![4], 0, 16, &data) },
            "its dtype number 9999 is not a TensorFlow DataType",
        ),
        ("rank_255", f32_entry(vec![1; 255], 0, 4, &data), "its shape has rank 255, more than TensorFlow's limit of 254"),
        ("rank_100000", f32_entry(vec![1; 100_000], 0, 4, &data), "rank 100000"),
        (
            "unknown_rank",
            BundleEntryProto { shape: TensorShapeProto { dims: vec![], unknown_rank: true }, ..f32_entry(vec![], 0, 4, &data) },
            "unknown rank",
        ),
    ];
    for (name, entry, want) in cases {
        let prefix = dir.path().join(name);
        raw_bundle(&prefix, &data, vec![(name.as_bytes(), entry)]);
        let e = open_and_read_all(&prefix).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "{name}: {msg}");
        assert!(msg.contains(&format!("tensor '{name}'")), "{name}: {msg}");
    }
}

#[test]
fn v2_broken_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let (shape, _, slices) = partitioned_data();
    // a listed slice whose entry is missing
    let prefix = dir.path().join("missing");
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        let mut full =
            BundleEntryProto { dtype: 1, shape: TensorShapeProto { dims: vec![5, 7], unknown_rank: false }, ..Default::default() };
        full.slices.push(TensorSliceProto { extents: vec![Extent { start: 0, length: Some(2) }, Extent::default()] });
        w.add_raw_entry(b"w", full).unwrap();
    });
    let e = open(&prefix).unwrap_err().to_string();
    assert!(e.contains("tensor 'w': slice 0,2:- is listed but its entry is missing"), "{e}");
    // slices that do not cover the tensor
    let prefix = dir.path().join("gap");
    bundle(&prefix, 1, BundleOptions::default(), |w| w.add_partitioned("w", DType::F32, &shape, &slices[..3]).unwrap());
    let e = open(&prefix).unwrap_err().to_string();
    assert!(e.contains("slices hold 17 elements, the tensor has 35"), "{e}");
    // overlapping slices with the right total
    let prefix = dir.path().join("overlap");
    let a = (vec![(0, 3), (0, 7)], pattern(DType::F32, &[3, 7], 0));
    let b = (vec![(1, 2), (0, 7)], pattern(DType::F32, &[2, 7], 1));
    bundle(&prefix, 1, BundleOptions::default(), |w| w.add_partitioned("w", DType::F32, &shape, &[a, b]).unwrap());
    let e = open(&prefix).unwrap_err().to_string();
    assert!(e.contains("overlap"), "{e}");
    // a slice extent outside the tensor
    let prefix = dir.path().join("outside");
    bundle(&prefix, 1, BundleOptions::default(), |w| {
        let mut full = BundleEntryProto { dtype: 1, shape: TensorShapeProto { dims: vec![2], unknown_rank: false }, ..Default::default() };
        full.slices.push(TensorSliceProto { extents: vec![Extent { start: 1, length: Some(5) }] });
        w.add_raw_entry(b"w", full).unwrap();
    });
    let e = open(&prefix).unwrap_err().to_string();
    assert!(e.contains("does not fit in dimension 2"), "{e}");
    // a corrupted slice's bytes: checksum error names the tensor
    let prefix = dir.path().join("crc");
    bundle(&prefix, 1, BundleOptions::default(), |w| w.add_partitioned("w", DType::F32, &shape, &slices).unwrap());
    let data_path = suffix(&prefix, ".data-00000-of-00001");
    let mut d = fs::read(&data_path).unwrap();
    d[0] ^= 1;
    fs::write(&data_path, d).unwrap();
    let e = open(&prefix).unwrap().read("w").unwrap_err();
    assert!(matches!(e, CkptError::TensorChecksum { ref tensor, .. } if tensor == "w"), "{e}");
}

/// Writes an index from raw (key, value) pairs (in the given order) and one data shard.
fn raw_index(prefix: &Path, pairs: &[(&[u8], Vec<u8>)], data: &[u8]) {
    let mut t = TableBuilder::new(tiny(Compression::None));
    for (k, v) in pairs {
        t.add_unchecked(k, v);
    }
    write_bundle_files(prefix, &t.finish(), &[data.to_vec()]);
}

fn header(num_shards: i32, endianness: i32, min_consumer: i32) -> Vec<u8> {
    BundleHeaderProto { num_shards, endianness, version: VersionDef { producer: 1, min_consumer, bad_consumers: vec![] } }.encode()
}

#[test]
fn v2_bad_headers_and_malformed_protos() {
    let dir = tempfile::tempdir().unwrap();
    let entry = f32_entry(vec![1], 0, 4, &[0; 4]).encode();
    type Case<'a> = (&'a str, Vec<(&'a [u8], Vec<u8>)>, &'a str);
    let cases: Vec<Case> = vec![
        ("zero_shards", vec![(b"", header(0, 0, 0))], "declares 0 data shards"),
        ("many_shards", vec![(b"", header(i32::MAX, 0, 0))], "declares 2147483647 data shards"),
        ("endianness", vec![(b"", header(1, 7, 0))], "unknown byte order (7)"),
        ("version", vec![(b"", header(1, 0, 5))], "needs a reader of version 5 or newer"),
        ("no_header", vec![(b"a", entry.clone())], "the first entry is 'a', not the bundle header"),
        ("empty", vec![], "has no bundle header"),
        ("bad_header_varint", vec![(b"", vec![0x08, 0x80])], "malformed BundleHeaderProto"),
        ("bad_entry_length", vec![(b"", header(1, 0, 0)), (b"a", vec![0x12, 0x7f, 0x08])], "malformed BundleEntryProto of 'a'"),
        ("bad_entry_wire", vec![(b"", header(1, 0, 0)), (b"a", vec![0x35, 0x01])], "runs past the end"),
        ("wrong_wire_type", vec![(b"", header(1, 0, 0)), (b"a", vec![0x0d, 1, 0, 0, 0])], "wire type fixed32, expected varint"),
        ("deep_groups", vec![(b"", header(1, 0, 0)), (b"a", vec![0x7b; 10_000])], "nested deeper than 64"),
        ("out_of_order", vec![(b"", header(1, 0, 0)), (b"b", entry.clone()), (b"a", entry.clone())], "out of order"),
        ("duplicate", vec![(b"", header(1, 0, 0)), (b"a", entry.clone()), (b"a", entry.clone())], "out of order"),
        ("not_utf8", vec![(b"", header(1, 0, 0)), (&[0xff, 0xfe], entry.clone())], "not valid UTF-8"),
    ];
    for (name, pairs, want) in cases {
        let prefix = dir.path().join(name);
        raw_index(&prefix, &pairs, &[0; 4]);
        let e = open(&prefix).unwrap_err().to_string();
        assert!(e.contains(want), "{name}: {e}");
        assert!(e.contains(&format!("{name}.index")), "{name}: {e}");
    }
}

#[test]
fn v2_wrong_magic_and_v1_file_named_index() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    bundle(&prefix, 1, BundleOptions::default(), |w| w.add("a", &pattern(DType::F32, &[1], 0)).unwrap());
    let p = suffix(&prefix, ".index");
    let mut b = fs::read(&p).unwrap();
    let n = b.len();
    b[n - 3] ^= 0xff;
    fs::write(&p, &b).unwrap();
    let e = open(&prefix).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: not a TensorFlow checkpoint table: bad magic number", p.display()));
    // a V1 table in the place of an index: the "" record is not a BundleHeaderProto
    v1_file(&p, V1Options::default(), |w| w.add("a", &pattern(DType::F32, &[1], 0)).unwrap());
    let e = open(&prefix).unwrap_err();
    assert!(e.to_string().contains("m.index"), "{e}");
}

// ------------------------------------------------------------------------------------------
// V1

#[test]
fn v1_roundtrip_every_dtype_packed_unpacked_snappy() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = zoo();
    for (i, opts) in [
        V1Options::default(),
        V1Options { table: tiny(Compression::None), packed: false },
        V1Options { table: tiny(Compression::Snappy), packed: true },
        V1Options { table: TableOptions { block_size: 1, restart_interval: 1, compression: Compression::Snappy }, packed: false },
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("model{i}.ckpt"));
        v1_file(&path, opts, |w| {
            add_all(w, &tensors);
        });
        let ck = open(&path).unwrap();
        assert_eq!(ck.format(), Format::V1);
        assert_eq!(ck.description(), format!("V1 checkpoint {}", path.display()));
        assert_reads_back(&ck, &tensors);
    }
}

#[test]
fn v1_key_bytes_match_tf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.ckpt");
    v1_file(&path, V1Options::default(), |w| w.add("w", &pattern(DType::F32, &[2, 2], 0)).unwrap());
    let bytes = fs::read(&path).unwrap();
    let key = [0x00, 0x77, 0x00, 0x01, 0x01, 0x02, 0x80, 0x7f, 0x80, 0x7f];
    assert!(bytes.windows(key.len()).any(|w| w == key));
}

#[test]
fn v1_multi_slice_tensors_and_strings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ckpt");
    let (shape, full, slices) = partitioned_data();
    v1_file(&path, V1Options { table: tiny(Compression::None), packed: true }, |w| {
        for (ext, t) in &slices {
            w.add_slice("emb", &shape, ext, t).unwrap();
        }
        w.add_strings("names", &[3], &[b"a".to_vec(), vec![], b"ccc".to_vec()]).unwrap();
        w.add_strings("scalar_s", &[], &[b"x".to_vec()]).unwrap();
    });
    let ck = open(&path).unwrap();
    assert_eq!(ck.read("emb").unwrap(), full);
    assert_eq!(ck.read_string("names").unwrap(), [b"a".to_vec(), vec![], b"ccc".to_vec()]);
    assert_eq!(ck.read_string("scalar_s").unwrap(), [b"x".to_vec()]);
    assert!(ck.read("names").unwrap_err().to_string().contains("is not numeric"));
    assert!(ck.read_string("emb").unwrap_err().to_string().contains("is not a string type"));
}

#[test]
fn v1_sharded_files() {
    let dir = tempfile::tempdir().unwrap();
    let (shape, full, slices) = partitioned_data();
    let p0 = dir.path().join("model.ckpt-00000-of-00002");
    let p1 = dir.path().join("model.ckpt-00001-of-00002");
    v1_file(&p0, V1Options::default(), |w| {
        w.add_slice("emb", &shape, &slices[0].0, &slices[0].1).unwrap();
        w.add_slice("emb", &shape, &slices[3].0, &slices[3].1).unwrap();
        w.add("a", &pattern(DType::I32, &[2], 0)).unwrap();
    });
    v1_file(&p1, V1Options { table: tiny(Compression::Snappy), packed: false }, |w| {
        w.add_slice("emb", &shape, &slices[1].0, &slices[1].1).unwrap();
        w.add_slice("emb", &shape, &slices[2].0, &slices[2].1).unwrap();
        w.add("b", &pattern(DType::Bool, &[3], 0)).unwrap();
    });
    let prefix = dir.path().join("model.ckpt");
    for p in [prefix.clone(), p1.clone(), dir.path().to_path_buf()] {
        let ck = open(&p).unwrap();
        assert_eq!(ck.description(), format!("V1 checkpoint {} (2 shard files)", prefix.display()));
        assert_eq!(ck.read("emb").unwrap(), full);
        assert_eq!(ck.read("a").unwrap(), pattern(DType::I32, &[2], 0));
        assert_eq!(ck.read("b").unwrap(), pattern(DType::Bool, &[3], 0));
    }
    fs::remove_file(&p1).unwrap();
    let e = open(&prefix).unwrap_err();
    assert!(matches!(e, CkptError::MissingShard { shard: 1, num_shards: 2, .. }), "{e}");
    assert!(e.to_string().contains("model.ckpt-00001-of-00002 does not exist"), "{e}");
}

#[test]
fn v1_reads_by_point_lookup_not_by_scanning() {
    // Corrupting the block of tensor "b" leaves "a" readable: reading "a" never touches it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ckpt");
    let a = pattern(DType::F32, &[64], 1);
    let b = pattern(DType::F32, &[64], 2);
    v1_file(&path, V1Options { table: tiny(Compression::None), packed: true }, |w| {
        w.add("a", &a).unwrap();
        w.add("b", &b).unwrap();
    });
    let mut bytes = fs::read(&path).unwrap();
    let b_at = bytes.windows(b.data.len()).position(|w| w == b.data.as_slice()).unwrap();
    bytes[b_at + 5] ^= 1;
    fs::write(&path, bytes).unwrap();
    let ck = open(&path).unwrap();
    assert_eq!(ck.read("a").unwrap(), a);
    let e = ck.read("b").unwrap_err();
    assert!(matches!(e, CkptError::BlockChecksum { .. }), "{e}");
}

#[test]
fn v1_every_flipped_byte_and_truncation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ckpt");
    let tensors: Vec<(String, TensorData)> = zoo().into_iter().step_by(5).collect();
    v1_file(&path, V1Options { table: tiny(Compression::Snappy), packed: true }, |w| {
        add_all(w, &tensors);
    });
    let orig = fs::read(&path).unwrap();
    let footer = orig.len() - 48;
    for i in 0..orig.len() {
        let mut b = orig.clone();
        b[i] ^= 0x04;
        fs::write(&path, &b).unwrap();
        match open_and_read_all(&path) {
            Err(e) => assert!(e.to_string().contains("m.ckpt"), "{e}"),
            Ok(_) => panic!("flip of byte {i} (footer at {footer}) went unnoticed"),
        }
    }
    for cut in 0..orig.len() {
        fs::write(&path, &orig[..cut]).unwrap();
        assert!(open_and_read_all(&path).is_err(), "cut at {cut}");
    }
}

/// A V1 table from a meta and raw (key, record) pairs.
fn raw_v1(path: &Path, meta: Vec<SavedSliceMeta>, records: Vec<(Vec<u8>, Vec<u8>)>) {
    let mut t = TableBuilder::new(TableOptions::default());
    let m = SavedTensorSliceMeta { tensors: meta, versions: VersionDef { producer: 1, ..Default::default() } };
    t.add(b"", &encode_saved_meta(&m)).unwrap();
    for (k, v) in records {
        t.add(&k, &v).unwrap();
    }
    fs::write(path, t.finish()).unwrap();
}

fn meta(name: &str, dtype: DType, dims: Vec<i64>, slices: Vec<TensorSliceProto>) -> SavedSliceMeta {
    SavedSliceMeta { name: name.as_bytes().to_vec(), shape: TensorShapeProto { dims, unknown_rank: false }, dtype: dtype.to_tf(), slices }
}

fn full_slice(rank: usize) -> TensorSliceProto {
    TensorSliceProto { extents: vec![Extent::default(); rank] }
}

fn full_key(name: &str, rank: usize) -> Vec<u8> {
    ordered_code::encode_tensor_name_slice(name.as_bytes(), &vec![(0, -1); rank])
}

#[test]
fn v1_hostile_meta_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let vf = ValueField::of(DType::F32).unwrap();
    let one_float = encode_tensor_values(&1.0f32.to_le_bytes(), vf, true);
    let rec = |name: &str, slice: &TensorSliceProto, tp: &[u8]| encode_saved_slice(name.as_bytes(), slice, tp);

    // 2^60 elements claimed, one float stored: refused before allocating
    let p = dir.path().join("huge.ckpt");
    raw_v1(
        &p,
        vec![meta("w", DType::F32, vec![1 << 30, 1 << 30], vec![full_slice(2)])],
        vec![(full_key("w", 2), rec("w", &full_slice(2), &one_float))],
    );
    let e = open(&p).unwrap().read("w").unwrap_err().to_string();
    assert!(e.contains("needs 1152921504606846976 values but its record holds only 6 bytes"), "{e}");

    // the same with two slices (the multi-slice path)
    let p = dir.path().join("huge2.ckpt");
    let half = |start: i64| TensorSliceProto { extents: vec![Extent { start, length: Some(1 << 29) }, Extent::default()] };
    raw_v1(&p, vec![meta("w", DType::F32, vec![1 << 30, 1 << 30], vec![half(0), half(1 << 29)])], vec![]);
    let e = open(&p).unwrap().read("w").unwrap_err().to_string();
    assert!(e.contains("more than the files can hold"), "{e}");

    // value count mismatch
    let p = dir.path().join("count.ckpt");
    raw_v1(&p, vec![meta("w", DType::F32, vec![2], vec![full_slice(1)])], vec![(full_key("w", 1), rec("w", &full_slice(1), &one_float))]);
    let e = open(&p).unwrap().read("w").unwrap_err().to_string();
    assert!(e.contains("needs 2 values but its record holds only 6 bytes"), "{e}");
    let three = encode_tensor_values(&[0u8; 12], vf, false);
    raw_v1(&p, vec![meta("w", DType::F32, vec![2], vec![full_slice(1)])], vec![(full_key("w", 1), rec("w", &full_slice(1), &three))]);
    let e = open(&p).unwrap().read("w").unwrap_err().to_string();
    assert!(e.contains("more values than the 2 the slice has"), "{e}");

    // a zero-size tensor listed with two (empty) full slices: no overflow, an empty result
    let p = dir.path().join("zero.ckpt");
    let z = vec![0i64, 1 << 40, 1 << 40];
    raw_v1(&p, vec![meta("z", DType::F32, z, vec![full_slice(3), full_slice(3)])], vec![(full_key("z", 3), rec("z", &full_slice(3), &[]))]);
    let t = open(&p).unwrap().read("z").unwrap();
    assert!(t.data.is_empty());
    assert_eq!(t.shape, [0, 1 << 40, 1 << 40]);

    // a record naming another tensor / holding another slice / missing
    let p = dir.path().join("names.ckpt");
    raw_v1(&p, vec![meta("w", DType::F32, vec![], vec![full_slice(0)])], vec![(full_key("w", 0), rec("v", &full_slice(0), &one_float))]);
    assert!(open(&p).unwrap().read("w").unwrap_err().to_string().contains("names the tensor 'v'"));
    raw_v1(&p, vec![meta("w", DType::F32, vec![], vec![full_slice(0)])], vec![]);
    let e = open(&p).unwrap().read("w").unwrap_err().to_string();
    assert!(e.contains("listed in the meta record but its record is missing"), "{e}");

    // negative dims, bad dtype, bad slices in the meta
    for (m, want) in [
        (meta("w", DType::F32, vec![-1], vec![full_slice(1)]), "negative"),
        (meta("w", DType::Other(0), vec![1], vec![full_slice(1)]), "DT_INVALID"),
        (meta("w", DType::Other(9999), vec![1], vec![full_slice(1)]), "tensor 'w': its dtype number 9999 is not a TensorFlow DataType"),
        (meta("w", DType::F32, vec![1; 300], vec![full_slice(300)]), "tensor 'w': its shape has rank 300"),
        (meta("w", DType::F32, vec![4], vec![full_slice(2)]), "2 extents but the tensor has rank 1"),
        (meta("w", DType::F32, vec![4], vec![]), "its 0 slices hold 0 elements, the tensor has 4"),
    ] {
        raw_v1(&p, vec![m], vec![]);
        let e = open(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    }

    // a table without meta, and a meta record that is V2's header
    let p = dir.path().join("nometa.ckpt");
    let mut t = TableBuilder::new(TableOptions::default());
    t.add(b"a", b"x").unwrap();
    fs::write(&p, t.finish()).unwrap();
    assert!(open(&p).unwrap_err().to_string().contains("has no meta record"));
    let mut t = TableBuilder::new(TableOptions::default());
    t.add(b"", &header(1, 0, 0)).unwrap();
    fs::write(&p, t.finish()).unwrap();
    let e = open(&p).unwrap_err().to_string();
    assert!(e.contains("malformed") || e.contains("no V1 meta"), "{e}");

    // a raw data file given as a V1 checkpoint
    let p = dir.path().join("weights.bin");
    fs::write(&p, vec![7u8; 100]).unwrap();
    let e = open(&p).unwrap_err().to_string();
    assert!(e.ends_with("weights.bin: not a TensorFlow checkpoint table: bad magic number"), "{e}");
}

// ------------------------------------------------------------------------------------------
// archives

fn files_of_bundle(prefix_in_archive: &str, f: impl FnOnce(&mut BundleWriter<Vec<u8>>)) -> Vec<(String, Vec<u8>)> {
    let mut w = BundleWriter::new("zip", vec![Vec::new()], BundleOptions::default()).unwrap();
    f(&mut w);
    let (index, shards) = w.finish().unwrap();
    vec![(format!("{prefix_in_archive}.index"), index), (format!("{prefix_in_archive}.data-00000-of-00001"), shards[0].clone())]
}

#[test]
fn zip_in_facenet_layout() {
    let dir = tempfile::tempdir().unwrap();
    let t = pattern(DType::F32, &[3, 3, 2], 5);
    let mut files = files_of_bundle("20180402-114759/model-20180402-114759.ckpt-275", |w| w.add("InceptionResnetV1/w", &t).unwrap());
    files.push(("20180402-114759/model-20180402-114759.meta".into(), b"meta".to_vec()));
    files.push(("20180402-114759/20180402-114759.pb".into(), b"graph".to_vec()));
    for stored in [false, true] {
        let zip = dir.path().join(format!("20180402-114759-{stored}.zip"));
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        super::archive::tests::make_zip(&zip, &refs, stored);
        let ck = open(&zip).unwrap();
        assert_eq!(ck.format(), Format::V2);
        assert_eq!(ck.description(), format!("V2 checkpoint {}!20180402-114759/model-20180402-114759.ckpt-275 (1 shard)", zip.display()));
        assert_eq!(ck.read("InceptionResnetV1/w").unwrap(), t);
        // naming the member explicitly, by prefix or by index file
        for m in ["20180402-114759/model-20180402-114759.ckpt-275", "20180402-114759/model-20180402-114759.ckpt-275.index"] {
            let ck = open(Path::new(&format!("{}!{m}", zip.display()))).unwrap();
            assert_eq!(ck.read("InceptionResnetV1/w").unwrap(), t);
        }
    }
}

#[test]
fn tar_gz_in_slim_layout_and_tgz_with_v2() {
    let dir = tempfile::tempdir().unwrap();
    let t = pattern(DType::F32, &[4, 2], 9);
    let mut w = V1Writer::new(V1Options::default());
    w.add("resnet_v2_50/conv1/weights", &t).unwrap();
    let ckpt = w.finish().unwrap();
    let tgz = dir.path().join("resnet_v2_50_2017_04_14.tar.gz");
    super::archive::tests::make_tar(&tgz, &[("eval.graph", b"g"), ("resnet_v2_50.ckpt", &ckpt), ("train.graph", b"g")], true);
    let ck = open(&tgz).unwrap();
    assert_eq!(ck.format(), Format::V1);
    assert_eq!(ck.description(), format!("V1 checkpoint {}!resnet_v2_50.ckpt", tgz.display()));
    assert_eq!(ck.read("resnet_v2_50/conv1/weights").unwrap(), t);

    let files = files_of_bundle("./mobilenet_v1_1.0_224.ckpt", |w| w.add("MobilenetV1/w", &t).unwrap());
    let mut refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    refs.push(("./mobilenet_v1_1.0_224.ckpt.meta", b"m"));
    refs.push(("./mobilenet_v1_1.0_224_info.txt", b"i"));
    let tgz2 = dir.path().join("mobilenet_v1_1.0_224.tgz");
    super::archive::tests::make_tar(&tgz2, &refs, true);
    let ck = open(&tgz2).unwrap();
    assert_eq!(ck.format(), Format::V2);
    assert_eq!(ck.read("MobilenetV1/w").unwrap(), t);
}

#[test]
fn archives_with_several_checkpoints_state_files_and_hostile_members() {
    let dir = tempfile::tempdir().unwrap();
    let t = pattern(DType::I32, &[2], 1);
    let mut files = files_of_bundle("run/model.ckpt-1", |w| w.add("a", &t).unwrap());
    files.extend(files_of_bundle("run/model.ckpt-2", |w| w.add("b", &t).unwrap()));
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let zip = dir.path().join("two.zip");
    super::archive::tests::make_zip(&zip, &refs, false);
    let e = open(&zip).unwrap_err().to_string();
    assert!(e.contains("2 checkpoints (run/model.ckpt-1, run/model.ckpt-2)"), "{e}");
    assert!(open(Path::new(&format!("{}!run/model.ckpt-2", zip.display()))).unwrap().get("b").is_some());
    let e = open(Path::new(&format!("{}!run/model.ckpt-3", zip.display()))).unwrap_err();
    assert!(matches!(e, CkptError::NotFound { .. }), "{e}");
    // with a state file
    let mut with_state = refs.clone();
    with_state.push(("run/checkpoint", b"model_checkpoint_path: \"/train/run/model.ckpt-1\"\n"));
    let zip2 = dir.path().join("state.zip");
    super::archive::tests::make_zip(&zip2, &with_state, true);
    assert!(open(&zip2).unwrap().get("a").is_some());
    // path traversal
    let mut evil = refs.clone();
    evil.push(("run/../../etc/x", b"x"));
    let zip3 = dir.path().join("evil.zip");
    super::archive::tests::make_zip(&zip3, &evil, false);
    let e = open(&zip3).unwrap_err();
    assert!(matches!(e, CkptError::ArchiveMember { .. }), "{e}");
    assert!(e.to_string().contains("evil.zip!run/../../etc/x"), "{e}");
    // a small member limit: the index is refused, naming the member
    let one = files_of_bundle("m.ckpt", |w| w.add("a", &pattern(DType::F32, &[1000], 1)).unwrap());
    let refs: Vec<(&str, &[u8])> = one.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let zip4 = dir.path().join("big.zip");
    super::archive::tests::make_zip(&zip4, &refs, false);
    let ck = Checkpoint::open_with(&zip4, &OpenOptions { max_member_bytes: 1000, ..Default::default() }).unwrap();
    let e = ck.read("a").unwrap_err().to_string();
    assert!(e.contains("big.zip!m.ckpt.data-00000-of-00001: its declared size of 4000 bytes is over the limit of 1000 bytes"), "{e}");
    // an empty archive
    let zip5 = dir.path().join("empty.zip");
    super::archive::tests::make_zip(&zip5, &[], false);
    assert!(open(&zip5).unwrap_err().to_string().contains("contains no checkpoint"));
    // not an archive at all
    let zip6 = dir.path().join("junk.zip");
    fs::write(&zip6, b"not a zip").unwrap();
    assert!(matches!(open(&zip6).unwrap_err(), CkptError::Archive { .. }));
    let tgz = dir.path().join("junk.tar.gz");
    fs::write(&tgz, b"not gzip").unwrap();
    assert!(open(&tgz).is_err());
}

#[test]
fn limits_are_sized_to_real_checkpoints() {
    let o = OpenOptions::default();
    assert_eq!(o.max_member_bytes, 2 << 30, "2 GiB: the largest published slim file is under 1 GB");
    assert_eq!(o.max_member_ratio, 100, "real checkpoint data deflates about 1.1:1");
    assert_eq!(OpenOptions::RATIO_FREE_BYTES, 16 << 20);
}

// ------------------------------------------------------------------------------------------
// write_v2

#[test]
fn write_v2_roundtrip_sorted_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("export").join("model.ckpt");
    fs::create_dir(dir.path().join("export")).unwrap();
    let tensors = zoo();
    let mut items = tensors.iter().rev().cloned().map(Ok);
    write_v2(&prefix, &mut items).unwrap();
    let mut names: Vec<String> =
        fs::read_dir(dir.path().join("export")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]);
    let index = fs::read(suffix(&prefix, ".index")).unwrap();
    assert_eq!(&index[3..9], [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
    assert_reads_back(&open(&prefix).unwrap(), &tensors);

    // duplicates, bad data and a failing iterator leave nothing behind
    let out = dir.path().join("fail");
    fs::create_dir(&out).unwrap();
    let p = out.join("m");
    let t = pattern(DType::F32, &[2], 0);
    let mut dup = vec![Ok(("a".to_string(), t.clone())), Ok(("a".to_string(), t.clone()))].into_iter();
    assert!(write_v2(&p, &mut dup).unwrap_err().to_string().contains("duplicate tensor name 'a'"));
    let mut failing =
        vec![Ok(("a".to_string(), t.clone())), Err(CkptError::Write { file: "x".into(), reason: "upstream".into() })].into_iter();
    assert!(write_v2(&p, &mut failing).unwrap_err().to_string().contains("upstream"));
    let mut bad = vec![Ok(("a".to_string(), TensorData { data: vec![1], ..t.clone() }))].into_iter();
    assert!(write_v2(&p, &mut bad).is_err());
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    // an empty checkpoint is valid; missing folders are created
    write_v2(&p, &mut std::iter::empty()).unwrap();
    assert!(open(&p).unwrap().tensors().is_empty());
    let deep = dir.path().join("a/b/m");
    write_v2(&deep, &mut vec![Ok(("x".to_string(), t.clone()))].into_iter()).unwrap();
    assert_eq!(open(&deep).unwrap().read("x").unwrap(), t);
}

// ------------------------------------------------------------------------------------------
// fuzz-style: random mutations of valid files, no panics

fn mutate(rng: &mut Rng, orig: &[u8]) -> Vec<u8> {
    let mut b = orig.to_vec();
    match rng.below(6) {
        0 => {
            let i = rng.below(b.len());
            if let Some(x) = b.get_mut(i) {
                *x ^= 1 << rng.below(8);
            }
        }
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                if let Some(x) = b.get_mut(i) {
                    *x = rng.next() as u8;
                }
            }
        }
        2 => b.truncate(rng.below(b.len())),
        3 => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(16);
            b.splice(i..i, (0..n).map(|_| rng.next() as u8));
        }
        4 => {
            let i = rng.below(b.len());
            let n = rng.below(16).min(b.len() - i.min(b.len()));
            b.drain(i..i + n);
        }
        _ => {
            // interesting values at a random place
            let vals: [&[u8]; 5] = [&[0xff; 10], &[0x80; 5], &[0; 8], &[0x7f, 0xff, 0xff, 0xff], &[0x0b; 6]];
            let v = vals[rng.below(vals.len())];
            let i = rng.below(b.len());
            for (j, x) in v.iter().enumerate() {
                if let Some(y) = b.get_mut(i + j) {
                    *y = *x;
                }
            }
        }
    }
    b
}

#[test]
fn fuzz_mutated_bundles_v1_files_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (shape, _, slices) = partitioned_data();
    let tensors: Vec<(String, TensorData)> = zoo().into_iter().step_by(3).collect();
    let prefix = dir.path().join("m");
    bundle(&prefix, 2, BundleOptions { index: tiny(Compression::Snappy), big_endian: false }, |w| {
        add_all(w, &tensors);
        w.add_partitioned("part", DType::F32, &shape, &slices).unwrap();
        w.add_strings("s", &[2], &[b"ab".to_vec(), b"c".to_vec()]).unwrap();
    });
    let v1 = dir.path().join("v1.ckpt");
    v1_file(&v1, V1Options { table: tiny(Compression::Snappy), packed: false }, |w| {
        add_all(w, &tensors);
        for (e, t) in &slices {
            w.add_slice("part", &shape, e, t).unwrap();
        }
        w.add_strings("s", &[2], &[b"ab".to_vec(), b"c".to_vec()]).unwrap();
    });
    let index_path = suffix(&prefix, ".index");
    let data_path = suffix(&prefix, ".data-00000-of-00002");
    let targets = [(index_path.clone(), prefix.clone()), (data_path.clone(), prefix.clone()), (v1.clone(), v1.clone())];
    let originals: Vec<Vec<u8>> = targets.iter().map(|(f, _)| fs::read(f).unwrap()).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    let cases = 3000;
    for case in 0..cases {
        let which = case % targets.len();
        let (file, open_path) = &targets[which];
        let m = mutate(&mut rng, &originals[which]);
        fs::write(file, &m).unwrap();
        if open_and_read_all(open_path).is_err() {
            errors += 1;
        }
        fs::write(file, &originals[which]).unwrap();
    }
    assert!(errors > cases / 3, "only {errors} of {cases} mutations were noticed");
    // random bytes as every kind of file
    for case in 0..300 {
        let n = rng.below(300);
        let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let mut with_magic = bytes.clone();
        with_magic.extend_from_slice(&table::TABLE_MAGIC.to_le_bytes());
        fs::write(&index_path, if case % 2 == 0 { &bytes } else { &with_magic }).unwrap();
        assert!(open_and_read_all(&prefix).is_err());
        fs::write(&v1, if case % 2 == 0 { &bytes } else { &with_magic }).unwrap();
        assert!(open_and_read_all(&v1).is_err());
    }
}
