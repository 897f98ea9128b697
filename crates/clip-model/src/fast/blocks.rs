//! The pieces every transformer tower of the fast path is built from: packed linear layers,
//! layer norm, the encoder layer and its stack, the patch embedding, and the scratch buffers.
//!
//! They know no checkpoint key and no family: a family's file (`clip.rs`) reads its weights
//! under its own names into these blocks and says how they are wired ([`EncoderOptions`]:
//! where the norms sit, which mask, which rows are read). So a new family's towers cost a
//! composition, not another copy of the GEMM calls, fused QKV, fused epilogues and the
//! last-layer shortcut that make this path fast.

use std::borrow::Cow;

use candle_nn::{Init, VarBuilder};

use super::kernels::{
    attention, attention_rows, layer_norm, matmul, sized, Act, Format, Out, Packed,
};
use crate::config::Activation;

pub(crate) type R<T> = candle_core::Result<T>;

/// How random-weight models ([`crate::Engine::random`]) fill a weight; loaded checkpoints
/// ignore it.
pub(crate) const WEIGHT_INIT: Init = Init::Randn {
    mean: 0.0,
    stdev: 0.02,
};

/// The `[n]` tensor `name` under `vb`.
pub(crate) fn vector(vb: &VarBuilder, n: usize, name: &str, init: Init) -> R<Vec<f32>> {
    vb.get_with_hints(n, name, init)?.to_vec1::<f32>()
}

/// The `[rows, cols]` tensor `name` under `vb`, row-major.
pub(crate) fn matrix(
    vb: &VarBuilder,
    rows: usize,
    cols: usize,
    name: &str,
    init: Init,
) -> R<Vec<f32>> {
    vb.get_with_hints((rows, cols), name, init)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// An `nn.Embedding`'s `[rows, width]` table under `vb`, row-major.
pub(crate) fn embedding(vb: &VarBuilder, rows: usize, width: usize) -> R<Vec<f32>> {
    matrix(vb, rows, width, "weight", WEIGHT_INIT)
}

/// Embeddings plus learned positions: row `i` of each sequence of `t` rows of `width` in `out`
/// becomes `row(sequence, i) + positions[i]`.
pub(crate) fn add_positions<'a>(
    out: &mut [f32],
    t: usize,
    width: usize,
    positions: &[f32],
    row: impl Fn(usize, usize) -> &'a [f32],
) {
    for (si, seq) in out.chunks_exact_mut(t * width).enumerate() {
        for (i, o) in seq.chunks_exact_mut(width).enumerate() {
            let pos = &positions[i * width..][..width];
            for ((o, a), p) in o.iter_mut().zip(row(si, i)).zip(pos) {
                *o = a + p;
            }
        }
    }
}

/// `nn.Linear(k, n)`, packed once for the GEMM; bias, residual add and activation are applied
/// inside the product.
#[derive(Debug)]
pub(crate) struct Linear(Packed);

impl Linear {
    /// A packed `[n, k]` weight (PyTorch's layout) and its bias.
    pub(crate) fn new(w: &[f32], n: usize, k: usize, bias: Option<Vec<f32>>, f: Format) -> Linear {
        Linear(Packed::new(w, n, k, bias, f))
    }

    /// `weight` (and `bias`, when the checkpoint has one) under `vb`.
    pub(crate) fn load(vb: &VarBuilder, k: usize, n: usize, bias: bool, f: Format) -> R<Linear> {
        let w = matrix(vb, n, k, "weight", WEIGHT_INIT)?;
        let b = if bias {
            Some(vector(vb, n, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Linear::new(&w, n, k, b, f))
    }

    /// Several `Linear(k, n)` with bias over the same input, stacked into one `[parts · n, k]`
    /// product (attention's q, k and v: one GEMM instead of three).
    pub(crate) fn stacked(parts: &[VarBuilder], k: usize, n: usize, f: Format) -> R<Linear> {
        let mut w = Vec::with_capacity(parts.len() * n * k);
        let mut b = Vec::with_capacity(parts.len() * n);
        for p in parts {
            w.extend(matrix(p, n, k, "weight", WEIGHT_INIT)?);
            b.extend(vector(p, n, "bias", Init::Const(0.0))?);
        }
        Ok(Linear::new(&w, parts.len() * n, k, Some(b), f))
    }

    /// Output width.
    pub(crate) fn n(&self) -> usize {
        self.0.n()
    }

    /// Whether the weights are bf16.
    pub(crate) fn is_bf16(&self) -> bool {
        self.0.is_bf16()
    }

    /// `c[m, n] = / += a[m, k] · Wᵀ + bias`, then `act` ([`matmul`]).
    #[inline]
    pub(crate) fn forward(&self, a: &[f32], m: usize, c: &mut [f32], out: Out, act: Act) {
        matmul(a, m, &self.0, c, out, act);
    }
}

/// `nn.LayerNorm`.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// `weight` and `bias` under `vb`.
    pub(crate) fn load(vb: &VarBuilder, n: usize, eps: f64) -> R<Self> {
        Ok(LayerNorm {
            weight: vector(vb, n, "weight", Init::Const(1.0))?,
            bias: vector(vb, n, "bias", Init::Const(0.0))?,
            eps: eps as f32,
        })
    }

    /// Each row of `x` normalized into `out`.
    pub(crate) fn forward(&self, x: &[f32], out: &mut [f32]) {
        layer_norm(x, &self.weight, &self.bias, self.eps, out);
    }
}

/// Where an encoder layer normalizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Norm {
    /// Inside each residual branch, before attention and before the MLP (CLIP, SigLIP).
    Pre,
    /// After each residual add (BERT): `norm1` follows attention, `norm2` the MLP.
    #[allow(dead_code)] // no CLIP uses it; unit-tested below until BERT towers do
    Post,
}

