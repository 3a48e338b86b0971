//! The library's error type. Every variant carries enough context to name the file, the tensor or
//! the value at fault; the CLI adds its own context with `anyhow` and prints the whole chain.
//! Library messages never name command-line flags.

use std::fmt;
use std::path::PathBuf;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a TF checkpoint failed.
    #[error(transparent)]
    Ckpt(#[from] crate::ckpt::CkptError),

    /// An output file could not be written (it exists and overwriting was not asked for, …).
    #[error("{0}")]
    Output(String),

    /// A torch operation failed (bad shapes reaching libtorch, out of memory, …).
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),

    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// A file's content is not what it should be (npy, safetensors, image, …).
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A variable name tch cannot represent.
    #[error("variable name '{name}' cannot be used: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// An option or an input that the net cannot take, worded like TF's own error where TF has one.
    #[error("{0}")]
    InvalidArgument(String),

    /// The weights and the net disagree: every missing, unexpected and mis-shaped name at once.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),

    /// A tensor that cannot be used, named.
    #[error("tensor '{name}': {reason}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// A frozen model used after its model's weights changed.
    #[error("the model's weights changed after it was frozen (first changed variable: {variable}); freeze it again")]
    Stale {
        /// The first variable found changed.
        variable: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    /// A file whose content is wrong, with the reason.
    pub fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::BadFile { path: path.into(), reason: reason.into() }
    }
    /// An invalid argument or input.
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
    /// True when the weights fit.
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
        list(f, "missing from the weights (the net needs them)", self.missing.iter().map(|(n, s)| format!("{n} {s:?}")).collect())?;
        list(f, "unexpected (the net has no such variable)", self.unexpected.iter().map(|(n, s)| format!("{n} {s:?}")).collect())?;
        list(f, "shape differs (net vs weights)", self.shape.iter().map(|(n, a, b)| format!("{n}: {a:?} vs {b:?}")).collect())
    }
}
