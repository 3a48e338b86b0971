//! The one place where TensorFlow variable names and tch `VarStore` paths are translated.
//!
//! slimzoo's nets create their variables with one tch path component per TF scope
//! (`p / "block1" / "unit_1" / "bottleneck_v2" / "conv1" / "weights"`), so a variable's TF name is
//! its `VarStore` name with tch's separator `.` replaced by TF's `/`. Leaf names are TF's own
//! (`weights`, `biases`, `beta`, `gamma`, `moving_mean`, `moving_variance`): nothing is renamed.

use crate::error::{Error, Result};

/// tch's path separator.
const VS_SEP: char = '.';

/// `resnet_v2_50/conv1/weights` → `resnet_v2_50.conv1.weights`.
///
/// TF names that contain a `.` cannot be represented (tch reserves it) and are an error.
pub fn tf_to_vs(tf_name: &str) -> Result<String> {
    if tf_name.contains(VS_SEP) {
        return Err(Error::InvalidName {
            name: tf_name.to_string(),
            reason: "it contains '.', which tch reserves as its path separator".into(),
        });
    }
    Ok(tf_name.replace('/', "."))
}

/// `resnet_v2_50.conv1.weights` → `resnet_v2_50/conv1/weights`.
pub fn vs_to_tf(vs_name: &str) -> String {
    vs_name.replace(VS_SEP, "/")
}

/// Strips the `:0` output suffix that TF graph code prints after a variable name.
pub fn strip_output_suffix(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((base, idx)) if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_real_names() {
        for name in [
            "resnet_v2_50/block1/unit_1/bottleneck_v2/conv1/BatchNorm/gamma",
            "resnet_v2_152/postnorm/moving_variance",
            "InceptionResnetV1/Repeat_1/block17_10/Branch_1/Conv2d_0b_1x7/weights",
            "InceptionResnetV1/Bottleneck/BatchNorm/beta",
            "Logits/biases",
            "global_step",
        ] {
            let vs = tf_to_vs(name).unwrap();
            assert!(!vs.contains('/'), "{vs}");
            assert_eq!(vs_to_tf(&vs), name);
        }
        assert_eq!(tf_to_vs("resnet_v2_50/conv1/weights").unwrap(), "resnet_v2_50.conv1.weights");
    }

    #[test]
    fn rejects_dots() {
        let err = tf_to_vs("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE").unwrap_err();
        assert!(err.to_string().contains("'.'"), "{err}");
    }

    #[test]
    fn strips_output_index() {
        assert_eq!(strip_output_suffix("a/b/weights:0"), "a/b/weights");
        assert_eq!(strip_output_suffix("a/b/weights"), "a/b/weights");
        assert_eq!(strip_output_suffix("a:b/c"), "a:b/c");
    }
}
