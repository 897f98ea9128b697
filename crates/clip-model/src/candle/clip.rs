//! CLIP on candle, one struct per module of transformers' `modeling_clip.py`
//! (<https://github.com/huggingface/transformers/blob/v5.23.0/src/transformers/models/clip/modeling_clip.py>,
//! the version the goldens in `fixtures/` come from), with `vb.pp(..)` names equal to the
//! checkpoint's keys. `new` and `forward` are public on every module, so that a training loop
//! can build the model from a `VarMap` and differentiate through it.
//!
//! Two choices differ from a literal port, both for speed without changing results:
//! - the text tower runs only up to the last end-of-text position of the batch (the mask is
//!   causal, so later positions cannot influence earlier ones) and reads each row's output at
//!   the end-of-text position the tokenizer reported, not at an `argmax` over ids;
//! - weights of any stored dtype (f32, f16, bf16) are converted to f32 once at load.

use candle_core::{Device, IndexOp, Module, Tensor};
use candle_nn::{Conv2dConfig, Embedding, LayerNorm, Linear, VarBuilder};

use crate::error::ModelError;
use crate::tower::{ImageTower, TextTower};

use super::rows;
use crate::config::{
    Activation, ClipConfig, EncoderConfig, EncoderDefaults, TextConfig, VisionConfig,
};

fn activate(act: Activation, xs: &Tensor) -> candle_core::Result<Tensor> {
    match act {
        Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
        Activation::Gelu => xs.gelu_erf(),
        Activation::GeluTanh => xs.gelu(),
        Activation::Relu => xs.relu(),
    }
}

/// `CLIPAttention`: multi-head self-attention with separate q/k/v projections.
#[derive(Debug, Clone)]
pub struct ClipAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl ClipAttention {
    /// Reads the module's weights under `vb`.
    pub fn new(vb: VarBuilder, hidden: usize, num_heads: usize) -> candle_core::Result<Self> {
        let head_dim = hidden / num_heads;
        Ok(ClipAttention {
            q_proj: candle_nn::linear(hidden, hidden, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear(hidden, hidden, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear(hidden, hidden, vb.pp("v_proj"))?,
            out_proj: candle_nn::linear(hidden, hidden, vb.pp("out_proj"))?,
            num_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// Self-attention over `xs` (`[batch, t, hidden]`), `mask` added to the scores.
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, t, c) = xs.dims3()?;
        let heads = |x: Tensor| -> candle_core::Result<Tensor> {
            x.reshape((b, t, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(self.q_proj.forward(xs)?)?;
        let k = heads(self.k_proj.forward(xs)?)?;
        let v = heads(self.v_proj.forward(xs)?)?;
        let mut attn = (q.matmul(&k.t()?)? * self.scale)?;
        if let Some(mask) = mask {
            attn = attn.broadcast_add(mask)?;
        }
        let attn = candle_nn::ops::softmax_last_dim(&attn)?;
        let out = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, t, c))?;
        self.out_proj.forward(&out)
    }
}

/// `CLIPMLP`: `fc2(act(fc1(x)))`.
#[derive(Debug, Clone)]
pub struct ClipMlp {
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl ClipMlp {
    /// Reads the module's weights under `vb`.
    pub fn new(
        vb: VarBuilder,
        hidden: usize,
        intermediate: usize,
        act: Activation,
    ) -> candle_core::Result<Self> {
        Ok(ClipMlp {
            fc1: candle_nn::linear(hidden, intermediate, vb.pp("fc1"))?,
            fc2: candle_nn::linear(intermediate, hidden, vb.pp("fc2"))?,
            act,
        })
    }

    /// `fc2(act(fc1(xs)))`.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2
            .forward(&activate(self.act, &self.fc1.forward(xs)?)?)
    }
}

/// `CLIPEncoderLayer`: pre-norm attention and MLP blocks with residuals.
#[derive(Debug, Clone)]
pub struct ClipEncoderLayer {
    self_attn: ClipAttention,
    layer_norm1: LayerNorm,
    mlp: ClipMlp,
    layer_norm2: LayerNorm,
}

impl ClipEncoderLayer {
    /// Reads the module's weights under `vb`.
    pub fn new<D: EncoderDefaults>(
        vb: VarBuilder,
        c: &EncoderConfig<D>,
    ) -> candle_core::Result<Self> {
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        Ok(ClipEncoderLayer {
            self_attn: ClipAttention::new(vb.pp("self_attn"), h, c.num_attention_heads)?,
            layer_norm1: candle_nn::layer_norm(h, eps, vb.pp("layer_norm1"))?,
            mlp: ClipMlp::new(vb.pp("mlp"), h, c.intermediate_size, c.activation())?,
            layer_norm2: candle_nn::layer_norm(h, eps, vb.pp("layer_norm2"))?,
        })
    }

    /// The layer over `xs` (`[batch, t, hidden]`): attention then MLP, each pre-normed.
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, mask)?;
        let xs = (xs + h)?;
        let h = self.mlp.forward(&self.layer_norm2.forward(&xs)?)?;
        xs + h
    }
}

/// `CLIPEncoder`: the stack of layers.
#[derive(Debug, Clone)]
pub struct ClipEncoder {
    layers: Vec<ClipEncoderLayer>,
}

impl ClipEncoder {
    /// Reads the module's weights under `vb`.
    pub fn new<D: EncoderDefaults>(
        vb: VarBuilder,
        c: &EncoderConfig<D>,
    ) -> candle_core::Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..c.num_hidden_layers)
            .map(|i| ClipEncoderLayer::new(vb.pp(i.to_string()), c))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(ClipEncoder { layers })
    }

