//! FaceNet's Inception-ResNet-v1 (davidsandberg/facenet `src/models/inception_resnet_v1.py`) with
//! facenet's scopes, batch norm settings and `end_points`, and the embedding it trains
//! (`l2_normalize(Bottleneck output, epsilon=1e-10)`).
//!
//! Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual Connections on
//! Learning", <https://arxiv.org/abs/1602.07261>.
//!
//! Every convolution but the blocks' `Conv2d_1x1` up-projections is followed by batch norm
//! (epsilon 1e-3, decay 0.995, no `gamma`) and ReLU; the up-projections have `biases`. Strided
//! layers are VALID and SAME layers have stride 1 and odd kernels, so libtorch's symmetric padding is
//! exact everywhere. End points are NCHW.

use super::endpoints::EndPoints;
use super::layers::{BnConfig, Norm, Padding, SlimConv, SlimDense, max_pool_tf};
use crate::error::{Error, Result};
use tch::{Tensor, nn};

/// `inference()`'s batch norm: decay 0.995, epsilon 1e-3, `scale` false (no gamma).
pub const FACENET_BN: BnConfig = BnConfig { decay: 0.995, epsilon: 1e-3, scale: false };

#[derive(Debug, Clone, PartialEq)]
pub struct InceptionResnetV1Config {
    /// Size of the `Bottleneck` layer, i.e. of the embedding (128 for 2017 models, 512 for 2018).
    pub bottleneck_layer_size: i64,
    /// The training classifier head `Logits` (`slim.fully_connected(prelogits, n, scope='Logits')`
    /// at the top level, as in facenet's `train_softmax.py`), when its class count is known.
    pub logits_classes: Option<i64>,
    /// `dropout_keep_prob` before the bottleneck (used only when training).
    pub dropout_keep_prob: f64,
    /// The variable scope, `InceptionResnetV1`.
    pub scope: String,
    /// `inference()`'s `weight_decay` (facenet trains with 5e-4; the default is 0).
    pub weight_decay: f64,
}

impl InceptionResnetV1Config {
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

fn conv(p: &nn::Path, c_in: i64, c_out: i64, k: (i64, i64)) -> SlimConv {
    SlimConv::new(p, c_in, c_out, k, Norm::Bn(FACENET_BN), true)
}

/// The residual blocks' kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// 35x35 (`block35`): branches 32 | 32→32 3x3 | 32→32→32 3x3.
    B35,
    /// 17x17 (`block17`): branches 128 | 128→128 1x7→128 7x1.
    B17,
    /// 8x8 (`block8`): branches 192 | 192→192 1x3→192 3x1.
    B8,
}

/// `block35` / `block17` / `block8`: `net += scale * Conv2d_1x1(concat(branches))`, then ReLU
/// unless `activation_fn=None`.
#[derive(Debug)]
pub struct ResBlock {
    pub kind: BlockKind,
    pub branches: Vec<Vec<SlimConv>>,
    pub up: SlimConv,
    pub scale: f64,
    pub relu: bool,
}

