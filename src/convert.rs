//! TF checkpoint → named tensors under their exact TF names in tch layout: the filtering of
//! training leftovers, `--ema`, `--rename`, validation against the net, and the safetensors writer.
//! Also the way back (`export`): tch-layout safetensors → a V2 checkpoint TF reads.

use crate::ckpt::{self, Checkpoint, DType, TensorData, TensorInfo};
use crate::error::{Error, Result};
use crate::layout::{self, Layout};
use crate::models::{Arch, TfShapes};
use crate::safetensors_file::{self, Entry};
use crate::weights::{self, Shapes, Weights};
use regex::Regex;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Why a checkpoint variable is not converted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dropped {
    /// `global_step`.
    GlobalStep,
    /// An optimizer's slot or accumulator (`Momentum`, `Adam_1`, `beta1_power`, …).
    OptimizerSlot(String),
    /// An `ExponentialMovingAverage` shadow (used instead of its weight with `--ema`).
    EmaShadow,
    /// TF2 object-graph bookkeeping (`_CHECKPOINTABLE_OBJECT_GRAPH`, `save_counter`, …).
    Tf2Bookkeeping,
    /// facenet's training-only classifier head (`Logits/*`) and center-loss `centers`.
    TrainingHead,
    /// A string, variant or resource tensor: not weights.
    NotNumeric(&'static str),
    /// A numeric tensor whose dtype safetensors cannot store (complex128, quantized, 4-bit, …).
    NoSafetensorsDtype(&'static str),
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::GlobalStep => write!(f, "global_step"),
            Dropped::OptimizerSlot(s) => write!(f, "{s} optimizer slots"),
            Dropped::EmaShadow => write!(f, "ExponentialMovingAverage shadows"),
            Dropped::Tf2Bookkeeping => write!(f, "TF2 bookkeeping"),
            Dropped::TrainingHead => write!(f, "facenet training head (Logits/centers; kept on request)"),
            Dropped::NotNumeric(d) => write!(f, "{d} tensors"),
            Dropped::NoSafetensorsDtype(d) => write!(f, "{d} tensors (safetensors has no such dtype)"),
        }
    }
}

/// Optimizer slot names TF1 optimizers append to a variable's name (`<var>/<slot>`).
const SLOTS: &[&str] = &["Momentum", "RMSProp", "RMSProp_1", "Adam", "Adam_1", "Adagrad", "Adadelta", "Adadelta_1", "Ftrl", "Ftrl_1"];
/// Optimizer accumulators that are variables of their own (possibly under a scope).
const ACCUMULATORS: &[&str] = &["beta1_power", "beta2_power"];
const EMA: &str = "ExponentialMovingAverage";

/// What a checkpoint name is, when it is not a weight.
pub fn classify(name: &str, keep_head: bool) -> Option<Dropped> {
    let leaf = name.rsplit('/').next().unwrap_or(name);
    if leaf == "global_step" {
        return Some(Dropped::GlobalStep);
    }
    if name.contains('/') && SLOTS.contains(&leaf) {
        return Some(Dropped::OptimizerSlot(leaf.trim_end_matches("_1").to_string()));
    }
    if ACCUMULATORS.contains(&leaf) {
        return Some(Dropped::OptimizerSlot("Adam".into()));
    }
    if leaf == EMA {
        return Some(Dropped::EmaShadow);
    }
    if name == "_CHECKPOINTABLE_OBJECT_GRAPH"
        || name.contains(".OPTIMIZER_SLOT")
        || name.starts_with("save_counter/")
        || name.starts_with("optimizer/")
    {
        return Some(Dropped::Tf2Bookkeeping);
    }
    if !keep_head && (name.starts_with("Logits/") || name == "centers") {
        return Some(Dropped::TrainingHead);
    }
    None
}

/// A `--rename 'REGEX=REPLACEMENT'` rule (the first `=` separates them; `$1` etc. refer to groups).
#[derive(Debug, Clone)]
pub struct Rename {
    /// What to match.
    pub re: Regex,
    /// What to put instead (`$1` refers to a group).
    pub replacement: String,
}

