//! slimzoo: TensorFlow-slim model-zoo checkpoints on libtorch, without TensorFlow.
//!
//! - [`ckpt`]: TF checkpoints (V1 tables, V2 bundles, archives) read in pure Rust.
//! - [`convert`]: checkpoint → safetensors under the exact TF names, in tch layout; `export` back.
//! - [`models`]: ResNet v2 and facenet's Inception-ResNet-v1 on tch, with TF's names and
//!   semantics; [`arch`] builds them, [`weights`] loads weights strictly, [`load`] opens any
//!   weights a user has.
pub mod arch;
pub mod ckpt;
pub mod convert;
pub mod error;
pub mod io;
pub mod layout;
pub mod load;
pub mod models;
pub mod names;
pub mod npy;
pub mod preprocess;
pub mod weights;
pub mod zoo;

pub use error::{Error, Result};
