//! CLIP's image transform: resize the short side, center crop, convert to RGB, scale to
//! [0, 1], normalize per channel. Configured from a checkpoint's `preprocessor_config.json`.
//!
//! The order and arithmetic follow OpenAI's `clip.load` preprocess (the same as open_clip's):
//! `Resize(size, BICUBIC)` on the image in its own mode, `CenterCrop(size)` with torchvision's
//! rounding, `convert("RGB")`, `ToTensor()` (`u8 as f32 / 255`), `Normalize(mean, std)` in
//! `f32`. Given the same 8-bit pixels this produces the same floats bit for bit.

use serde::Deserialize;

use super::decode::{ColorMode, DecodedImage};
use super::resample::{self, Filter, Region};
use crate::error::ConfigError;

/// OpenAI CLIP's per-channel mean, the default when a config names none.
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's per-channel standard deviation.
pub const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// How the image is resized before cropping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Scale so the shorter side has this length, keeping the aspect ratio (CLIP's way).
    ShortestEdge(u32),
    /// Scale to exactly this height and width.
    Exact {
        /// Output height.
        height: u32,
        /// Output width.
        width: u32,
    },
}

/// Everything that turns decoded pixels into the model's input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// The resize step, or `None` to skip it.
    pub resize: Option<Resize>,
    /// Resampling filter for the resize (palette and bilevel images always use nearest, as
    /// in Pillow).
    pub filter: Filter,
    /// Center crop to `(height, width)`, or `None` to skip it.
    pub crop: Option<(u32, u32)>,
    /// Multiply 8-bit samples by this (1/255 divides by 255 exactly, as `ToTensor` does).
    pub rescale_factor: Option<f32>,
    /// Per-channel mean and standard deviation, or `None` to skip normalization.
    pub normalize: Option<([f32; 3], [f32; 3])>,
}

impl PreprocessConfig {
    /// OpenAI CLIP's preprocessing at `size` pixels (224 for ViT-B/32, 336 for ViT-L/14@336px).
    pub fn openai(size: u32) -> Self {
        PreprocessConfig {
            resize: Some(Resize::ShortestEdge(size)),
            filter: Filter::Bicubic,
            crop: Some((size, size)),
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some((OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)),
        }
    }

    /// Reads a Hugging Face `preprocessor_config.json` (`CLIPImageProcessor` fields; missing
    /// fields take that class's defaults). `source_name` is quoted in errors.
    pub fn from_hf_json(json: &str, source_name: &str) -> Result<Self, ConfigError> {
        let raw: HfPreprocessorConfig =
            serde_json::from_str(json).map_err(|error| ConfigError::Json {
                source_name: source_name.to_string(),
                error,
            })?;
        raw.into_config(source_name)
    }

    /// The smallest decoded size (width, height) the resize step needs to give what it gives
    /// from the full image's size at about the same quality: the short side at least the
    /// `ShortestEdge`, or the `Exact` size. `None` when there is no resize (every pixel
    /// counts). For [`decode_reduced`](super::decode::decode_reduced).
    pub fn decode_at_least(&self) -> Option<(u32, u32)> {
        match self.resize? {
            Resize::ShortestEdge(n) => Some((n, n)),
            Resize::Exact { height, width } => Some((width, height)),
        }
    }

    /// The side length of the model input this produces, if it is fixed.
    pub fn output_size(&self) -> Option<(u32, u32)> {
        match (self.crop, self.resize) {
            (Some(c), _) => Some(c),
            (None, Some(Resize::Exact { height, width })) => Some((height, width)),
            _ => None,
        }
    }
}

/// The `preprocessor_config.json` fields we read.
#[derive(Debug, Deserialize)]
struct HfPreprocessorConfig {
    #[serde(default = "yes")]
    do_resize: bool,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default = "bicubic")]
    resample: u32,
    #[serde(default = "yes")]
    do_center_crop: bool,
    #[serde(default)]
    crop_size: Option<serde_json::Value>,
    #[serde(default = "yes")]
    do_rescale: bool,
    #[serde(default = "one_over_255")]
    rescale_factor: f64,
    #[serde(default = "yes")]
    do_normalize: bool,
    #[serde(default)]
    image_mean: Option<Vec<f64>>,
    #[serde(default)]
    image_std: Option<Vec<f64>>,
}

fn yes() -> bool {
    true
}
fn bicubic() -> u32 {
    3
}
fn one_over_255() -> f64 {
    1.0 / 255.0
}