impl std::str::FromStr for Rename {
    type Err = Error;
    fn from_str(s: &str) -> Result<Rename> {
        let (re, rep) = s.split_once('=').ok_or_else(|| Error::invalid(format!("rename rule '{s}': expected REGEX=REPLACEMENT")))?;
        let re = Regex::new(re).map_err(|e| Error::invalid(format!("rename rule '{s}': bad regex: {e}")))?;
        Ok(Rename { re, replacement: rep.to_string() })
    }
}

/// Applies every rule in order.
pub fn rename(name: &str, rules: &[Rename]) -> String {
    rules.iter().fold(name.to_string(), |n, r| r.re.replace_all(&n, r.replacement.as_str()).into_owned())
}

/// How to convert.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// `None`: detect from the names (a net slimzoo does not know is converted unchecked).
    pub arch: Option<String>,
    /// Custom ResNet v2 blocks (`BASExUNITS/STRIDE,…`), for detection of block strides.
    pub blocks: Option<String>,
    /// Skip validation against a net.
    pub no_validate: bool,
    /// Use `ExponentialMovingAverage` shadows instead of the raw weights where they exist.
    pub ema: bool,
    /// Keep facenet's `Logits/*` and `centers`.
    pub keep_head: bool,
    /// `REGEX=REPLACEMENT` rules, applied in order before anything else.
    pub renames: Vec<Rename>,
}

/// One output tensor.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Output (TF) name.
    pub name: String,
    /// Checkpoint name the value is read from (its EMA shadow with `--ema`).
    pub source: String,
    /// Its dtype.
    pub dtype: DType,
    /// TF-layout shape.
    pub tf_shape: Vec<u64>,
    /// How its layout changes from TF's to tch's.
    pub layout: Layout,
}

impl Planned {
    /// The shape in tch layout.
    pub fn torch_shape(&self) -> Vec<u64> {
        layout::permute_shape(&self.tf_shape, self.layout.to_torch_perm())
    }
}

/// What `convert` will do with a checkpoint, decided from its listing alone.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What is converted, sorted by name.
    pub tensors: Vec<Planned>,
    /// What is not converted, with why.
    pub dropped: Vec<(String, Dropped)>,
    /// With `--ema`: kept floating-point weights that had no shadow.
    pub ema_missing: Vec<String>,
    /// With `--ema`: how many weights were replaced by their shadow.
    pub ema_used: usize,
    /// The net the names were checked against, if any.
    pub arch: Option<Arch>,
    /// Where the architecture came from (`--arch`, detection, or why there is none).
    pub arch_note: String,
    /// The checkpoint's description.
    pub source: String,
}

