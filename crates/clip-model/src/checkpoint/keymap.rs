//! Key maps: how a checkpoint layout's tensors become the ones the ports ask for.
//!
//! The ports ask for tensors by Hugging Face `CLIPModel` key (`vision_model.pre_layrnorm.weight`)
//! and shape. A [`KeyMap`] answers such a request from the checkpoint: a layout that only
//! names things differently overrides [`KeyMap::key`]; one that stores them differently
//! (open_clip's stacked `attn.in_proj_weight`, its transposed `text_projection`) overrides
//! [`KeyMap::load`] to slice or transpose what it reads. [`mapped`] picks, from the checkpoint's
//! keys, the first layout of the list it is given (`checkpoint::FOREIGN_LAYOUTS`, the one place
//! layouts are listed) that applies; transformers' own layout needs none.

use candle_core::{Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

/// A checkpoint layout, seen from the ports.
pub(crate) trait KeyMap: Send + Sync + std::fmt::Debug {
    /// Whether a checkpoint holding these tensors is in this layout.
    fn matches(&self, checkpoint: &VarBuilder) -> bool;

    /// The checkpoint key of the tensor the ports call `name`.
    fn key(&self, name: &str) -> String;

    /// The tensor the ports call `name`, of `shape`. By default the one stored under
    /// [`KeyMap::key`], as stored.
    fn load(
        &self,
        checkpoint: &VarBuilder,
        name: &str,
        shape: Shape,
        init: Init,
    ) -> candle_core::Result<Tensor> {
        checkpoint.get_with_hints(shape, &self.key(name), init)
    }
}

/// `checkpoint` read through the first of the `foreign` layouts whose keys it holds; as it
/// is when none does (transformers' own layout, whose names are those the ports use).
pub(crate) fn mapped(
    checkpoint: VarBuilder<'static>,
    foreign: &[&'static dyn KeyMap],
) -> VarBuilder<'static> {
    let Some(map) = foreign.iter().copied().find(|map| map.matches(&checkpoint)) else {
        return checkpoint;
    };
    let (dtype, device) = (checkpoint.dtype(), checkpoint.device().clone());
    VarBuilder::from_backend(Box::new(Mapped { checkpoint, map }), dtype, device)
}

/// A checkpoint behind a key map, as a candle weights source.
struct Mapped {
    checkpoint: VarBuilder<'static>,
    map: &'static dyn KeyMap,
}

impl SimpleBackend for Mapped {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: candle_core::DType,
        _: &Device,
    ) -> candle_core::Result<Tensor> {
        self.map
            .load(&self.checkpoint, name, shape, init)?
            .to_dtype(dtype)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: candle_core::DType,
        _: &Device,
    ) -> candle_core::Result<Tensor> {
        self.checkpoint
            .get_unchecked_dtype(&self.map.key(name), dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.checkpoint.contains_tensor(&self.map.key(name))
    }
}
