//! CLIP on the fast path: transformers' `CLIPVisionModelWithProjection` and
//! `CLIPTextModelWithProjection` composed from the shared `blocks`, weights read under the
//! checkpoint's keys. What makes them CLIP is said here and only here: pre-norm layers; a
//! vision tower that adds a class token, normalizes before the encoder (`pre_layrnorm`) and
//! reads row 0; a causal text tower read at the end-of-text position; projections without
//! bias, kept in f32.

use candle_nn::VarBuilder;

use super::blocks::{
    add_positions, debug_tower, embedding, vector, Encoder, EncoderLayer, EncoderOptions,
    LayerNorm, Linear, Mask, Norm, PatchEmbedding, Pool, Scratch, R, WEIGHT_INIT,
};
use super::kernels::{sized, Act, Format, Out};
use super::Precision;
use crate::config::{ClipConfig, EncoderConfig, EncoderDefaults};
use crate::error::ModelError;
use crate::tower::{ImageTower, TextTower};

/// The vision encoder: every position sees every other; the class token (row 0) is read.
const VISION: EncoderOptions = EncoderOptions {
    norm: Norm::Pre,
    mask: Mask::None,
    pool: Pool::Row(0),
};

/// The text encoder: causal, read at each row's end-of-text token.
const TEXT: EncoderOptions = EncoderOptions {
    norm: Norm::Pre,
    mask: Mask::Causal,
    pool: Pool::Eot,
};