impl ResBlock {
    fn new(p: &nn::Path, kind: BlockKind, c: i64, scale: f64, relu: bool) -> Self {
        let b0 = &(p / "Branch_0");
        let b1 = &(p / "Branch_1");
        let b2 = &(p / "Branch_2");
        let branches = match kind {
            BlockKind::B35 => vec![
                vec![conv(&(b0 / "Conv2d_1x1"), c, 32, (1, 1))],
                vec![conv(&(b1 / "Conv2d_0a_1x1"), c, 32, (1, 1)), conv(&(b1 / "Conv2d_0b_3x3"), 32, 32, (3, 3))],
                vec![
                    conv(&(b2 / "Conv2d_0a_1x1"), c, 32, (1, 1)),
                    conv(&(b2 / "Conv2d_0b_3x3"), 32, 32, (3, 3)),
                    conv(&(b2 / "Conv2d_0c_3x3"), 32, 32, (3, 3)),
                ],
            ],
            BlockKind::B17 => vec![
                vec![conv(&(b0 / "Conv2d_1x1"), c, 128, (1, 1))],
                vec![
                    conv(&(b1 / "Conv2d_0a_1x1"), c, 128, (1, 1)),
                    conv(&(b1 / "Conv2d_0b_1x7"), 128, 128, (1, 7)),
                    conv(&(b1 / "Conv2d_0c_7x1"), 128, 128, (7, 1)),
                ],
            ],
            BlockKind::B8 => vec![
                vec![conv(&(b0 / "Conv2d_1x1"), c, 192, (1, 1))],
                vec![
                    conv(&(b1 / "Conv2d_0a_1x1"), c, 192, (1, 1)),
                    conv(&(b1 / "Conv2d_0b_1x3"), 192, 192, (1, 3)),
                    conv(&(b1 / "Conv2d_0c_3x1"), 192, 192, (3, 1)),
                ],
            ],
        };
        let mixed: i64 = branches.iter().map(|b| b.last().map_or(0, SlimConv::out_channels)).sum();
        let up = SlimConv::new(&(p / "Conv2d_1x1"), mixed, c, (1, 1), Norm::Bias, false);
        ResBlock { kind, branches, up, scale, relu }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(self.branches.len());
        for branch in &self.branches {
            let mut y = x.shallow_clone();
            for c in branch {
                y = c.forward(&y, 1, 1, Padding::Same, train)?;
            }
            outs.push(y);
        }
        let mixed = Tensor::f_cat(&outs, 1)?;
        let up = self.up.forward(&mixed, 1, 1, Padding::Same, train)?;
        let mut net = x.f_add(&(up * self.scale))?;
        Ok(if self.relu { net.f_relu_()? } else { net })
    }
}

/// A reduction module's branch: convolutions, or a 3x3/2 VALID max pool.
#[derive(Debug)]
pub enum Branch {
    /// (conv, stride, padding) in order.
    Convs(Vec<(SlimConv, i64, Padding)>),
    MaxPool,
}

impl Branch {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Branch::MaxPool => max_pool_tf(x, 3, 2, Padding::Valid),
            Branch::Convs(convs) => {
                let mut y = x.shallow_clone();
                for (c, stride, pad) in convs {
                    y = c.forward(&y, *stride, 1, *pad, train)?;
                }
                Ok(y)
            }
        }
    }
}

/// `Mixed_6a` (`reduction_a(net, 192, 192, 256, 384)`) and `Mixed_7a` (`reduction_b`): branches
/// concatenated along channels.
#[derive(Debug)]
pub struct Reduction {
    pub branches: Vec<Branch>,
}

impl Reduction {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let outs = self.branches.iter().map(|b| b.forward(x, train)).collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&outs, 1)?)
    }

    /// `reduction_a(net, k, l, m, n)`.
    fn a(p: &nn::Path, c: i64, (k, l, m, n): (i64, i64, i64, i64)) -> Self {
        let (b0, b1) = (&(p / "Branch_0"), &(p / "Branch_1"));
        let (s2, v, same) = (2, Padding::Valid, Padding::Same);
        Reduction {
            branches: vec![
                Branch::Convs(vec![(conv(&(b0 / "Conv2d_1a_3x3"), c, n, (3, 3)), s2, v)]),
                Branch::Convs(vec![
                    (conv(&(b1 / "Conv2d_0a_1x1"), c, k, (1, 1)), 1, same),
                    (conv(&(b1 / "Conv2d_0b_3x3"), k, l, (3, 3)), 1, same),
                    (conv(&(b1 / "Conv2d_1a_3x3"), l, m, (3, 3)), s2, v),
                ]),
                Branch::MaxPool,
            ],
        }
    }

    /// `reduction_b(net)`.
    fn b(p: &nn::Path, c: i64) -> Self {
        let (b0, b1, b2) = (&(p / "Branch_0"), &(p / "Branch_1"), &(p / "Branch_2"));
        let (s2, v, same) = (2, Padding::Valid, Padding::Same);
        Reduction {
            branches: vec![
                Branch::Convs(vec![
                    (conv(&(b0 / "Conv2d_0a_1x1"), c, 256, (1, 1)), 1, same),
                    (conv(&(b0 / "Conv2d_1a_3x3"), 256, 384, (3, 3)), s2, v),
                ]),
                Branch::Convs(vec![
                    (conv(&(b1 / "Conv2d_0a_1x1"), c, 256, (1, 1)), 1, same),
                    (conv(&(b1 / "Conv2d_1a_3x3"), 256, 256, (3, 3)), s2, v),
                ]),
                Branch::Convs(vec![
                    (conv(&(b2 / "Conv2d_0a_1x1"), c, 256, (1, 1)), 1, same),
                    (conv(&(b2 / "Conv2d_0b_3x3"), 256, 256, (3, 3)), 1, same),
                    (conv(&(b2 / "Conv2d_1a_3x3"), 256, 256, (3, 3)), s2, v),
                ]),
                Branch::MaxPool,
            ],
        }
    }
}