    /// Every layer in turn.
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, mask)?;
        }
        Ok(xs)
    }
}

/// `CLIPTextEmbeddings`: token plus learned position embeddings.
#[derive(Debug, Clone)]
pub struct ClipTextEmbeddings {
    token_embedding: Embedding,
    position_embedding: Embedding,
}

impl ClipTextEmbeddings {
    /// Reads the module's weights under `vb`.
    pub fn new(vb: VarBuilder, c: &TextConfig) -> candle_core::Result<Self> {
        let h = c.encoder.hidden_size;
        Ok(ClipTextEmbeddings {
            token_embedding: candle_nn::embedding(c.vocab_size, h, vb.pp("token_embedding"))?,
            position_embedding: candle_nn::embedding(
                c.max_position_embeddings,
                h,
                vb.pp("position_embedding"),
            )?,
        })
    }

    /// Token plus position embeddings of `ids` (`[batch, t]`).
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let tokens = self.token_embedding.forward(ids)?;
        let positions = self.position_embedding.embeddings().narrow(0, 0, t)?;
        tokens.broadcast_add(&positions)
    }
}

/// `CLIPTextTransformer`: embeddings, causal encoder, final layer norm.
#[derive(Debug, Clone)]
pub struct ClipTextTransformer {
    embeddings: ClipTextEmbeddings,
    encoder: ClipEncoder,
    final_layer_norm: LayerNorm,
}

impl ClipTextTransformer {
    /// Reads the module's weights under `vb`.
    pub fn new(vb: VarBuilder, c: &TextConfig) -> candle_core::Result<Self> {
        let e = &c.encoder;
        Ok(ClipTextTransformer {
            embeddings: ClipTextEmbeddings::new(vb.pp("embeddings"), c)?,
            encoder: ClipEncoder::new(vb.pp("encoder"), e)?,
            final_layer_norm: candle_nn::layer_norm(
                e.hidden_size,
                e.layer_norm_eps,
                vb.pp("final_layer_norm"),
            )?,
        })
    }

    /// Pooled output `[batch, hidden]`: the final-normed state at each row's `eot` position.
    /// `ids` is `[batch, t]` with `t` already cut to `max(eot) + 1`.
    pub fn forward(&self, ids: &Tensor, eot: &[usize]) -> candle_core::Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let xs = self.embeddings.forward(ids)?;
        let mask = causal_mask(t, xs.device())?;
        let xs = self.encoder.forward(&xs, Some(&mask))?;
        let rows = eot
            .iter()
            .enumerate()
            .map(|(i, &p)| xs.i((i, p)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let pooled = Tensor::stack(&rows, 0)?;
        self.final_layer_norm.forward(&pooled)
    }
}

fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)
}