/// `CLIPEncoder`, with `self_attn.{q,k,v}_proj` fused.
fn encoder<D: EncoderDefaults>(
    vb: VarBuilder,
    c: &EncoderConfig<D>,
    options: EncoderOptions,
    f: Format,
) -> R<Encoder> {
    let (h, w, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
    let layers = (0..c.num_hidden_layers).map(|i| {
        let vb = vb.pp("layers").pp(i);
        let (att, mlp) = (vb.pp("self_attn"), vb.pp("mlp"));
        let qkv = ["q_proj", "k_proj", "v_proj"].map(|p| att.pp(p));
        Ok(EncoderLayer {
            qkv: Linear::stacked(&qkv, h, h, f)?,
            out_proj: Linear::load(&att.pp("out_proj"), h, h, true, f)?,
            norm1: LayerNorm::load(&vb.pp("layer_norm1"), h, eps)?,
            fc1: Linear::load(&mlp.pp("fc1"), h, w, true, f)?,
            fc2: Linear::load(&mlp.pp("fc2"), w, h, true, f)?,
            norm2: LayerNorm::load(&vb.pp("layer_norm2"), h, eps)?,
            heads: c.num_attention_heads,
            act: c.activation(),
        })
    });
    Ok(Encoder::new(layers.collect::<R<_>>()?, options))
}

/// A `{visual,text}_projection`: no bias, and small enough to stay f32 on every path.
fn projection(vb: &VarBuilder, hidden: usize, config: &ClipConfig) -> R<Linear> {
    Linear::load(vb, hidden, config.projection_dim, false, Format::F32)
}

/// The features of `rows` pooled states (`[rows · k]`), one `Vec` each.
fn project(pooled: &[f32], rows: usize, w: &Linear) -> Vec<Vec<f32>> {
    let mut out = vec![0f32; rows * w.n()];
    w.forward(pooled, rows, &mut out, Out::Set, Act::None);
    out.chunks_exact(w.n()).map(<[f32]>::to_vec).collect()
}

/// `CLIPVisionModelWithProjection` on the fast path.
pub struct FastClipVision {
    patch_embedding: PatchEmbedding,
    class_embedding: Vec<f32>,
    position_embedding: Vec<f32>,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    visual_projection: Linear,
    hidden: usize,
}

impl FastClipVision {
    /// Reads and packs the weights (names as in a Hugging Face `CLIPModel` checkpoint).
    pub fn new(vb: VarBuilder, config: &ClipConfig, precision: Precision) -> R<Self> {
        let (c, f) = (&config.vision_config, precision.format());
        let (h, eps) = (c.encoder.hidden_size, c.encoder.layer_norm_eps);
        let vision = vb.pp("vision_model");
        let (emb, norm) = (vision.pp("embeddings"), |name| vision.pp(name));
        let sides = (c.image_size, c.patch_size);
        let patches =
            PatchEmbedding::load(&emb.pp("patch_embedding"), h, c.num_channels, sides, f)?;
        Ok(FastClipVision {
            class_embedding: vector(&emb, h, "class_embedding", WEIGHT_INIT)?,
            position_embedding: embedding(&emb.pp("position_embedding"), patches.patches() + 1, h)?,
            patch_embedding: patches,
            // (sic) the checkpoint key really is spelled `pre_layrnorm`.
            pre_layrnorm: LayerNorm::load(&norm("pre_layrnorm"), h, eps)?,
            encoder: encoder(vision.pp("encoder"), &c.encoder, VISION, f)?,
            post_layernorm: LayerNorm::load(&norm("post_layernorm"), h, eps)?,
            visual_projection: projection(&vb.pp("visual_projection"), h, config)?,
            hidden: h,
        })
    }
}

impl ImageTower for FastClipVision {
    fn image_features(&self, pixels: &[f32], batch: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let (h, np) = (self.hidden, self.patch_embedding.patches());
        let t = np + 1;
        let pooled = self.encoder.with_scratch(|s: &mut Scratch| {
            let mut bufs =
                [&mut s.cols, &mut s.patches, &mut s.embedded, &mut s.stream].map(std::mem::take);
            let [cols, patches, embedded, stream] = &mut bufs;
            let patches = sized(patches, batch * np * h);
            self.patch_embedding.forward(pixels, batch, cols, patches);
            let embedded = sized(embedded, batch * t * h);
            let patches = &*patches;
            add_positions(embedded, t, h, &self.position_embedding, |si, i| match i {
                0 => &self.class_embedding,
                _ => &patches[(si * np + i - 1) * h..][..h],
            });
            let x = sized(stream, embedded.len());
            self.pre_layrnorm.forward(embedded, x);
            let class = self.encoder.forward(x, batch, t, &[], s);
            [s.cols, s.patches, s.embedded, s.stream] = bufs;
            class
        });
        let mut out = vec![0f32; batch * h];
        self.post_layernorm.forward(&pooled, &mut out);
        Ok(project(&out, batch, &self.visual_projection))
    }
}

/// `CLIPTextModelWithProjection` on the fast path.
pub struct FastClipText {
    token_embedding: Vec<f32>,
    position_embedding: Vec<f32>,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    text_projection: Linear,
    hidden: usize,
}

impl FastClipText {
    /// Reads and packs the weights (names as in a Hugging Face `CLIPModel` checkpoint).
    pub fn new(vb: VarBuilder, config: &ClipConfig, precision: Precision) -> R<Self> {
        let (c, f) = (&config.text_config, precision.format());
        let (h, eps) = (c.encoder.hidden_size, c.encoder.layer_norm_eps);
        let (text, emb) = (vb.pp("text_model"), vb.pp("text_model").pp("embeddings"));
        Ok(FastClipText {
            token_embedding: embedding(&emb.pp("token_embedding"), c.vocab_size, h)?,
            position_embedding: embedding(
                &emb.pp("position_embedding"),
                c.max_position_embeddings,
                h,
            )?,
            encoder: encoder(text.pp("encoder"), &c.encoder, TEXT, f)?,
            final_layer_norm: LayerNorm::load(&text.pp("final_layer_norm"), h, eps)?,
            text_projection: projection(&vb.pp("text_projection"), h, config)?,
            hidden: h,
        })
    }
}

impl TextTower for FastClipText {
    fn text_features(
        &self,
        ids: &[u32],
        batch: usize,
        eot: &[usize],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let h = self.hidden;
        let context = ids.len() / batch;
        let t = self.encoder.positions_needed(context, eot);
        let pooled = self.encoder.with_scratch(|s: &mut Scratch| {
            let mut stream = std::mem::take(&mut s.stream);
            let x = sized(&mut stream, batch * t * h);
            add_positions(x, t, h, &self.position_embedding, |si, i| {
                let id = ids[si * context + i] as usize;
                &self.token_embedding[id * h..][..h]
            });
            let pooled = self.encoder.forward(x, batch, t, eot, s);
            s.stream = stream;
            pooled
        });
        let mut out = vec![0f32; batch * h];
        self.final_layer_norm.forward(&pooled, &mut out);
        Ok(project(&out, batch, &self.text_projection))
    }
}

impl std::fmt::Debug for FastClipVision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (encoder, projection) = (&self.encoder, &self.visual_projection);
        debug_tower(f, "FastClipVision", encoder, self.hidden, projection)
    }
}

impl std::fmt::Debug for FastClipText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (encoder, projection) = (&self.encoder, &self.text_projection);
        debug_tower(f, "FastClipText", encoder, self.hidden, projection)
    }
}
