//! The CPU fast path: the same CLIP towers as [`crate::model`], laid out for speed.
//!
//! One struct per upstream module and weights read under the checkpoint's names, as in the
//! reference path, with these differences in structure (not in results):
//! - q, k and v projections are fused into one `[3·hidden, hidden]` matrix;
//! - weights are packed once at load into the GEMM's panel layout ([`gemm::Packed`]), in f32 or,
//!   with [`Precision::Bf16`], in bf16 for the CPU's bf16 dot-product instructions;
//! - bias, residual add and activation are applied inside the GEMM while the tile is hot;
//! - attention reads q, k, v in place from the fused projection (no head transposes), and the
//!   causal text attention skips the masked half instead of adding `-inf`.
//!
//! Activations stay f32 everywhere; on the bf16 path only the operands of the large matrix
//! products are rounded to bf16, products accumulate in f32.

#[doc(hidden)]
pub mod gemm;
#[doc(hidden)]
pub mod ops_pub {
    pub use super::ops::Act;
}
mod ops;

use candle_nn::{Init, VarBuilder};

use crate::config::{
    Activation, ClipConfig, EncoderConfig, EncoderDefaults, TextConfig, VisionConfig,
};
use gemm::{matmul, Format, Out, Packed};
use ops::{sized, Act};

/// Number format of the weights in the large matrix products.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// Full f32, the reference's numbers.
    #[default]
    F32,
    /// bf16 weights and matrix-product inputs with f32 accumulation (AVX512-BF16 where the CPU
    /// has it, emulated otherwise); about half the memory and twice the speed.
    Bf16,
}

