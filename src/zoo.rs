//! The published checkpoints slimzoo knows by file name: what they are and what they expect.
//!
//! Sources: tensorflow/models `research/slim/README.md` (ResNet v2 table and its footnote on
//! inception preprocessing at 299), davidsandberg/facenet `README.md` and wiki (2018 models,
//! fixed image standardization, 512-d embeddings).

use std::path::Path;

/// How a model's inputs must be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessing {
    /// slim's inception eval preprocessing: central crop 0.875, bilinear resize, `[-1, 1]`.
    Inception,
    /// facenet's fixed standardization `(x - 127.5) / 128` on aligned 160x160 RGB faces.
    FacenetFixed,
}

impl Preprocessing {
    pub fn describe(&self) -> &'static str {
        match self {
            Preprocessing::Inception => "inception: RGB [0,1], central crop 0.875, bilinear resize, then (x-0.5)*2 into [-1,1]",
            Preprocessing::FacenetFixed => "facenet fixed standardization: aligned RGB face, (x-127.5)/128",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZooEntry {
    /// The file name as published.
    pub file: &'static str,
    /// What identifies it in a path (file, folder or checkpoint prefix).
    pub key: &'static str,
    pub arch: &'static str,
    /// Classes of the classifier in the file (slim: 1001, index 0 = background; facenet: the
    /// training identities of the `Logits` head, which `convert` leaves out by default).
    pub classes: i64,
    /// facenet's embedding size; 0 for classifiers.
    pub embedding: i64,
    pub image_size: i64,
    pub preprocessing: Preprocessing,
    /// Published accuracy, as published.
    pub accuracy: &'static str,
    pub trained_on: &'static str,
}

pub const ZOO: &[ZooEntry] = &[
    ZooEntry {
        file: "resnet_v2_50_2017_04_14.tar.gz",
        key: "resnet_v2_50",
        arch: "resnet_v2_50",
        classes: 1001,
        embedding: 0,
        image_size: 299,
        preprocessing: Preprocessing::Inception,
        accuracy: "ImageNet top-1 75.6, top-5 92.8",
        trained_on: "ImageNet (1000 classes + background)",
    },
    ZooEntry {
        file: "resnet_v2_101_2017_04_14.tar.gz",
        key: "resnet_v2_101",
        arch: "resnet_v2_101",
        classes: 1001,
        embedding: 0,
        image_size: 299,
        preprocessing: Preprocessing::Inception,
        accuracy: "ImageNet top-1 77.0, top-5 93.7",
        trained_on: "ImageNet (1000 classes + background)",
    },
    ZooEntry {
        file: "resnet_v2_152_2017_04_14.tar.gz",
        key: "resnet_v2_152",
        arch: "resnet_v2_152",
        classes: 1001,
        embedding: 0,
        image_size: 299,
        preprocessing: Preprocessing::Inception,
        accuracy: "ImageNet top-1 77.8, top-5 94.1",
        trained_on: "ImageNet (1000 classes + background)",
    },
    ZooEntry {
        file: "20180402-114759.zip",
        key: "20180402-114759",
        arch: "inception_resnet_v1",
        classes: 8631,
        embedding: 512,
        image_size: 160,
        preprocessing: Preprocessing::FacenetFixed,
        accuracy: "LFW 0.9965",
        trained_on: "VGGFace2",
    },
    ZooEntry {
        file: "20180408-102900.zip",
        key: "20180408-102900",
        arch: "inception_resnet_v1",
        classes: 10575,
        embedding: 512,
        image_size: 160,
        preprocessing: Preprocessing::FacenetFixed,
        accuracy: "LFW 0.9905",
        trained_on: "CASIA-WebFace",
    },
];

/// The zoo entry a path names, if any (matched on its file name, then on its folders).
pub fn lookup(path: &Path) -> Option<&'static ZooEntry> {
    let parts: Vec<String> = path.iter().rev().map(|p| p.to_string_lossy().into_owned()).collect();
    parts.iter().find_map(|part| {
        ZOO.iter().find(|e| {
            part == e.file
                || part.strip_prefix(e.key).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('.') || rest.starts_with('_') && e.key.starts_with("resnet")
                })
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
}