/// Which positions a position attends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mask {
    /// All of them (vision towers).
    None,
    /// Itself and the earlier ones (CLIP's text tower).
    Causal,
}

/// Which row of each sequence a tower reads at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// The same row of every sequence (0: a class token).
    Row(usize),
    /// A row per sequence, given with the input (CLIP: the end-of-text position).
    Eot,
}

/// How an encoder is wired, beyond its weights: what differs between families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncoderOptions {
    pub(crate) norm: Norm,
    pub(crate) mask: Mask,
    pub(crate) pool: Pool,
}

/// Buffers of one forward pass, kept between calls: allocating ~50 MB afresh for each batch
/// costs page faults that show in profiles.
#[derive(Default)]
pub(crate) struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    mlp: Vec<f32>,
    /// The towers' own buffers: im2col rows, patch embeddings, the residual stream.
    pub(crate) cols: Vec<f32>,
    pub(crate) patches: Vec<f32>,
    pub(crate) embedded: Vec<f32>,
    pub(crate) stream: Vec<f32>,
}

/// Scratch buffers for concurrent callers: each call takes one and gives it back.
#[derive(Default)]
struct ScratchPool(std::sync::Mutex<Vec<Scratch>>);

impl ScratchPool {
    fn with<T>(&self, f: impl FnOnce(&mut Scratch) -> T) -> T {
        let taken = self.0.lock().map(|mut v| v.pop()).unwrap_or(None);
        let mut scratch = taken.unwrap_or_default();
        let result = f(&mut scratch);
        if let Ok(mut v) = self.0.lock() {
            v.push(scratch);
        }
        result
    }
}

/// A transformer encoder layer with q, k and v fused into one product.
pub(crate) struct EncoderLayer {
    /// q, k and v stacked: `[3 · hidden, hidden]`.
    pub(crate) qkv: Linear,
    pub(crate) out_proj: Linear,
    /// Before attention ([`Norm::Pre`]) or after its residual add ([`Norm::Post`]).
    pub(crate) norm1: LayerNorm,
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
    /// Before the MLP ([`Norm::Pre`]) or after its residual add ([`Norm::Post`]).
    pub(crate) norm2: LayerNorm,
    pub(crate) heads: usize,
    pub(crate) act: Activation,
}

impl EncoderLayer {
    /// `x` is `[b * t, hidden]`, updated in place (the residual stream).
    fn forward(&self, o: &EncoderOptions, x: &mut [f32], b: usize, t: usize, s: &mut Scratch) {
        let m = b * t;
        let h = self.out_proj.n();
        let normed = sized(&mut s.normed, m * h);
        let qkv = sized(&mut s.qkv, m * 3 * h);
        let attn = sized(&mut s.attn, m * h);
        let mlp = sized(&mut s.mlp, m * self.fc1.n());
        self.project_qkv(o.norm, x, m, normed, qkv);
        let causal = o.mask == Mask::Causal;
        attention(qkv, b, t, self.heads, causal, self.qkv.is_bf16(), attn);
        self.out_proj.forward(attn, m, x, Out::Add, Act::None);
        self.mlp_half(o.norm, x, m, normed, mlp);
    }

