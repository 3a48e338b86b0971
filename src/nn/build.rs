//! A net's description: its variables (TF names, shapes) and its layers, recorded by a
//! [`Builder`] without allocating any tensor.
//!
//! A net is written once, as a struct of layer handles ([`Conv`], [`BatchNorm`], [`Dense`],
//! [`PRelu`]) created by a `build` function and a `forward` function that runs them through an
//! execution context ([`super::Cx`]). Building only *records*: every variable's TF name and
//! shape (tch layout) goes into [`Description::vars`], every layer into the layer table. That
//! one description serves three purposes:
//!
//! - checking a checkpoint's names and shapes against an architecture (no tensor is created);
//! - creating the variables of a trainable [`crate::Model`] (reference path);
//! - preparing the frozen inference form ([`crate::Frozen`]): each layer of the table is
//!   transformed (batch norm folded, layouts changed) on its own, so the forward pass needs no
//!   second copy.
//!
//! Scopes are TF scopes, one component per scope: `&(&scope / "block1") / "unit_1"`.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fmt;

/// A TF variable scope such as `resnet_v2_50/block1/unit_1/bottleneck_v2`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(String);

impl Scope {
    /// The top-level scope (empty).
    pub fn root() -> Scope {
        Scope(String::new())
    }

    /// A scope from a TF path (`outer/resnet_v2_50`); components are separated by `/`.
    pub fn new(path: &str) -> Scope {
        Scope(path.trim_matches('/').to_string())
    }

    /// The scope's TF path.
    pub fn path(&self) -> &str {
        &self.0
    }

    /// The TF name of `leaf` in this scope.
    pub fn name(&self, leaf: &str) -> String {
        if self.0.is_empty() { leaf.to_string() } else { format!("{}/{leaf}", self.0) }
    }
}

impl<S: AsRef<str>> std::ops::Div<S> for &Scope {
    type Output = Scope;
    fn div(self, rhs: S) -> Scope {
        Scope(self.name(rhs.as_ref()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a freshly built (untrained) variable is initialized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Zeros (biases, `beta`, moving means).
    Zeros,
    /// Ones (`gamma`, moving variances).
    Ones,
    /// He-normal: `N(0, sqrt(2 / fan_in))`.
    HeNormal {
        /// Inputs per output (`c_in * kh * kw`).
        fan_in: i64,
    },
    /// A constant (e.g. PReLU's 0.25).
    Constant(f64),
}

/// One variable of a net.
#[derive(Debug, Clone, PartialEq)]
pub struct VarSpec {
    /// TF name, e.g. `resnet_v2_50/conv1/weights`.
    pub name: String,
    /// Shape in tch layout (conv kernels OIHW, dense `[out, in]`; see [`crate::layout`]).
    pub shape: Vec<i64>,
    /// Trained by gradient descent (`false` for batch norm's moving statistics).
    pub trainable: bool,
    /// Under slim's `weights_regularizer` (every conv and dense `weights`).
    pub regularized: bool,
    /// Its initial value in a fresh net.
    pub init: Init,
}

/// Index of a variable in [`Description::vars`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub(crate) usize);

/// Index of a layer in the layer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerId(pub(crate) usize);

/// An activation applied by a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Act {
    #[default]
    /// No activation.
    None,
    /// `max(x, 0)`.
    Relu,
}

/// Settings of slim's `batch_norm` that change the variables or the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BnConfig {
    /// `decay` of the moving averages: `moving = decay * moving + (1 - decay) * batch`.
    pub decay: f64,
    /// Added to the variance.
    pub epsilon: f64,
    /// slim's `scale`: whether a `gamma` variable exists.
    pub scale: bool,
}

/// How a convolution or dense layer normalizes its output (slim's `normalizer_fn`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Norm {
    /// `normalizer_fn=batch_norm`: a `BatchNorm` scope, no `biases`.
    Bn(BnConfig),
    /// `normalizer_fn=None`: `biases`.
    Bias,
}

/// What decides a convolution's variables and its output:
/// `act(scale * norm(conv(x, weights)))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvSpec {
    /// Input channels.
    pub c_in: i64,
    /// Output channels.
    pub c_out: i64,
    /// (height, width) of the kernel.
    pub kernel: (i64, i64),
    /// Batch norm or biases.
    pub norm: Norm,
    /// Activation after the normalization.
    pub act: Act,
    /// A constant factor on the output (facenet's residual `scale * up`), folded into the
    /// weights by freezing.
    pub scale: f64,
}

impl ConvSpec {
    /// `c_in → c_out` with a `kh x kw` kernel, biases, no activation.
    pub fn new(c_in: i64, c_out: i64, kernel: (i64, i64)) -> ConvSpec {
        ConvSpec { c_in, c_out, kernel, norm: Norm::Bias, act: Act::None, scale: 1.0 }
    }

    /// Batch norm instead of biases.
    pub fn bn(self, cfg: BnConfig) -> ConvSpec {
        ConvSpec { norm: Norm::Bn(cfg), ..self }
    }

