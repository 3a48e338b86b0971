//! MTCNN's three nets as facenet's `src/align/detect_face.py` defines them (Zhang et al., "Joint
//! Face Detection and Alignment using Multi-task Cascaded Convolutional Networks",
//! <https://arxiv.org/abs/1604.02878>), with its variable names (`pnet/conv1/weights`,
//! `pnet/PReLU1/alpha`, `rnet/conv4/weights`, `onet/conv6-3/biases`, …).
//!
//! Every convolution is VALID with stride 1 and biases, followed by a PReLU; max pools are
//! `detect_face`'s (SAME unless marked VALID); the fully connected layers (`rnet/conv4`,
//! `onet/conv5`, …) flatten their NHWC input (height, width, channels order), as TF's reshape
//! does. A net returns its outputs concatenated along dim 1, in TF's order:
//!
//! | net | input | output channels |
//! |---|---|---|
//! | P-Net | any size ≥ 12 | `prob1` (2, softmax), `conv4-2` (4, box regression): `[N, 6, H', W']` |
//! | R-Net | 24x24 | `prob1` (2), `conv5-2` (4): `[N, 6]` |
//! | O-Net | 48x48 | `prob1` (2), `conv6-2` (4), `conv6-3` (10, landmarks): `[N, 16]` |
//!
//! and records each output as an end point under TF's op name (`prob1`, `conv4-2`, …). The face
//! detector built on them is `crate::faces`. The weights facenet ships (`det1.npy`, `det2.npy`,
//! `det3.npy`, MIT licensed) are shipped with slimzoo as `mtcnn.safetensors` in this folder,
//! converted by `tools/mtcnn_weights.py`.

use super::{Arch, Family, Hints, Net, NetConfig, NetOptions, Task, TfShapes};
use crate::error::{Error, Result};
use crate::nn::tf::{self, At, Padding};
use crate::nn::{Act, Builder, Conv, ConvSpec, Cx, Dense, Norm, PRelu, Scope};
use crate::preprocess::Preprocessing;
use std::fmt;
use tch::Tensor;

/// The shipped weights (facenet's `det1-3.npy`, converted; TF names, tch layout).
pub const WEIGHTS: &[u8] = include_bytes!("mtcnn.safetensors");

/// Which of the three nets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The proposal net (fully convolutional, run on every pyramid scale).
    P,
    /// The refinement net (24x24 crops).
    R,
    /// The output net (48x48 crops, with landmarks).
    O,
}

impl Stage {
    /// All three, in order.
    pub const ALL: [Stage; 3] = [Stage::P, Stage::R, Stage::O];

    /// The variable scope: `pnet`, `rnet`, `onet`.
    pub fn scope(self) -> &'static str {
        match self {
            Stage::P => "pnet",
            Stage::R => "rnet",
            Stage::O => "onet",
        }
    }

    /// The input side the net was trained at (12, 24, 48).
    pub fn size(self) -> i64 {
        match self {
            Stage::P => 12,
            Stage::R => 24,
            Stage::O => 48,
        }
    }
}

/// One MTCNN net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtcnnConfig {
    /// Which net.
    pub stage: Stage,
}

impl fmt::Display for MtcnnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (MTCNN, scope {})", self.name(), self.stage.scope())
    }
}

impl NetConfig for MtcnnConfig {
    fn name(&self) -> String {
        format!("mtcnn_{}", self.stage.scope())
    }

    fn build(&self, b: &mut Builder) -> Result<Box<dyn Net>> {
        Ok(Box::new(Mtcnn::build(self.stage, b)?))
    }

    fn metadata(&self) -> Vec<(String, String)> {
        vec![("slimzoo.arch".into(), self.name())]
    }

    fn default_image_size(&self) -> i64 {
        self.stage.size()
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::Mtcnn
    }

    fn task(&self) -> Task {
        Task::FaceDetection
    }
}

/// The MTCNN family: `mtcnn_pnet`, `mtcnn_rnet`, `mtcnn_onet`.
#[derive(Debug)]
pub struct MtcnnFamily;

