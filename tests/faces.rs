//! Face detection and alignment against facenet's own code run by TF (`tools/faceref.py`): the
//! three nets, every stage of `detect_face` on real photos (pyramid levels, P-Net maps, boxes,
//! R-Net / O-Net crops and outputs, final boxes, scores and landmarks), align_dataset_mtcnn.py's
//! crops and `bounding_boxes.txt`, and facenet's embeddings of the crops.

mod common;

use common::*;
use slimzoo::faces::detect::{self, Trace};
use slimzoo::faces::{DetectOptions, Detector, Face, align};
use slimzoo::models::mtcnn::Stage;
use slimzoo::photo::Rgb8;
use slimzoo::weights::Weights;
use slimzoo::{EndPoints, Rewrites, RunOptions};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn tensors(path: &Path) -> BTreeMap<String, Tensor> {
    Weights::from_safetensors(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).tensors
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[])
}

fn detector() -> Detector {
    Detector::shipped(Device::Cpu).unwrap()
}

/// An `[H, W, 3]` uint8 tensor as an image.
fn rgb8(t: &Tensor) -> Rgb8 {
    let s = t.size();
    let mut data = vec![0u8; t.numel()];
    t.to_kind(Kind::Uint8).contiguous().copy_data(&mut data, t.numel());
    Rgb8 { height: s[0] as usize, width: s[1] as usize, data }
}