/// Largest resize or crop side accepted from a config (far above any CLIP model's input).
const MAX_SIDE: u64 = 16_384;

/// A `size` / `crop_size` value: a number, or an object, depending on the file's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizeSpec {
    /// `224` or `{"shortest_edge": 224}`.
    Edge(u32),
    /// `{"height": h, "width": w}`.
    HeightWidth(u32, u32),
}

/// Reads a size field; `None` when it has none of the known shapes or a side outside
/// `1..=MAX_SIDE`.
fn read_size(v: &serde_json::Value) -> Option<SizeSpec> {
    let side = |v: &serde_json::Value| {
        v.as_u64()
            .filter(|n| (1..=MAX_SIDE).contains(n))
            .map(|n| n as u32)
    };
    if let Some(n) = side(v) {
        return Some(SizeSpec::Edge(n));
    }
    let map = v.as_object()?;
    if let Some(e) = map.get("shortest_edge") {
        return side(e).map(SizeSpec::Edge);
    }
    Some(SizeSpec::HeightWidth(
        side(map.get("height")?)?,
        side(map.get("width")?)?,
    ))
}

impl HfPreprocessorConfig {
    fn into_config(self, source_name: &str) -> Result<PreprocessConfig, ConfigError> {
        let unsupported =
            |field: &'static str, value: String, reason: &'static str| ConfigError::Unsupported {
                source_name: source_name.to_string(),
                field,
                value,
                reason,
            };
        let resize = match (self.do_resize, &self.size) {
            (false, _) => None,
            (true, None) => Some(Resize::ShortestEdge(224)),
            (true, Some(v)) => Some(match read_size(v) {
                Some(SizeSpec::Edge(s)) => Resize::ShortestEdge(s),
                Some(SizeSpec::HeightWidth(height, width)) => Resize::Exact { height, width },
                None => {
                    return Err(unsupported(
                        "size",
                        v.to_string(),
                        "expected a side, {\"shortest_edge\": n} or {\"height\": h, \"width\": w}, sides 1 to 16384",
                    ))
                }
            }),
        };
        let crop = match (self.do_center_crop, &self.crop_size) {
            (false, _) => None,
            (true, None) => Some((224, 224)),
            (true, Some(v)) => Some(match read_size(v) {
                Some(SizeSpec::Edge(s)) => (s, s),
                Some(SizeSpec::HeightWidth(h, w)) => (h, w),
                None => {
                    return Err(unsupported(
                        "crop_size",
                        v.to_string(),
                        "expected a side or {\"height\": h, \"width\": w}, sides 1 to 16384",
                    ))
                }
            }),
        };
        let filter = Filter::from_pil(self.resample).ok_or_else(|| {
            unsupported(
                "resample",
                self.resample.to_string(),
                "Pillow filters are numbered 0 to 5",
            )
        })?;
        let triple = |field: &'static str, v: Option<Vec<f64>>, default: [f32; 3]| match v {
            None => Ok(default),
            Some(v) if v.len() == 3 => Ok([v[0] as f32, v[1] as f32, v[2] as f32]),
            Some(v) if v.len() == 1 => Ok([v[0] as f32; 3]),
            Some(v) => Err(unsupported(field, format!("{v:?}"), "expected 3 values")),
        };
        let mean = triple("image_mean", self.image_mean, OPENAI_CLIP_MEAN)?;
        let std = triple("image_std", self.image_std, OPENAI_CLIP_STD)?;
        if std.contains(&0.0) {
            return Err(unsupported(
                "image_std",
                format!("{std:?}"),
                "a standard deviation of 0 divides by zero",
            ));
        }
        Ok(PreprocessConfig {
            resize,
            filter,
            crop,
            rescale_factor: self.do_rescale.then_some(self.rescale_factor as f32),
            normalize: self.do_normalize.then_some((mean, std)),
        })
    }
}

/// An RGB image with 8-bit samples: the resized and cropped pixels before scaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Interleaved RGB samples, `width * height * 3`.
    pub data: Vec<u8>,
}

/// The model's input for one image: `3 x height x width` floats, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `3 * height * width` values, all of channel 0 first.
    pub data: Vec<f32>,
}