impl Plan {
    /// Plans the conversion of `ckpt`; validates against the net unless told not to.
    ///
    /// ```
    /// use slimzoo::ckpt::Checkpoint;
    /// use slimzoo::convert::Plan;
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tiny");
    /// let ckpt = Checkpoint::open(dir.join("train"))?; // global step, Momentum slots, EMA shadows
    /// let plan = Plan::new(&ckpt, &Default::default())?;
    /// assert_eq!(plan.tensors.len(), 126);
    /// assert!(plan.dropped_summary().starts_with("dropped 165 variables"));
    /// let tmp = tempfile::tempdir().map_err(|e| slimzoo::Error::io("tempdir", e))?;
    /// let out = tmp.path().join("tiny.safetensors");
    /// plan.write_safetensors(&ckpt, &out, false, &Default::default(), &|_, _| {})?;
    /// assert_eq!(slimzoo::weights::Weights::from_safetensors(&out)?.tensors.len(), 126);
    /// # Ok::<(), slimzoo::Error>(())
    /// ```
    pub fn new(ckpt: &Checkpoint, opts: &ConvertOptions) -> Result<Plan> {
        if let Some(blocks) = &opts.blocks {
            crate::models::resnet_v2::parse_blocks(blocks)?;
        }
        let source = ckpt.description();
        let mut kept: BTreeMap<String, &TensorInfo> = BTreeMap::new();
        let mut shadows: BTreeMap<String, &TensorInfo> = BTreeMap::new();
        let mut dropped = Vec::new();
        let mut renamed_from: BTreeMap<String, String> = BTreeMap::new();
        for info in ckpt.tensors() {
            let name = rename(&info.name, &opts.renames);
            if let Some(prev) = renamed_from.insert(name.clone(), info.name.clone()) {
                return Err(Error::invalid(format!("the rename rules map both '{prev}' and '{}' to '{name}'", info.name)));
            }
            match classify(&name, opts.keep_head) {
                Some(Dropped::EmaShadow) => {
                    let base = name.trim_end_matches(EMA).trim_end_matches('/');
                    shadows.insert(base.to_string(), info);
                    dropped.push((name, Dropped::EmaShadow));
                }
                Some(why) => dropped.push((name, why)),
                None if crate::dtype::to_safetensors(info.dtype).is_none() => {
                    let d = info.dtype.tf_name();
                    dropped.push((name, if info.dtype.is_numeric() { Dropped::NoSafetensorsDtype(d) } else { Dropped::NotNumeric(d) }))
                }
                None => {
                    kept.insert(name, info);
                }
            }
        }
        let (mut ema_missing, mut ema_used) = (Vec::new(), 0);
        let mut tensors = Vec::with_capacity(kept.len());
        for (name, info) in kept {
            let mut src = info;
            if opts.ema {
                match shadows.get(&name) {
                    Some(s) if s.shape == info.shape && s.dtype == info.dtype => {
                        src = s;
                        ema_used += 1;
                    }
                    Some(s) => {
                        return Err(Error::Tensor {
                            name: s.name.clone(),
                            reason: format!(
                                "EMA shadow is {} {:?}, its weight is {} {:?}",
                                s.dtype.tf_name(),
                                s.shape,
                                info.dtype.tf_name(),
                                info.shape
                            ),
                        });
                    }
                    None if is_float(info.dtype) => ema_missing.push(name.clone()),
                    None => {}
                }
            }
            let layout = Layout::of(&name, info.shape.len());
            tensors.push(Planned { name, source: src.name.clone(), dtype: info.dtype, tf_shape: info.shape.clone(), layout });
        }
        let mut plan = Plan { tensors, dropped, ema_missing, ema_used, arch: None, arch_note: String::new(), source };
        if plan.tensors.is_empty() {
            let why = if plan.dropped.is_empty() { "it holds no variables".to_string() } else { plan.dropped_summary() };
            return Err(Error::invalid(format!("{}: nothing to convert: {why}", plan.source)));
        }
        plan.validate(opts)?;
        Ok(plan)
    }

    /// Output names and tch-layout shapes.
    pub fn shapes(&self) -> Shapes {
        self.tensors.iter().map(|t| (t.name.clone(), t.torch_shape().iter().map(|&d| d as i64).collect())).collect()
    }

    /// Output names and TF-layout shapes (what nets are recognized from).
    pub fn tf_shapes(&self) -> TfShapes {
        self.tensors.iter().map(|t| (t.name.clone(), t.tf_shape.iter().map(|&d| d as i64).collect())).collect()
    }

    fn validate(&mut self, opts: &ConvertOptions) -> Result<()> {
        if opts.no_validate {
            self.arch_note = "not validated".into();
            return Ok(());
        }
        let tf = self.tf_shapes();
        let hints = crate::load::hints(&BTreeMap::new(), opts.blocks.as_deref());
        let arch = match &opts.arch {
            Some(name) => {
                let arch = Arch::resolve(name, Some(&tf), &hints)?;
                self.arch_note = format!("{arch} (as named: {name})");
                arch
            }
            None => match Arch::detect(&tf, &hints) {
                Ok(arch) => {
                    self.arch_note = format!("{arch} (detected from the names)");
                    arch
                }
                Err(e) => {
                    self.arch_note = format!("unknown net, names not validated: {e}");
                    return Ok(());
                }
            },
        };
        let want = arch.variables()?.shapes();
        let m = weights::compare(&want, &self.shapes(), &arch.to_string(), &self.source);
        if !m.is_empty() {
            return Err(Error::Mismatch(Box::new(m)));
        }
        self.arch = Some(arch);
        Ok(())
    }

