//! The published checkpoints slimzoo knows by file name: what they are and what they expect.
//! Each net family lists its own (`models/<family>/zoo.rs`); [`lookup`] searches them all.

use crate::preprocess::Preprocessing;
use std::path::Path;

/// A published checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZooEntry {
    /// The file name as published.
    pub file: &'static str,
    /// What identifies it in a path (file, folder or checkpoint prefix).
    pub key: &'static str,
    /// The architecture's name (`--arch`).
    pub arch: &'static str,
    /// Classes of the classifier in the file (slim: 1001, index 0 = background; facenet: the
    /// training identities of the `Logits` head, which `convert` leaves out by default).
    pub classes: i64,
    /// facenet's embedding size; 0 for classifiers.
    pub embedding: i64,
    /// The input side it was evaluated at.
    pub image_size: i64,
    /// How its inputs must be prepared.
    pub preprocessing: Preprocessing,
    /// Published accuracy, as published.
    pub accuracy: &'static str,
    /// What it was trained on.
    pub trained_on: &'static str,
}

/// The zoo entry a path names, if any (matched on its file name, then on its folders).
pub fn lookup(path: &Path) -> Option<&'static ZooEntry> {
    let parts: Vec<String> = path.iter().rev().map(|p| p.to_string_lossy().into_owned()).collect();
    parts.iter().find_map(|part| {
        crate::models::zoo().find(|e| {
            part == e.file
                || part
                    .strip_prefix(e.key)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('_') && e.key.starts_with("resnet"))
                || part.starts_with(&format!("model-{}", e.key))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_published_layouts() {
        let at = |p: &str| lookup(Path::new(p)).map(|e| e.file);
        assert_eq!(at("/dl/resnet_v2_50_2017_04_14.tar.gz"), Some("resnet_v2_50_2017_04_14.tar.gz"));
        assert_eq!(at("models/resnet_v2_152.ckpt"), Some("resnet_v2_152_2017_04_14.tar.gz"));
        assert_eq!(at("m/20180402-114759/model-20180402-114759.ckpt-275"), Some("20180402-114759.zip"));
        assert_eq!(at("20180408-102900.zip"), Some("20180408-102900.zip"));
        assert_eq!(at("m/20180408-102900"), Some("20180408-102900.zip"));
        assert_eq!(at("resnet_v2_1010.ckpt"), None);
        assert_eq!(at("my_model.ckpt"), None);
    }

    #[test]
    fn each_published_file_is_listed_once() {
        let mut files: Vec<&str> = crate::models::zoo().map(|e| e.file).collect();
        assert_eq!(files.len(), 5, "slim's three ResNet v2 files and facenet's two releases: {files:?}");
        files.sort_unstable();
        files.dedup();
        assert_eq!(files.len(), 5, "a file is listed twice");
    }
}