/// torchvision's `Resize(int)` output size: the short side becomes `size`, the long side
/// `int(size * long / short)` (truncated, computed in `f64` as Python does).
pub fn shortest_edge_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((u64::from(size) * u64::from(long)) as f64 / f64::from(short)) as u32;
    let new_long = new_long.max(1);
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// Resizes and crops in the image's own mode, then converts to RGB, as the reference does.
///
/// Only the pixels that survive the crop are resampled (with exactly the values a full resize
/// would give them), so a 1 x 5000 image costs a crop's worth of work and memory, not the
/// 224 x 1 120 000 intermediate image that the reference allocates.
pub fn resize_and_crop(img: &DecodedImage, cfg: &PreprocessConfig) -> Rgb8 {
    let channels = img.mode.channels();
    let (w, h) = (img.width as usize, img.height as usize);
    let (rw, rh) = match cfg.resize {
        Some(Resize::ShortestEdge(s)) => {
            let (a, b) = shortest_edge_size(img.width, img.height, s);
            (a as usize, b as usize)
        }
        Some(Resize::Exact { height, width }) => (width as usize, height as usize),
        None => (w, h),
    };
    let (out_h, out_w) = cfg
        .crop
        .map_or((rh, rw), |(ch, cw)| (ch as usize, cw as usize));
    let (top, left) = crop_origin(rh, rw, out_h, out_w);
    // The part of the resized image inside the crop box (the rest of the box is padding).
    let x0 = left.max(0) as usize;
    let y0 = top.max(0) as usize;
    let region = Region {
        x: x0,
        y: y0,
        width: ((left + out_w as i64).min(rw as i64) as usize).saturating_sub(x0),
        height: ((top + out_h as i64).min(rh as i64) as usize).saturating_sub(y0),
    };
    let filter = if img.resize_nearest {
        Filter::Nearest
    } else {
        cfg.filter
    };
    // Pillow resizes LA/RGBA premultiplied unless the filter is nearest.
    let premultiplied = img.mode.has_alpha() && filter != Filter::Nearest && (rw, rh) != (w, h);
    let pixels = if region.width == 0 || region.height == 0 {
        Vec::new()
    } else if premultiplied {
        let mut pre = img.data.clone();
        resample::premultiply(&mut pre, channels);
        let mut out = resample::resize_region(&pre, w, h, channels, (rw, rh), region, filter);
        resample::unpremultiply(&mut out, channels);
        out
    } else {
        resample::resize_region(&img.data, w, h, channels, (rw, rh), region, filter)
    };
    // Place the region in the (zero-padded) crop box, converting to RGB.
    let mut rgb = vec![0u8; out_w * out_h * 3];
    let (dx, dy) = ((x0 as i64 - left) as usize, (y0 as i64 - top) as usize);
    for y in 0..region.height {
        let src_row = &pixels[y * region.width * channels..][..region.width * channels];
        let dst_row = &mut rgb[((y + dy) * out_w + dx) * 3..][..region.width * 3];
        for (dst, px) in dst_row
            .chunks_exact_mut(3)
            .zip(src_row.chunks_exact(channels))
        {
            match img.mode {
                ColorMode::L | ColorMode::La => dst.fill(px[0]),
                ColorMode::Rgb | ColorMode::Rgba => dst.copy_from_slice(&px[..3]),
            }
        }
    }
    Rgb8 {
        width: out_w as u32,
        height: out_h as u32,
        data: rgb,
    }
}

/// Top-left corner of torchvision's `center_crop` in source coordinates (negative when the
/// crop is larger than the image and gets padded): `round((size_in - size_out) / 2)` with
/// Python's round-half-to-even, after torchvision's own padding of `(out - in) // 2`.
fn crop_origin(h: usize, w: usize, out_h: usize, out_w: usize) -> (i64, i64) {
    fn axis(size_in: usize, size_out: usize) -> i64 {
        if size_out > size_in {
            // torchvision pads (out - in) // 2 before and the rest after, then crops at 0.
            -(((size_out - size_in) / 2) as i64)
        } else {
            ((size_in - size_out) as f64 / 2.0).round_ties_even() as i64
        }
    }
    (axis(h, out_h), axis(w, out_w))
}

