//! FaceNet's Inception-ResNet-v1 (davidsandberg/facenet `src/models/inception_resnet_v1.py`) with
//! facenet's scopes, batch norm settings and `end_points`, and the embedding it trains
//! (`l2_normalize(Bottleneck output, epsilon=1e-10)`).
//!
//! Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual Connections on
//! Learning", <https://arxiv.org/abs/1602.07261>.
//!
//! Every convolution but the blocks' `Conv2d_1x1` up-projections is followed by batch norm
//! (epsilon 1e-3, decay 0.995, no `gamma`) and ReLU; the up-projections have `biases`. Strided
//! layers are VALID and SAME layers have stride 1 and odd kernels, so libtorch's symmetric padding
//! is exact everywhere. End points are NCHW.

pub mod zoo;

use super::{Arch, Family, Hints, Net, NetConfig, NetOptions, Task, TfShapes};
use crate::error::{Error, Result};
use crate::nn::tf::{self, At, Padding};
use crate::nn::{Act, BnConfig, Builder, Conv, ConvSpec, Cx, Dense, Norm, Scope};
use crate::preprocess::Preprocessing;
use regex::Regex;
use std::collections::BTreeSet;
use std::fmt;
use tch::Tensor;

/// `inference()`'s batch norm: decay 0.995, epsilon 1e-3, `scale` false (no gamma).
pub const FACENET_BN: BnConfig = BnConfig { decay: 0.995, epsilon: 1e-3, scale: false };

/// facenet's `embeddings = tf.nn.l2_normalize(prelogits, 1, 1e-10)`.
pub const EMBEDDING_EPSILON: f64 = 1e-10;

/// What decides the net's variables.
#[derive(Debug, Clone, PartialEq)]
pub struct InceptionResnetV1Config {
    /// Size of the `Bottleneck` layer, i.e. of the embedding (128 for 2017 models, 512 for 2018).
    pub bottleneck_layer_size: i64,
    /// The training classifier head `Logits` (`slim.fully_connected(prelogits, n, scope='Logits')`
    /// at the top level, as in facenet's `train_softmax.py`), when its class count is known.
    pub logits_classes: Option<i64>,
    /// `keep_probability` of the dropout before the bottleneck (used only when training).
    pub dropout_keep_prob: f64,
    /// The variable scope, `InceptionResnetV1`.
    pub scope: String,
    /// `inference()`'s `weight_decay` (facenet trains with 5e-4; the default is 0).
    pub weight_decay: f64,
}

impl InceptionResnetV1Config {
    /// facenet's net with a `bottleneck_layer_size`-d embedding and no classifier head.
    pub fn new(bottleneck_layer_size: i64) -> Self {
        InceptionResnetV1Config {
            bottleneck_layer_size,
            logits_classes: None,
            dropout_keep_prob: 0.8,
            scope: "InceptionResnetV1".into(),
            weight_decay: 0.0,
        }
    }
}

impl fmt::Display for InceptionResnetV1Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inception_resnet_v1 (bottleneck {}", self.bottleneck_layer_size)?;
        match self.logits_classes {
            Some(n) => write!(f, ", Logits head of {n} classes)"),
            None => write!(f, ")"),
        }
    }
}

impl NetConfig for InceptionResnetV1Config {
    fn name(&self) -> String {
        "inception_resnet_v1".into()
    }

    fn build(&self, b: &mut Builder) -> Result<Box<dyn Net>> {
        Ok(Box::new(InceptionResnetV1::build(self, b)?))
    }

    fn num_classes(&self) -> Option<i64> {
        self.logits_classes
    }

    fn with_num_classes(&self, n: Option<i64>) -> Result<Arch> {
        Ok(Arch::new(InceptionResnetV1Config { logits_classes: n.filter(|&n| n > 0), ..self.clone() }))
    }

    fn classifier_scope(&self) -> Option<String> {
        Some("Logits".into())
    }

    fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("slimzoo.arch".into(), self.name()),
            ("slimzoo.scope".into(), self.scope.clone()),
            ("slimzoo.bottleneck".into(), self.bottleneck_layer_size.to_string()),
            ("slimzoo.num_classes".into(), self.logits_classes.map_or("none".into(), |n| n.to_string())),
        ]
    }

    fn default_image_size(&self) -> i64 {
        160
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::FacenetFixed
    }

    fn task(&self) -> Task {
        Task::Embedding { epsilon: EMBEDDING_EPSILON }
    }

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }
}

/// The Inception-ResNet-v1 family (facenet).
#[derive(Debug)]
pub struct InceptionResnetV1Family;

/// The registered family.
pub static FAMILY: InceptionResnetV1Family = InceptionResnetV1Family;

impl InceptionResnetV1Family {
    /// Sizes `cfg` from TF shapes: the bottleneck (`[1792, size]`) and the `Logits` head.
    fn sized(mut cfg: InceptionResnetV1Config, vars: &TfShapes) -> InceptionResnetV1Config {
        let out = |name: &str| vars.get(name).filter(|s| s.len() == 2).map(|s| s[1]);
        if let Some(n) = out(&format!("{}/Bottleneck/weights", cfg.scope)) {
            cfg.bottleneck_layer_size = n;
        }
        cfg.logits_classes = out("Logits/weights");
        cfg
    }
}