    /// The last layer, computed only for one row per sequence (`rows[s]` of sequence `s`):
    /// the towers read nothing else, so the other rows need keys and values but no queries,
    /// projections or MLP. Returns those rows, `[b, hidden]`, as `forward` would leave them.
    fn forward_rows(
        &self,
        o: &EncoderOptions,
        x: &[f32],
        t: usize,
        rows: &[usize],
        s: &mut Scratch,
    ) -> Vec<f32> {
        let b = rows.len();
        let m = b * t;
        let h = self.out_proj.n();
        let normed = sized(&mut s.normed, m * h);
        let qkv = sized(&mut s.qkv, m * 3 * h);
        self.project_qkv(o.norm, x, m, normed, qkv);
        let mut attn = vec![0f32; b * h];
        attention_rows(qkv, t, self.heads, o.mask == Mask::Causal, rows, &mut attn);
        let mut kept: Vec<f32> = rows
            .iter()
            .enumerate()
            .flat_map(|(si, &r)| x[(si * t + r) * h..][..h].iter().copied())
            .collect();
        self.out_proj
            .forward(&attn, b, &mut kept, Out::Add, Act::None);
        let normed = sized(&mut s.normed, b * h);
        let mlp = sized(&mut s.mlp, b * self.fc1.n());
        self.mlp_half(o.norm, &mut kept, b, normed, mlp);
        kept
    }

    /// q, k and v of the `m` rows of `x`, into `qkv`.
    fn project_qkv(&self, norm: Norm, x: &[f32], m: usize, normed: &mut [f32], qkv: &mut [f32]) {
        match norm {
            Norm::Pre => {
                self.norm1.forward(x, normed);
                self.qkv.forward(normed, m, qkv, Out::Set, Act::None);
            }
            Norm::Post => self.qkv.forward(x, m, qkv, Out::Set, Act::None),
        }
    }

    /// The MLP half of the layer on the `m` rows of `x`, which already hold attention's
    /// residual add; `x` is updated in place.
    fn mlp_half(&self, norm: Norm, x: &mut [f32], m: usize, normed: &mut [f32], mlp: &mut [f32]) {
        let act = Act::Model(self.act);
        match norm {
            Norm::Pre => {
                self.norm2.forward(x, normed);
                self.fc1.forward(normed, m, mlp, Out::Set, act);
                self.fc2.forward(mlp, m, x, Out::Add, Act::None);
            }
            Norm::Post => {
                self.norm1.forward(x, normed);
                self.fc1.forward(normed, m, mlp, Out::Set, act);
                self.fc2.forward(mlp, m, normed, Out::Add, Act::None);
                self.norm2.forward(normed, x);
            }
        }
    }
}

/// The stack of layers, wired by its [`EncoderOptions`], with the scratch buffers of its
/// tower.
pub(crate) struct Encoder {
    layers: Vec<EncoderLayer>,
    options: EncoderOptions,
    scratch: ScratchPool,
}

impl Encoder {
    pub(crate) fn new(layers: Vec<EncoderLayer>, options: EncoderOptions) -> Encoder {
        Encoder {
            layers,
            options,
            scratch: ScratchPool::default(),
        }
    }

    /// Number of layers.
    pub(crate) fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Runs `f` with a scratch buffer set no other caller is using.
    pub(crate) fn with_scratch<T>(&self, f: impl FnOnce(&mut Scratch) -> T) -> T {
        self.scratch.with(f)
    }

    /// How many leading positions of each sequence of `context` must be computed to read the
    /// rows [`Pool::Eot`] gives as `positions`: under a causal mask, no later position can
    /// change them.
    pub(crate) fn positions_needed(&self, context: usize, positions: &[usize]) -> usize {
        match self.options.mask {
            Mask::Causal => positions.iter().copied().max().map_or(context, |p| p + 1),
            Mask::None => context,
        }
    }

    /// Runs the layers over `x` (`[batch * t, hidden]`, used as the residual stream) and
    /// returns the final state of the pooled row of each sequence, `[batch, hidden]`;
    /// `positions` holds a row per sequence for [`Pool::Eot`].
    pub(crate) fn forward(
        &self,
        x: &mut [f32],
        batch: usize,
        t: usize,
        positions: &[usize],
        scratch: &mut Scratch,
    ) -> Vec<f32> {
        let rows = match self.options.pool {
            Pool::Row(r) => Cow::Owned(vec![r; batch]),
            Pool::Eot => Cow::Borrowed(positions),
        };
        let o = &self.options;
        let Some((last, others)) = self.layers.split_last() else {
            let h = x.len() / (batch * t);
            return rows
                .iter()
                .enumerate()
                .flat_map(|(si, &r)| x[(si * t + r) * h..][..h].to_vec())
                .collect();
        };
        for layer in others {
            layer.forward(o, x, batch, t, scratch);
        }
        last.forward_rows(o, x, t, &rows, scratch)
    }
}