/// The registered family.
pub static FAMILY: MtcnnFamily = MtcnnFamily;

impl Family for MtcnnFamily {
    fn name(&self) -> &'static str {
        "mtcnn"
    }

    fn names(&self) -> &'static [&'static str] {
        &["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"]
    }

    fn resolve(&self, name: &str, _vars: Option<&TfShapes>, _hints: &Hints) -> Result<Arch> {
        Stage::ALL
            .into_iter()
            .find(|s| name == format!("mtcnn_{}", s.scope()))
            .map(|stage| Arch::new(MtcnnConfig { stage }))
            .ok_or_else(|| Error::invalid(format!("unknown architecture '{name}' (MTCNN: mtcnn_pnet, mtcnn_rnet, mtcnn_onet)")))
    }

    fn detect(&self, vars: &TfShapes, _hints: &Hints) -> Result<Option<Arch>> {
        let present: Vec<Stage> = Stage::ALL.into_iter().filter(|s| vars.contains_key(&format!("{}/conv1/weights", s.scope()))).collect();
        match present.as_slice() {
            [] => Ok(None),
            [stage] => Ok(Some(Arch::new(MtcnnConfig { stage: *stage }))),
            _ => Err(Error::invalid(
                "the weights hold several MTCNN nets (pnet, rnet, onet): they are the face detector's, \
                 which loads each net from its scope",
            )),
        }
    }
}

/// A conv → PReLU pair (detect_face's `conv(..., relu=False)` then `prelu`).
#[derive(Debug)]
struct ConvPRelu {
    conv: Conv,
    prelu: PRelu,
}

impl ConvPRelu {
    fn build(b: &mut Builder, s: &Scope, conv: &str, prelu: &str, c_in: i64, c_out: i64, k: i64) -> Result<Self> {
        Ok(ConvPRelu { conv: b.conv(&(s / conv), ConvSpec::new(c_in, c_out, (k, k)))?, prelu: b.prelu(&(s / prelu), c_out)? })
    }

    fn forward(&self, cx: &mut Cx<'_>, x: &Tensor) -> Result<Tensor> {
        let y = cx.conv(&self.conv, x, At::VALID)?;
        cx.prelu(&self.prelu, y)
    }
}

/// What follows a conv + PReLU in the trunk.
#[derive(Debug, Clone, Copy)]
struct Pool {
    k: i64,
    stride: i64,
    padding: Padding,
}

