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

    /// A torch operation failed (bad shapes reaching libtorch, out of memory, …). The message is
    /// libtorch's own first line (its `what()`), without the C++ stack trace libtorch appends
    /// (`Exception raised from …`, `frame #0: …`); the error is not exposed as a source, so no
    /// chain prints that trace either.
    #[error("torch: {}", torch_message(.0))]
    Torch(tch::TchError),

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

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Error {
        Error::Torch(e)
    }
}

/// The first line of a libtorch error: what went wrong, without tch's "Internal torch error: "
/// prefix and without the C++ stack trace that follows it.
pub fn torch_message(e: &tch::TchError) -> String {
    let text = match e {
        tch::TchError::Torch(s) => s.clone(),
        other => other.to_string(),
    };
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("libtorch failed without a message").to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_keep_only_their_first_line() {
        // A real libtorch failure: its message carries the C++ stack trace.
        let e = tch::Tensor::f_zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu))
            .and_then(|a| a.f_matmul(&tch::Tensor::f_zeros([4, 5], (tch::Kind::Float, tch::Device::Cpu))?))
            .unwrap_err();
        let raw = e.to_string();
        assert!(raw.contains("Exception raised from") || raw.contains('\n'), "libtorch's text changed: {raw}");
        let ours = Error::from(e);
        let msg = ours.to_string();
        assert_eq!(msg, "torch: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)");
        assert!(std::error::Error::source(&ours).is_none(), "the raw error must not be in the chain");
        // tch's own errors, and an empty message.
        let shape = Error::from(tch::TchError::Shape("bad\nframe #0: x".into()));
        assert_eq!(shape.to_string(), "torch: invalid shape: bad");
        assert_eq!(Error::from(tch::TchError::Torch("\n".into())).to_string(), "torch: libtorch failed without a message");
    }
}
