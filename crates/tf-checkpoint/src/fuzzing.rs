//! Entry points for coverage-guided fuzzing (the `fuzz/` crate), compiled only with
//! `--cfg fuzzing` (which `cargo fuzz` sets). In such builds the block and tensor CRC
//! comparisons are skipped so that the fuzzer can reach the parsers behind them; nothing
//! else changes. Every entry point must return without panicking, whatever the bytes.

use std::io::Write;
use std::path::PathBuf;

use super::blob::Blob;
use super::block::Block;
use super::dtype::DType;
use super::proto::{
    BundleEntryProto, BundleHeaderProto, Message, SavedTensorSlices, TensorShapeProto, TensorSliceProto, ValueField, VersionDef,
    decode_string_values, decode_tensor_values,
};
use super::table::Table;
use super::{Checkpoint, OpenOptions};

/// Every protobuf message parser and the TensorProto value decoders.
pub fn proto(data: &[u8]) {
    let _ = BundleHeaderProto::parse(data);
    let _ = BundleEntryProto::parse(data);
    let _ = TensorShapeProto::parse(data);
    let _ = TensorSliceProto::parse(data);
    let _ = VersionDef::parse(data);
    if let Ok(s) = SavedTensorSlices::parse(data) {
        if let Some(d) = s.data {
            let _ = decode_string_values(&d.data);
            for dtype in [DType::F32, DType::Complex128, DType::I8, DType::Bool, DType::F16, DType::U64] {
                if let Some(vf) = ValueField::of(dtype) {
                    let mut out = vec![0u8; vf.width * (data.len() % 17)];
                    let _ = decode_tensor_values(&d.data, vf, &mut out);
                }
            }
        }
    }
}

/// The block parser: restart array, entries, iteration and seek.
pub fn block(data: &[u8]) {
    if let Ok(b) = Block::new(data.to_vec()) {
        let keys: Vec<Vec<u8>> = b.iter().filter_map(|e| e.ok()).map(|e| e.key).collect();
        for k in keys.iter().take(8) {
            let _ = b.seek(k);
        }
        let _ = b.seek(b"");
        let _ = b.seek(data.get(..data.len().min(4)).unwrap_or_default());
    }
}

/// The table reader over bytes in memory: footer, index, blocks, scan and point lookups.
pub fn table(data: &[u8]) {
    if let Ok(t) = Table::open(Blob::memory("fuzz.table".into(), data.to_vec())) {
        let mut keys = Vec::new();
        let _ = t.scan(|k, _| {
            if keys.len() < 8 {
                keys.push(k.to_vec());
            }
            Ok(())
        });
        for k in &keys {
            let _ = t.get(k);
        }
        let _ = t.get(b"");
        let _ = t.get(b"\x00zz");
    }
}

fn scratch(name: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = base.join(format!("slimzoo-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

fn write(path: &PathBuf, data: &[u8]) -> bool {
    std::fs::File::create(path).and_then(|mut f| f.write_all(data)).is_ok()
}

fn read_all(ck: &Checkpoint) {
    for t in ck.tensors().iter().take(64) {
        if t.dtype == DType::String {
            let _ = ck.read_string(&t.name);
        } else {
            let _ = ck.read(&t.name);
        }
    }
}

/// A V1 checkpoint file: meta record, slice records, reassembly.
pub fn checkpoint_v1(data: &[u8]) {
    let path = scratch("model.ckpt");
    if write(&path, data) {
        if let Ok(ck) = Checkpoint::open_with(&path, &OpenOptions::default()) {
            read_all(&ck);
        }
    }
}

/// A V2 bundle: the first two bytes give the index length, the index follows, the rest is
/// the single data shard.
pub fn bundle(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (index, shard) = rest.split_at(n);
    let prefix = scratch("m");
    let index_path = PathBuf::from(format!("{}.index", prefix.display()));
    let data_path = PathBuf::from(format!("{}.data-00000-of-00001", prefix.display()));
    if write(&index_path, index) && write(&data_path, shard) {
        if let Ok(ck) = Checkpoint::open_with(&prefix, &OpenOptions::default()) {
            read_all(&ck);
        }
    }
}