/// `CLIPVisionEmbeddings`: patch convolution, class token, learned positions.
#[derive(Debug, Clone)]
pub struct ClipVisionEmbeddings {
    class_embedding: Tensor,
    patch_embedding: candle_nn::Conv2d,
    position_embedding: Embedding,
}

impl ClipVisionEmbeddings {
    /// Reads the module's weights under `vb`.
    pub fn new(vb: VarBuilder, c: &VisionConfig) -> candle_core::Result<Self> {
        let h = c.encoder.hidden_size;
        let patches = (c.image_size / c.patch_size).pow(2);
        let conv = Conv2dConfig {
            stride: c.patch_size,
            ..Default::default()
        };
        Ok(ClipVisionEmbeddings {
            class_embedding: vb.get(h, "class_embedding")?,
            patch_embedding: candle_nn::conv2d_no_bias(
                c.num_channels,
                h,
                c.patch_size,
                conv,
                vb.pp("patch_embedding"),
            )?,
            position_embedding: candle_nn::embedding(patches + 1, h, vb.pp("position_embedding"))?,
        })
    }

    /// Class, patch and position embeddings of pixels `[batch, channels, size, size]`.
    pub fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let b = pixels.dim(0)?;
        let patches = self
            .patch_embedding
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let hidden = self.class_embedding.dim(0)?;
        let class = self
            .class_embedding
            .reshape((1, 1, hidden))?
            .repeat((b, 1, 1))?;
        let xs = Tensor::cat(&[&class, &patches], 1)?;
        xs.broadcast_add(self.position_embedding.embeddings())
    }
}

/// `CLIPVisionTransformer`: embeddings, pre-norm, encoder, post-norm of the class token.
#[derive(Debug, Clone)]
pub struct ClipVisionTransformer {
    embeddings: ClipVisionEmbeddings,
    pre_layrnorm: LayerNorm,
    encoder: ClipEncoder,
    post_layernorm: LayerNorm,
}

impl ClipVisionTransformer {
    /// Reads the module's weights under `vb`.
    pub fn new(vb: VarBuilder, c: &VisionConfig) -> candle_core::Result<Self> {
        let e = &c.encoder;
        let (h, eps) = (e.hidden_size, e.layer_norm_eps);
        Ok(ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings::new(vb.pp("embeddings"), c)?,
            // (sic) the checkpoint key really is spelled `pre_layrnorm`.
            pre_layrnorm: candle_nn::layer_norm(h, eps, vb.pp("pre_layrnorm"))?,
            encoder: ClipEncoder::new(vb.pp("encoder"), e)?,
            post_layernorm: candle_nn::layer_norm(h, eps, vb.pp("post_layernorm"))?,
        })
    }

    /// The post-normed class token, `[batch, hidden]`.
    pub fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let xs = self.embeddings.forward(pixels)?;
        let xs = self.pre_layrnorm.forward(&xs)?;
        let xs = self.encoder.forward(&xs, None)?;
        self.post_layernorm.forward(&xs.i((.., 0, ..))?)
    }
}

/// `CLIPVisionModelWithProjection`: the vision tower and its projection into the shared
/// space.
#[derive(Debug, Clone)]
pub struct ClipVisionModelWithProjection {
    vision_model: ClipVisionTransformer,
    visual_projection: Linear,
    /// `(channels, image_size)`, to shape the engine's pixels.
    input: (usize, usize),
}

impl ClipVisionModelWithProjection {
    /// Builds the tower from weights named as in a Hugging Face `CLIPModel` checkpoint (`vb` at
    /// its root).
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> candle_core::Result<Self> {
        let v = &config.vision_config;
        Ok(ClipVisionModelWithProjection {
            vision_model: ClipVisionTransformer::new(vb.pp("vision_model"), v)?,
            visual_projection: candle_nn::linear_no_bias(
                v.encoder.hidden_size,
                config.projection_dim,
                vb.pp("visual_projection"),
            )?,
            input: (v.num_channels, v.image_size),
        })
    }

