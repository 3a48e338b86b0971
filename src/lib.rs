//! slimzoo: TensorFlow-slim model-zoo checkpoints on libtorch, without TensorFlow.
//!
//! The layers, from the file up:
//!
//! - [`ckpt`] (the standalone `tf-checkpoint` crate): TF checkpoints (V1 tables, V2 bundles,
//!   folders, archives) read and written in pure Rust.
//! - [`convert`]: checkpoint → safetensors under the exact TF names, in tch layout ([`layout`],
//!   [`names`], [`dtype`], [`safetensors_file`]); `export` back.
//! - [`nn`]: the layer library nets are written with once, and how they run (reference or
//!   frozen).
//! - [`models`]: the nets, one folder each (ResNet v2, facenet's Inception-ResNet-v1, MTCNN),
//!   registered in one place; [`Arch`] names one.
//! - [`model`]: [`Model`] (variables, the reference path, training) and [`Frozen`] (the
//!   inference form); [`load`] opens any weights a user has.
//! - [`photo`], [`preprocess`]: images decoded and prepared as the reference pipelines do it.
//! - [`faces`]: face detection (MTCNN) and alignment exactly as facenet does it.
//!
//! # Example: end points of a checkpoint
//!
//! ```
//! use slimzoo::{EndPoints, Rewrites, RunOptions, load};
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny");
//! let model = load::load_model(&dir.join("v2"), &load::LoadOptions::default(), tch::Device::Cpu)?.model;
//! let frozen = model.freeze(Rewrites::default())?;
//! let x = slimzoo::npy::read_nchw(&dir.join("input.npy"))?;
//! let mut ep = EndPoints::all();
//! let logits = frozen.forward(&x, &RunOptions::default(), &mut ep)?;
//! assert_eq!(logits.size(), [2, 7]);
//! assert!(ep.get("resnet_v2_tiny/block1").is_some());
//! # Ok::<(), slimzoo::Error>(())
//! ```

#![warn(missing_docs)]

pub use tf_checkpoint as ckpt;

pub mod convert;
pub mod dtype;
pub mod error;
pub mod faces;
pub mod io;
pub mod layout;
pub mod load;
pub mod model;
pub mod models;
pub mod names;
pub mod nn;
pub mod npy;
pub mod photo;
pub mod preprocess;
pub mod safetensors_file;
pub mod weights;
pub mod zoo;

pub use error::{Error, Result};
pub use model::{Frozen, Model, RunOptions};
pub use models::{Arch, NetOptions};
pub use nn::{EndPoints, Rewrites};
