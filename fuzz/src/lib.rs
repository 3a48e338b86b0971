//! Fuzzing harness: the checkpoint layer compiled on its own (no tch), with its fuzz entry
//! points (`ckpt::fuzzing`, built under `--cfg fuzzing`).
#[path = "../../src/ckpt/mod.rs"]
pub mod ckpt;