/// facenet's `inception_resnet_v1` with its variables.
#[derive(Debug)]
pub struct InceptionResnetV1 {
    pub cfg: InceptionResnetV1Config,
    /// (end-point key, conv, stride, padding); `MaxPool_3a_3x3` sits after the third.
    pub stem: Vec<(&'static str, SlimConv, i64, Padding)>,
    pub repeat: Vec<ResBlock>,
    pub mixed_6a: Reduction,
    pub repeat_1: Vec<ResBlock>,
    pub mixed_7a: Reduction,
    pub repeat_2: Vec<ResBlock>,
    pub block8: ResBlock,
    pub bottleneck: SlimDense,
    pub logits: Option<SlimDense>,
}

impl InceptionResnetV1 {
    /// Creates the variables under `p / scope`, and the `Logits` head at `p / "Logits"` if asked.
    pub fn new(p: &nn::Path, cfg: &InceptionResnetV1Config) -> Result<Self> {
        if cfg.bottleneck_layer_size <= 0 {
            return Err(Error::invalid(format!(
                "bottleneck_layer_size must be positive, got {}",
                cfg.bottleneck_layer_size
            )));
        }
        let mut s = p.clone();
        for part in cfg.scope.split('/') {
            s = &s / part;
        }
        let (v, same) = (Padding::Valid, Padding::Same);
        let stem = vec![
            ("Conv2d_1a_3x3", conv(&(&s / "Conv2d_1a_3x3"), 3, 32, (3, 3)), 2, v),
            ("Conv2d_2a_3x3", conv(&(&s / "Conv2d_2a_3x3"), 32, 32, (3, 3)), 1, v),
            ("Conv2d_2b_3x3", conv(&(&s / "Conv2d_2b_3x3"), 32, 64, (3, 3)), 1, same),
            ("Conv2d_3b_1x1", conv(&(&s / "Conv2d_3b_1x1"), 64, 80, (1, 1)), 1, v),
            ("Conv2d_4a_3x3", conv(&(&s / "Conv2d_4a_3x3"), 80, 192, (3, 3)), 1, v),
            ("Conv2d_4b_3x3", conv(&(&s / "Conv2d_4b_3x3"), 192, 256, (3, 3)), 2, v),
        ];
        // slim.repeat(net, n, blockX, scale) → scopes Repeat*/blockX_1 … blockX_n.
        let repeat = |scope: &str, name: &str, n: usize, kind, c, scale| -> Vec<ResBlock> {
            let r = &s / scope;
            (1..=n).map(|i| ResBlock::new(&(&r / format!("{name}_{i}").as_str()), kind, c, scale, true)).collect()
        };
        let repeat_0 = repeat("Repeat", "block35", 5, BlockKind::B35, 256, 0.17);
        let mixed_6a = Reduction::a(&(&s / "Mixed_6a"), 256, (192, 192, 256, 384));
        let repeat_1 = repeat("Repeat_1", "block17", 10, BlockKind::B17, 896, 0.10);
        let mixed_7a = Reduction::b(&(&s / "Mixed_7a"), 896);
        let repeat_2 = repeat("Repeat_2", "block8", 5, BlockKind::B8, 1792, 0.20);
        let block8 = ResBlock::new(&(&s / "Block8"), BlockKind::B8, 1792, 1.0, false);
        let bottleneck = SlimDense::new(&(&s / "Bottleneck"), 1792, cfg.bottleneck_layer_size, Norm::Bn(FACENET_BN));
        let logits = cfg
            .logits_classes
            .map(|n| SlimDense::new(&(p / "Logits"), cfg.bottleneck_layer_size, n, Norm::Bias));
        Ok(InceptionResnetV1 {
            cfg: cfg.clone(),
            stem,
            repeat: repeat_0,
            mixed_6a,
            repeat_1,
            mixed_7a,
            repeat_2,
            block8,
            bottleneck,
            logits,
        })
    }

