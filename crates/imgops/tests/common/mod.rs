//! Helpers shared by the integration tests: the input generator shared with tools/imgops_refs.py,
//! output digests, and access to testdata/.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::path::PathBuf;

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

pub fn refs() -> serde_json::Value {
    let text = std::fs::read_to_string(testdata().join("refs.json")).expect("testdata/refs.json (run tools/imgops_refs.py testdata)");
    serde_json::from_str(&text).expect("valid refs.json")
}

pub fn sha(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha_f64(v: &[f64]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    sha(&bytes)
}

/// SplitMix64, identical to `splitmix64()` in tools/imgops_refs.py.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

pub fn input_u8(seed: u64, n: usize) -> Vec<u8> {
    let mut g = SplitMix64::new(seed);
    (0..n).map(|_| (g.next_u64() & 0xFF) as u8).collect()
}

pub fn input_f64(kind: &str, seed: u64, n: usize) -> Vec<f64> {
    let mut g = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let z = g.next_u64();
            match kind {
                "f64int" => (z & 0xFF) as f64,
                _ => (z >> 11) as f64 * (1.0 / 9007199254740992.0) * 300.0 - 20.0,
            }
        })
        .collect()
}

pub fn u(v: &serde_json::Value, k: &str) -> usize {
    v[k].as_u64().unwrap_or_else(|| panic!("field {k}")) as usize
}

pub fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k}"))
}