    /// A ReLU after the normalization.
    pub fn relu(self) -> ConvSpec {
        ConvSpec { act: Act::Relu, ..self }
    }

    /// A constant factor on the output.
    pub fn scaled(self, scale: f64) -> ConvSpec {
        ConvSpec { scale, ..self }
    }
}

/// A convolution layer (slim's `conv2d`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv {
    pub(crate) id: LayerId,
    pub(crate) spec: ConvSpec,
}

impl Conv {
    /// What it was built with.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }
}

/// A batch norm layer on its own (ResNet v2's `preact`, `postnorm`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNorm {
    pub(crate) id: LayerId,
    pub(crate) channels: i64,
}

/// A fully connected layer (slim's `fully_connected`): `act(norm(x · weightsᵀ))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense {
    pub(crate) id: LayerId,
    pub(crate) c_in: i64,
    pub(crate) c_out: i64,
}

/// A parametric ReLU (`alpha` per channel): `max(0, x) + alpha * min(0, x)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PRelu {
    pub(crate) id: LayerId,
}

/// The variables of a batch norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BnVars {
    pub beta: VarId,
    pub gamma: Option<VarId>,
    pub mean: VarId,
    pub variance: VarId,
    pub cfg: BnConfig,
}

impl BnVars {
    /// The batch norm's tensors among `vars` (in [`Description::vars`] order).
    pub(crate) fn tensors<'a>(&self, vars: &'a [tch::Tensor]) -> super::tf::BnTensors<'a> {
        super::tf::BnTensors {
            beta: &vars[self.beta.0],
            gamma: self.gamma.map(|g| &vars[g.0]),
            moving_mean: &vars[self.mean.0],
            moving_variance: &vars[self.variance.0],
            decay: self.cfg.decay,
            epsilon: self.cfg.epsilon,
        }
    }
}

/// How a layer's output is normalized: its biases or its batch norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NormVars {
    Bias(VarId),
    Bn(BnVars),
}

/// One entry of the layer table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Layer {
    Conv { weights: VarId, norm: NormVars, act: Act, scale: f64 },
    BatchNorm(BnVars),
    Dense { weights: VarId, norm: NormVars, act: Act },
    PRelu { alpha: VarId },
}

/// A built net's variables and layer table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Description {
    /// Every variable, in creation order.
    pub vars: Vec<VarSpec>,
    pub(crate) layers: Vec<Layer>,
}

impl Description {
    /// TF name → shape (tch layout) of every variable.
    pub fn shapes(&self) -> crate::weights::Shapes {
        self.vars.iter().map(|v| (v.name.clone(), v.shape.clone())).collect()
    }

    /// Number of parameters (all variables).
    pub fn num_parameters(&self) -> i64 {
        self.vars.iter().map(|v| v.shape.iter().product::<i64>()).sum()
    }
}

/// Records a net's variables and layers (see the module documentation).
#[derive(Debug, Default)]
pub struct Builder {
    desc: Description,
    names: BTreeSet<String>,
}

/// Largest channel count or kernel side a layer may have: keeps absurd configurations (a
/// mistyped class count, say) from reaching an allocation.
pub const MAX_DIM: i64 = 1 << 20;

/// Largest number of parameters a net may have (16 G, i.e. 64 GB of float32).
pub const MAX_PARAMETERS: i64 = 1 << 34;

impl Builder {
    /// An empty builder.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The description recorded so far.
    pub fn finish(self) -> Result<Description> {
        let n = self
            .desc
            .vars
            .iter()
            .try_fold(0i64, |acc, v| v.shape.iter().try_fold(1i64, |a, &d| a.checked_mul(d)).and_then(|p| acc.checked_add(p)));
        match n {
            Some(n) if n <= MAX_PARAMETERS => Ok(self.desc),
            _ => Err(Error::invalid(format!("the net would have more than {MAX_PARAMETERS} parameters; check its configuration"))),
        }
    }

    fn var(&mut self, scope: &Scope, leaf: &str, shape: Vec<i64>, trainable: bool, regularized: bool, init: Init) -> Result<VarId> {
        let name = scope.name(leaf);
        if let Some(bad) = shape.iter().find(|&&d| d <= 0 || d > MAX_DIM) {
            return Err(Error::invalid(format!("{name}: dimension {bad} is out of range 1..={MAX_DIM} (shape {shape:?})")));
        }
        crate::names::tf_to_vs(&name)?;
        if !self.names.insert(name.clone()) {
            return Err(Error::invalid(format!("internal error: the variable {name} is created twice")));
        }
        self.desc.vars.push(VarSpec { name, shape, trainable, regularized, init });
        Ok(VarId(self.desc.vars.len() - 1))
    }

    fn layer(&mut self, layer: Layer) -> LayerId {
        self.desc.layers.push(layer);
        LayerId(self.desc.layers.len() - 1)
    }

