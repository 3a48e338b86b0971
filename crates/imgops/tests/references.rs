//! Exact-equality tests against reference outputs recorded by `tools/imgops_refs.py testdata` from
//! opencv-python-headless 4.14.0.94, Pillow 13.0.0 and TensorFlow 2.21.0.

mod common;
use common::*;
use imgops::jpeg::{Dct, decode_jpeg, decode_jpeg_rgb, decode_jpeg_tf};

#[test]
fn inter_area_matches_cv2() {
    let r = refs();
    let cases = r["inter_area"].as_array().expect("cases");
    assert!(cases.len() > 300);
    let mut bad = Vec::new();
    for c in cases {
        let (kind, seed) = (s(c, "kind"), u(c, "seed") as u64);
        let (h, w, ch, oh, ow) = (u(c, "h"), u(c, "w"), u(c, "c"), u(c, "oh"), u(c, "ow"));
        let got = if kind == "u8" {
            sha(&imgops::resize_area_u8(&input_u8(seed, h * w * ch), h, w, ch, oh, ow).expect("resize"))
        } else {
            sha_f64(&imgops::resize_area_f64(&input_f64(kind, seed, h * w * ch), h, w, ch, oh, ow).expect("resize"))
        };
        if got != s(c, "sha") {
            bad.push(format!("{kind} {h}x{w}x{ch} -> {oh}x{ow} (seed {seed})"));
        }
    }
    assert!(bad.is_empty(), "{} of {} differ: {:?}", bad.len(), cases.len(), bad);
}

#[test]
fn pillow_bilinear_matches_pillow() {
    let r = refs();
    let cases = r["pillow_bilinear"].as_array().expect("cases");
    let mut bad = Vec::new();
    for c in cases {
        let seed = u(c, "seed") as u64;
        let (h, w, ch, oh, ow) = (u(c, "h"), u(c, "w"), u(c, "c"), u(c, "oh"), u(c, "ow"));
        let out = imgops::pillow_bilinear_u8(&input_u8(seed, h * w * ch), h, w, ch, oh, ow).expect("resize");
        if sha(&out) != s(c, "sha") {
            bad.push(format!("{h}x{w}x{ch} -> {oh}x{ow} (seed {seed})"));
        }
    }
    assert!(bad.is_empty(), "{} of {} differ: {:?}", bad.len(), cases.len(), bad);
}

fn jpeg_bytes(file: &str) -> Vec<u8> {
    std::fs::read(testdata().join("jpeg").join(file)).expect("jpeg file")
}

#[test]
fn jpeg_matches_pillow() {
    let r = refs();
    let mut n_trunc = 0;
    for e in r["jpeg_pillow"].as_array().expect("entries") {
        let file = s(e, "file");
        let data = jpeg_bytes(file);
        if let Some(msg) = e.get("error").and_then(|m| m.as_str()) {
            // Pillow refuses this file (e.g. arithmetic coding across its 64 KiB read blocks).
            assert!(decode_jpeg(&data, Dct::IntegerSlow).is_err(), "{file}: Pillow says {msg}, Rust decoded it");
            continue;
        }
        let img = decode_jpeg(&data, Dct::IntegerSlow).unwrap_or_else(|err| panic!("{file}: {err}"));
        let mode = match img.mode {
            imgops::jpeg::Mode::L => "L",
            imgops::jpeg::Mode::Rgb => "RGB",
            imgops::jpeg::Mode::Cmyk => "CMYK",
        };
        assert_eq!(mode, s(e, "mode"), "{file}");
        let header = imgops::jpeg::read_jpeg_header(&data).expect("header");
        assert_eq!((header.height, header.width, header.components), (img.height, img.width, img.channels()), "{file}");
        assert_eq!(sha(&img.data), s(e, "sha_native"), "{file}: native decode differs");
        let rgb = decode_jpeg_rgb(&data, Dct::IntegerSlow).expect("rgb");
        assert_eq!(sha(&rgb.data), s(e, "sha_rgb"), "{file}: convert('RGB') differs");
        let align = imgops::jpeg::decode_jpeg_facenet_align(&data).expect("align");
        assert_eq!(sha(&align.data), s(e, "sha_align"), "{file}: facenet imread[:, :, 0:3] differs");
        for t in e["truncated"].as_array().expect("truncated") {
            let len = u(t, "len");
            let got = decode_jpeg_rgb(&data[..len], Dct::IntegerSlow);
            let ok = t["ok"].as_bool().unwrap_or(false);
            assert_eq!(got.is_ok(), ok, "{file} cut at {len}: rust {:?} vs pillow ok={ok}", got.as_ref().err());
            if let (Ok(img), true) = (&got, ok) {
                assert_eq!(sha(&img.data), s(t, "sha_rgb"), "{file} cut at {len}");
            }
            n_trunc += 1;
        }
    }
    assert!(n_trunc > 100);
}