impl Family for InceptionResnetV1Family {
    fn name(&self) -> &'static str {
        "inception_resnet_v1"
    }

    fn names(&self) -> &'static [&'static str] {
        &["inception_resnet_v1", "facenet"]
    }

    fn resolve(&self, _name: &str, vars: Option<&TfShapes>, _hints: &Hints) -> Result<Arch> {
        let cfg = InceptionResnetV1Config::new(512);
        Ok(Arch::new(match vars {
            Some(v) => Self::sized(cfg, v),
            None => cfg,
        }))
    }

    fn detect(&self, vars: &TfShapes, _hints: &Hints) -> Result<Option<Arch>> {
        let re = Regex::new(r"^(.*)/Repeat/block35_1/Branch_0/Conv2d_1x1/weights$").map_err(|e| Error::invalid(e.to_string()))?;
        let scopes: BTreeSet<&str> = vars.keys().filter_map(|k| re.captures(k)).filter_map(|c| c.get(1)).map(|m| m.as_str()).collect();
        let scope = match scopes.len() {
            0 => return Ok(None),
            1 => scopes.into_iter().next().unwrap_or_default(),
            _ => {
                return Err(Error::invalid(format!(
                    "the weights hold several Inception-ResNet-v1 nets (scopes {}); keep one",
                    scopes.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        };
        let cfg = InceptionResnetV1Config { scope: scope.to_string(), ..InceptionResnetV1Config::new(512) };
        Ok(Some(Arch::new(Self::sized(cfg, vars))))
    }

    fn zoo(&self) -> &'static [crate::zoo::ZooEntry] {
        zoo::ENTRIES
    }
}

fn conv(b: &mut Builder, s: &Scope, c_in: i64, c_out: i64, k: (i64, i64)) -> Result<Conv> {
    b.conv(s, ConvSpec::new(c_in, c_out, k).bn(FACENET_BN).relu())
}

/// `block35` / `block17` / `block8`: `net = act(net + scale * Conv2d_1x1(concat(branches)))`.
#[derive(Debug)]
struct ResBlock {
    branches: Vec<Vec<Conv>>,
    /// The up-projection, with the block's `scale` on its output.
    up: Conv,
    act: Act,
}

/// The residual blocks' kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    /// 35x35 (`block35`): branches 32 | 32→32 3x3 | 32→32→32 3x3.
    B35,
    /// 17x17 (`block17`): branches 128 | 128→128 1x7→128 7x1.
    B17,
    /// 8x8 (`block8`): branches 192 | 192→192 1x3→192 3x1.
    B8,
}

impl ResBlock {
    fn build(b: &mut Builder, s: &Scope, kind: BlockKind, c: i64, scale: f64, act: Act) -> Result<Self> {
        let (b0, b1, b2) = (&(s / "Branch_0"), &(s / "Branch_1"), &(s / "Branch_2"));
        let branches = match kind {
            BlockKind::B35 => vec![
                vec![conv(b, &(b0 / "Conv2d_1x1"), c, 32, (1, 1))?],
                vec![conv(b, &(b1 / "Conv2d_0a_1x1"), c, 32, (1, 1))?, conv(b, &(b1 / "Conv2d_0b_3x3"), 32, 32, (3, 3))?],
                vec![
                    conv(b, &(b2 / "Conv2d_0a_1x1"), c, 32, (1, 1))?,
                    conv(b, &(b2 / "Conv2d_0b_3x3"), 32, 32, (3, 3))?,
                    conv(b, &(b2 / "Conv2d_0c_3x3"), 32, 32, (3, 3))?,
                ],
            ],
            BlockKind::B17 => vec![
                vec![conv(b, &(b0 / "Conv2d_1x1"), c, 128, (1, 1))?],
                vec![
                    conv(b, &(b1 / "Conv2d_0a_1x1"), c, 128, (1, 1))?,
                    conv(b, &(b1 / "Conv2d_0b_1x7"), 128, 128, (1, 7))?,
                    conv(b, &(b1 / "Conv2d_0c_7x1"), 128, 128, (7, 1))?,
                ],
            ],
            BlockKind::B8 => vec![
                vec![conv(b, &(b0 / "Conv2d_1x1"), c, 192, (1, 1))?],
                vec![
                    conv(b, &(b1 / "Conv2d_0a_1x1"), c, 192, (1, 1))?,
                    conv(b, &(b1 / "Conv2d_0b_1x3"), 192, 192, (1, 3))?,
                    conv(b, &(b1 / "Conv2d_0c_3x1"), 192, 192, (3, 1))?,
                ],
            ],
        };
        let mixed: i64 = branches.iter().filter_map(|br| br.last()).map(|c| c.spec().c_out).sum();
        let up = b.conv(&(s / "Conv2d_1x1"), ConvSpec::new(mixed, c, (1, 1)).scaled(scale))?;
        Ok(ResBlock { branches, up, act })
    }

    fn forward(&self, cx: &mut Cx<'_>, x: Tensor) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(self.branches.len());
        for branch in &self.branches {
            let mut y = x.shallow_clone();
            for c in branch {
                y = cx.conv(c, &y, At::SAME)?;
            }
            outs.push(y);
        }
        let mixed = Tensor::f_cat(&outs, 1)?;
        drop(outs);
        cx.conv_add(&self.up, x, &mixed, At::SAME, self.act, None)
    }
}

/// A reduction module's branch: convolutions with their (stride, padding), or a 3x3/2 VALID max
/// pool.
#[derive(Debug)]
enum Branch {
    Convs(Vec<(Conv, At)>),
    MaxPool,
}

/// `Mixed_6a` (`reduction_a(net, 192, 192, 256, 384)`) and `Mixed_7a` (`reduction_b`): branches
/// concatenated along channels.
#[derive(Debug)]
struct Reduction {
    branches: Vec<Branch>,
}

const S2: At = At { stride: 2, rate: 1, padding: Padding::Valid };

impl Reduction {
    fn forward(&self, cx: &mut Cx<'_>, x: &Tensor) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(self.branches.len());
        for branch in &self.branches {
            outs.push(match branch {
                Branch::MaxPool => cx.max_pool(x, 3, 2, Padding::Valid)?,
                Branch::Convs(convs) => {
                    let mut y = x.shallow_clone();
                    for (c, at) in convs {
                        y = cx.conv(c, &y, *at)?;
                    }
                    y
                }
            });
        }
        Ok(Tensor::f_cat(&outs, 1)?)
    }

    /// `reduction_a(net, k, l, m, n)`.
    fn a(b: &mut Builder, s: &Scope, c: i64, (k, l, m, n): (i64, i64, i64, i64)) -> Result<Self> {
        let (b0, b1) = (&(s / "Branch_0"), &(s / "Branch_1"));
        Ok(Reduction {
            branches: vec![
                Branch::Convs(vec![(conv(b, &(b0 / "Conv2d_1a_3x3"), c, n, (3, 3))?, S2)]),
                Branch::Convs(vec![
                    (conv(b, &(b1 / "Conv2d_0a_1x1"), c, k, (1, 1))?, At::SAME),
                    (conv(b, &(b1 / "Conv2d_0b_3x3"), k, l, (3, 3))?, At::SAME),
                    (conv(b, &(b1 / "Conv2d_1a_3x3"), l, m, (3, 3))?, S2),
                ]),
                Branch::MaxPool,
            ],
        })
    }

    /// `reduction_b(net)`.
    fn b(b: &mut Builder, s: &Scope, c: i64) -> Result<Self> {
        let (b0, b1, b2) = (&(s / "Branch_0"), &(s / "Branch_1"), &(s / "Branch_2"));
        Ok(Reduction {
            branches: vec![
                Branch::Convs(vec![
                    (conv(b, &(b0 / "Conv2d_0a_1x1"), c, 256, (1, 1))?, At::SAME),
                    (conv(b, &(b0 / "Conv2d_1a_3x3"), 256, 384, (3, 3))?, S2),
                ]),
                Branch::Convs(vec![
                    (conv(b, &(b1 / "Conv2d_0a_1x1"), c, 256, (1, 1))?, At::SAME),
                    (conv(b, &(b1 / "Conv2d_1a_3x3"), 256, 256, (3, 3))?, S2),
                ]),
                Branch::Convs(vec![
                    (conv(b, &(b2 / "Conv2d_0a_1x1"), c, 256, (1, 1))?, At::SAME),
                    (conv(b, &(b2 / "Conv2d_0b_3x3"), 256, 256, (3, 3))?, At::SAME),
                    (conv(b, &(b2 / "Conv2d_1a_3x3"), 256, 256, (3, 3))?, S2),
                ]),
                Branch::MaxPool,
            ],
        })
    }
}

/// Repeated residual blocks, their end point, and the reduction that follows (with its end point).
type Stage = (Vec<ResBlock>, &'static str, Option<(Reduction, &'static str)>);