    fn bn_vars(&mut self, scope: &Scope, channels: i64, cfg: BnConfig) -> Result<BnVars> {
        let beta = self.var(scope, "beta", vec![channels], true, false, Init::Zeros)?;
        let gamma = if cfg.scale { Some(self.var(scope, "gamma", vec![channels], true, false, Init::Ones)?) } else { None };
        let mean = self.var(scope, "moving_mean", vec![channels], false, false, Init::Zeros)?;
        let variance = self.var(scope, "moving_variance", vec![channels], false, false, Init::Ones)?;
        Ok(BnVars { beta, gamma, mean, variance, cfg })
    }

    fn norm_vars(&mut self, scope: &Scope, channels: i64, norm: Norm) -> Result<NormVars> {
        Ok(match norm {
            Norm::Bn(cfg) => NormVars::Bn(self.bn_vars(&(scope / "BatchNorm"), channels, cfg)?),
            Norm::Bias => NormVars::Bias(self.var(scope, "biases", vec![channels], true, false, Init::Zeros)?),
        })
    }

    /// `slim.conv2d` in `scope`: `scope/weights` `[c_out, c_in, kh, kw]`, then
    /// `scope/BatchNorm/*` or `scope/biases`.
    pub fn conv(&mut self, scope: &Scope, spec: ConvSpec) -> Result<Conv> {
        let (kh, kw) = spec.kernel;
        let fan_in = spec.c_in.saturating_mul(kh).saturating_mul(kw);
        let weights = self.var(scope, "weights", vec![spec.c_out, spec.c_in, kh, kw], true, true, Init::HeNormal { fan_in })?;
        let norm = self.norm_vars(scope, spec.c_out, spec.norm)?;
        let id = self.layer(Layer::Conv { weights, norm, act: spec.act, scale: spec.scale });
        Ok(Conv { id, spec })
    }

    /// `slim.batch_norm` in `scope` (`scope/beta`, `scope/gamma`, `scope/moving_*`).
    pub fn batch_norm(&mut self, scope: &Scope, channels: i64, cfg: BnConfig) -> Result<BatchNorm> {
        let bn = self.bn_vars(scope, channels, cfg)?;
        Ok(BatchNorm { id: self.layer(Layer::BatchNorm(bn)), channels })
    }

    /// `slim.fully_connected` in `scope`: `scope/weights` `[c_out, c_in]`, then batch norm or
    /// biases, then `act`.
    pub fn dense(&mut self, scope: &Scope, c_in: i64, c_out: i64, norm: Norm, act: Act) -> Result<Dense> {
        let weights = self.var(scope, "weights", vec![c_out, c_in], true, true, Init::HeNormal { fan_in: c_in })?;
        let norm = self.norm_vars(scope, c_out, norm)?;
        Ok(Dense { id: self.layer(Layer::Dense { weights, norm, act }), c_in, c_out })
    }

    /// A PReLU in `scope`: `scope/alpha`, one per channel (facenet's MTCNN: `pnet/PReLU1/alpha`).
    pub fn prelu(&mut self, scope: &Scope, channels: i64) -> Result<PRelu> {
        let alpha = self.var(scope, "alpha", vec![channels], true, false, Init::Constant(0.25))?;
        Ok(PRelu { id: self.layer(Layer::PRelu { alpha }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_names_shapes_and_layers_without_tensors() {
        let mut b = Builder::new();
        let s = Scope::new("net");
        let bn = BnConfig { decay: 0.9, epsilon: 1e-3, scale: false };
        let c = b.conv(&(&s / "conv1"), ConvSpec::new(3, 8, (3, 3)).bn(bn).relu()).unwrap();
        let d = b.dense(&(&s / "fc"), 8, 4, Norm::Bias, Act::None).unwrap();
        let desc = b.finish().unwrap();
        let names: Vec<&str> = desc.vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "net/conv1/weights",
                "net/conv1/BatchNorm/beta",
                "net/conv1/BatchNorm/moving_mean",
                "net/conv1/BatchNorm/moving_variance",
                "net/fc/weights",
                "net/fc/biases"
            ]
        );
        assert_eq!(desc.vars[0].shape, [8, 3, 3, 3]);
        assert!(desc.vars[0].regularized && !desc.vars[2].trainable);
        assert_eq!((c.id, d.id), (LayerId(0), LayerId(1)));
        assert_eq!(desc.num_parameters(), 8 * 27 + 3 * 8 + 8 * 4 + 4);
    }

    #[test]
    fn refuses_absurd_sizes_and_clashes() {
        let mut b = Builder::new();
        let err = b.conv(&Scope::new("x"), ConvSpec::new(3, 100_000_000_000, (1, 1))).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let mut b = Builder::new();
        b.dense(&Scope::new("x"), 4, 4, Norm::Bias, Act::None).unwrap();
        assert!(b.dense(&Scope::new("x"), 4, 4, Norm::Bias, Act::None).is_err());
        let mut b = Builder::new();
        for i in 0..20 {
            b.dense(&Scope::new(&format!("l{i}")), 1 << 20, 1 << 20, Norm::Bias, Act::None).unwrap();
        }
        assert!(b.finish().unwrap_err().to_string().contains("parameters"));
    }
}