    /// One line: what was dropped, by reason.
    pub fn dropped_summary(&self) -> String {
        if self.dropped.is_empty() {
            return "nothing dropped".into();
        }
        let mut counts: BTreeMap<&Dropped, usize> = BTreeMap::new();
        for (_, why) in &self.dropped {
            *counts.entry(why).or_default() += 1;
        }
        let parts: Vec<String> = counts.iter().map(|(why, n)| format!("{n} {why}")).collect();
        format!("dropped {} variables: {}", self.dropped.len(), parts.join(", "))
    }

    /// Reads one planned tensor and puts it in tch layout.
    pub fn read(&self, ckpt: &Checkpoint, t: &Planned) -> Result<TensorData> {
        let data = ckpt.read(&t.source)?;
        let Some(perm) = t.layout.to_torch_perm() else { return Ok(data) };
        let elem = data
            .dtype
            .size()
            .ok_or_else(|| Error::Tensor { name: t.name.clone(), reason: format!("dtype {} has no element size", data.dtype.tf_name()) })?;
        let shape: Vec<usize> = data.shape.iter().map(|&d| d as usize).collect();
        let bytes = layout::permute_bytes(&data.data, &shape, elem, perm);
        Ok(TensorData { dtype: data.dtype, shape: layout::permute_shape(&data.shape, Some(perm)), data: bytes })
    }

    /// Every planned tensor as tch tensors (for loading without an intermediate file).
    pub fn to_weights(&self, ckpt: &Checkpoint) -> Result<Weights> {
        let mut tensors = BTreeMap::new();
        for t in &self.tensors {
            let d = self.read(ckpt, t)?;
            tensors.insert(t.name.clone(), tensor_from(&t.name, &d)?);
        }
        Ok(Weights { source: self.source.clone(), tensors, metadata: self.metadata() })
    }

    /// The safetensors `__metadata__`.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("slimzoo.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("slimzoo.source".to_string(), self.source.clone()),
            ("slimzoo.layout".to_string(), Layout::DESCRIPTION.to_string()),
        ]);
        if let Some(spec) = &self.arch {
            m.extend(spec.metadata());
        }
        m
    }

    /// Writes the planned tensors as safetensors to `out` (atomically), each worker thread
    /// holding one tensor at a time. `progress` is called after each tensor with (bytes done,
    /// bytes total). `out` is never one of the checkpoint's files, even with `overwrite`.
    pub fn write_safetensors(
        &self,
        ckpt: &Checkpoint,
        out: &Path,
        overwrite: bool,
        extra_metadata: &BTreeMap<String, String>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<()> {
        crate::io::check_output(out, overwrite, ckpt.files())?;
        let mut meta = self.metadata();
        meta.extend(extra_metadata.clone());
        let entries: Vec<Entry> =
            self.tensors.iter().map(|t| Entry { name: t.name.clone(), dtype: t.dtype, shape: t.torch_shape() }).collect();
        safetensors_file::write(out, overwrite, &meta, &entries, &|i| self.read(ckpt, &self.tensors[i]), progress)
    }
}

