//! The `slimzoo` binary as users run it: every subcommand on TF-made data, and bad input ending
//! in a clear message and a non-zero exit (never a panic).

mod common;

use common::*;
use slimzoo::weights::Weights;
use std::path::Path;
use std::process::{Command, Output};

fn slimzoo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimzoo")).args(args).output().expect("cannot run slimzoo")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = slimzoo(args);
    let (so, se) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "slimzoo {args:?} failed:\n{se}");
    (so, se)
}

/// Fails with exit code 1, a message containing every `needles`, and no panic.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let out = slimzoo(args);
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "slimzoo {args:?} should fail cleanly; stderr:\n{se}");
    assert!(!se.contains("panicked") && !se.contains("RUST_BACKTRACE"), "panic for {args:?}:\n{se}");
    for n in needles {
        assert!(se.contains(n), "slimzoo {args:?}: stderr lacks '{n}':\n{se}");
    }
    se
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_lists_subcommands() {
    let (out, _) = ok(&["--help"]);
    for cmd in ["check", "inspect", "convert", "export", "zoo", "features", "classify", "embed", "compare", "bench"] {
        assert!(out.contains(&format!("  {cmd} ")), "--help lacks {cmd}:\n{out}");
    }
}

/// The README's main job on the shipped default.
#[test]
fn check_runs_on_the_shipped_fixture() {
    let (out, _) = ok(&["check"]);
    assert!(out.contains("all 41 end points match TF"), "{out}");
    assert!(out.contains("resnet_v2_tiny/block4/unit_1/bottleneck_v2/shortcut"), "{out}");
}

#[test]
fn inspect_lists_like_tf() {
    let (out, _) = ok(&["inspect", s(&fixture("tiny/v1/model.ckpt"))]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 127);
    assert_eq!(lines[0], "resnet_v2_tiny/block1/unit_1/bottleneck_v2/conv1/BatchNorm/beta (float32) [4]");
    assert!(lines.contains(&"resnet_v2_tiny/conv1/weights (float32) [7, 7, 3, 64]"));
    let params: u64 =
        Weights::from_safetensors(&fixture("tiny/v1/tf_values.safetensors")).unwrap().tensors.values().map(|t| t.numel() as u64).sum();
    assert!(lines[126].starts_with(&format!("# 126 variables, {params} parameters, {} bytes", params * 4)), "{}", lines[126]);

    let (json, _) = ok(&["inspect", "--json", s(&fixture("dtypes/v2"))]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let tf: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("dtypes/v2/tf_variables.json")).unwrap()).unwrap();
    assert_eq!(v, tf, "inspect --json equals TF's listing");

    let (t, _) = ok(&["inspect", s(&fixture("dtypes/v2")), "--tensor", "dtypes/int8"]);
    assert!(t.contains("dtypes/int8 (int8) [5]") && t.contains("min ") && t.contains("first values: ["), "{t}");
    let (t, _) = ok(&["inspect", s(&fixture("dtypes/v2")), "--tensor", "dtypes/string"]);
    assert!(t.contains("\"hello\""), "{t}");
    fails(&["inspect", s(&fixture("dtypes/v2")), "--tensor", "nope"], &["no tensor 'nope'"]);
}

#[test]
fn zoo_lists_the_published_files() {
    let (out, _) = ok(&["zoo"]);
    for f in [
        "resnet_v2_50_2017_04_14.tar.gz",
        "resnet_v2_101_2017_04_14.tar.gz",
        "resnet_v2_152_2017_04_14.tar.gz",
        "20180402-114759.zip",
        "20180408-102900.zip",
    ] {
        assert!(out.contains(f), "{out}");
    }
    assert!(out.contains("75.6") && out.contains("0.9965"));
}