/// A tower's `Debug`: its shape, not its weights (hundreds of megabytes).
pub(crate) fn debug_tower(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    encoder: &Encoder,
    hidden: usize,
    projection: &Linear,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("layers", &encoder.depth())
        .field("hidden", &hidden)
        .field("projection_dim", &projection.n())
        .finish()
}

/// A ViT's patch embedding: the `[hidden, channels, patch, patch]` convolution of stride
/// `patch`, as im2col and one matrix product.
pub(crate) struct PatchEmbedding {
    /// The convolution as `[hidden, channels · patch²]`.
    conv: Linear,
    channels: usize,
    image_size: usize,
    patch_size: usize,
}

impl PatchEmbedding {
    /// The convolution's `weight` (no bias) under `vb`, for square images and patches of the
    /// given sides.
    pub(crate) fn load(
        vb: &VarBuilder,
        hidden: usize,
        channels: usize,
        (image_size, patch_size): (usize, usize),
        f: Format,
    ) -> R<Self> {
        let shape = (hidden, channels, patch_size, patch_size);
        let w = vb.get_with_hints(shape, "weight", WEIGHT_INIT)?;
        let w = w.flatten_all()?.to_vec1::<f32>()?;
        let k = channels * patch_size * patch_size;
        Ok(PatchEmbedding {
            conv: Linear::new(&w, hidden, k, None, f),
            channels,
            image_size,
            patch_size,
        })
    }

    /// Patches per image.
    pub(crate) fn patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    /// The patch embeddings of `batch` channel-major images into `out`
    /// (`[batch · patches, hidden]`); `cols` holds the im2col rows.
    pub(crate) fn forward(
        &self,
        pixels: &[f32],
        batch: usize,
        cols: &mut Vec<f32>,
        out: &mut [f32],
    ) {
        let (s, p, ch) = (self.image_size, self.patch_size, self.channels);
        let g = s / p;
        let np = g * g;
        let k = ch * p * p;
        // im2col: one row per patch, ordered (channel, y, x) like the convolution weight.
        let cols = sized(cols, batch * np * k);
        for (bi, img) in pixels.chunks_exact(ch * s * s).enumerate() {
            for gy in 0..g {
                for gx in 0..g {
                    let row = &mut cols[(bi * np + gy * g + gx) * k..][..k];
                    for c in 0..ch {
                        for ky in 0..p {
                            let src = &img[c * s * s + (gy * p + ky) * s + gx * p..][..p];
                            row[(c * p + ky) * p..][..p].copy_from_slice(src);
                        }
                    }
                }
            }
        }
        self.conv
            .forward(cols, batch * np, out, Out::Set, Act::None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix with values in [-0.5, 0.5).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    }

    struct Plain {
        qkv: Vec<f32>,
        qkv_b: Vec<f32>,
        out: Vec<f32>,
        out_b: Vec<f32>,
        fc1: Vec<f32>,
        fc1_b: Vec<f32>,
        fc2: Vec<f32>,
        fc2_b: Vec<f32>,
        ln: [(Vec<f32>, Vec<f32>); 2],
    }

    const H: usize = 8;
    const W: usize = 12;
    const HEADS: usize = 2;

    fn plain(seed: usize) -> Plain {
        let ln = |s| {
            (
                values(H, s).iter().map(|v| v + 1.0).collect(),
                values(H, s + 1),
            )
        };
        Plain {
            qkv: values(3 * H * H, seed),
            qkv_b: values(3 * H, seed + 1),
            out: values(H * H, seed + 2),
            out_b: values(H, seed + 3),
            fc1: values(W * H, seed + 4),
            fc1_b: values(W, seed + 5),
            fc2: values(H * W, seed + 6),
            fc2_b: values(H, seed + 7),
            ln: [ln(seed + 8), ln(seed + 10)],
        }
    }

    fn layer(p: &Plain) -> EncoderLayer {
        let f = Format::F32;
        let norm = |(w, b): &(Vec<f32>, Vec<f32>)| LayerNorm {
            weight: w.clone(),
            bias: b.clone(),
            eps: 1e-5,
        };
        EncoderLayer {
            qkv: Linear::new(&p.qkv, 3 * H, H, Some(p.qkv_b.clone()), f),
            out_proj: Linear::new(&p.out, H, H, Some(p.out_b.clone()), f),
            norm1: norm(&p.ln[0]),
            fc1: Linear::new(&p.fc1, W, H, Some(p.fc1_b.clone()), f),
            fc2: Linear::new(&p.fc2, H, W, Some(p.fc2_b.clone()), f),
            norm2: norm(&p.ln[1]),
            heads: HEADS,
            act: Activation::QuickGelu,
        }
    }

    fn linear(x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        b.iter()
            .enumerate()
            .map(|(o, bias)| {
                bias + x
                    .iter()
                    .zip(&w[o * x.len()..])
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
            })
            .collect()
    }

    fn norm(x: &[f32], (w, b): &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
        let r = 1.0 / (var + 1e-5).sqrt();
        x.iter()
            .zip(w)
            .zip(b)
            .map(|((v, w), b)| (v - mean) * r * w + b)
            .collect()
    }

    fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
        a.iter().zip(b).map(|(a, b)| a + b).collect()
    }