fn photos(refs: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(refs.join("photos")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    assert!(v.len() >= 12, "too few photos in {}", refs.display());
    v
}

/// The photo as facenet decoded it (`image.npy`).
fn image(refs: &Path, stem: &str) -> Rgb8 {
    let a = slimzoo::npy::read(&refs.join(format!("photos/{stem}/image.npy"))).unwrap();
    let data = a.data.iter().map(|&v| v as u8).collect();
    Rgb8 { height: a.shape[0], width: a.shape[1], data }
}

/// The nets on fixed random inputs, as TF's `sess.run` gave them (inputs NHWC as the placeholder
/// sees them, i.e. already transposed).
#[test]
fn the_three_nets_match_tf() {
    let refs = face_reference();
    let t = tensors(&refs.join("nets.safetensors"));
    let d = detector();
    let run = |stage: Stage, input: &Tensor| {
        let x = input.permute([0, 3, 1, 2]);
        d.net(stage).forward(&x, &RunOptions::default(), &mut EndPoints::none()).unwrap()
    };
    let mut worst: f64 = 0.0;
    let mut check = |what: &str, ours: Tensor, theirs: &Tensor| {
        let diff = max_abs(&ours, theirs);
        worst = worst.max(diff);
        assert!(diff <= 1e-5, "{what}: max|diff| {diff:e} > 1e-5");
    };
    for suffix in ["", "_big"] {
        let out = run(Stage::P, &t[&format!("pnet/input{suffix}")]).permute([0, 2, 3, 1]);
        check("pnet prob", out.narrow(3, 0, 2), &t[&format!("pnet/prob{suffix}")]);
        check("pnet reg", out.narrow(3, 2, 4), &t[&format!("pnet/reg{suffix}")]);
    }
    let out = run(Stage::R, &t["rnet/input"]);
    check("rnet prob", out.narrow(1, 0, 2), &t["rnet/prob"]);
    check("rnet reg", out.narrow(1, 2, 4), &t["rnet/reg"]);
    let out = run(Stage::O, &t["onet/input"]);
    check("onet prob", out.narrow(1, 0, 2), &t["onet/prob"]);
    check("onet reg", out.narrow(1, 2, 4), &t["onet/reg"]);
    check("onet landmarks", out.narrow(1, 6, 10), &t["onet/landmarks"]);
    eprintln!("MTCNN nets vs TF: worst max|diff| {worst:e}");
}

/// The shipped weights are what facenet ships: `tools/mtcnn_weights.py --check` converts
/// det1-3.npy afresh and compares bytes.
#[test]
fn shipped_weights_equal_a_fresh_conversion() {
    let shipped = repo().join("src/models/mtcnn/mtcnn.safetensors");
    run_tf_tool("mtcnn_weights.py", [std::ffi::OsStr::new("--check"), "--out".as_ref(), shipped.as_os_str()], "the MTCNN weights check");
}

fn trace(d: &Detector, img: &Rgb8) -> (Vec<Face>, Trace) {
    d.trace_batch(&[img], &DetectOptions::default()).unwrap().remove(0)
}

/// Every stage of `detect_face` on every photo.
#[test]
fn detect_face_stage_by_stage() {
    let refs = face_reference();
    let d = detector();
    let opts = DetectOptions::default();
    let (mut worst_map, mut worst_box, mut worst_score, mut worst_point) = (0f64, 0f64, 0f64, 0f64);
    for stem in photos(&refs) {
        let img = image(&refs, &stem);
        let st = tensors(&refs.join(format!("photos/{stem}/stages.safetensors")));
        let pn = tensors(&refs.join(format!("photos/{stem}/pnet.safetensors")));
        let scales = detect::scales(img.height.min(img.width), &opts);
        let want: Vec<f64> = Vec::<f64>::try_from(&st["scales"]).unwrap();
        assert_eq!(scales, want, "{stem}: scales");
        for (s, &scale) in scales.iter().enumerate() {
            let (hs, ws) = (detect::scaled(img.height, scale), detect::scaled(img.width, scale));
            let level = imgops::resize_area_u8(&img.data, img.height, img.width, 3, hs, ws).unwrap();
            let theirs = rgb8(&pn[&format!("{s:02}/resized")]);
            assert!(level == theirs.data, "{stem} scale {s}: the pyramid level differs from cv2's");
            // P-Net on TF's level: maps within 1e-5 (ours are [x][y]; TF's [y][x][c]).
            let maps = detect::pnet_maps(d.net(Stage::P), &theirs.data, hs, ws).unwrap();
            let (prob, reg, (mw, mh)) = (&maps.prob, &maps.reg, maps.dims);
            let tp = &pn[&format!("{s:02}/prob")];
            let tr = &pn[&format!("{s:02}/reg")];
            assert_eq!(tp.size(), [mh as i64, mw as i64, 2], "{stem} scale {s}: map size");
            let ours_prob = Tensor::from_slice(prob).view([mw as i64, mh as i64]).transpose(0, 1);
            worst_map = worst_map.max(max_abs(&ours_prob, &tp.select(2, 1)));
            for (c, r) in reg.iter().enumerate() {
                let ours = Tensor::from_slice(r).view([mw as i64, mh as i64]).transpose(0, 1);
                worst_map = worst_map.max(max_abs(&ours, &tr.select(2, c as i64)));
            }
        }
        let (faces, tr) = trace(&d, &img);
        let rows = |t: &Tensor| -> Vec<Vec<f64>> {
            let t = t.to_kind(Kind::Double);
            (0..t.size()[0]).map(|i| Vec::<f64>::try_from(&t.get(i)).unwrap()).collect()
        };
        let ours1: Vec<Vec<f64>> = tr.stage1.iter().map(|b| b[..4].to_vec()).collect();
        let theirs1: Vec<Vec<f64>> =
            st.get("stage1/boxes").map(|t| rows(t).into_iter().map(|r| r[..4].to_vec()).collect()).unwrap_or_default();
        assert_eq!(ours1, theirs1, "{stem}: stage-1 boxes");
        if let Some(crops) = st.get("rnet/crops") {
            // R-Net input: the zero-padded INTER_AREA crops of the stage-1 boxes, bit for bit.
            let cands: Vec<detect::Candidate> = tr.stage1.iter().map(|b| detect::Candidate { b: *b, reg: [0.0; 4] }).collect();
            let (ours, kept) = detect::crops(&img, &cands, 24).unwrap();
            assert_eq!(kept.len(), cands.len(), "{stem}: every stage-1 box gives a crop");
            let want = ((crops.to_kind(Kind::Double) - 127.5) * 0.0078125).to_kind(Kind::Float).permute([0, 3, 2, 1]).contiguous();
            let want = Vec::<f32>::try_from(&want.flatten(0, -1)).unwrap();
            assert!(ours == want, "{stem}: R-Net crops differ from detect_face's");
        }
        let theirs2 = st.get("stage2/rerec").map(rows).unwrap_or_default();
        assert_eq!(tr.stage2.len(), theirs2.len(), "{stem}: stage-2 box count");
        for (o, t) in tr.stage2.iter().zip(&theirs2) {
            for (a, b) in o.iter().zip(t) {
                worst_box = worst_box.max((a - b).abs());
            }
        }
        let fb = st.get("final/boxes").map(rows).unwrap_or_default();
        assert_eq!(faces.len(), fb.len(), "{stem}: number of faces");
        let fp = st.get("final/points").map(|t| rows(&t.to_kind(Kind::Double)));
        for (i, (f, t)) in faces.iter().zip(&fb).enumerate() {
            for (a, b) in f.bbox.iter().zip(t) {
                worst_box = worst_box.max((a - b).abs());
            }
            worst_score = worst_score.max((f.score - t[4]).abs());
            let p = fp.as_ref().unwrap();
            for (j, pt) in f.landmarks.iter().enumerate() {
                worst_point = worst_point.max((pt[0] - p[j][i]).abs()).max((pt[1] - p[5 + j][i]).abs());
            }
        }
    }
    eprintln!(
        "detect_face vs TF on {} photos: P-Net maps {worst_map:e}, boxes {worst_box:e} px, scores {worst_score:e}, landmarks {worst_point:e} px",
        photos(&refs).len()
    );
    assert!(worst_map <= 1e-5, "P-Net maps differ by {worst_map:e}");
    assert!(worst_box <= 1.0, "boxes differ by {worst_box} px");
    assert!(worst_score <= 1e-3, "scores differ by {worst_score}");
    assert!(worst_point <= 1.0, "landmarks differ by {worst_point} px");
}

/// align_dataset_mtcnn.py's crops (single face and --detect_multiple_faces) and its
/// bounding_boxes lines; compare.py's crops; facenet's embeddings of TF's crops and of ours.
#[test]
fn alignment_and_embeddings_match_facenet() {
    let refs = face_reference();
    let d = detector();
    let aligned = tensors(&refs.join("align.safetensors"));
    let opts = align::AlignOptions::default();
    let (mut pixels, mut off2, mut worst) = (0usize, 0usize, 0u8);
    let mut lines = Vec::new();
    let mut ours_single = Vec::new();
    for stem in photos(&refs) {
        let img = image(&refs, &stem);
        let faces = d.detect(&img, &DetectOptions::default()).unwrap();
        let file = std::fs::read_to_string(refs.join("../photos/photos.json")).ok();
        let _ = file;
        let Some(i) = align::choose_face(&faces, img.height, img.width) else {
            lines.push(format!("{stem}.png"));
            continue;
        };
        let mut compare = |ours: &Rgb8, key: &str| {
            let theirs = rgb8(&aligned[key]);
            for (a, b) in ours.data.iter().zip(&theirs.data) {
                let dlt = a.abs_diff(*b);
                worst = worst.max(dlt);
                pixels += 1;
                if dlt > 2 {
                    off2 += 1;
                }
            }
        };
        let (crop, bb) = align::aligned(&img, &faces[i], &opts).unwrap();
        compare(&crop, &format!("single/{stem}"));
        lines.push(format!("{stem}.png {} {} {} {}", bb[0], bb[1], bb[2], bb[3]));
        ours_single.push((stem.clone(), crop));
        for (j, f) in faces.iter().enumerate() {
            let (crop, _) = align::aligned(&img, f, &opts).unwrap();
            compare(&crop, &format!("multiple/{stem}_{j}"));
        }
    }
    lines.sort();
    let want: Vec<String> = std::fs::read_to_string(refs.join("align/single.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(lines, want, "bounding_boxes.txt lines");
    let frac = off2 as f64 / pixels as f64;
    eprintln!("aligned crops vs facenet: {pixels} values, {off2} off by more than 2 levels ({frac:e}), worst {worst}");
    assert!(frac <= 0.01, "{frac} of the crop values are more than 2 levels off");

    // Embeddings: facenet (the TF-made 512-d release) on TF's crops and on ours.
    let model =
        slimzoo::load::load_model(&reference("facenet_512").join("20990101-000000"), &Default::default(), Device::Cpu).unwrap().model;
    let facenet = model.freeze(Rewrites::default()).unwrap();
    let emb = tensors(&refs.join("embeddings.safetensors"));
    let names: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(refs.join("embeddings.json")).unwrap()).unwrap();
    let embed = |crops: &[Tensor]| {
        let x = (Tensor::stack(crops, 0).to_kind(Kind::Float) - 127.5) / 128.0;
        let out = facenet.forward(&x.permute([0, 3, 1, 2]), &RunOptions::default(), &mut EndPoints::none()).unwrap();
        slimzoo::models::inception_resnet_v1::embed(&out).unwrap()
    };
    let single: Vec<String> = names["sets"]["align_single"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let theirs_crops: Vec<Tensor> = single.iter().map(|s| aligned[&format!("single/{s}")].shallow_clone()).collect();
    let on_tf_crops = max_abs(&embed(&theirs_crops), &emb["align_single/fixed"]);
    let ours_crops: Vec<Tensor> = single
        .iter()
        .map(|s| {
            let c = &ours_single.iter().find(|(n, _)| n == s).unwrap().1;
            Tensor::from_slice(&c.data).view([160, 160, 3])
        })
        .collect();
    let on_our_crops = max_abs(&embed(&ours_crops), &emb["align_single/fixed"]);
    eprintln!("embeddings vs TF facenet: on TF's crops {on_tf_crops:e}, on ours {on_our_crops:e}");
    assert!(on_tf_crops <= 1e-4, "embeddings of TF's crops differ by {on_tf_crops:e}");
    assert!(on_our_crops <= 1e-4, "embeddings of our crops differ by {on_our_crops:e}");
}

/// Photos decoded by slimzoo as facenet decodes them (Pillow), then detection end to end.
#[test]
fn photos_decode_like_pillow() {
    let refs = face_reference();
    let dir = refs.join("../photos");
    for stem in photos(&refs) {
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_stem().is_some_and(|s| s == stem.as_str()) && p.extension().is_some_and(|e| e != "json" && e != "md"))
            .unwrap();
        let ours = slimzoo::photo::read_rgb8(&file, slimzoo::photo::Decoder::Pillow).unwrap();
        assert!(ours == image(&refs, &stem), "{}: decoded pixels differ from facenet's", file.display());
    }
}

/// The pyramid's numpy powers are what numpy computes: `tools/numpy_pow_table.py --check`.
#[test]
fn numpy_power_table_is_numpys() {
    run_tf_tool("numpy_pow_table.py", ["--check"], "the numpy power table check");
}

fn run_slimzoo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_slimzoo")).args(args).output().expect("cannot run slimzoo")
}

/// `slimzoo detect --json` and `slimzoo align` on the photo files, end to end (decoding included):
/// the same faces as facenet's detect_face, align_dataset_mtcnn.py's crops and bounding_boxes.txt.
#[test]
fn detect_and_align_from_the_command_line() {
    let refs = face_reference();
    let dir = refs.join("../photos");
    let out = run_slimzoo(&["detect", "--json", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut seen = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["faces", "file"], "{line}");
        assert!(line.starts_with("{\"file\":"), "the file comes first: {line}");
        let file = std::path::PathBuf::from(v["file"].as_str().unwrap());
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let st = tensors(&refs.join(format!("photos/{stem}/stages.safetensors")));
        let faces = v["faces"].as_array().unwrap();
        let want = st.get("final/boxes").map(|t| t.size()[0]).unwrap_or(0);
        assert_eq!(faces.len() as i64, want, "{stem}: number of faces");
        for (i, f) in faces.iter().enumerate() {
            let t = st["final/boxes"].get(i as i64).to_kind(Kind::Double);
            for k in 0..4 {
                let d = (f["box"][k].as_f64().unwrap() - t.double_value(&[k as i64])).abs();
                assert!(d <= 1.0, "{stem} face {i}: box differs by {d} px");
            }
            assert!((f["score"].as_f64().unwrap() - t.double_value(&[4])).abs() <= 1e-3, "{stem} face {i}: score");
            assert_eq!(f["landmarks"].as_array().unwrap().len(), 5);
        }
        seen += 1;
    }
    assert_eq!(seen, photos(&refs).len());

    let tmp = tempfile::tempdir().unwrap();
    let outdir = tmp.path().join("aligned");
    let out = run_slimzoo(&["align", dir.to_str().unwrap(), "-o", outdir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no face found in 2 photos") && stderr.contains("coffee_noface"), "{stderr}");
    let prefix = format!("{}/", outdir.display());
    let mut lines: Vec<String> = std::fs::read_to_string(outdir.join("bounding_boxes.txt"))
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap().to_string())
        .collect();
    lines.sort();
    let want: Vec<String> = std::fs::read_to_string(refs.join("align/single.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(lines, want);
    let aligned = tensors(&refs.join("align.safetensors"));
    for (key, t) in aligned.iter().filter(|(k, _)| k.starts_with("single/")) {
        let png = outdir.join(format!("{}.png", &key["single/".len()..]));
        let ours = image::open(&png).unwrap().to_rgb8().into_raw();
        assert!(ours == rgb8(t).data, "{}: differs from align_dataset_mtcnn.py's crop", png.display());
    }
    // Outputs are never overwritten without --force.
    let again = run_slimzoo(&["align", dir.to_str().unwrap(), "-o", outdir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let multi = tmp.path().join("multi");
    let out = run_slimzoo(&["align", "--multiple-faces", dir.to_str().unwrap(), "-o", multi.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let n_multi = aligned.keys().filter(|k| k.starts_with("multiple/")).count();
    assert_eq!(std::fs::read_dir(&multi).unwrap().count(), n_multi + 1, "one PNG per face, and bounding_boxes.txt");
}

/// `slimzoo embed --detect`: photos in, one row per face in detection order, each row facenet's
/// embedding of align_dataset_mtcnn.py's `--detect_multiple_faces` crop (TF's, within 1e-4).
#[test]
fn embed_detect_gives_facenets_embeddings_of_every_face() {
    let refs = face_reference();
    let dir = refs.join("../photos");
    let model = reference("facenet_512").join("20990101-000000.zip");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("faces.safetensors");
    let run = run_slimzoo(&["embed", "--weights", model.to_str().unwrap(), "--detect", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let w = Weights::from_safetensors(&out).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&w.metadata["files"]).unwrap();
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            let stem = std::path::Path::new(r["file"].as_str().unwrap()).file_stem().unwrap().to_string_lossy().into_owned();
            format!("{stem}_{}", r["face"])
        })
        .collect();
    let names: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(refs.join("embeddings.json")).unwrap()).unwrap();
    let want: Vec<String> = names["sets"]["align_multiple"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(labels, want, "rows: one per face, photos in order, faces in detection order");
    let theirs = &tensors(&refs.join("embeddings.safetensors"))["align_multiple/fixed"];
    let diff = max_abs(&w.tensors["embeddings"], theirs);
    eprintln!("embed --detect vs TF facenet on its crops: max|diff| {diff:e} over {} faces", labels.len());
    assert!(diff <= 1e-4, "embeddings differ by {diff:e}");
}