    /// `inception_resnet_v1(inputs, is_training, dropout_keep_prob, bottleneck_layer_size)`:
    /// returns the `Bottleneck` output (pre-embedding, batch-normalized) and fills `ep`.
    pub fn forward(&self, x: &Tensor, train: bool, ep: &mut EndPoints) -> Result<Tensor> {
        self.input_check(x)?;
        let mut net = x.shallow_clone();
        for (i, (key, c, stride, pad)) in self.stem.iter().enumerate() {
            net = c.forward(&net, *stride, 1, *pad, train)?;
            ep.add(*key, &net);
            if i == 2 {
                net = max_pool_tf(&net, 3, 2, Padding::Valid)?;
                ep.add("MaxPool_3a_3x3", &net);
            }
        }
        let run = |blocks: &[ResBlock], mut net: Tensor| -> Result<Tensor> {
            for b in blocks {
                net = b.forward(&net, train)?;
            }
            Ok(net)
        };
        net = run(&self.repeat, net)?;
        ep.add("Mixed_5a", &net);
        net = self.mixed_6a.forward(&net, train)?;
        ep.add("Mixed_6a", &net);
        net = run(&self.repeat_1, net)?;
        ep.add("Mixed_6b", &net);
        net = self.mixed_7a.forward(&net, train)?;
        ep.add("Mixed_7a", &net);
        net = run(&self.repeat_2, net)?;
        ep.add("Mixed_8a", &net);
        net = self.block8.forward(&net, train)?;
        ep.add("Mixed_8b", &net);
        ep.add("PrePool", &net);
        // avg_pool2d over the whole map (VALID, kernel = its size), then flatten.
        net = net.f_mean_dim(&[2i64, 3][..], false, None)?;
        net = net.f_dropout(1.0 - self.cfg.dropout_keep_prob, train)?;
        ep.add("PreLogitsFlatten", &net);
        self.bottleneck.forward(&net, train)
    }

    /// Checks that `x` is an NCHW RGB batch.
    pub fn input_check(&self, x: &Tensor) -> Result<()> {
        let s = x.size();
        if s.len() != 4 || s[1] != 3 {
            return Err(Error::invalid(format!("Inception-ResNet-v1 expects an NCHW RGB batch, got shape {s:?}")));
        }
        Ok(())
    }

    /// facenet's embedding: `tf.nn.l2_normalize(prelogits, 1, 1e-10)`, i.e.
    /// `x / sqrt(max(sum(x^2), 1e-10))` per row.
    pub fn embed(prelogits: &Tensor) -> Result<Tensor> {
        let sq = prelogits.f_square()?.f_sum_dim_intlist(&[1i64][..], true, None)?;
        Ok(prelogits.f_mul(&sq.f_clamp_min(1e-10)?.f_rsqrt()?)?)
    }

    /// The classifier head's logits for `prelogits` (facenet's train_softmax.py), if present.
    pub fn classify(&self, prelogits: &Tensor) -> Result<Option<Tensor>> {
        self.logits.as_ref().map(|l| l.forward(prelogits, false)).transpose()
    }

    /// Every `weights` tensor (what `inference(weight_decay=…)` regularizes).
    pub fn weights(&self) -> Vec<&Tensor> {
        let mut w: Vec<&Tensor> = self.stem.iter().map(|(_, c, _, _)| &c.weight).collect();
        let blocks = self.repeat.iter().chain(&self.repeat_1).chain(&self.repeat_2).chain([&self.block8]);
        for b in blocks {
            w.extend(b.branches.iter().flatten().map(|c| &c.weight));
            w.push(&b.up.weight);
        }
        for r in [&self.mixed_6a, &self.mixed_7a] {
            for br in &r.branches {
                if let Branch::Convs(cs) = br {
                    w.extend(cs.iter().map(|(c, _, _)| &c.weight));
                }
            }
        }
        w.push(&self.bottleneck.weight);
        w.extend(self.logits.iter().map(|l| &l.weight));
        w
    }

    /// `weight_decay * sum(w^2) / 2` over every `weights`.
    pub fn regularization_loss(&self) -> Result<Tensor> {
        super::layers::l2_regularization(self.weights(), self.cfg.weight_decay)
    }
}