/// One of the three nets.
#[derive(Debug)]
struct Mtcnn {
    stage: Stage,
    /// Convolutions, each with an optional max pool after it.
    trunk: Vec<(ConvPRelu, Option<Pool>)>,
    /// R-Net and O-Net: the fully connected layer and its PReLU.
    fc: Option<(Dense, PRelu)>,
    /// Output heads: (TF op name, conv (P-Net) or dense layer, softmax).
    heads: Vec<(&'static str, Head, bool)>,
}

#[derive(Debug)]
enum Head {
    Conv(Conv),
    Dense(Dense),
}

impl Mtcnn {
    fn build(stage: Stage, b: &mut Builder) -> Result<Self> {
        let s = Scope::new(stage.scope());
        let same = |k, stride| Some(Pool { k, stride, padding: Padding::Same });
        let valid = |k, stride| Some(Pool { k, stride, padding: Padding::Valid });
        let mut cp = |conv, prelu, c_in, c_out, k| ConvPRelu::build(b, &s, conv, prelu, c_in, c_out, k);
        let trunk = match stage {
            Stage::P => vec![
                (cp("conv1", "PReLU1", 3, 10, 3)?, same(2, 2)),
                (cp("conv2", "PReLU2", 10, 16, 3)?, None),
                (cp("conv3", "PReLU3", 16, 32, 3)?, None),
            ],
            Stage::R => vec![
                (cp("conv1", "prelu1", 3, 28, 3)?, same(3, 2)),
                (cp("conv2", "prelu2", 28, 48, 3)?, valid(3, 2)),
                (cp("conv3", "prelu3", 48, 64, 2)?, None),
            ],
            Stage::O => vec![
                (cp("conv1", "prelu1", 3, 32, 3)?, same(3, 2)),
                (cp("conv2", "prelu2", 32, 64, 3)?, valid(3, 2)),
                (cp("conv3", "prelu3", 64, 64, 3)?, same(2, 2)),
                (cp("conv4", "prelu4", 64, 128, 2)?, None),
            ],
        };
        let dense = |b: &mut Builder, name: &str, c_in, c_out| b.dense(&(&s / name), c_in, c_out, Norm::Bias, Act::None);
        let (fc, heads) = match stage {
            Stage::P => {
                let head = |b: &mut Builder, name: &str, c| b.conv(&(&s / name), ConvSpec::new(32, c, (1, 1)));
                (None, vec![("prob1", Head::Conv(head(b, "conv4-1", 2)?), true), ("conv4-2", Head::Conv(head(b, "conv4-2", 4)?), false)])
            }
            Stage::R => {
                // conv3's output is 3x3x64 on a 24x24 input.
                let fc = (dense(b, "conv4", 3 * 3 * 64, 128)?, b.prelu(&(&s / "prelu4"), 128)?);
                let heads = vec![
                    ("prob1", Head::Dense(dense(b, "conv5-1", 128, 2)?), true),
                    ("conv5-2", Head::Dense(dense(b, "conv5-2", 128, 4)?), false),
                ];
                (Some(fc), heads)
            }
            Stage::O => {
                // conv4's output is 3x3x128 on a 48x48 input.
                let fc = (dense(b, "conv5", 3 * 3 * 128, 256)?, b.prelu(&(&s / "prelu5"), 256)?);
                let heads = vec![
                    ("prob1", Head::Dense(dense(b, "conv6-1", 256, 2)?), true),
                    ("conv6-2", Head::Dense(dense(b, "conv6-2", 256, 4)?), false),
                    ("conv6-3", Head::Dense(dense(b, "conv6-3", 256, 10)?), false),
                ];
                (Some(fc), heads)
            }
        };
        Ok(Mtcnn { stage, trunk, fc, heads })
    }
}

impl Net for Mtcnn {
    fn forward(&self, cx: &mut Cx<'_>, x: Tensor, opts: &NetOptions) -> Result<Tensor> {
        opts.require_defaults(self.stage.scope())?;
        let size = self.stage.size();
        let (h, w) = tf::hw(&x)?;
        let fixed = self.stage != Stage::P;
        if (fixed && (h, w) != (size, size)) || h < size || w < size {
            let want = if fixed { "exactly" } else { "at least" };
            return Err(Error::invalid(format!("mtcnn_{} takes inputs of {want} {size}x{size}, got {h}x{w}", self.stage.scope())));
        }
        let mut net = cx.input(&x)?;
        drop(x);
        for (layer, pool) in &self.trunk {
            net = layer.forward(cx, &net)?;
            if let Some(p) = pool {
                net = cx.max_pool(&net, p.k, p.stride, p.padding)?;
            }
        }
        if let Some((dense, prelu)) = &self.fc {
            // TF flattens NHWC: (height, width, channels).
            let flat = net.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_flatten(1, 3)?;
            net = cx.dense(dense, &flat)?;
            net = cx.prelu(prelu, net)?;
        }
        let mut outs = Vec::with_capacity(self.heads.len());
        for (key, head, softmax) in &self.heads {
            let mut y = match head {
                Head::Conv(c) => cx.conv(c, &net, At::VALID)?,
                Head::Dense(d) => cx.dense(d, &net)?,
            };
            if *softmax {
                y = y.f_softmax(1, y.kind())?;
            }
            cx.record(*key, &y);
            outs.push(y);
        }
        Ok(Tensor::f_cat(&outs, 1)?)
    }
}