    /// Image features `[batch, projection_dim]`, before normalization, from pixels
    /// `[batch, channels, image_size, image_size]`.
    pub fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let pooled = self.vision_model.forward(pixels)?;
        self.visual_projection.forward(&pooled)
    }
}

/// `CLIPTextModelWithProjection`: the text tower and its projection into the shared space.
#[derive(Debug, Clone)]
pub struct ClipTextModelWithProjection {
    text_model: ClipTextTransformer,
    text_projection: Linear,
}

impl ClipTextModelWithProjection {
    /// Builds the tower from weights named as in a Hugging Face `CLIPModel` checkpoint (`vb` at
    /// its root).
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> candle_core::Result<Self> {
        let t = &config.text_config;
        Ok(ClipTextModelWithProjection {
            text_model: ClipTextTransformer::new(vb.pp("text_model"), t)?,
            text_projection: candle_nn::linear_no_bias(
                t.encoder.hidden_size,
                config.projection_dim,
                vb.pp("text_projection"),
            )?,
        })
    }

    /// Text features `[batch, projection_dim]`, before normalization, from token ids
    /// `[batch, context]` (u32) and each row's end-of-text position.
    pub fn forward(&self, ids: &Tensor, eot: &[usize]) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if eot.len() != b {
            candle_core::bail!("{} end positions for a batch of {b}", eot.len());
        }
        let last = eot.iter().copied().max().unwrap_or(0);
        if last >= t {
            candle_core::bail!("end position {last} outside a context of {t}");
        }
        // Causal attention: positions after the last end token cannot change the result.
        let ids = ids.narrow(1, 0, last + 1)?;
        let pooled = self.text_model.forward(&ids, eot)?;
        self.text_projection.forward(&pooled)
    }
}

impl ImageTower for ClipVisionModelWithProjection {
    fn image_features(&self, pixels: &[f32], batch: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let (c, s) = self.input;
        let device = self.visual_projection.weight().device();
        rows(&self.forward(&Tensor::from_slice(pixels, (batch, c, s, s), device)?)?)
    }
}

impl TextTower for ClipTextModelWithProjection {
    fn text_features(
        &self,
        ids: &[u32],
        batch: usize,
        eot: &[usize],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let device = self.text_projection.weight().device();
        let ids = Tensor::from_slice(ids, (batch, ids.len() / batch), device)?;
        rows(&self.forward(&ids, eot)?)
    }
}

/// `CLIPModel`: both towers with their projections, and the learned `logit_scale`.
#[derive(Debug, Clone)]
pub struct ClipModel {
    /// The vision tower.
    pub vision: ClipVisionModelWithProjection,
    /// The text tower.
    pub text: ClipTextModelWithProjection,
    /// The natural log of the multiplier of cosine similarities (a scalar).
    pub logit_scale: Tensor,
}

impl ClipModel {
    /// Builds the model from weights named as in a Hugging Face `CLIPModel` checkpoint.
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> candle_core::Result<Self> {
        Ok(ClipModel {
            vision: ClipVisionModelWithProjection::new(vb.clone(), config)?,
            text: ClipTextModelWithProjection::new(vb.clone(), config)?,
            logit_scale: crate::head::logit_scale(&vb)?,
        })
    }

    /// Image features `[batch, projection_dim]`, before normalization, from pixels
    /// `[batch, channels, image_size, image_size]`.
    pub fn image_features(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        self.vision.forward(pixels)
    }

    /// Text features `[batch, projection_dim]`, before normalization, from token ids
    /// `[batch, context]` (u32) and each row's end-of-text position.
    pub fn text_features(&self, ids: &Tensor, eot: &[usize]) -> candle_core::Result<Tensor> {
        self.text.forward(ids, eot)
    }
}
