//! A net with its variables ([`Model`], trainable, the reference path) and its explicit frozen
//! inference form ([`Frozen`]).
//!
//! `Model` holds the variables in a tch `VarStore`, one path component per TF scope, so an
//! optimizer can train them. [`Model::freeze`] returns a [`Frozen`] that owns its prepared
//! tensors (batch norm folded, layouts changed): nothing done to the model afterwards changes it,
//! and a frozen form made before the model's weights changed refuses to run (it checks the
//! variables' version counters), so stale weights are never used without notice.

use crate::error::{Error, Result};
use crate::models::{Arch, Net, NetOptions};
use crate::names;
use crate::nn::build::{Description, Init};
use crate::nn::exec::{Cx, Mode};
use crate::nn::freeze::{self, Prepared, Rewrites};
use crate::nn::{EndPoints, fused, tf};
use crate::weights::{Shapes, Weights};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tch::{Device, Kind, Tensor, nn};

/// Call-time options of a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunOptions {
    /// slim's `is_training` (facenet's `phase_train`): batch statistics in batch norm (and the
    /// moving averages updated), dropout active. It reaches batch norm and dropout only.
    pub train: bool,
    /// facenet's `keep_probability` for dropout when training (`None`: the net's default).
    pub dropout_keep_prob: Option<f64>,
    /// The net function's own options (ResNet v2: `global_pool`, `output_stride`,
    /// `spatial_squeeze`).
    pub net: NetOptions,
}

/// Checks that `x` is an NCHW batch with `channels` channels.
fn check_input(arch: &Arch, x: &Tensor) -> Result<()> {
    let s = x.size();
    let channels = arch.input_channels();
    if s.len() != 4 || s[1] != channels || s[0] < 1 || s[2] < 1 || s[3] < 1 {
        return Err(Error::invalid(format!("{} expects an NCHW batch with {channels} channels, got shape {s:?}", arch.name())));
    }
    if !x.is_floating_point() {
        return Err(Error::invalid(format!("{} expects a floating-point input, got {:?}", arch.name(), x.kind())));
    }
    Ok(())
}

/// A net with its variables under their TF names.
pub struct Model {
    arch: Arch,
    desc: Arc<Description>,
    net: Arc<dyn Net>,
    vs: nn::VarStore,
    /// Handles to the variables, in `desc.vars` order.
    vars: Vec<Tensor>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Model({})", self.arch)
    }
}

/// Adds `t` to `vs` under the TF name `name` (one tch path component per TF scope).
fn add_var(vs: &nn::VarStore, name: &str, t: Tensor, trainable: bool) -> Result<Tensor> {
    let vs_name = names::tf_to_vs(name)?;
    let mut parts: Vec<&str> = vs_name.split('.').collect();
    let leaf = parts.pop().unwrap_or_default();
    let mut p = vs.root();
    for part in parts {
        p = p.sub(part);
    }
    Ok(p.add(leaf, t, trainable))
}