/// convert → features on the converted file and on the TF checkpoint directly, with TF-made
/// variants of the options; every output tensor compared with TF's.
#[test]
fn convert_then_features_match_tf_for_every_option() {
    let tmp = tempfile::tempdir().unwrap();
    let st = tmp.path().join("tiny.safetensors");
    let (_, err) = ok(&["convert", s(&fixture("tiny/v1/model.ckpt")), "-o", s(&st)]);
    assert!(err.contains("detected from the names") && err.contains("wrote 126 tensors"), "{err}");
    fails(&["convert", s(&fixture("tiny/v1/model.ckpt")), "-o", s(&st)], &["already exists", "--force"]);

    let variants = reference("tiny_variants");
    let cases: &[(&str, &[&str])] = &[
        ("odd_65x47", &[]),
        ("os8_57", &["--output-stride", "8"]),
        ("os16_spatial_65", &["--output-stride", "16", "--no-global-pool", "--no-spatial-squeeze"]),
        ("no_classes", &["--num-classes", "none"]),
        ("no_classes_no_pool", &["--num-classes", "none", "--no-global-pool"]),
        ("no_pool_no_squeeze", &["--no-global-pool", "--no-spatial-squeeze"]),
    ];
    for (i, (case, flags)) in cases.iter().enumerate() {
        let weights = if i % 2 == 0 { st.clone() } else { fixture("tiny/v2") };
        let out = tmp.path().join(format!("{case}.safetensors"));
        let mut args = vec!["features", "--weights", s(&weights), "--input"];
        let input = variants.join(case).join("input.npy");
        args.push(s(&input));
        args.extend(["-o", s(&out)]);
        args.extend(flags.iter().copied());
        // Both the inference rewrites (default) and the reference forward pass.
        if i % 3 == 1 {
            args.extend(["--rewrites", "none"]);
        }
        // And the batch split into parallel sub-batches.
        if i % 3 == 2 {
            args.extend(["--streams", "2"]);
        }
        ok(&args);
        let ours = Weights::from_safetensors(&out).unwrap();
        let ours: Vec<(String, tch::Tensor)> = ours.tensors.into_iter().collect();
        // Ours are NHWC already; compare through the NCHW helper by permuting back.
        let nchw: Vec<(String, tch::Tensor)> =
            ours.into_iter().map(|(k, t)| if t.dim() == 4 { (k, t.permute([0, 3, 1, 2])) } else { (k, t) }).collect();
        assert_endpoints_match(&nchw, &variants.join(case).join("endpoints.safetensors"), 1e-4);
    }
    // TF's errors for impossible options.
    let input = variants.join("os12_error/input.npy");
    fails(
        &["features", "--weights", s(&st), "--input", s(&input), "-o", s(&tmp.path().join("x.st")), "--output-stride", "12"],
        &["The target output_stride cannot be reached."],
    );
    fails(
        &["features", "--weights", s(&st), "--input", s(&input), "-o", s(&tmp.path().join("x.st")), "--output-stride", "6"],
        &["The output_stride needs to be a multiple of 4."],
    );
    let input = variants.join("squeeze_error/input.npy");
    fails(
        &["features", "--weights", s(&st), "--input", s(&input), "-o", s(&tmp.path().join("x.st")), "--no-global-pool"],
        &["spatial_squeeze", "Can not squeeze dim[1]"],
    );
    fails(
        &["features", "--weights", s(&st), "--input", s(&input), "-o", s(&tmp.path().join("x.st")), "--end-points", "resnet_v2_tiny/nope"],
        &["no end point named resnet_v2_tiny/nope", "resnet_v2_tiny/block1"],
    );
}

#[test]
fn features_on_images_and_selected_end_points() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img.safetensors");
    let img = fixture("images/rgb_173x131.png");
    ok(&[
        "features",
        "--weights",
        s(&fixture("tiny/v2")),
        "--input",
        s(&img),
        s(&fixture("images/gray_45x38.png")),
        "-o",
        s(&out),
        "--end-points",
        "resnet_v2_tiny/block2,predictions",
    ]);
    let w = Weights::from_safetensors(&out).unwrap();
    assert_eq!(w.tensors.keys().collect::<Vec<_>>(), vec!["output", "predictions", "resnet_v2_tiny/block2"]);
    // 299 inception input: block2 is at stride 16 → 19x19.
    assert_eq!(w.tensors["resnet_v2_tiny/block2"].size(), vec![2, 19, 19, 32]);
    let p = &w.tensors["predictions"];
    let sums = p.sum_dim_intlist(&[1i64][..], false, tch::Kind::Float);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
}

