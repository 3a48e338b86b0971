//! slim's published ResNet v2 checkpoints (tensorflow/models `research/slim/README.md`, the
//! ResNet v2 table and its footnote: inception preprocessing at 299).

use crate::preprocess::Preprocessing;
use crate::zoo::ZooEntry;

/// The files slimzoo knows by name.
pub const ENTRIES: &[ZooEntry] = &[
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
];
