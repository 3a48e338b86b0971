//! The nets, one folder each, and the one place they are registered ([`FAMILIES`]).
//!
//! A net family is a folder `models/<family>/` holding its configuration and presets, the rule
//! that recognizes it from TF variable names and shapes, its forward pass (written once, against
//! [`crate::nn::Cx`]), its published checkpoints and the preprocessing they expect. It is
//! reached through two traits:
//!
//! - [`Family`]: names, presets, recognition, zoo entries;
//! - [`NetConfig`]: one configured net (what decides its variables); it builds the net's
//!   [`Description`] and its [`Net`] (the forward pass).
//!
//! Adding a net is one folder and one line in [`FAMILIES`]; the loader, the converter and the
//! command line only talk to these traits.

pub mod inception_resnet_v1;
pub mod mtcnn;
pub mod resnet_v2;

use crate::error::{Error, Result};
use crate::nn::{Builder, Cx, Description};
use crate::preprocess::Preprocessing;
use crate::zoo::ZooEntry;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tch::Tensor;

/// Every net family slimzoo knows. Registering a new net is adding it here.
pub static FAMILIES: &[&dyn Family] = &[&resnet_v2::FAMILY, &inception_resnet_v1::FAMILY, &mtcnn::FAMILY];

/// Variable names and shapes in **TF layout** (conv kernels HWIO, dense `[in, out]`), as a
/// checkpoint lists them: what nets are recognized from.
pub type TfShapes = BTreeMap<String, Vec<i64>>;

/// What the variable names cannot tell (e.g. ResNet v2 block strides): `slimzoo.*` keys of a
/// converted file's metadata, or the same keys from the command line (`slimzoo.blocks`).
pub type Hints = BTreeMap<String, String>;

/// One family of nets: one folder under `models/`.
pub trait Family: Sync + 'static {
    /// The family's name, e.g. `resnet_v2`.
    fn name(&self) -> &'static str;

    /// The architecture names this family answers to (`resnet_v2_50`, …), for `--arch`.
    fn names(&self) -> &'static [&'static str];

    /// The architecture called `name` (one of [`Family::names`]); where the weights decide
    /// something (class count, embedding size, blocks), it is read from `vars` when given.
    fn resolve(&self, name: &str, vars: Option<&TfShapes>, hints: &Hints) -> Result<Arch>;

    /// Recognizes one of this family's nets from TF names and shapes (`Ok(None)`: not one).
    fn detect(&self, vars: &TfShapes, hints: &Hints) -> Result<Option<Arch>>;

    /// The published checkpoints of this family slimzoo knows by file name.
    fn zoo(&self) -> &'static [ZooEntry] {
        &[]
    }
}

/// What a net's output is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Task {
    /// Logits over classes (or features when the net has no classifier).
    Classifier,
    /// An embedding: the output, L2-normalized with this epsilon (facenet's `embeddings`).
    Embedding {
        /// `tf.nn.l2_normalize`'s epsilon.
        epsilon: f64,
    },
    /// One stage of a face detector (its outputs are maps or boxes, see the family).
    FaceDetection,
}

/// A configured net: everything that decides its variables. Only [`NetConfig::name`] and
/// [`NetConfig::build`] are required; `Clone + PartialEq` give the rest ([`DynConfig`]).
pub trait NetConfig: fmt::Debug + fmt::Display + Send + Sync + DynConfig + 'static {
    /// The architecture's name (`resnet_v2_50`, `resnet_v2` for custom blocks, …).
    fn name(&self) -> String;

    /// Records the variables and layers in `b` and returns the forward pass.
    fn build(&self, b: &mut Builder) -> Result<Box<dyn Net>>;

    /// Classes of the classifier, if any.
    fn num_classes(&self) -> Option<i64> {
        None
    }

    /// The same net with `n` classes (`None`: no classifier).
    fn with_num_classes(&self, n: Option<i64>) -> Result<Arch> {
        match n {
            None => Ok(Arch(Arc::from(self.clone_box()))),
            Some(_) => Err(Error::invalid(format!("{} has no classifier whose class count could be set", self.name()))),
        }
    }

    /// The scope of the classifier's variables (left out with `num_classes: none`).
    fn classifier_scope(&self) -> Option<String> {
        None
    }

    /// `slimzoo.*` metadata recorded in converted files, enough to rebuild this exact net.
    fn metadata(&self) -> Vec<(String, String)> {
        vec![("slimzoo.arch".into(), self.name())]
    }

    /// Channels of the input (3 for images).
    fn input_channels(&self) -> i64 {
        3
    }

    /// The input size the net was designed for (`default_image_size`).
    fn default_image_size(&self) -> i64 {
        224
    }

    /// How images must be prepared for its published weights.
    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::None
    }

    /// What the output is.
    fn task(&self) -> Task {
        Task::Classifier
    }

    /// The `weight_decay` of its arg scope (the regularization loss).
    fn weight_decay(&self) -> f64 {
        0.0
    }
}

/// What a [`NetConfig`] needs to live behind `dyn`: implemented for every `Clone + PartialEq`
/// configuration.
pub trait DynConfig {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn NetConfig>;
    /// Equality with another configuration (of any family).
    fn eq_dyn(&self, other: &dyn NetConfig) -> bool;
    /// For downcasting to the family's configuration type.
    fn as_any(&self) -> &dyn Any;
}