#[test]
fn classify_prints_imagenet_top5() {
    let dir = reference("resnet_v2_50");
    let (out, _) = ok(&["classify", "--weights", s(&dir.join("v2")), "--image-size", "224", s(&fixture("images/rgb_64x97.png"))]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].ends_with("rgb_64x97.png"));
    let labels: Vec<&str> = include_str!("../src/data/imagenet_1001.txt").lines().collect();
    for l in &lines[1..] {
        let parts: Vec<&str> = l.split_whitespace().collect();
        let idx: usize = parts[1].parse().unwrap();
        assert!(l.trim_end().ends_with(labels[idx]), "{l}");
    }
}

#[test]
fn embed_and_compare_match_tf() {
    let dir = reference("facenet_512");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("emb.npy");
    // Three images in two parallel sub-batches.
    ok(&[
        "embed",
        "--weights",
        s(&dir.join("20990101-000000.zip")),
        "--input",
        s(&dir.join("input_160.npy")),
        "-o",
        s(&out),
        "--streams",
        "2",
    ]);
    let ours = slimzoo::npy::read(&out).unwrap();
    assert_eq!(ours.shape, vec![3, 512]);
    let tf = &Weights::from_safetensors(&dir.join("endpoints_160.safetensors")).unwrap().tensors["embeddings"];
    let tf_vals = Vec::<f32>::try_from(tf.flatten(0, -1)).unwrap();
    let diff = ours.data.iter().zip(&tf_vals).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff <= 1e-5, "embeddings differ from TF by {diff}");

    // Images, a folder, a broken file: the broken one is reported, the rest embedded, exit 1.
    let faces = tmp.path().join("faces");
    std::fs::create_dir(&faces).unwrap();
    std::fs::copy(fixture("images/rgb_64x97.png"), faces.join("a.png")).unwrap();
    std::fs::copy(fixture("images/rgb_173x131.png"), faces.join("b.png")).unwrap();
    std::fs::write(faces.join("broken.jpg"), b"not a jpeg").unwrap();
    let csv = tmp.path().join("e.csv");
    let err = fails(
        &["embed", "--weights", s(&dir.join("20990101-000000")), s(&faces), "--flip", "-o", s(&csv)],
        &["broken.jpg", "1 files could not be embedded"],
    );
    assert!(err.contains("2 embeddings of dimension 1024"), "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert_eq!(text.lines().next().unwrap().split(',').count(), 1 + 1024);

    let (m, _) = ok(&["compare", "--weights", s(&dir.join("20990101-000000.zip")), s(&faces.join("a.png")), s(&faces.join("b.png"))]);
    assert!(m.contains("Distance matrix") && m.contains("0: ") && m.contains("1: ") && m.contains("0.0000"), "{m}");
}