impl Model {
    /// Builds `arch` on `device` with freshly initialized variables (He-normal weights, zero
    /// biases, identity batch norms).
    pub fn new(arch: &Arch, device: Device) -> Result<Model> {
        let (desc, net) = arch.build()?;
        let vs = nn::VarStore::new(device);
        let opts = (Kind::Float, device);
        let vars = tch::no_grad(|| {
            desc.vars
                .iter()
                .map(|v| {
                    let t = match v.init {
                        Init::Zeros => Tensor::f_zeros(v.shape.as_slice(), opts)?,
                        Init::Ones => Tensor::f_ones(v.shape.as_slice(), opts)?,
                        Init::Constant(c) => Tensor::f_full(v.shape.as_slice(), c, opts)?,
                        Init::HeNormal { fan_in } => Tensor::f_randn(v.shape.as_slice(), opts)? * (2.0 / fan_in.max(1) as f64).sqrt(),
                    };
                    add_var(&vs, &v.name, t, v.trainable)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Model { arch: arch.clone(), desc: Arc::new(desc), net: Arc::from(net), vs, vars })
    }

    /// Builds `arch` on `device` with the variables taken from `weights` (moved, not copied, when
    /// they are float32 on `device`), after a strict check: the names must be exactly the net's
    /// variables, each with its shape, and floating point; every disagreement is reported at once.
    pub fn from_weights(arch: &Arch, mut weights: Weights, device: Device) -> Result<Model> {
        let (desc, net) = arch.build()?;
        check_weights(&desc, &weights, &arch.to_string())?;
        let vs = nn::VarStore::new(device);
        let vars = tch::no_grad(|| {
            desc.vars
                .iter()
                .map(|v| {
                    let t = weights.tensors.remove(&v.name).ok_or_else(|| Error::invalid(format!("internal: {} vanished", v.name)))?;
                    add_var(&vs, &v.name, t.f_to_device(device)?.f_to_kind(Kind::Float)?.f_contiguous()?, v.trainable)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Model { arch: arch.clone(), desc: Arc::new(desc), net: Arc::from(net), vs, vars })
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The net's description (variable names, shapes, layers).
    pub fn description(&self) -> &Description {
        &self.desc
    }

    /// The tch variable store (for optimizers: `nn::Sgd::default().build(model.var_store(), lr)`).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// The device of the variables.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// TF name → shape (tch layout) of every variable.
    pub fn shapes(&self) -> Shapes {
        self.desc.shapes()
    }

    /// TF name → variable (handles: writing into them changes the model).
    pub fn variables(&self) -> BTreeMap<String, Tensor> {
        self.desc.vars.iter().zip(&self.vars).map(|(v, t)| (v.name.clone(), t.shallow_clone())).collect()
    }

    /// Copies `w` into the variables, strictly (see [`Model::from_weights`]); on error nothing
    /// is changed.
    pub fn load(&mut self, w: &Weights) -> Result<()> {
        check_weights(&self.desc, w, &self.arch.to_string())?;
        tch::no_grad(|| -> Result<()> {
            for (v, var) in self.desc.vars.iter().zip(&self.vars) {
                let mut var = var.shallow_clone();
                var.f_copy_(&w.tensors[&v.name])?;
            }
            Ok(())
        })
    }

    /// This net's current variables as [`Weights`] (copies, on the CPU).
    pub fn weights(&self) -> Result<Weights> {
        let tensors = self
            .variables()
            .into_iter()
            .map(|(k, t)| Ok((k, t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?)))
            .collect::<Result<_>>()?;
        let metadata = self.arch.metadata().into_iter().collect();
        Ok(Weights { source: format!("the {} net", self.arch.name()), tensors, metadata })
    }

    /// Stores every 4-D variable (conv kernels) channels-last, oneDNN's native layout, so that
    /// training steps do not reorder them on every call. Values and names are unchanged.
    pub fn channels_last_weights(&mut self) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for v in &self.vars {
                if v.dim() == 4 {
                    let cl = fused::channels_last(&v.f_contiguous()?)?;
                    v.shallow_clone().f_set_data(&cl)?;
                }
            }
            Ok(())
        })
    }

    /// Casts every variable to `kind` (e.g. bfloat16 for training in bf16).
    pub fn set_kind(&mut self, kind: Kind) {
        self.vs.set_kind(kind);
    }

    /// The reference forward pass on an NCHW batch (on any device; moved to the model's).
    /// Returns the net's output as its TF function returns it (ResNet v2: `net`; facenet: the
    /// `Bottleneck` output) and fills `ep` with slim's end points. With `train`, batch norm uses
    /// batch statistics and updates its moving averages, and dropout is active; gradients flow
    /// unless the caller runs it under `tch::no_grad`.
    pub fn forward(&self, x: &Tensor, opts: &RunOptions, ep: &mut EndPoints) -> Result<Tensor> {
        check_input(&self.arch, x)?;
        let x = x.f_to_device(self.device())?;
        let mode = Mode::Reference { vars: &self.vars, train: opts.train, keep_prob: opts.dropout_keep_prob };
        self.net.forward(&mut Cx::new(&self.desc, mode, ep), x, &opts.net)
    }

    /// The frozen inference form of the current weights with `rewrites`. oneDNN's fused
    /// operations exist on the CPU only: on another device `fused_ops` is left out (batch norm
    /// is still folded, the layout still changed).
    ///
    /// ```
    /// use slimzoo::{Arch, EndPoints, Model, Rewrites, RunOptions};
    /// let model = Model::new(&Arch::named("resnet_v2_50")?, tch::Device::Cpu)?;
    /// let frozen = model.freeze(Rewrites::default())?;
    /// let x = tch::Tensor::zeros([1, 3, 64, 64], (tch::Kind::Float, tch::Device::Cpu));
    /// let logits = frozen.forward(&x, &RunOptions::default(), &mut EndPoints::none())?;
    /// assert_eq!(logits.size(), [1, 1001]);
    /// # Ok::<(), slimzoo::Error>(())
    /// ```
    pub fn freeze(&self, rewrites: Rewrites) -> Result<Frozen> {
        let rewrites = if self.device() == tch::Device::Cpu { rewrites } else { Rewrites { fused_ops: false, ..rewrites } };
        let exec = if rewrites == Rewrites::NONE {
            let vars = tch::no_grad(|| self.vars.iter().map(|v| fused::deep_copy(&v.f_detach()?)).collect::<Result<Vec<_>>>())?;
            FrozenExec::Reference(vars)
        } else {
            FrozenExec::Prepared(freeze::prepare(&self.desc, &self.vars, rewrites)?)
        };
        let sources = self.vars.iter().map(|v| (v.shallow_clone(), fingerprint(v))).collect();
        Ok(Frozen {
            arch: self.arch.clone(),
            desc: self.desc.clone(),
            net: self.net.clone(),
            exec,
            rewrites,
            device: self.device(),
            sources,
        })
    }

    /// TF's regularization loss total (`tf.losses.get_regularization_losses()` summed):
    /// `weight_decay * sum(w^2) / 2` over every regularized `weights`.
    pub fn regularization_loss(&self) -> Result<Tensor> {
        let regularized = self.desc.vars.iter().zip(&self.vars).filter(|(v, _)| v.regularized).map(|(_, t)| t);
        tf::l2_regularization(regularized, self.arch.weight_decay())
    }
}

/// What identifies a variable's current value: its storage and its version counter (bumped by
/// every in-place write, optimizer steps included).
fn fingerprint(t: &Tensor) -> (usize, i64) {
    (t.data_ptr() as usize, t.internal_version())
}

/// Strict comparison of the net's variables with `w`: names both ways, shapes, dtypes.
fn check_weights(desc: &Description, w: &Weights, net: &str) -> Result<()> {
    let mismatch = crate::weights::compare(&desc.shapes(), &w.shapes(), net, &w.source);
    if !mismatch.is_empty() {
        return Err(Error::Mismatch(Box::new(mismatch)));
    }
    for (name, t) in &w.tensors {
        if !t.is_floating_point() {
            return Err(Error::Tensor {
                name: name.clone(),
                reason: format!("is {:?} in {}, but the net's variable is floating point", t.kind(), w.source),
            });
        }
    }
    Ok(())
}

enum FrozenExec {
    /// `Rewrites::NONE`: the reference layers on a private copy of the variables.
    Reference(Vec<Tensor>),
    Prepared(Vec<Prepared>),
}

/// A model's inference form, made by [`Model::freeze`]: immutable, owns its prepared tensors.
pub struct Frozen {
    arch: Arch,
    desc: Arc<Description>,
    net: Arc<dyn Net>,
    exec: FrozenExec,
    rewrites: Rewrites,
    device: Device,
    /// The model's variables and their fingerprints when frozen (to refuse stale use).
    sources: Vec<(Tensor, (usize, i64))>,
}

// SAFETY: a frozen form is never mutated after `Model::freeze` returns: `forward` only reads its
// prepared tensors (the in-place writes of the frozen path go into activations the call itself
// allocated, see `Cx::conv_add`), reads the sources' version counters (atomics in libtorch), and
// libtorch tensors may be read from several threads at once. This is what lets `forward_streams`
// run sub-batches on several threads.
unsafe impl Sync for Frozen {}

impl fmt::Debug for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frozen({}, {:?})", self.arch, self.rewrites)
    }
}

/// Inputs beyond this magnitude (or not finite) run with NaN-propagating ReLUs (see
/// [`Frozen::forward`]).
const NAN_SAFE_ABOVE: f64 = 1e6;

impl Frozen {
    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The rewrites it was made with.
    pub fn rewrites(&self) -> Rewrites {
        self.rewrites
    }

    /// The device it runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The inference forward pass with the batch split into `streams` sub-batches run in
    /// parallel, each on its own thread with `threads / streams` intra-op threads (OpenVINO's
    /// "streams": independent work per core, no barriers across cores). Same results as
    /// [`Frozen::forward`] (end points are concatenated along the batch). `streams` is capped by
    /// the batch size; 1 is `forward` itself.
    ///
    /// libtorch's intra-op thread count is process-wide: it is lowered for the call and restored.
    pub fn forward_streams(&self, x: &Tensor, opts: &RunOptions, ep: &mut EndPoints, streams: usize) -> Result<Tensor> {
        let batch = x.size().first().copied().unwrap_or(0).max(0) as usize;
        let streams = streams.clamp(1, batch.max(1));
        if streams == 1 {
            return self.forward(x, opts, ep);
        }
        let threads = tch::get_num_threads().max(1);
        let per = (threads as usize / streams).max(1) as i32;
        let chunk = batch.div_ceil(streams) as i64;
        let parts: Vec<Tensor> = (0..streams as i64)
            .filter_map(|i| {
                let start = i * chunk;
                (start < batch as i64).then(|| x.narrow(0, start, chunk.min(batch as i64 - start)))
            })
            .collect();
        tch::set_num_threads(per);
        let results: Vec<Result<(Tensor, EndPoints)>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    let mut part_ep = ep.empty_like();
                    s.spawn(move || self.forward(&part, opts, &mut part_ep).map(|y| (y, part_ep)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::invalid("a stream thread panicked")))).collect()
        });
        tch::set_num_threads(threads);
        let mut outs = Vec::with_capacity(results.len());
        let mut eps = Vec::with_capacity(results.len());
        for r in results {
            let (y, e) = r?;
            outs.push(y);
            eps.push(e);
        }
        ep.concatenate(eps)?;
        Ok(Tensor::f_cat(&outs, 0)?)
    }

    /// `Some(variable)` when the model's weights changed after this form was made.
    pub fn stale_variable(&self) -> Option<&str> {
        self.sources.iter().zip(&self.desc.vars).find(|((t, fp), _)| fingerprint(t) != *fp).map(|(_, v)| v.name.as_str())
    }

    /// The inference forward pass (same output and end points as [`Model::forward`] with
    /// `train = false`, within float32 rounding). Runs without gradients.
    ///
    /// Errors when the model's weights changed since [`Model::freeze`] (freeze again), or when
    /// `opts.train` is set. NaN and infinity propagate as on the reference path: an input that is
    /// not finite, or very large, is run with ReLUs that keep NaN (oneDNN's fused ReLU maps NaN
    /// to 0).
    pub fn forward(&self, x: &Tensor, opts: &RunOptions, ep: &mut EndPoints) -> Result<Tensor> {
        if let Some(v) = self.stale_variable() {
            return Err(Error::Stale { variable: v.to_string() });
        }
        if opts.train {
            return Err(Error::invalid("a frozen model runs inference only (train = false); train the Model"));
        }
        check_input(&self.arch, x)?;
        tch::no_grad(|| {
            let x = x.f_to_device(self.device)?;
            let mode = match &self.exec {
                FrozenExec::Reference(vars) => Mode::Reference { vars, train: false, keep_prob: None },
                FrozenExec::Prepared(layers) => {
                    // One pass, no temporary: min and max (NaN propagates into both).
                    let (lo, hi) = x.f_aminmax(None, false)?;
                    let (lo, hi) = (lo.f_double_value(&[])?, hi.f_double_value(&[])?);
                    let nan_safe = !(lo >= -NAN_SAFE_ABOVE && hi <= NAN_SAFE_ABOVE);
                    Mode::Frozen { layers, rewrites: self.rewrites, nan_safe }
                }
            };
            self.net.forward(&mut Cx::new(&self.desc, mode, ep), x, &opts.net)
        })
    }
}