/// Scales and normalizes 8-bit RGB into the model's channel-major float input.
pub fn normalize(img: &Rgb8, cfg: &PreprocessConfig) -> Pixels {
    let (w, h) = (img.width as usize, img.height as usize);
    let n = w * h;
    let mut data = vec![0f32; 3 * n];
    let scale = |v: u8| -> f32 {
        match cfg.rescale_factor {
            // ToTensor divides by 255; multiplying by 1/255 would differ in the last bit.
            Some(f) if f == 1.0 / 255.0 => f32::from(v) / 255.0,
            Some(f) => f32::from(v) * f,
            None => f32::from(v),
        }
    };
    for c in 0..3 {
        let (mean, std) = cfg.normalize.map_or((0.0, 1.0), |(m, s)| (m[c], s[c]));
        let plane = &mut data[c * n..][..n];
        for (i, out) in plane.iter_mut().enumerate() {
            let v = scale(img.data[i * 3 + c]);
            *out = if cfg.normalize.is_some() {
                (v - mean) / std
            } else {
                v
            };
        }
    }
    Pixels {
        height: h,
        width: w,
        data,
    }
}

/// The whole transform: [`resize_and_crop`] then [`normalize`].
pub fn preprocess(img: &DecodedImage, cfg: &PreprocessConfig) -> Pixels {
    normalize(&resize_and_crop(img, cfg), cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_matches_torchvision() {
        assert_eq!(shortest_edge_size(640, 427, 224), (335, 224));
        assert_eq!(shortest_edge_size(427, 640, 224), (224, 335));
        assert_eq!(shortest_edge_size(512, 512, 224), (224, 224));
        assert_eq!(shortest_edge_size(1000, 872, 224), (256, 224));
    }

    #[test]
    fn crop_rounds_half_to_even() {
        // (335 - 224) / 2 = 55.5 -> 56; (225 - 224) / 2 = 0.5 -> 0; (227-224)/2 = 1.5 -> 2.
        assert_eq!(crop_origin(224, 335, 224, 224), (0, 56));
        assert_eq!(crop_origin(225, 224, 224, 224), (0, 0));
        assert_eq!(crop_origin(227, 224, 224, 224), (2, 0));
        assert_eq!(crop_origin(200, 224, 224, 224), (-12, 0));
    }

    #[test]
    fn reads_old_and_new_hf_configs() {
        let old = r#"{"crop_size": 224, "do_center_crop": true, "do_normalize": true,
            "do_resize": true, "feature_extractor_type": "CLIPFeatureExtractor",
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}"#;
        let new = r#"{"crop_size": {"height": 336, "width": 336}, "do_center_crop": true,
            "do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "image_processor_type": "CLIPImageProcessor", "resample": 3,
            "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}}"#;
        let a = PreprocessConfig::from_hf_json(old, "old").unwrap();
        assert_eq!(a, PreprocessConfig::openai(224));
        let b = PreprocessConfig::from_hf_json(new, "new").unwrap();
        assert_eq!(b.resize, Some(Resize::ShortestEdge(336)));
        assert_eq!(b.crop, Some((336, 336)));
        assert_eq!(b.normalize, Some(([0.5; 3], [0.5; 3])));
        for (json, needle) in [
            (r#"{"resample": 9}"#, "resample = 9"),
            (
                r#"{"size": {"longest_edge": 224}}"#,
                r#"size = {"longest_edge":224}"#,
            ),
            (r#"{"crop_size": 0}"#, "crop_size = 0"),
            (r#"{"crop_size": 1000000000}"#, "crop_size = 1000000000"),
            (r#"{"size": {"height": 5}}"#, r#"size = {"height":5}"#),
        ] {
            let bad = PreprocessConfig::from_hf_json(json, "cfg.json").unwrap_err();
            assert!(bad.to_string().contains(needle), "{json}: {bad}");
            assert!(bad.to_string().contains("cfg.json"), "{bad}");
        }
        let exact =
            PreprocessConfig::from_hf_json(r#"{"size": {"height": 5, "width": 7}}"#, "c").unwrap();
        assert_eq!(
            exact.resize,
            Some(Resize::Exact {
                height: 5,
                width: 7
            })
        );
    }

    #[test]
    fn normalize_is_totensor_then_normalize() {
        let img = Rgb8 {
            width: 1,
            height: 1,
            data: vec![0, 128, 255],
        };
        let p = normalize(&img, &PreprocessConfig::openai(1));
        let expect = [
            (0.0f32 / 255.0 - OPENAI_CLIP_MEAN[0]) / OPENAI_CLIP_STD[0],
            (128.0f32 / 255.0 - OPENAI_CLIP_MEAN[1]) / OPENAI_CLIP_STD[1],
            (255.0f32 / 255.0 - OPENAI_CLIP_MEAN[2]) / OPENAI_CLIP_STD[2],
        ];
        assert_eq!(p.data, expect);
    }
}