/// Hostile and broken files through the CLI: clear errors naming the file, exit 1, no panic.
#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let v2 = fixture("tiny/v2");
    let copy = |name: &str| {
        let d = t.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["model.ckpt.index", "model.ckpt.data-00000-of-00001"] {
            std::fs::copy(v2.join(f), d.join(f)).unwrap();
        }
        d.join("model.ckpt")
    };
    // Truncated index.
    let p = copy("trunc");
    let idx = std::fs::read(p.with_extension("ckpt.index")).unwrap();
    std::fs::write(p.with_extension("ckpt.index"), &idx[..idx.len() / 2]).unwrap();
    fails(&["inspect", s(&p)], &["model.ckpt.index"]);
    // A flipped byte in the data shard: the tensor's checksum.
    let p = copy("flip");
    let data = p.with_extension("ckpt.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1000] ^= 0x40;
    std::fs::write(&data, &bytes).unwrap();
    fails(&["convert", s(&p), "-o", s(&t.join("o.safetensors"))], &["model.ckpt", "hecksum"]);
    assert!(!t.join("o.safetensors").exists(), "a failed convert left its output");
    // Missing shard.
    let p = copy("missing");
    std::fs::remove_file(p.with_extension("ckpt.data-00000-of-00001")).unwrap();
    fails(&["convert", s(&p), "-o", s(&t.join("o.safetensors"))], &["data-00000-of-00001"]);
    // A data shard given as a V1 table.
    let lone = t.join("lone.bin");
    std::fs::copy(v2.join("model.ckpt.data-00000-of-00001"), &lone).unwrap();
    fails(&["inspect", s(&lone)], &["lone.bin"]);
    // Not a checkpoint at all, an empty folder, a path that does not exist.
    std::fs::write(t.join("junk.ckpt"), vec![7u8; 100]).unwrap();
    fails(&["inspect", s(&t.join("junk.ckpt"))], &["junk.ckpt"]);
    std::fs::create_dir(t.join("empty")).unwrap();
    fails(&["inspect", s(&t.join("empty"))], &["empty"]);
    fails(&["inspect", s(&t.join("nowhere"))], &["nowhere"]);
    // Broken inputs to features.
    std::fs::write(t.join("bad.npy"), b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}").unwrap();
    fails(&["features", "--weights", s(&v2), "--input", s(&t.join("bad.npy")), "-o", s(&t.join("f.st"))], &["bad.npy"]);
    fails(
        &["features", "--weights", s(&t.join("junk.ckpt")), "--input", s(&fixture("tiny/input.npy")), "-o", s(&t.join("f.st"))],
        &["junk.ckpt"],
    );
    // A safetensors file that is not one.
    let fake = t.join("fake.safetensors");
    let mut b = 40u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{\"a\": {\"dtype\": \"F32\", \"shape\": [1000000000000]");
    std::fs::write(&fake, &b).unwrap();
    fails(&["features", "--weights", s(&fake), "--input", s(&fixture("tiny/input.npy")), "-o", s(&t.join("f.st"))], &["fake.safetensors"]);
    // Weights of the wrong architecture.
    fails(
        &["features", "--arch", "resnet_v2_50", "--weights", s(&v2), "--input", s(&fixture("tiny/input.npy")), "-o", s(&t.join("f.st"))],
        &["missing", "unexpected", "resnet_v2_50/conv1/weights", "resnet_v2_tiny/conv1/weights"],
    );
    // Unknown options and values.
    fails(
        &["features", "--arch", "vgg_16", "--weights", s(&v2), "--input", s(&fixture("tiny/input.npy")), "-o", s(&t.join("f.st"))],
        &["unknown architecture 'vgg_16'"],
    );
    fails(&["convert", s(&v2), "-o", s(&t.join("r.st")), "--rename", "([=x"], &["--rename"]);
}

