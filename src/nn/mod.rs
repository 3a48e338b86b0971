//! The layer library nets are written with, and how they run.
//!
//! - [`build`]: a net's description — variables (TF names, shapes) and layer table — recorded by
//!   a [`Builder`] without allocating tensors; layer handles ([`Conv`], [`BatchNorm`], [`Dense`],
//!   [`PRelu`]).
//! - [`exec`]: [`Cx`], the execution context a net's one `forward` runs against (reference or
//!   frozen).
//! - [`freeze`]: the frozen inference form ([`Rewrites`]), a per-layer transformation.
//! - [`tf`]: TensorFlow's padding, pooling and batch norm arithmetic.
//! - [`fused`]: libtorch's oneDNN fused convolutions (C++ shim).
//! - [`endpoints`]: slim's `end_points`.
//!
//! # A new net in a few lines
//!
//! A configuration records the variables; the forward pass is written once, against [`Cx`]; the
//! frozen inference form comes for free.
//!
//! ```
//! use slimzoo::models::{Net, NetConfig, NetOptions};
//! use slimzoo::nn::{Act, At, BnConfig, Builder, Conv, ConvSpec, Cx, Dense, Norm, Scope};
//! use slimzoo::{Arch, EndPoints, Model, Rewrites, RunOptions};
//! use tch::Tensor;
//!
//! #[derive(Debug, Clone, PartialEq)]
//! struct Small { classes: i64 }
//!
//! #[derive(Debug)]
//! struct SmallNet { conv: Conv, logits: Dense }
//!
//! impl std::fmt::Display for Small {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "small ({} classes)", self.classes)
//!     }
//! }
//!
//! impl NetConfig for Small {
//!     fn name(&self) -> String { "small".into() }
//!     fn build(&self, b: &mut Builder) -> slimzoo::Result<Box<dyn Net>> {
//!         let s = Scope::new("small");
//!         let bn = BnConfig { decay: 0.997, epsilon: 1e-5, scale: true };
//!         let conv = b.conv(&(&s / "conv1"), ConvSpec::new(3, 8, (3, 3)).bn(bn).relu())?;
//!         let logits = b.dense(&(&s / "logits"), 8, self.classes, Norm::Bias, Act::None)?;
//!         Ok(Box::new(SmallNet { conv, logits }))
//!     }
//! }
//!
//! impl Net for SmallNet {
//!     fn forward(&self, cx: &mut Cx<'_>, x: Tensor, _: &NetOptions) -> slimzoo::Result<Tensor> {
//!         let x = cx.input(&x)?;
//!         let y = cx.conv(&self.conv, &x, At::SAME)?;
//!         cx.record("small/conv1", &y);
//!         cx.dense(&self.logits, &y.f_mean_dim(&[2i64, 3][..], false, None)?)
//!     }
//! }
//!
//! let model = Model::new(&Arch::new(Small { classes: 5 }), tch::Device::Cpu)?;
//! assert_eq!(model.shapes()["small/conv1/BatchNorm/gamma"], [8]);
//! let frozen = model.freeze(Rewrites::default())?; // batch norm folded, oneDNN fused conv + ReLU
//! let x = Tensor::randn([2, 3, 16, 16], (tch::Kind::Float, tch::Device::Cpu));
//! let reference = tch::no_grad(|| model.forward(&x, &RunOptions::default(), &mut EndPoints::none()))?;
//! let fast = frozen.forward(&x, &RunOptions::default(), &mut EndPoints::none())?;
//! assert!((fast - reference).abs().max().double_value(&[]) < 1e-4);
//! # Ok::<(), slimzoo::Error>(())
//! ```

pub mod build;
pub mod endpoints;
pub mod exec;
pub mod freeze;
pub mod fused;
pub mod tf;

pub use build::{Act, BatchNorm, BnConfig, Builder, Conv, ConvSpec, Dense, Description, Init, Norm, PRelu, Scope, VarSpec};
pub use endpoints::{EndPoints, to_nhwc};
pub use exec::{Cx, count_macs};
pub use freeze::Rewrites;
pub use tf::{At, Padding};
