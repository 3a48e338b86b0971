//! The library's error type. Every variant carries enough context to name the file, the tensor or
//! the option at fault; the CLI adds its own context with `anyhow` and prints the whole chain.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a TF checkpoint failed.
    #[error(transparent)]
    Ckpt(#[from] crate::ckpt::CkptError),

    /// A torch operation failed (bad shapes reaching libtorch, out of memory, …).
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file's content is not what it should be (npy, safetensors, image, …).
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },

    #[error("variable name '{name}' cannot be used: {reason}")]
    InvalidName { name: String, reason: String },

    /// An option or an input that the net cannot take, worded like TF's own error where TF has one.
    #[error("{0}")]
    InvalidArgument(String),

    /// The weights and the net disagree: every missing, unexpected and mis-shaped name at once.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),

    #[error("tensor '{name}': {reason}")]
    Tensor { name: String, reason: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::BadFile { path: path.into(), reason: reason.into() }
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

/// What a strict comparison of weight names and shapes against a net found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mismatch {
    /// What the weights were checked against, e.g. `resnet_v2_50 (1001 classes)`.
    pub net: String,
    /// Where the weights came from.
    pub source: String,
    /// Names the net has and the weights lack, with the net's shape.
    pub missing: Vec<(String, Vec<i64>)>,
    /// Names the weights have and the net lacks, with the weights' shape.
    pub unexpected: Vec<(String, Vec<i64>)>,
    /// (name, net's shape, weights' shape).
    pub shape: Vec<(String, Vec<i64>, Vec<i64>)>,
}

impl Mismatch {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.shape.is_empty()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the weights from {} do not fit the net {}: {} missing, {} unexpected, {} with another shape",
            self.source,
            self.net,
            self.missing.len(),
            self.unexpected.len(),
            self.shape.len()
        )?;
        let list = |f: &mut fmt::Formatter<'_>, title: &str, rows: Vec<String>| -> fmt::Result {
            if rows.is_empty() {
                return Ok(());
            }
            write!(f, "\n  {title}:")?;
            for row in &rows {
                write!(f, "\n    {row}")?;
            }
            Ok(())
        };
        list(
            f,
            "missing from the weights (the net needs them)",
            self.missing.iter().map(|(n, s)| format!("{n} {s:?}")).collect(),
        )?;
        list(
            f,
            "unexpected (the net has no such variable)",
            self.unexpected.iter().map(|(n, s)| format!("{n} {s:?}")).collect(),
        )?;
        list(
            f,
            "shape differs (net vs weights)",
            self.shape.iter().map(|(n, a, b)| format!("{n}: {a:?} vs {b:?}")).collect(),
        )
    }
}