fn is_float(d: DType) -> bool {
    matches!(d, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}

/// A tch tensor holding `d`'s values.
pub fn tensor_from(name: &str, d: &TensorData) -> Result<Tensor> {
    let kind = crate::dtype::to_safetensors(d.dtype)
        .and_then(crate::dtype::kind_of)
        .ok_or_else(|| Error::Tensor { name: name.to_string(), reason: format!("dtype {} has no torch equivalent", d.dtype) })?;
    let shape: Vec<i64> = d.shape.iter().map(|&s| s as i64).collect();
    Ok(Tensor::f_from_data_size(&d.data, &shape, kind)?)
}

/// `slimzoo export`: a tch-layout safetensors file back to a V2 checkpoint at `prefix`
/// (`prefix.index`, `prefix.data-00000-of-00001`), names unchanged, TF layout restored. Neither
/// file may exist unless `overwrite`, and neither may be `input` (even with `overwrite`); the
/// prefix's folder is created if needed, as TF's own writer does.
pub fn export(input: &Path, prefix: &Path, overwrite: bool) -> Result<usize> {
    for suffix in [".index", ".data-00000-of-00001"] {
        let mut out = prefix.as_os_str().to_owned();
        out.push(suffix);
        let out = PathBuf::from(out);
        if out.parent().is_none_or(|d| d.as_os_str().is_empty() || d.is_dir()) {
            crate::io::check_output(&out, overwrite, &[input.to_path_buf()])?;
        }
    }
    let st = safetensors_file::Mapped::open(input)?;
    let names = st.names()?;
    let count = names.len();
    let mut iter = names.into_iter().map(|name| -> std::result::Result<(String, TensorData), ckpt::CkptError> {
        let write_err = |e: Error| ckpt::CkptError::Write { file: input.display().to_string(), reason: e.to_string() };
        let d = st.tensor_data(&name).map_err(write_err)?;
        let lay = Layout::of(&name, d.shape.len());
        let data = match (lay.to_tf_perm(), d.dtype.size()) {
            (Some(perm), Some(elem)) => {
                let s: Vec<usize> = d.shape.iter().map(|&x| x as usize).collect();
                TensorData {
                    dtype: d.dtype,
                    shape: layout::permute_shape(&d.shape, Some(perm)),
                    data: layout::permute_bytes(&d.data, &s, elem, perm),
                }
            }
            _ => d,
        };
        Ok((name, data))
    });
    ckpt::write_v2(prefix, &mut iter)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_training_leftovers() {
        let keep = [
            "resnet_v2_50/block1/unit_1/bottleneck_v2/conv1/BatchNorm/gamma",
            "resnet_v2_50/postnorm/moving_variance",
            "InceptionResnetV1/Bottleneck/weights",
            "resnet_v2_50/logits/weights",
        ];
        for n in keep {
            assert_eq!(classify(n, false), None, "{n}");
        }
        let cases = [
            ("global_step", Dropped::GlobalStep),
            ("train/global_step", Dropped::GlobalStep),
            ("a/b/weights/Momentum", Dropped::OptimizerSlot("Momentum".into())),
            ("InceptionResnetV2/Repeat_1/block17_5/Conv2d_1x1/biases/RMSProp_1", Dropped::OptimizerSlot("RMSProp".into())),
            ("MobilenetV1/Conv2d_0/weights/Adam_1", Dropped::OptimizerSlot("Adam".into())),
            ("train/beta1_power", Dropped::OptimizerSlot("Adam".into())),
            ("beta2_power", Dropped::OptimizerSlot("Adam".into())),
            ("x/weights/Adagrad", Dropped::OptimizerSlot("Adagrad".into())),
            ("x/weights/Ftrl_1", Dropped::OptimizerSlot("Ftrl".into())),
            ("incept5b/in4_conv1x1_55/weights/ExponentialMovingAverage", Dropped::EmaShadow),
            ("_CHECKPOINTABLE_OBJECT_GRAPH", Dropped::Tf2Bookkeeping),
            ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", Dropped::Tf2Bookkeeping),
            ("Logits/weights", Dropped::TrainingHead),
            ("centers", Dropped::TrainingHead),
        ];
        for (n, want) in cases {
            assert_eq!(classify(n, false), Some(want), "{n}");
        }
        assert_eq!(classify("Logits/biases", true), None);
    }

    #[test]
    fn renames_apply_in_order() {
        let rules: Vec<Rename> = ["^resnet_v2_50/=resnet/", "^outer/(.*)$=$1"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(rename("resnet_v2_50/conv1/weights", &rules), "resnet/conv1/weights");
        assert_eq!(rename("outer/resnet_v2_50/conv1/weights", &rules), "resnet_v2_50/conv1/weights");
        assert!("no-equals-sign".parse::<Rename>().is_err());
        assert!("(=x".parse::<Rename>().is_err());
    }
}