impl<T: NetConfig + Clone + PartialEq> DynConfig for T {
    fn clone_box(&self) -> Box<dyn NetConfig> {
        Box::new(self.clone())
    }

    fn eq_dyn(&self, other: &dyn NetConfig) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Call-time options of a net's own function (slim's `resnet_v2(...)` arguments); nets that
/// have none refuse anything but the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetOptions {
    /// slim's `global_pool`: average the final feature map to 1x1.
    pub global_pool: bool,
    /// `None`: the nominal stride. Else a multiple of 4 that the strides reach (atrous past it).
    pub output_stride: Option<i64>,
    /// slim's `spatial_squeeze`: logits `[B, C, 1, 1]` to `[B, C]`.
    pub spatial_squeeze: bool,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions { global_pool: true, output_stride: None, spatial_squeeze: true }
    }
}

impl NetOptions {
    /// An error naming `net` when any option is not the default.
    pub fn require_defaults(&self, net: &str) -> Result<()> {
        if *self != NetOptions::default() {
            return Err(Error::invalid(format!("{net} takes no output_stride, global_pool or spatial_squeeze option (got {self:?})")));
        }
        Ok(())
    }
}

/// A net's forward pass, written once against an execution context.
pub trait Net: fmt::Debug + Send + Sync {
    /// Runs the net on an NCHW batch `x` (already checked for rank and channels), records end
    /// points through `cx`, and returns the net's output as its TF function returns it.
    fn forward(&self, cx: &mut Cx<'_>, x: Tensor, opts: &NetOptions) -> Result<Tensor>;
}

/// An architecture: a shared, immutable [`NetConfig`].
#[derive(Clone)]
pub struct Arch(Arc<dyn NetConfig>);

impl Arch {
    /// Wraps a configuration.
    pub fn new(cfg: impl NetConfig) -> Arch {
        Arch(Arc::new(cfg))
    }

    /// The architecture `name` with its published defaults (the zoo ResNets with 1001 classes,
    /// facenet with a 512-d bottleneck and no classifier head, …).
    ///
    /// ```
    /// let arch = slimzoo::Arch::named("resnet_v2_50")?;
    /// assert_eq!(arch.num_classes(), Some(1001));
    /// assert_eq!(arch.variables()?.vars.len(), 272);
    /// # Ok::<(), slimzoo::Error>(())
    /// ```
    pub fn named(name: &str) -> Result<Arch> {
        Self::resolve(name, None, &Hints::new())
    }

    /// The architecture `name`, sized from the weights' TF shapes where they decide (class
    /// count, embedding size, custom blocks).
    pub fn resolve(name: &str, vars: Option<&TfShapes>, hints: &Hints) -> Result<Arch> {
        match FAMILIES.iter().find(|f| f.name() == name || f.names().contains(&name)) {
            Some(f) => f.resolve(name, vars, hints),
            None => Err(Error::invalid(format!("unknown architecture '{name}' (known: {})", known_names().join(", ")))),
        }
    }

    /// Recognizes the net from TF variable names and shapes.
    pub fn detect(vars: &TfShapes, hints: &Hints) -> Result<Arch> {
        let mut found = Vec::new();
        for f in FAMILIES {
            if let Some(a) = f.detect(vars, hints)? {
                found.push(a);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => {
                let sample: Vec<&str> = vars.keys().take(8).map(String::as_str).collect();
                Err(Error::invalid(format!(
                    "cannot tell the architecture from the {} variable names (first ones: {}); name it (known: {})",
                    vars.len(),
                    sample.join(", "),
                    known_names().join(", ")
                )))
            }
            _ => Err(Error::invalid(format!(
                "the weights hold several nets ({}); keep one (e.g. rename or drop the others' scopes)",
                found.iter().map(Arch::to_string).collect::<Vec<_>>().join("; ")
            ))),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &dyn NetConfig {
        &*self.0
    }

    /// The configuration as its family's type.
    pub fn downcast<T: NetConfig>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    /// The net's description (variables and layers) and its forward pass.
    pub fn build(&self) -> Result<(Description, Box<dyn Net>)> {
        let mut b = Builder::new();
        let net = self.0.build(&mut b)?;
        Ok((b.finish()?, net))
    }

    /// The net's variables (names, shapes), without creating a tensor.
    pub fn variables(&self) -> Result<Description> {
        Ok(self.build()?.0)
    }
}

impl PartialEq for Arch {
    fn eq(&self, other: &Arch) -> bool {
        self.0.eq_dyn(other.config())
    }
}

impl fmt::Debug for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::ops::Deref for Arch {
    type Target = dyn NetConfig;
    fn deref(&self) -> &dyn NetConfig {
        &*self.0
    }
}

/// Every name `--arch` takes.
pub fn known_names() -> Vec<&'static str> {
    FAMILIES.iter().flat_map(|f| f.names().iter().copied()).collect()
}

/// Every published checkpoint slimzoo knows.
pub fn zoo() -> impl Iterator<Item = &'static ZooEntry> {
    FAMILIES.iter().flat_map(|f| f.zoo().iter())
}
