//! facenet's published models (davidsandberg/facenet `README.md` and wiki: the 2018 models,
//! fixed image standardization, 512-d embeddings).

use crate::preprocess::Preprocessing;
use crate::zoo::ZooEntry;

/// The files slimzoo knows by name.
pub const ENTRIES: &[ZooEntry] = &[
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