#[test]
fn jpeg_matches_tensorflow() {
    let r = refs();
    let entries = r["jpeg_tf"].as_array().expect("TF refs missing: run tools/imgops_refs.py testdata");
    for e in entries {
        let file = s(e, "file");
        let data = jpeg_bytes(file);
        for (key, dct) in [("fast", Dct::IntegerFast), ("accurate", Dct::IntegerSlow)] {
            let want = &e[key];
            let got = decode_jpeg_tf(&data, dct);
            match (want.get("sha").and_then(|v| v.as_str()), got) {
                (Some(sha_want), Ok(img)) => assert_eq!(sha(&img.data), sha_want, "{file} {key}"),
                (None, Err(_)) => {}
                (w, g) => panic!("{file} {key}: tf {w:?} vs rust {:?}", g.map(|i| (i.width, i.height))),
            }
        }
        for t in e["truncated"].as_array().expect("truncated") {
            let len = u(t, "len");
            let got = decode_jpeg_tf(&data[..len], Dct::IntegerFast);
            let ok = t["ok"].as_bool().unwrap_or(false);
            assert_eq!(got.is_ok(), ok, "{file} cut at {len}");
            if let (Ok(img), true) = (&got, ok) {
                assert_eq!(sha(&img.data), s(t, "sha"), "{file} cut at {len}");
            }
        }
    }
}

#[test]
fn fast_dct_differs_from_accurate() {
    // Guards the fixtures: TF's default really is a different decoder output.
    let data = jpeg_bytes("real_insightface_t1.jpg");
    let a = decode_jpeg_tf(&data, Dct::IntegerFast).expect("fast");
    let b = decode_jpeg_tf(&data, Dct::IntegerSlow).expect("slow");
    assert_ne!(a.data, b.data);
}

#[test]
fn png_matches_pillow_convert_rgb_and_tensorflow() {
    let r = refs();
    let pillow = r["png_pillow"].as_array().expect("entries");
    let tf = r["png_tf"].as_array().expect("TF entries");
    assert_eq!(pillow.len(), tf.len());
    let mut differ = 0;
    for (p, t) in pillow.iter().zip(tf) {
        let file = s(p, "file");
        assert_eq!(file, s(t, "file"));
        let data = std::fs::read(testdata().join("png").join(file)).expect("png");
        let img = imgops::png::decode_png_rgb(&data).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(sha(&img.data), s(p, "sha_rgb"), "{file} (Pillow mode {})", s(p, "mode"));
        let img = imgops::png::decode_png_tf(&data).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(sha(&img.data), s(t, "sha"), "{file}: tf.io.decode_png differs");
        let header = imgops::png::read_png_header(&data).expect("header");
        assert_eq!((header.height, header.width), (img.height, img.width), "{file}");
        differ += usize::from(s(p, "sha_rgb") != s(t, "sha"));
    }
    // The two 16-bit grayscale files: Pillow clips, TF keeps the high byte.
    assert_eq!(differ, 2);
}

/// Corrupt files that libjpeg decodes with warnings. Their pixels depend on libjpeg-turbo's SIMD
/// IDCT (out-of-range coefficients), which Pillow's and TF's builds use: pixels are only compared
/// when this crate got the SIMD kernels (`imgops::jpeg::SIMD`: the `simd` feature and nasm at
/// build time); the verdicts (decoded or refused) are the same in both builds.
#[test]
fn corrupt_jpegs_match_pillow_and_tensorflow() {
    let r = refs();
    if !imgops::jpeg::SIMD {
        eprintln!("imgops built without libjpeg-turbo's SIMD kernels (no nasm): comparing verdicts only");
    }
    let pillow = check_corrupt(&r["jpeg_corrupt_pillow"], "Pillow", "sha_rgb", |d| decode_jpeg_rgb(d, Dct::IntegerSlow));
    let tf = check_corrupt(&r["jpeg_corrupt_tf"], "TF", "sha", |d| decode_jpeg_tf(d, Dct::IntegerFast));
    assert!(pillow > 30 && tf > 30, "decoded: {pillow} like Pillow, {tf} like TF");
}

/// Every corrupt file: decoded when the reference decodes it (with its pixels when SIMD), refused
/// when it refuses it. Returns how many were decoded.
fn check_corrupt(
    entries: &serde_json::Value,
    reference: &str,
    sha_key: &str,
    decode: impl Fn(&[u8]) -> Result<imgops::jpeg::RgbImage, imgops::jpeg::JpegError>,
) -> usize {
    let dir = testdata().join("jpeg_corrupt");
    let mut decoded = 0;
    for e in entries.as_array().expect("entries") {
        let file = s(e, "file");
        let got = decode(&std::fs::read(dir.join(file)).expect("file"));
        if e["ok"].as_bool().unwrap_or(false) {
            let img = got.unwrap_or_else(|err| panic!("{file}: {reference} decodes it, Rust: {err}"));
            assert!(!imgops::jpeg::SIMD || sha(&img.data) == s(e, sha_key), "{file}: pixels differ from {reference}");
            decoded += 1;
        } else {
            assert!(got.is_err(), "{file}: {reference} refuses it ({}), Rust decoded it", s(e, "error"));
        }
    }
    decoded
}