/// facenet's `inception_resnet_v1`.
#[derive(Debug)]
pub struct InceptionResnetV1 {
    cfg: InceptionResnetV1Config,
    /// (end-point key, conv, where); `MaxPool_3a_3x3` sits after the third.
    stem: Vec<(&'static str, Conv, At)>,
    /// `Repeat` (5 x block35), `Repeat_1` (10 x block17), `Repeat_2` (5 x block8), each
    /// followed by its end point and reduction (`Mixed_6a`, `Mixed_7a`, none).
    stages: Vec<Stage>,
    block8: ResBlock,
    bottleneck: Dense,
}

impl InceptionResnetV1 {
    /// Records the variables under `cfg.scope`, and the `Logits` head at the top level if asked.
    pub fn build(cfg: &InceptionResnetV1Config, b: &mut Builder) -> Result<Self> {
        let s = Scope::new(&cfg.scope);
        let (v, same) = (At::VALID, At::SAME);
        let stem = vec![
            ("Conv2d_1a_3x3", conv(b, &(&s / "Conv2d_1a_3x3"), 3, 32, (3, 3))?, S2),
            ("Conv2d_2a_3x3", conv(b, &(&s / "Conv2d_2a_3x3"), 32, 32, (3, 3))?, v),
            ("Conv2d_2b_3x3", conv(b, &(&s / "Conv2d_2b_3x3"), 32, 64, (3, 3))?, same),
            ("Conv2d_3b_1x1", conv(b, &(&s / "Conv2d_3b_1x1"), 64, 80, (1, 1))?, v),
            ("Conv2d_4a_3x3", conv(b, &(&s / "Conv2d_4a_3x3"), 80, 192, (3, 3))?, v),
            ("Conv2d_4b_3x3", conv(b, &(&s / "Conv2d_4b_3x3"), 192, 256, (3, 3))?, S2),
        ];
        // slim.repeat(net, n, blockX, scale) → scopes Repeat*/blockX_1 … blockX_n.
        let mut repeat = |scope: &str, name: &str, n: usize, kind, c, scale| -> Result<Vec<ResBlock>> {
            let r = &s / scope;
            (1..=n).map(|i| ResBlock::build(b, &(&r / format!("{name}_{i}")), kind, c, scale, Act::Relu)).collect()
        };
        let repeat_0 = repeat("Repeat", "block35", 5, BlockKind::B35, 256, 0.17)?;
        let repeat_1 = repeat("Repeat_1", "block17", 10, BlockKind::B17, 896, 0.10)?;
        let repeat_2 = repeat("Repeat_2", "block8", 5, BlockKind::B8, 1792, 0.20)?;
        let mixed_6a = Reduction::a(b, &(&s / "Mixed_6a"), 256, (192, 192, 256, 384))?;
        let mixed_7a = Reduction::b(b, &(&s / "Mixed_7a"), 896)?;
        let block8 = ResBlock::build(b, &(&s / "Block8"), BlockKind::B8, 1792, 1.0, Act::None)?;
        let bottleneck = b.dense(&(&s / "Bottleneck"), 1792, cfg.bottleneck_layer_size, Norm::Bn(FACENET_BN), Act::None)?;
        if let Some(n) = cfg.logits_classes {
            // The training head: its variables exist, but inference() does not run it.
            b.dense(&Scope::new("Logits"), cfg.bottleneck_layer_size, n, Norm::Bias, Act::None)?;
        }
        let stages = vec![
            (repeat_0, "Mixed_5a", Some((mixed_6a, "Mixed_6a"))),
            (repeat_1, "Mixed_6b", Some((mixed_7a, "Mixed_7a"))),
            (repeat_2, "Mixed_8a", None),
        ];
        Ok(InceptionResnetV1 { cfg: cfg.clone(), stem, stages, block8, bottleneck })
    }
}

impl Net for InceptionResnetV1 {
    /// `inception_resnet_v1(inputs, is_training, dropout_keep_prob, bottleneck_layer_size)`:
    /// returns the `Bottleneck` output (pre-embedding, batch-normalized).
    fn forward(&self, cx: &mut Cx<'_>, x: Tensor, opts: &NetOptions) -> Result<Tensor> {
        opts.require_defaults("inception_resnet_v1")?;
        let mut net = cx.input(&x)?;
        drop(x);
        for (i, (key, c, at)) in self.stem.iter().enumerate() {
            net = cx.conv(c, &net, *at)?;
            cx.record(*key, &net);
            if i == 2 {
                net = cx.max_pool(&net, 3, 2, Padding::Valid)?;
                cx.record("MaxPool_3a_3x3", &net);
            }
        }
        for (blocks, key, reduction) in &self.stages {
            for block in blocks {
                net = block.forward(cx, net)?;
            }
            cx.record(*key, &net);
            if let Some((r, key)) = reduction {
                net = r.forward(cx, &net)?;
                cx.record(*key, &net);
            }
        }
        net = self.block8.forward(cx, net)?;
        cx.record("Mixed_8b", &net);
        cx.record("PrePool", &net);
        // avg_pool2d over the whole map (VALID, kernel = its size), then flatten.
        let net = net.f_mean_dim(&[2i64, 3][..], false, None)?;
        let net = cx.dropout(net, self.cfg.dropout_keep_prob)?;
        cx.record("PreLogitsFlatten", &net);
        cx.dense(&self.bottleneck, &net)
    }
}

/// facenet's embedding of a `Bottleneck` output: `tf.nn.l2_normalize(prelogits, 1, 1e-10)`.
///
/// ```
/// use slimzoo::models::inception_resnet_v1::embed;
/// use slimzoo::{Arch, EndPoints, Model, Rewrites, RunOptions};
/// // A release folder or .zip loads with `slimzoo::load::load_model`; fresh weights here.
/// let model = Model::new(&Arch::named("inception_resnet_v1")?, tch::Device::Cpu)?;
/// let facenet = model.freeze(Rewrites::default())?;
/// let faces = tch::Tensor::zeros([2, 3, 160, 160], (tch::Kind::Float, tch::Device::Cpu)); // (x - 127.5) / 128
/// let embeddings = embed(&facenet.forward(&faces, &RunOptions::default(), &mut EndPoints::none())?)?;
/// assert_eq!(embeddings.size(), [2, 512]);
/// # Ok::<(), slimzoo::Error>(())
/// ```
pub fn embed(prelogits: &Tensor) -> Result<Tensor> {
    tf::l2_normalize(prelogits, EMBEDDING_EPSILON)
}