/// Issue #14: options refused before any work with their allowed range, hostile checkpoint
/// contents named, outputs that would overwrite an input refused, nothing converted silently.
#[test]
fn bad_values_are_named_with_what_is_allowed() {
    use slimzoo::ckpt::writer::{BundleEntryProto, BundleOptions, BundleWriter};
    use slimzoo::ckpt::{DType, TensorData, crc};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (args, want) in [
        (&["bench", "--threads", "0"][..], "invalid value '0' for '--threads <THREADS>': expected a whole number in 1..=1024"),
        (&["bench", "--threads", "-1"], "invalid value '-1' for '--threads <THREADS>': expected a whole number in 1..=1024"),
        (&["bench", "--batch", "1e9"], "invalid value '1e9' for '--batch <BATCH>': expected a whole number in 1..=4096"),
        (&["bench", "--size", "0"], "invalid value '0' for '--size <SIZE>': expected a whole number in 1..=4096"),
        (&["bench", "--batches", "0"], "expected a whole number in 1..=1000000"),
        (&["bench", "--repeat", "0"], "invalid value '0' for '--repeat <REPEAT>': expected a whole number in 1..=1000"),
        (&["bench", "--batch", "4096", "--size", "4096"], "--batch 4096 at --size 4096: the input alone would hold 206158430208 values"),
        (&["check", "--tol", "nan"], "invalid value 'nan' for '--tol <TOL>': expected a number in 0..=1"),
        (&["inspect", "x", "--values", "-3"], "expected a whole number in 0..=1000000"),
        (&["zoo", "extra"], "unexpected argument 'extra' found"),
    ] {
        let err = fails(args, &[want]);
        assert_eq!(err.matches("slimzoo: error:").count(), 1, "{err}");
    }

    // A checkpoint with a tensor of dtype 9999 and one of rank 100000: errors naming them.
    let write = |name: &str, key: &str, dtype: i32, dims: Vec<i64>| {
        let prefix = t.join(name).join("model.ckpt");
        std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
        let mut w = BundleWriter::new("t", vec![Vec::new()], BundleOptions::default()).unwrap();
        w.add("ok", &TensorData { dtype: DType::F32, shape: vec![1], data: vec![0; 4] }).unwrap();
        let off = w.append_raw(0, &[0; 8]).unwrap();
        let mut e = BundleEntryProto { dtype, offset: off as i64, size: 8, crc32c: crc::mask(crc::value(&[0; 8])), ..Default::default() };
        e.shape.dims = dims;
        w.add_raw_entry(key.as_bytes(), e).unwrap();
        let (index, shards) = w.finish().unwrap();
        std::fs::write(prefix.with_extension("ckpt.index"), index).unwrap();
        std::fs::write(prefix.with_extension("ckpt.data-00000-of-00001"), &shards[0]).unwrap();
        prefix
    };
    let odd = write("odd", "net/odd", 9999, vec![2]);
    let out = t.join("o.safetensors");
    fails(
        &["convert", s(&odd), "-o", s(&out)],
        &["model.ckpt.index: tensor 'net/odd': its dtype number 9999 is not a TensorFlow DataType"],
    );
    assert!(!out.exists());
    let deep = write("deep", "deep", 1, vec![1; 100_000]);
    let err = fails(&["inspect", s(&deep)], &["tensor 'deep': its shape has rank 100000, more than TensorFlow's limit of 254"]);
    assert!(err.len() < 1000, "the shape is not printed: {err}");

    // Nothing convertible: an error, not an empty file.
    let strings = t.join("strings/model.ckpt");
    std::fs::create_dir_all(strings.parent().unwrap()).unwrap();
    let mut w = BundleWriter::new("t", vec![Vec::new()], BundleOptions::default()).unwrap();
    w.add_strings("names", &[1], &[b"a".to_vec()]).unwrap();
    let (index, shards) = w.finish().unwrap();
    std::fs::write(strings.with_extension("ckpt.index"), index).unwrap();
    std::fs::write(strings.with_extension("ckpt.data-00000-of-00001"), &shards[0]).unwrap();
    fails(&["convert", s(&strings), "-o", s(&out)], &["nothing to convert: dropped 1 variables: 1 string tensors"]);
    assert!(!out.exists());

    // Outputs: never an input (however spelled, even with --force), never an existing file
    // without --force, bench --convert included.
    let v1 = t.join("v1/model.ckpt");
    std::fs::create_dir_all(v1.parent().unwrap()).unwrap();
    std::fs::copy(fixture("tiny/v1/model.ckpt"), &v1).unwrap();
    let before = std::fs::read(&v1).unwrap();
    let respelled = t.join("v1/../v1/model.ckpt");
    for o in [&v1, &respelled] {
        fails(&["convert", s(&v1), "-o", s(o), "--force"], &["is an input of this command", "choose another output"]);
        fails(&["bench", "--convert", s(&v1), "-o", s(o), "--force", "--repeat", "1"], &["is an input of this command"]);
    }
    let data = fixture("tiny/v2/model.ckpt.data-00000-of-00001");
    fails(
        &["convert", s(&fixture("tiny/v2")), "-o", s(&data), "--force"],
        &["model.ckpt.data-00000-of-00001: is an input of this command"],
    );
    assert_eq!(std::fs::read(&v1).unwrap(), before, "the input is intact");
    std::fs::write(&out, b"precious").unwrap();
    fails(&["bench", "--convert", s(&v1), "-o", s(&out), "--repeat", "1"], &["o.safetensors: already exists (use --force to overwrite)"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    ok(&["bench", "--convert", s(&v1), "-o", s(&out), "--repeat", "2", "--force"]);
    assert_eq!(Weights::from_safetensors(&out).unwrap().tensors.len(), 126);
}

/// Issue #14, NaN and infinity: TF takes them and computes on; so does slimzoo, every rewrite of
/// the forward pass placing them exactly where the reference pass does, with warnings naming the
/// input value and the rows.
#[test]
fn nan_and_infinity_go_through_every_rewrite_alike_with_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let v2 = fixture("tiny/v2");
    let mut a = slimzoo::npy::read(&fixture("tiny/input.npy")).unwrap();
    assert_eq!(a.shape, [2, 64, 64, 3]);
    // A NaN in image 0, an infinity in image 1.
    a.data[(10 * 64 + 20) * 3 + 1] = f32::NAN;
    a.data[64 * 64 * 3 + (30 * 64 + 30) * 3] = f32::INFINITY;
    let input = t.join("nan.npy");
    slimzoo::npy::write(&input, false, &a.shape, &a.data).unwrap();
    let reference = t.join("reference.safetensors");
    let (_, err) = ok(&["features", "--weights", s(&v2), "--input", s(&input), "-o", s(&reference), "--rewrites", "none"]);
    for want in [
        "nan.npy: 2 values are NaN or infinite (the first: element [0, 10, 20, 1] = NaN); the net runs on them, as TF does".to_string(),
        "warning: NaN or infinity in 2 rows of the batch (in 41 of 41 tensors: ".to_string(),
        format!("{0}[0], {0}[1]", input.display()),
    ] {
        assert!(err.contains(&want), "stderr lacks {want:?}:\n{err}");
    }
    for rewrites in ["all", "fold", "channels-last", "fused"] {
        let (out, _) = ok(&["check", "--input", s(&input), "--expect", s(&reference), "--rewrites", rewrites]);
        assert!(out.contains("all 41 end points match TF"), "--rewrites {rewrites}:\n{out}");
    }
    // The comparison sees NaN: a number where the reference has NaN is a mismatch.
    let mut w = Weights::from_safetensors(&reference).unwrap();
    let output = w.tensors["output"].nan_to_num(0.0, None, None);
    w.tensors.insert("output".into(), output);
    let tensors: Vec<(String, tch::Tensor)> = w.tensors.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
    let numbers = t.join("numbers.safetensors");
    slimzoo::safetensors_file::write_tensors(&numbers, false, &tensors, &Default::default()).unwrap();
    fails(
        &["check", "--input", s(&input), "--expect", s(&numbers)],
        &["1 of 41 end points differ from TF", "output: ours [2, 7] vs TF [2, 7], max|diff| NaN"],
    );
}

/// Issue #14: the image commands' options are refused before any work, naming the option and
/// what is allowed (NaN included).
#[test]
fn image_command_options_are_refused_with_their_range() {
    let w = ["--weights", "w"];
    for (args, want) in [
        (
            &["detect", "x.png", "--min-size", "nan"][..],
            "invalid value 'nan' for '--min-size <MIN_SIZE>': expected a number in 1..=1000000",
        ),
        (&["detect", "x.png", "--factor", "1"], "invalid value '1' for '--factor <FACTOR>': expected a number strictly between 0 and 1"),
        (&["detect", "x.png", "--thresholds", "0.6,0.7"], "expected three numbers P,R,O in 0..=1 (facenet: 0.6,0.7,0.7)"),
        (&["detect", "x.png", "--batch", "-1"], "invalid value '-1' for '--batch <BATCH>': expected a whole number in 1..=1024"),
        (&["align", "x.png", "-o", "d", "--margin", "-1"], "invalid value '-1' for '--margin <MARGIN>': expected a number in 0..=100000"),
        (&["align", "x.png", "-o", "d", "--image-size", "100000"], "expected a whole number in 1..=4096"),
        (
            &["embed", w[0], w[1], "x.png", "--image-size", "0"],
            "invalid value '0' for '--image-size <IMAGE_SIZE>': expected a whole number in 1..=4096",
        ),
        (&["compare", w[0], w[1], "x.png", "y.png", "--detect", "--margin", "1e20"], "expected a number in 0..=100000"),
        (&["classify", w[0], w[1], "x.png", "--top", "0"], "invalid value '0' for '--top <TOP>': expected a whole number in 1..=1048576"),
        (
            &["features", w[0], w[1], "--input", "x.npy", "-o", "o", "--num-classes", "-5"],
            "the number of classes must be in 1..=1048576 or 'none'",
        ),
        (&["features", w[0], w[1], "--input", "x.npy", "-o", "o", "--output-stride", "1e9"], "expected a whole number in 1..=1024"),
    ] {
        let err = fails(args, &[want]);
        assert_eq!(err.matches("slimzoo: error:").count(), 1, "{err}");
    }
}

/// Issue #14, outputs: checked before the weights are loaded (a missing weights file is not what
/// is reported), never an input, never a device.
#[test]
fn outputs_are_checked_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let img = t.join("face.png");
    std::fs::copy(fixture("images/rgb_64x97.png"), &img).unwrap();
    let existing = t.join("e.csv");
    std::fs::write(&existing, "precious").unwrap();
    let nowhere = t.join("no_weights_here");
    fails(&["embed", "--weights", s(&nowhere), s(&img), "-o", s(&existing)], &["e.csv: already exists (use --force to overwrite)"]);
    fails(
        &["embed", "--weights", s(&nowhere), s(&img), "-o", s(&t.join("e.txt"))],
        &["e.txt: the output must end in .npy, .csv or .safetensors"],
    );
    fails(
        &["features", "--weights", s(&nowhere), "--input", s(&img), "-o", s(&img), "--force"],
        &["face.png: is an input of this command"],
    );
    fails(&["features", "--weights", s(&nowhere), "--input", s(&img), "-o", "/dev/null", "--force"], &["/dev/null: is a device"]);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(fixture("images/rgb_64x97.png")).unwrap());
}

