//! Shared by the integration tests: where TF-made data lives, how missing references are made,
//! and how end points are compared with TF's.
#![allow(dead_code)] // each test binary uses a different subset

use slimzoo::layout::Layout;
use slimzoo::weights::Weights;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use tch::Tensor;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// A committed fixture file; panics loudly when it is missing.
pub fn fixture(rel: &str) -> PathBuf {
    let p = fixtures().join(rel);
    assert!(p.exists(), "TF-made fixture {} is missing; remake with `.venv/tf/bin/python tools/tfref.py fixtures`", p.display());
    p
}

static MAKING: Mutex<()> = Mutex::new(());

/// Runs `tools/<tool>` with the TF venv's Python; panics with its output when it fails, and when
/// the venv is missing (`what` says what needed it). These tests never pass without TF's data.
pub fn run_tf_tool<S: AsRef<std::ffi::OsStr>>(tool: &str, args: impl IntoIterator<Item = S>, what: &str) {
    let python = repo().join(".venv/tf/bin/python");
    assert!(python.exists(), "{what} needs the TF venv, which is not installed: run `tools/bootstrap.sh tf` (or `tools/dev.sh test`)");
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new(&python)
        .arg(repo().join("tools").join(tool))
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tools/{tool}: {e}"));
    assert!(
        out.status.success(),
        "tools/{tool} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An on-demand TF reference set (`tools/tfref.py refs NAME`), made when missing. Panics with the
/// generator's output when it cannot be made: these tests never pass without TF's data.
pub fn reference(name: &str) -> PathBuf {
    let cache = std::env::var_os("SLIMZOO_REFS").map(PathBuf::from).unwrap_or_else(|| repo().join(".cache/refs"));
    let dir = cache.join(name);
    let done = |d: &Path| std::fs::read_to_string(d.join("DONE")).is_ok_and(|s| s.contains("\"refs_version\": 3"));
    if done(&dir) {
        return dir;
    }
    let _guard = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    if done(&dir) {
        return dir;
    }
    eprintln!("making TF reference '{name}' (a minute or so)…");
    run_tf_tool(
        "tfref.py",
        [std::ffi::OsStr::new("refs"), name.as_ref(), "--cache".as_ref(), cache.as_os_str()],
        &format!("TF reference '{name}'"),
    );
    assert!(done(&dir), "tools/tfref.py refs {name} ran but {} is incomplete", dir.display());
    dir
}

/// facenet's face pipeline run by real TF (`tools/faceref.py photos`, `refs` and `embed`, see that
/// script's docstring for every file), made when missing. Panics with the generator's output
/// when it cannot be made.
pub fn face_reference() -> PathBuf {
    let cache = repo().join(".cache/faces");
    let (photos, refs) = (cache.join("photos"), cache.join("refs"));
    let done = || photos.join("DONE").exists() && refs.join("DONE").exists() && refs.join("EMBED_DONE").exists();
    if done() {
        return refs;
    }
    let model = reference("facenet_512");
    let _guard = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    if done() {
        return refs;
    }
    let model = model.join("20990101-000000");
    for args in [
        vec!["photos", "--out", photos.to_str().unwrap()],
        vec!["refs", "--out", refs.to_str().unwrap(), "--photos", photos.to_str().unwrap()],
        vec!["embed", "--out", refs.to_str().unwrap(), "--model", model.to_str().unwrap()],
    ] {
        eprintln!("making the face references: faceref.py {}…", args[0]);
        run_tf_tool("faceref.py", &args, "the face references");
    }
    assert!(done(), "tools/faceref.py ran but {} is incomplete", refs.display());
    refs
}

/// TF's own view of a checkpoint (`tf_values.safetensors`, TF layout) in tch layout.
pub fn tf_values_as_weights(path: &Path) -> Weights {
    let mut w = Weights::from_safetensors(path).unwrap();
    for (name, t) in w.tensors.iter_mut() {
        *t = tf_to_torch_layout(name, t);
    }
    w
}

/// A tensor in TF layout, in the tch layout the variable `name` has (kernels HWIO → OIHW, dense
/// [in, out] → [out, in], anything else as is).
pub fn tf_to_torch_layout(name: &str, t: &Tensor) -> Tensor {
    match Layout::of(name, t.dim()).to_torch_perm() {
        Some(perm) => {
            let perm: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
            t.permute(perm.as_slice()).contiguous()
        }
        None => t.shallow_clone(),
    }
}

/// NHWC for rank 4.
pub fn nhwc(t: &Tensor) -> Tensor {
    slimzoo::nn::to_nhwc(t)
}

/// An NCHW float batch from an NHWC .npy.
pub fn npy_nchw(path: &Path) -> Tensor {
    let a = slimzoo::npy::read(path).unwrap();
    let dims: Vec<i64> = a.shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&a.data).view(dims.as_slice()).permute([0, 3, 1, 2]).contiguous()
}

/// Asserts that `ours` (key → NCHW tensor) and TF's end points (`expected`, NHWC safetensors) have
/// the same keys, and every tensor the same shape and values within `tol * max(1, max|tf|)`.
/// Returns the worst relative error seen.
pub fn assert_endpoints_match(ours: &[(String, Tensor)], expected: &Path, tol: f64) -> f64 {
    let tf = Weights::from_safetensors(expected).unwrap();
    let mut ours_keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    ours_keys.sort();
    let tf_keys: Vec<&str> = tf.tensors.keys().map(String::as_str).collect();
    assert_eq!(ours_keys, tf_keys, "end point keys differ from TF's ({})", expected.display());
    let mut cmp = Comparison::new(tol);
    for (key, t) in ours {
        let mine = nhwc(t).to_kind(tch::Kind::Float).to_device(tch::Device::Cpu);
        cmp.check(key, &mine, &tf.tensors[key]);
    }
    cmp.finish(&format!("end points differ from TF ({})", expected.display()))
}

/// Tensor-by-tensor comparison with TF: `max|ours - tf| <= tol * max(1, max|tf|)` per tensor,
/// every failure collected, the worst relative error kept.
struct Comparison {
    tol: f64,
    worst: f64,
    failures: Vec<String>,
}

impl Comparison {
    fn new(tol: f64) -> Self {
        Comparison { tol, worst: 0.0, failures: Vec::new() }
    }

    fn check(&mut self, name: &str, mine: &Tensor, theirs: &Tensor) {
        assert_eq!(mine.size(), theirs.size(), "{name}: shape");
        let scale = theirs.abs().max().double_value(&[]).max(1.0);
        let diff = (mine - theirs).abs().max().double_value(&[]);
        assert!(diff.is_finite(), "{name}: non-finite difference");
        self.worst = self.worst.max(diff / scale);
        if diff > self.tol * scale {
            self.failures.push(format!("{name}: max|diff| {diff:e} > {:e} * {scale:e}", self.tol));
        }
    }

    /// Panics with every failure under `what`; returns the worst relative error.
    fn finish(self, what: &str) -> f64 {
        assert!(self.failures.is_empty(), "{what}:\n{}", self.failures.join("\n"));
        self.worst
    }
}

/// Every end point of a forward pass, plus `output`.
pub fn with_output(ep: slimzoo::EndPoints, out: Tensor) -> Vec<(String, Tensor)> {
    let mut v = ep.into_vec();
    v.push(("output".to_string(), out));
    v
}

/// Runs `model` in training mode on `x` with gradients, then asserts that the gradient of
/// `l2_loss(output) = sum(output^2) / 2` with respect to every trainable variable equals TF's
/// (`expected`: TF's `tf.gradients` per variable name, TF layout) within `tol * max(1, max|tf|)`,
/// and that exactly TF's variables get one. With `channels_last` the weights and the input are
/// stored channels-last first (the layout of `slimzoo bench --mode forward-backward`). Returns the
/// worst relative error.
pub fn assert_gradients_match(
    model: &mut slimzoo::Model,
    x: &Tensor,
    opts: &slimzoo::RunOptions,
    channels_last: bool,
    expected: &Path,
    tol: f64,
) -> f64 {
    let x = if channels_last {
        model.channels_last_weights().unwrap();
        slimzoo::nn::fused::channels_last(x).unwrap()
    } else {
        x.shallow_clone()
    };
    let vars = model.variables();
    for v in vars.values() {
        if v.requires_grad() {
            let _ = v.grad().f_zero_();
        }
    }
    let out = model.forward(&x, opts, &mut slimzoo::EndPoints::none()).unwrap();
    (out.square().sum(tch::Kind::Float) / 2.0).backward();
    let tf = tf_values_as_weights(expected);
    let mut ours: Vec<&str> = vars.iter().filter(|(_, v)| v.requires_grad()).map(|(k, _)| k.as_str()).collect();
    ours.sort();
    let theirs: Vec<&str> = tf.tensors.keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "variables with a gradient differ from TF's ({})", expected.display());
    let mut cmp = Comparison::new(tol);
    for (name, want) in &tf.tensors {
        let got = vars[name].grad();
        assert!(got.defined(), "{name}: no gradient");
        cmp.check(name, &got, want);
    }
    cmp.finish(&format!("gradients differ from TF ({})", expected.display()))
}
