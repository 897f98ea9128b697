//! The numbers of one transformer encoder, named as transformers names them in every family's
//! config (`hidden_size`, `num_attention_heads`, ...), so that both CLIP towers, and later BERT
//! or SigLIP towers, share one type and one check instead of repeating six fields each.

use std::marker::PhantomData;

use serde::Deserialize;

/// The activation between the two MLP layers (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `quick_gelu`: `x * sigmoid(1.702 x)`, OpenAI's original models.
    QuickGelu,
    /// `gelu`: exact GELU with `erf`, LAION / open_clip models.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation of GELU.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Activation {
    /// Parses transformers' activation name.
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "quick_gelu" => Activation::QuickGelu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => return None,
        })
    }
}

/// The values an absent field takes: those of the tower's transformers config class. One
/// implementation per tower of each family (e.g. [`super::clip::TextDefaults`]).
pub trait EncoderDefaults {
    /// `hidden_size`.
    const HIDDEN_SIZE: usize;
    /// `intermediate_size`.
    const INTERMEDIATE_SIZE: usize;
    /// `num_hidden_layers`.
    const NUM_HIDDEN_LAYERS: usize;
    /// `num_attention_heads`.
    const NUM_ATTENTION_HEADS: usize;
    /// `hidden_act`.
    const HIDDEN_ACT: &'static str;
    /// `layer_norm_eps`.
    const LAYER_NORM_EPS: f64;
}

// serde's `default` takes a function.
fn hidden_size<D: EncoderDefaults>() -> usize {
    D::HIDDEN_SIZE
}
fn intermediate_size<D: EncoderDefaults>() -> usize {
    D::INTERMEDIATE_SIZE
}
fn num_hidden_layers<D: EncoderDefaults>() -> usize {
    D::NUM_HIDDEN_LAYERS
}
fn num_attention_heads<D: EncoderDefaults>() -> usize {
    D::NUM_ATTENTION_HEADS
}
fn hidden_act<D: EncoderDefaults>() -> String {
    D::HIDDEN_ACT.into()
}
fn layer_norm_eps<D: EncoderDefaults>() -> f64 {
    D::LAYER_NORM_EPS
}

/// One tower's encoder sizes; `D` says which defaults fill absent fields. Tower configs hold
/// it with `#[serde(flatten)]`, so the JSON keeps its flat shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound = "")]
pub struct EncoderConfig<D: EncoderDefaults> {
    /// Width of the residual stream.
    #[serde(default = "hidden_size::<D>")]
    pub hidden_size: usize,
    /// Width of the MLP.
    #[serde(default = "intermediate_size::<D>")]
    pub intermediate_size: usize,
    /// Number of transformer layers.
    #[serde(default = "num_hidden_layers::<D>")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "num_attention_heads::<D>")]
    pub num_attention_heads: usize,
    /// Activation name, e.g. `quick_gelu`.
    #[serde(default = "hidden_act::<D>")]
    pub hidden_act: String,
    /// Layer norm epsilon.
    #[serde(default = "layer_norm_eps::<D>")]
    pub layer_norm_eps: f64,
    #[serde(skip)]
    defaults: PhantomData<D>,
}

impl<D: EncoderDefaults> EncoderConfig<D> {
    /// The MLP activation (a known name once the config is validated).
    pub fn activation(&self) -> Activation {
        Activation::from_name(&self.hidden_act).unwrap_or(Activation::QuickGelu)
    }

    /// Checks that the numbers describe a buildable encoder; `tower` prefixes the field names
    /// in the message (`text_config`).
    pub(crate) fn check(&self, tower: &str) -> Result<(), String> {
        if Activation::from_name(&self.hidden_act).is_none() {
            return Err(format!(
                "{tower}.hidden_act = {:?} is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)",
                self.hidden_act
            ));
        }
        // Bounds far above any real model, so that sizes computed from them cannot overflow.
        for (name, value, max) in [
            ("hidden_size", self.hidden_size, 1 << 16),
            ("intermediate_size", self.intermediate_size, 1 << 18),
            ("num_hidden_layers", self.num_hidden_layers, 1 << 10),
            ("num_attention_heads", self.num_attention_heads, 1 << 12),
        ] {
            check_bound(&format!("{tower}.{name}"), value, max)?;
        }
        let eps = self.layer_norm_eps;
        if !(eps.is_finite() && eps > 0.0) {
            return Err(format!(
                "{tower}.layer_norm_eps = {eps} must be a positive number"
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "{tower}.hidden_size = {} is not divisible by num_attention_heads = {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }
}

/// `value` must lie in `1..=max`.
pub(crate) fn check_bound(name: &str, value: usize, max: usize) -> Result<(), String> {
    if value == 0 || value > max {
        return Err(format!("{name} = {value} is outside 1..={max}"));
    }
    Ok(())
}