/// Issue #14, align: crops go into a folder, never over a photo, never over an existing crop
/// without --force; a photo without a face is reported and listed in bounding_boxes.txt by its
/// path alone (facenet's line), not an error.
#[test]
fn align_never_writes_over_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let photos = t.join("photos");
    std::fs::create_dir(&photos).unwrap();
    let photo = photos.join("astronaut.png");
    std::fs::copy(face_reference().join("../photos/astronaut.png"), &photo).unwrap();
    let before = std::fs::read(&photo).unwrap();
    fails(&["align", s(&photos), "-o", s(&photos), "--force"], &["astronaut.png: is an input of this command"]);
    fails(&["align", s(&photos), "-o", s(&photo)], &["astronaut.png: is a file, not a folder"]);
    let out = t.join("aligned");
    ok(&["align", s(&photos), "-o", s(&out)]);
    assert_eq!(std::fs::read_to_string(out.join("bounding_boxes.txt")).unwrap().lines().count(), 1);
    let crop = std::fs::read(out.join("astronaut.png")).unwrap();
    fails(&["align", s(&photos), "-o", s(&out)], &["already exists (use --force to overwrite)"]);
    ok(&["align", s(&photos), "-o", s(&out), "--force"]);
    assert_eq!(std::fs::read(out.join("astronaut.png")).unwrap(), crop, "the same crop again");
    assert_eq!(std::fs::read(&photo).unwrap(), before, "the photo is intact");

    let blank = t.join("blank");
    std::fs::create_dir(&blank).unwrap();
    std::fs::copy(fixture("images/gray_45x38.png"), blank.join("gray.png")).unwrap();
    let none = t.join("none");
    let (_, err) = ok(&["align", s(&blank), "-o", s(&none)]);
    assert!(err.contains("no face found in 1 photo") && err.contains("gray.png"), "{err}");
    let lines = std::fs::read_to_string(none.join("bounding_boxes.txt")).unwrap();
    assert_eq!(lines, format!("{}\n", none.join("gray.png").display()), "facenet's path-only line");
}
