//! Image side of CLIP: decoding with limits, Pillow-exact resampling, the CLIP transform.
pub mod decode;
pub mod encode;
pub mod resample;
pub mod transform;

pub use ::image::ImageFormat;
pub use decode::{
    decode, decode_reduced, is_image_extension, open, open_reduced, ColorMode, DecodeLimits,
    DecodedImage, IMAGE_EXTENSIONS,
};
pub use encode::write_png_rgb;
pub use resample::Filter;
pub use transform::{preprocess, resize_and_crop, Pixels, PreprocessConfig, Resize, Rgb8};