    /// The layer written out as in the papers, one sequence of rows at a time.
    fn straightforward(p: &Plain, x: &[Vec<f32>], norm_at: Norm, causal: bool) -> Vec<Vec<f32>> {
        let pre = |x: &[f32], i: usize| match norm_at {
            Norm::Pre => norm(x, &p.ln[i]),
            Norm::Post => x.to_vec(),
        };
        let post = |x: &[f32], i: usize| match norm_at {
            Norm::Pre => x.to_vec(),
            Norm::Post => norm(x, &p.ln[i]),
        };
        let qkv: Vec<Vec<f32>> = x
            .iter()
            .map(|r| linear(&pre(r, 0), &p.qkv, &p.qkv_b))
            .collect();
        let d = H / HEADS;
        let x: Vec<Vec<f32>> = (0..x.len())
            .map(|i| {
                let mut heads = vec![0f32; H];
                for h in 0..HEADS {
                    let seen = if causal { i + 1 } else { x.len() };
                    let q = &qkv[i][h * d..][..d];
                    let scores: Vec<f32> = (0..seen)
                        .map(|j| {
                            let k = &qkv[j][H + h * d..][..d];
                            q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (d as f32).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f32 = e.iter().sum();
                    for (j, w) in e.iter().enumerate() {
                        for c in 0..d {
                            heads[h * d + c] += w / total * qkv[j][2 * H + h * d + c];
                        }
                    }
                }
                post(&add(&x[i], &linear(&heads, &p.out, &p.out_b)), 0)
            })
            .collect();
        x.iter()
            .map(|r| {
                let hidden: Vec<f32> = linear(&pre(r, 1), &p.fc1, &p.fc1_b)
                    .iter()
                    .map(|v| v / (1.0 + (-1.702 * v).exp()))
                    .collect();
                post(&add(r, &linear(&hidden, &p.fc2, &p.fc2_b)), 1)
            })
            .collect()
    }

    /// Both norms and both masks, through a full layer and the last-layer shortcut, against
    /// the layer computed the plain way.
    #[test]
    fn encoder_layers_compute_what_they_describe() {
        let (batch, t) = (2, 5);
        let input = values(batch * t * H, 99);
        let weights = [plain(1), plain(2)];
        let positions = [4, 2];
        for norm_at in [Norm::Pre, Norm::Post] {
            for mask in [Mask::None, Mask::Causal] {
                let options = EncoderOptions {
                    norm: norm_at,
                    mask,
                    pool: Pool::Eot,
                };
                let encoder = Encoder::new(weights.iter().map(layer).collect(), options);
                let mut x = input.clone();
                let ours =
                    encoder.with_scratch(|s| encoder.forward(&mut x, batch, t, &positions, s));
                for (si, &row) in positions.iter().enumerate() {
                    let mut seq: Vec<Vec<f32>> = input[si * t * H..][..t * H]
                        .chunks(H)
                        .map(<[f32]>::to_vec)
                        .collect();
                    for p in &weights {
                        seq = straightforward(p, &seq, norm_at, mask == Mask::Causal);
                    }
                    let got = &ours[si * H..][..H];
                    for (a, b) in got.iter().zip(&seq[row]) {
                        assert!(
                            (a - b).abs() < 1e-4,
                            "{norm_at:?} {mask:?} seq {si}: {got:?} vs {:?}",
                            seq[row]
                        );
                    }
                }
            }
        }
    }
}