impl Precision {
    fn format(self) -> Format {
        match self {
            Precision::F32 => Format::F32,
            Precision::Bf16 => Format::Bf16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(format!(
                "unknown precision {other:?} (expected f32 or bf16)"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

type R<T> = candle_core::Result<T>;

fn vec1(vb: &VarBuilder, n: usize, name: &str, init: Init) -> R<Vec<f32>> {
    vb.get_with_hints(n, name, init)?.to_vec1::<f32>()
}

fn matrix(vb: &VarBuilder, rows: usize, cols: usize, name: &str, init: Init) -> R<Vec<f32>> {
    vb.get_with_hints((rows, cols), name, init)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// How random-weight models ([`crate::Engine::random`]) fill a weight; loaded checkpoints
/// ignore it.
const WEIGHT_INIT: Init = Init::Randn {
    mean: 0.0,
    stdev: 0.02,
};

/// `nn.Linear(k, n)` packed; `bias` says whether the checkpoint has one.
fn linear(vb: VarBuilder, k: usize, n: usize, bias: bool, f: Format) -> R<Packed> {
    let w = matrix(&vb, n, k, "weight", WEIGHT_INIT)?;
    let b = if bias {
        Some(vec1(&vb, n, "bias", Init::Const(0.0))?)
    } else {
        None
    };
    Ok(Packed::new(&w, n, k, b, f))
}

/// `nn.LayerNorm`.
struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn new(vb: VarBuilder, n: usize, eps: f64) -> R<Self> {
        Ok(LayerNorm {
            weight: vec1(&vb, n, "weight", Init::Const(1.0))?,
            bias: vec1(&vb, n, "bias", Init::Const(0.0))?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &[f32], out: &mut [f32]) {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps, out);
    }
}

/// `CLIPEncoderLayer` with `self_attn.{q,k,v}_proj` fused.
struct EncoderLayer {
    qkv: Packed,
    out_proj: Packed,
    layer_norm1: LayerNorm,
    fc1: Packed,
    fc2: Packed,
    layer_norm2: LayerNorm,
    heads: usize,
    act: Activation,
}

/// Buffers of one forward pass, kept between calls: allocating ~50 MB afresh for each batch
/// costs page faults that show in profiles.
#[derive(Default)]
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    mlp: Vec<f32>,
    /// The towers' own buffers: im2col rows, patch embeddings, the residual stream.
    cols: Vec<f32>,
    patches: Vec<f32>,
    embedded: Vec<f32>,
    stream: Vec<f32>,
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

impl EncoderLayer {
    fn new<D: EncoderDefaults>(vb: VarBuilder, c: &EncoderConfig<D>, f: Format) -> R<Self> {
        let h = c.hidden_size;
        let (mlp_width, eps) = (c.intermediate_size, c.layer_norm_eps);
        let att = vb.pp("self_attn");
        let mut w = Vec::with_capacity(3 * h * h);
        let mut b = Vec::with_capacity(3 * h);
        for name in ["q_proj", "k_proj", "v_proj"] {
            let p = att.pp(name);
            w.extend(matrix(&p, h, h, "weight", WEIGHT_INIT)?);
            b.extend(vec1(&p, h, "bias", Init::Const(0.0))?);
        }
        let mlp = vb.pp("mlp");
        Ok(EncoderLayer {
            qkv: Packed::new(&w, 3 * h, h, Some(b), f),
            out_proj: linear(att.pp("out_proj"), h, h, true, f)?,
            layer_norm1: LayerNorm::new(vb.pp("layer_norm1"), h, eps)?,
            fc1: linear(mlp.pp("fc1"), h, mlp_width, true, f)?,
            fc2: linear(mlp.pp("fc2"), mlp_width, h, true, f)?,
            layer_norm2: LayerNorm::new(vb.pp("layer_norm2"), h, eps)?,
            heads: c.num_attention_heads,
            act: c.activation(),
        })
    }

    /// `x` is `[b * t, hidden]`, updated in place (the residual stream).
    fn forward(&self, x: &mut [f32], b: usize, t: usize, causal: bool, s: &mut Scratch) {
        let m = b * t;
        let h = self.out_proj.n();
        let normed = sized(&mut s.normed, m * h);
        let qkv = sized(&mut s.qkv, m * 3 * h);
        let attn = sized(&mut s.attn, m * h);
        let mlp = sized(&mut s.mlp, m * self.fc1.n());
        self.layer_norm1.forward(x, normed);
        matmul(normed, m, &self.qkv, qkv, Out::Set, Act::None);
        ops::attention(qkv, b, t, self.heads, causal, self.qkv.is_bf16(), attn);
        matmul(attn, m, &self.out_proj, x, Out::Add, Act::None);
        self.layer_norm2.forward(x, normed);
        let act = Act::Model(self.act);
        matmul(normed, m, &self.fc1, mlp, Out::Set, act);
        matmul(mlp, m, &self.fc2, x, Out::Add, Act::None);
    }

    /// The last layer, computed only for one row per sequence (`rows[s]` of sequence `s`):
    /// the towers read nothing else, so the other rows need keys and values but no queries,
    /// projections or MLP. Returns those rows, `[b, hidden]`, as `forward` would leave them.
    fn forward_rows(
        &self,
        x: &[f32],
        t: usize,
        causal: bool,
        rows: &[usize],
        s: &mut Scratch,
    ) -> Vec<f32> {
        let b = rows.len();
        let m = b * t;
        let h = self.out_proj.n();
        let normed = sized(&mut s.normed, m * h);
        let qkv = sized(&mut s.qkv, m * 3 * h);
        self.layer_norm1.forward(x, normed);
        matmul(normed, m, &self.qkv, qkv, Out::Set, Act::None);
        let mut attn = vec![0f32; b * h];
        ops::attention_rows(qkv, t, self.heads, causal, rows, &mut attn);
        let mut kept: Vec<f32> = rows
            .iter()
            .enumerate()
            .flat_map(|(si, &r)| x[(si * t + r) * h..][..h].iter().copied())
            .collect();
        matmul(&attn, b, &self.out_proj, &mut kept, Out::Add, Act::None);
        let normed = sized(&mut s.normed, b * h);
        self.layer_norm2.forward(&kept, normed);
        let mlp = sized(&mut s.mlp, b * self.fc1.n());
        matmul(normed, b, &self.fc1, mlp, Out::Set, Act::Model(self.act));
        matmul(mlp, b, &self.fc2, &mut kept, Out::Add, Act::None);
        kept
    }
}

/// `CLIPEncoder`.
struct Encoder {
    layers: Vec<EncoderLayer>,
    scratch: ScratchPool,
}

impl Encoder {
    fn new<D: EncoderDefaults>(vb: VarBuilder, c: &EncoderConfig<D>, f: Format) -> R<Self> {
        let vb = vb.pp("layers");
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::new(vb.pp(i.to_string()), c, f))
            .collect::<R<Vec<_>>>()?;
        Ok(Encoder {
            layers,
            scratch: ScratchPool::default(),
        })
    }

    /// Runs the layers over `x` (`[rows.len() * t, hidden]`) and returns the final state of
    /// row `rows[s]` of each sequence `s`; `x` is used as the residual stream.
    fn forward(
        &self,
        x: &mut [f32],
        t: usize,
        causal: bool,
        rows: &[usize],
        scratch: &mut Scratch,
    ) -> Vec<f32> {
        let b = rows.len();
        let Some((last, others)) = self.layers.split_last() else {
            let h = x.len() / (b * t);
            return rows
                .iter()
                .enumerate()
                .flat_map(|(si, &r)| x[(si * t + r) * h..][..h].to_vec())
                .collect();
        };
        for layer in others {
            layer.forward(x, b, t, causal, scratch);
        }
        last.forward_rows(x, t, causal, rows, scratch)
    }
}

/// `CLIPTextTransformer`.
struct TextTransformer {
    token_embedding: Vec<f32>,
    position_embedding: Vec<f32>,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    hidden: usize,
}

impl TextTransformer {
    fn new(vb: VarBuilder, c: &TextConfig, f: Format) -> R<Self> {
        let h = c.encoder.hidden_size;
        let emb = vb.pp("embeddings");
        Ok(TextTransformer {
            token_embedding: matrix(
                &emb.pp("token_embedding"),
                c.vocab_size,
                h,
                "weight",
                WEIGHT_INIT,
            )?,
            position_embedding: matrix(
                &emb.pp("position_embedding"),
                c.max_position_embeddings,
                h,
                "weight",
                WEIGHT_INIT,
            )?,
            encoder: Encoder::new(vb.pp("encoder"), &c.encoder, f)?,
            final_layer_norm: LayerNorm::new(
                vb.pp("final_layer_norm"),
                h,
                c.encoder.layer_norm_eps,
            )?,
            hidden: h,
        })
    }

    /// Pooled `[batch, hidden]` at each row's end-of-text position; `ids` has `context` ids a
    /// row and was checked by the caller.
    fn forward(&self, ids: &[u32], batch: usize, context: usize, eot: &[usize]) -> Vec<f32> {
        let h = self.hidden;
        let t = eot.iter().copied().max().unwrap_or(0) + 1;
        self.encoder.scratch.with(|s| {
            let mut stream = std::mem::take(&mut s.stream);
            let x = sized(&mut stream, batch * t * h);
            for (bi, seq) in x.chunks_exact_mut(t * h).enumerate() {
                for (i, row) in seq.chunks_exact_mut(h).enumerate() {
                    let id = ids[bi * context + i] as usize;
                    let tok = &self.token_embedding[id * h..(id + 1) * h];
                    let pos = &self.position_embedding[i * h..(i + 1) * h];
                    for ((o, a), p) in row.iter_mut().zip(tok).zip(pos) {
                        *o = a + p;
                    }
                }
            }
            let pooled = self.encoder.forward(x, t, true, eot, s);
            s.stream = stream;
            let mut out = vec![0f32; batch * h];
            self.final_layer_norm.forward(&pooled, &mut out);
            out
        })
    }
}

/// `CLIPVisionTransformer`, with `CLIPVisionEmbeddings`' patch convolution as a matrix product.
struct VisionTransformer {
    class_embedding: Vec<f32>,
    /// The `[hidden, channels, patch, patch]` convolution as `[hidden, channels·patch²]`.
    patch_embedding: Packed,
    position_embedding: Vec<f32>,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    image_size: usize,
    patch_size: usize,
    channels: usize,
    hidden: usize,
}

impl VisionTransformer {
    fn new(vb: VarBuilder, c: &VisionConfig, f: Format) -> R<Self> {
        let (h, eps) = (c.encoder.hidden_size, c.encoder.layer_norm_eps);
        let emb = vb.pp("embeddings");
        let patches = (c.image_size / c.patch_size).pow(2);
        let k = c.num_channels * c.patch_size * c.patch_size;
        let conv = emb
            .pp("patch_embedding")
            .get_with_hints(
                (h, c.num_channels, c.patch_size, c.patch_size),
                "weight",
                WEIGHT_INIT,
            )?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(VisionTransformer {
            class_embedding: vec1(&emb, h, "class_embedding", WEIGHT_INIT)?,
            patch_embedding: Packed::new(&conv, h, k, None, f),
            position_embedding: matrix(
                &emb.pp("position_embedding"),
                patches + 1,
                h,
                "weight",
                WEIGHT_INIT,
            )?,
            // (sic) the checkpoint key really is spelled `pre_layrnorm`.
            pre_layrnorm: LayerNorm::new(vb.pp("pre_layrnorm"), h, eps)?,
            encoder: Encoder::new(vb.pp("encoder"), &c.encoder, f)?,
            post_layernorm: LayerNorm::new(vb.pp("post_layernorm"), h, eps)?,
            image_size: c.image_size,
            patch_size: c.patch_size,
            channels: c.num_channels,
            hidden: h,
        })
    }

    /// Pooled `[batch, hidden]` (the post-normed class token) from channel-major pixels.
    fn forward(&self, pixels: &[f32], batch: usize) -> Vec<f32> {
        let (s, p, ch, h) = (self.image_size, self.patch_size, self.channels, self.hidden);
        let g = s / p;
        let np = g * g;
        let t = np + 1;
        let k = ch * p * p;
        self.encoder.scratch.with(|scratch| {
            let mut bufs = [
                std::mem::take(&mut scratch.cols),
                std::mem::take(&mut scratch.patches),
                std::mem::take(&mut scratch.embedded),
                std::mem::take(&mut scratch.stream),
            ];
            let [cols, patches, embedded, stream] = &mut bufs;
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
            let patches = sized(patches, batch * np * h);
            let conv = &self.patch_embedding;
            matmul(cols, batch * np, conv, patches, Out::Set, Act::None);
            let embedded = sized(embedded, batch * t * h);
            for (bi, seq) in embedded.chunks_exact_mut(t * h).enumerate() {
                for (i, row) in seq.chunks_exact_mut(h).enumerate() {
                    let src = if i == 0 {
                        &self.class_embedding[..]
                    } else {
                        &patches[(bi * np + i - 1) * h..][..h]
                    };
                    let pos = &self.position_embedding[i * h..][..h];
                    for ((o, a), q) in row.iter_mut().zip(src).zip(pos) {
                        *o = a + q;
                    }
                }
            }
            let x = sized(stream, embedded.len());
            self.pre_layrnorm.forward(embedded, x);
            let class = self.encoder.forward(x, t, false, &vec![0; batch], scratch);
            [
                scratch.cols,
                scratch.patches,
                scratch.embedded,
                scratch.stream,
            ] = bufs;
            let mut out = vec![0f32; batch * h];
            self.post_layernorm.forward(&class, &mut out);
            out
        })
    }
}

/// `CLIPModel` on the fast path. Clones share the weights.
#[derive(Clone)]
pub struct FastClip(std::sync::Arc<Towers>);

// By hand: the derived form would print hundreds of megabytes of weights.
impl std::fmt::Debug for FastClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (v, t) = (&self.0.vision_model, &self.0.text_model);
        f.debug_struct("FastClip")
            .field("vision_layers", &v.encoder.layers.len())
            .field("vision_hidden", &v.hidden)
            .field("text_layers", &t.encoder.layers.len())
            .field("text_hidden", &t.hidden)
            .field("projection_dim", &self.0.visual_projection.n())
            .finish()
    }
}

struct Towers {
    text_model: TextTransformer,
    vision_model: VisionTransformer,
    visual_projection: Packed,
    text_projection: Packed,
}

impl FastClip {
    /// Reads and packs the weights (names as in a Hugging Face `CLIPModel` checkpoint).
    pub fn new(vb: VarBuilder, config: &ClipConfig, precision: Precision) -> R<Self> {
        let f = precision.format();
        let (t, v) = (&config.text_config, &config.vision_config);
        // The projections are small; they stay f32 on every path.
        Ok(FastClip(std::sync::Arc::new(Towers {
            text_model: TextTransformer::new(vb.pp("text_model"), t, f)?,
            vision_model: VisionTransformer::new(vb.pp("vision_model"), v, f)?,
            visual_projection: linear(
                vb.pp("visual_projection"),
                v.encoder.hidden_size,
                config.projection_dim,
                false,
                Format::F32,
            )?,
            text_projection: linear(
                vb.pp("text_projection"),
                t.encoder.hidden_size,
                config.projection_dim,
                false,
                Format::F32,
            )?,
        })))
    }

    /// Image features `[batch · projection_dim]` from checked channel-major pixels.
    pub fn image_features(&self, pixels: &[f32], batch: usize) -> Vec<f32> {
        let pooled = self.0.vision_model.forward(pixels, batch);
        project(&pooled, batch, &self.0.visual_projection)
    }

    /// Text features `[batch · projection_dim]` from checked ids and end-of-text positions.
    pub fn text_features(&self, ids: &[u32], batch: usize, eot: &[usize]) -> Vec<f32> {
        let context = ids.len() / batch;
        let pooled = self.0.text_model.forward(ids, batch, context, eot);
        project(&pooled, batch, &self.0.text_projection)
    }
}

fn project(pooled: &[f32], batch: usize, w: &Packed) -> Vec<f32> {
    let mut out = vec![0f32; batch * w.n()];
    matmul(pooled, batch, w, &mut out, Out::Set, Act::None);
    out
}
