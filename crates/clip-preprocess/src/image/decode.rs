//! Decoding image files into upright 8-bit pixels, with limits checked before any large
//! allocation and every failure reported as a typed [`ImageError`] that names the input.
//!
//! The decoded image keeps the colour mode that Pillow would give the file (grey, grey+alpha,
//! RGB, RGBA, and whether it was a palette image), because the reference preprocessing resizes
//! in that mode before converting to RGB, and the mode changes the arithmetic: alpha is
//! premultiplied for the resize, and palette images are resized with nearest neighbour.
//!
//! Deliberate differences from Pillow, all documented in the README:
//! - EXIF orientation is applied (Pillow's `Image.open` ignores it), so photos are upright.
//! - 16-bit samples are reduced to their high byte for every mode. Pillow does the same for
//!   16-bit RGB/RGBA/LA PNGs, but clips 16-bit greyscale (`I;16`) to 255 instead, which turns
//!   most such photos white; we keep the picture.
//! - CMYK JPEGs are converted to RGB by the JPEG decoder before the resize (Pillow converts
//!   after it), which moves a few pixels by one level.

use std::io::{Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageFormat, ImageReader};

use crate::error::ImageError;

/// Bounds on what a decode may allocate. Checked against the header before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest accepted width x height.
    pub max_pixels: u64,
    /// Largest buffer, in bytes, that the decoder may allocate for one image.
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    /// 16384 x 16384 at most, 100 megapixels, 1 GiB of decoder memory.
    fn default() -> Self {
        DecodeLimits {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 100_000_000,
            max_alloc_bytes: 1 << 30,
        }
    }
}

/// The largest pixel budget [`DecodeLimits::with_max_megapixels`] takes, in megapixels.
pub const MAX_MEGAPIXELS: f64 = 10_000.0;

/// The most memory a pixel budget lets one decode take for its image buffer (4 GiB): an image
/// whose decode needs more is refused on its header whatever the budget (a JPEG decoded at a
/// reduced size counts the reduced buffer).
pub const MAX_DECODE_BYTES: u64 = 4 << 30;

impl DecodeLimits {
    /// These limits with a pixel budget of `megapixels` million pixels (at most
    /// [`MAX_MEGAPIXELS`]) in place of the limit on each side: a panorama of 20000 x 2000 (40
    /// megapixels) passes `with_max_megapixels(100.0)`, a 14000 x 14000 square (196
    /// megapixels) does not. The decoder memory grows with the budget when it must (8 bytes a
    /// pixel, enough for 16-bit RGBA) up to [`MAX_DECODE_BYTES`], and stays at least what it
    /// was. Every limit is still checked on the header, before the image's buffer is
    /// allocated, so an image the budget lets in whose buffer is over the memory limit is
    /// refused (a JPEG decoded at a reduced size needs only its reduced buffer). A budget that
    /// is not a positive number keeps the limits as they are.
    pub fn with_max_megapixels(self, megapixels: f64) -> DecodeLimits {
        if !(megapixels.is_finite() && megapixels > 0.0) {
            return self;
        }
        let max_pixels = (megapixels.min(MAX_MEGAPIXELS) * 1e6) as u64;
        DecodeLimits {
            max_width: u32::MAX,
            max_height: u32::MAX,
            max_pixels: max_pixels.max(1),
            max_alloc_bytes: self
                .max_alloc_bytes
                .max(max_pixels.saturating_mul(8).min(MAX_DECODE_BYTES)),
        }
    }
}

/// File name extensions of the formats this module decodes, in lower case: what walks of
/// folders take for images (the format itself is always sniffed from the content). Each one
/// is an extension the `image` crate gives a format that [`decode`] accepts, which a test
/// checks, so the walker never picks up a file the decoder cannot read by design.
pub const IMAGE_EXTENSIONS: [&str; 15] = [
    "jpg", "jpeg", "jfif", "png", "apng", "webp", "gif", "bmp", "tif", "tiff", "ppm", "pgm", "pbm",
    "pnm", "pam",
];

/// Whether `extension` (without the dot, any case) is one of [`IMAGE_EXTENSIONS`].
pub fn is_image_extension(extension: &str) -> bool {
    IMAGE_EXTENSIONS
        .iter()
        .any(|e| e.eq_ignore_ascii_case(extension))
}

/// Colour mode of decoded pixels, named after Pillow's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColorMode {
    /// One grey sample per pixel (`L`).
    L,
    /// Grey and alpha (`LA`).
    La,
    /// Red, green, blue (`RGB`).
    Rgb,
    /// Red, green, blue, alpha (`RGBA`).
    Rgba,
}

impl ColorMode {
    /// Samples per pixel.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::L => 1,
            ColorMode::La => 2,
            ColorMode::Rgb => 3,
            ColorMode::Rgba => 4,
        }
    }

    /// Whether the last sample is alpha.
    pub fn has_alpha(self) -> bool {
        matches!(self, ColorMode::La | ColorMode::Rgba)
    }
}

/// An upright image with 8-bit samples, interleaved, row by row.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// How samples are laid out.
    pub mode: ColorMode,
    /// `width * height * mode.channels()` samples.
    pub data: Vec<u8>,
    /// Pillow would hold this file as palette indices (mode `P`) or bilevel (mode `1`), and
    /// resizes such images with nearest neighbour whatever filter is asked for.
    pub resize_nearest: bool,
    /// The container format, sniffed from the content.
    pub format: ImageFormat,
}

impl std::fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("mode", &self.mode)
            .field("resize_nearest", &self.resize_nearest)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Formats we accept; the rest of the `image` crate's formats are not compiled in.
fn format_name(format: ImageFormat) -> Option<&'static str> {
    Some(match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Pnm => "PNM",
        _ => return None,
    })
}

/// Reads and decodes the image file at `path`. A file over `limits.max_alloc_bytes` is refused
/// unread (a pipe once it passes that), and one whose first bytes are not a supported image
/// after reading just those. Folders that walk for images leave FIFOs and devices out; this
/// reads one named on purpose, such as `/dev/stdin`.
pub fn open(path: &Path, limits: &DecodeLimits) -> Result<DecodedImage, ImageError> {
    open_reduced(path, limits, None)
}

/// [`open`] with the reduction of [`decode_reduced`].
pub fn open_reduced(
    path: &Path,
    limits: &DecodeLimits,
    at_least: Option<(u32, u32)>,
) -> Result<DecodedImage, ImageError> {
    let name = path.display().to_string();
    let io = |error| ImageError::Io {
        source_name: name.clone(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a folder, not an image file",
        )));
    }
    // A pipe named on purpose (`/dev/stdin`, `<(…)`) is read too, up to the limit.
    if meta.is_file() {
        check_file_size(meta.len(), &name, limits)?;
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    (&mut file).take(64).read_to_end(&mut bytes).map_err(io)?;
    if sniff(&bytes).is_none() {
        if bytes.is_empty() {
            return Err(ImageError::Empty { source_name: name });
        }
        // Only the head was read: the size is the file's (unknown for a pipe).
        return Err(ImageError::UnsupportedFormat {
            detected: describe_content(&bytes, meta.is_file().then_some(meta.len())),
            source_name: name,
        });
    }
    file.take(limits.max_alloc_bytes.saturating_sub(63))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_file_size(bytes.len() as u64, &name, limits)?;
    decode_reduced(&bytes, &name, limits, at_least)
}

/// The upright width and height of the image file at `path` (EXIF orientation applied, as
/// [`open`] decodes it), from its header: no pixels are decoded. The format is sniffed from
/// the content. Most formats are read only as far as their header; a JPEG's decoder reads the
/// whole file, but decodes nothing.
pub fn dimensions(path: &Path) -> Result<(u32, u32), ImageError> {
    let name = path.display().to_string();
    let io = |error| ImageError::Io {
        source_name: name.clone(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().ok().map(|m| m.len());
    let mut file = std::io::BufReader::new(file);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(io)?;
    let head = &head[..head.len().min(64)];
    if head.is_empty() {
        return Err(ImageError::Empty { source_name: name });
    }
    let format = sniff(head).ok_or_else(|| ImageError::UnsupportedFormat {
        source_name: name.clone(),
        detected: describe_content(head, size),
    })?;
    let fname = format_name(format).unwrap_or("image");
    guarded(&name, fname, || {
        let mut decoder = ImageReader::with_format(file, format)
            .into_decoder()
            .map_err(|e| map_image_error(e, &name, fname, (0, 0)))?;
        let (width, height) = decoder.dimensions();
        use image::metadata::Orientation as O;
        let turned = matches!(
            decoder.orientation(),
            Ok(O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH)
        );
        Ok(if turned {
            (height, width)
        } else {
            (width, height)
        })
    })
}

/// Refuses a file bigger than any image `limits` allow, before it is read.
pub fn check_file_size(
    bytes: u64,
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<(), ImageError> {
    if bytes > limits.max_alloc_bytes {
        return Err(ImageError::FileTooLarge {
            source_name: source_name.to_string(),
            bytes,
            limit: limits.max_alloc_bytes,
        });
    }
    Ok(())
}

/// The supported format the first bytes (64 are plenty) announce, if any.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    image::guess_format(bytes)
        .ok()
        .filter(|f| format_name(*f).is_some())
}

/// Decodes an in-memory image file. `source_name` (a path or a label such as `upload`) is
/// quoted in errors. The format is sniffed from the content, never from a file name.
pub fn decode(
    bytes: &[u8],
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<DecodedImage, ImageError> {
    decode_reduced(bytes, source_name, limits, None)
}

/// Like [`decode`], but an image over the default limits (one that only a pixel budget such
/// as [`DecodeLimits::with_max_megapixels`] lets in) may come out smaller, as long as it stays
/// at least `at_least` = (width, height) once upright: a JPEG is then decoded at 1/2, 1/4 or
/// 1/8 of its size by DCT scaling, so a 20000 x 2000 panorama needs the memory of 2500 x 250
/// pixels. Images within the default limits, other formats and CMYK JPEGs decode as
/// [`decode`] gives them (the reference's pixels). `None` never reduces.
pub fn decode_reduced(
    bytes: &[u8],
    source_name: &str,
    limits: &DecodeLimits,
    at_least: Option<(u32, u32)>,
) -> Result<DecodedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty {
            source_name: source_name.to_string(),
        });
    }
    let format = sniff(bytes).ok_or_else(|| ImageError::UnsupportedFormat {
        source_name: source_name.to_string(),
        detected: describe_content(bytes, Some(bytes.len() as u64)),
    })?;
    let fname = format_name(format).unwrap_or("image");
    guarded(source_name, fname, || {
        decode_format(bytes, format, fname, source_name, limits, at_least)
    })
}

/// Runs a decoder, turning a panic inside it into [`ImageError::DecoderPanicked`] so that one
/// bad file fails alone and the process goes on.
fn guarded<T>(
    source_name: &str,
    format: &str,
    decode: impl FnOnce() -> Result<T, ImageError>,
) -> Result<T, ImageError> {
    catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|_| {
        Err(ImageError::DecoderPanicked {
            source_name: source_name.to_string(),
            format: format.to_string(),
        })
    })
}

fn decode_format(
    bytes: &[u8],
    format: ImageFormat,
    fname: &str,
    source_name: &str,
    limits: &DecodeLimits,
    at_least: Option<(u32, u32)>,
) -> Result<DecodedImage, ImageError> {
    // Our JPEG decoder fills in what a truncated file lacks; Pillow refuses it ("image file is
    // truncated"), and a half-copied photo should fail, not be indexed grey.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Malformed {
            source_name: source_name.to_string(),
            format: fname.to_string(),
            detail: "truncated: the file ends before the image's end marker".into(),
        });
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| map_image_error(e, source_name, fname, (0, 0)))?;
    let (width, height) = decoder.dimensions();
    let malformed = |e: image::ImageError| map_image_error(e, source_name, fname, (width, height));
    // A corrupt or missing EXIF block means "no rotation", never a failure.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let original = decoder.original_color_type();
    let default = DecodeLimits::default();
    let over_default = width > default.max_width
        || height > default.max_height
        || u64::from(width) * u64::from(height) > default.max_pixels;
    // Only grey and RGB JPEGs have the scaled decode; CMYK and others are decoded whole.
    let reducible = format == ImageFormat::Jpeg
        && matches!(original, ExtendedColorType::L8 | ExtendedColorType::Rgb8);
    let scale = match at_least {
        Some((w, h)) if reducible && over_default => {
            // The sides before the EXIF rotation.
            let (w, h) = if swaps_sides(orientation) {
                (h, w)
            } else {
                (w, h)
            };
            jpeg_scale(width, height, (w, h))
        }
        _ => None,
    };
    // The buffer this decode allocates, checked on every path before it is: the image
    // crate's own limits are best-effort (some decoders allocate the whole image unchecked).
    let buffer = match scale {
        Some(eighths) => {
            let side = |len: u32| (u64::from(len) * u64::from(eighths)).div_ceil(8);
            let channels = if original == ExtendedColorType::L8 {
                1
            } else {
                3
            };
            side(width) * side(height) * channels
        }
        None => decoder.total_bytes(),
    };
    check_limits(width, height, buffer, source_name, fname, limits)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    decoder.set_limits(image_limits).map_err(malformed)?;
    let hints = pillow_hints(bytes, format, original);
    let mut img = match scale.map(|s| decode_jpeg_scaled(bytes, s, limits)) {
        Some(Ok(Some(img))) => img,
        Some(Err(detail)) => {
            return Err(ImageError::Malformed {
                source_name: source_name.to_string(),
                format: fname.to_string(),
                detail,
            })
        }
        // The scaled path declined after all: decoded whole, if the whole fits.
        Some(Ok(None)) => {
            check_limits(
                width,
                height,
                decoder.total_bytes(),
                source_name,
                fname,
                limits,
            )?;
            DynamicImage::from_decoder(decoder).map_err(malformed)?
        }
        None => DynamicImage::from_decoder(decoder).map_err(malformed)?,
    };
    img.apply_orientation(orientation);
    // A quarter turn swaps the sides.
    let (width, height) = (img.width(), img.height());
    let (mut mode, mut data) = into_pillow_mode(img, source_name, fname)?;
    if hints.drop_alpha && mode.has_alpha() {
        (mode, data) = drop_alpha(mode, &data);
    }
    Ok(DecodedImage {
        width,
        height,
        mode,
        data,
        resize_nearest: hints.nearest,
        format,
    })
}

/// Whether an EXIF orientation turns the image a quarter (width and height swap).
fn swaps_sides(orientation: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation as O;
    matches!(
        orientation,
        O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH
    )
}

/// The DCT scale (1, 2 or 4 eighths) at which a `width` x `height` JPEG still gives at least
/// `at_least` pixels each way, if it is less than the full size.
fn jpeg_scale(width: u32, height: u32, (min_w, min_h): (u32, u32)) -> Option<u32> {
    let scaled = |len: u32, eighths: u32| (u64::from(len) * u64::from(eighths)).div_ceil(8);
    [1, 2, 4]
        .into_iter()
        .find(|&s| scaled(width, s) >= u64::from(min_w) && scaled(height, s) >= u64::from(min_h))
}

/// Decodes a JPEG at `eighths`/8 of its size (its header already checked against `limits`).
/// `Ok(None)` for colour models left to the full decoder (CMYK, 16-bit grey).
fn decode_jpeg_scaled(
    bytes: &[u8],
    eighths: u32,
    limits: &DecodeLimits,
) -> Result<Option<DynamicImage>, String> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX),
    );
    decoder.read_info().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("no frame header")?;
    if !matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::RGB24
    ) {
        return Ok(None);
    }
    let side = |len: u16| {
        let scaled = (u32::from(len) * eighths).div_ceil(8);
        u16::try_from(scaled).unwrap_or(u16::MAX)
    };
    let (w, h) = decoder
        .scale(side(info.width), side(info.height))
        .map_err(|e| e.to_string())?;
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let (w, h) = (u32::from(w), u32::from(h));
    let len = pixels.len();
    let bad = || format!("the scaled decoder gave {len} bytes for {w}x{h}");
    Ok(Some(match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(bad)?)
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(bad)?),
    }))
}

/// What the mode Pillow gives a file implies beyond its decoded pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PillowHints {
    /// Mode `P` or `1`: resized with nearest neighbour.
    nearest: bool,
    /// The decoder made an alpha channel that Pillow's mode lacks (a palette's or a PNG
    /// `tRNS` transparent colour): Pillow keeps `P` / `L` / `RGB` and `convert("RGB")` ignores
    /// the transparency, so the colours under it count.
    drop_alpha: bool,
}

/// Whether a JPEG's bytes hold its end-of-image marker: the segments are followed from the
/// start, through each scan's entropy-coded data, as a decoder reads them, so bytes appended
/// after the image (phone cameras append videos and metadata) and embedded thumbnails do not
/// count. Garbage between segments is skipped as libjpeg does.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    // Not shortcut by the last two bytes: a cut image with a whole one appended ends well.
    let mut i = 2; // after SOI
    loop {
        // The next marker: 0xFF (fill bytes allowed), then its code.
        let Some(at) = memchr::memchr(0xFF, bytes.get(i..).unwrap_or(&[])) else {
            return false;
        };
        i += at;
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&code) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match code {
            0xD9 => return true,
            // A new start before the end: another image appended to a cut one.
            0xD8 => return false,
            // Markers without a length.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes.get(i..i + 2) else {
            return false;
        };
        i += usize::from(u16::from_be_bytes([len[0], len[1]]));
        if code == 0xDA {
            // Entropy-coded data up to the next marker that is neither a stuffed 0xFF00 nor
            // a restart marker.
            loop {
                let Some(at) = memchr::memchr(0xFF, bytes.get(i..).unwrap_or(&[])) else {
                    return false;
                };
                i += at;
                match bytes.get(i + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Reads from the header what the decoders do not report (they expand palettes, bit depths
/// and transparent colours).
fn pillow_hints(bytes: &[u8], format: ImageFormat, original: ExtendedColorType) -> PillowHints {
    match format {
        ImageFormat::Png => {
            // IHDR: bit depth at byte 24, colour type at 25 (0 grey, 2 RGB, 3 indexed).
            let (depth, color) = (bytes.get(24).copied(), bytes.get(25).copied());
            PillowHints {
                nearest: color == Some(3) || (color == Some(0) && depth == Some(1)),
                drop_alpha: matches!(color, Some(0 | 2 | 3)),
            }
        }
        // Every GIF frame is palette based.
        ImageFormat::Gif => PillowHints {
            nearest: true,
            drop_alpha: true,
        },
        // BITMAPINFOHEADER bit count at byte 28; up to 8 bits per pixel uses a colour table.
        ImageFormat::Bmp => {
            let palette = bytes
                .get(28..30)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .is_some_and(|bits| (1..=8).contains(&bits));
            PillowHints {
                nearest: palette,
                drop_alpha: palette,
            }
        }
        ImageFormat::Tiff => PillowHints {
            nearest: original == ExtendedColorType::L1,
            drop_alpha: false,
        },
        // PBM (P1 plain, P4 raw) is bilevel: Pillow's mode `1`.
        ImageFormat::Pnm => PillowHints {
            nearest: bytes.starts_with(b"P1") || bytes.starts_with(b"P4"),
            drop_alpha: false,
        },
        _ => PillowHints::default(),
    }
}

/// The samples without their last (alpha) channel.
fn drop_alpha(mode: ColorMode, data: &[u8]) -> (ColorMode, Vec<u8>) {
    let (to, keep) = match mode {
        ColorMode::La => (ColorMode::L, 1),
        ColorMode::Rgba => (ColorMode::Rgb, 3),
        other => return (other, data.to_vec()),
    };
    let step = mode.channels();
    let out = data
        .chunks_exact(step)
        .flat_map(|px| &px[..keep])
        .copied()
        .collect();
    (to, out)
}

/// Checks a `width` x `height` image of format `format`, whose decode allocates a buffer of
/// `buffer` bytes, against `limits`.
fn check_limits(
    width: u32,
    height: u32,
    buffer: u64,
    source_name: &str,
    format: &str,
    limits: &DecodeLimits,
) -> Result<(), ImageError> {
    // What the largest budget allows: any sides, MAX_MEGAPIXELS, MAX_DECODE_BYTES.
    let pixels = u64::from(width) * u64::from(height);
    let budget_helps = pixels as f64 <= MAX_MEGAPIXELS * 1e6
        && buffer <= MAX_DECODE_BYTES.max(limits.max_alloc_bytes);
    let too_large = |limit: String| ImageError::TooLarge {
        source_name: source_name.to_string(),
        width,
        height,
        limit,
        budget_helps,
    };
    if width == 0 || height == 0 {
        return Err(ImageError::Malformed {
            source_name: source_name.to_string(),
            format: format.to_string(),
            detail: format!("header gives an empty size {width}x{height}"),
        });
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(too_large(format!(
            "at most {}x{}",
            limits.max_width, limits.max_height
        )));
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(too_large(format!(
            "at most {} megapixels",
            limits.max_pixels as f64 / 1e6
        )));
    }
    if buffer > limits.max_alloc_bytes {
        return Err(too_large(format!(
            "at most {} MiB of decoded pixels, and it needs {} MiB",
            limits.max_alloc_bytes >> 20,
            buffer.div_ceil(1 << 20)
        )));
    }
    Ok(())
}

fn map_image_error(
    e: image::ImageError,
    source_name: &str,
    format: &str,
    (width, height): (u32, u32),
) -> ImageError {
    match e {
        // The image crate's own limits, met after ours passed: no advice to raise a budget.
        image::ImageError::Limits(l) => ImageError::TooLarge {
            source_name: source_name.to_string(),
            width,
            height,
            limit: l.to_string(),
            budget_helps: false,
        },
        image::ImageError::Unsupported(u) => ImageError::UnsupportedColor {
            source_name: source_name.to_string(),
            format: format.to_string(),
            color: u.to_string(),
        },
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Malformed {
                source_name: source_name.to_string(),
                format: format.to_string(),
                detail: "the file ends early (truncated)".to_string(),
            }
        }
        other => ImageError::Malformed {
            source_name: source_name.to_string(),
            format: format.to_string(),
            detail: decoder_detail(&other.to_string()),
        },
    }
}

/// A decoder's error text as a user reads it: without the `Format error decoding Png: ` that
/// the message already says, and with the PNG decoder's debug dumps of chunk types
/// (`ChunkType { type: IDAT, critical: true, … }`) as the chunk's name (`IDAT`).
fn decoder_detail(text: &str) -> String {
    static PREFIX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^Format error decoding [A-Za-z0-9]+: ").expect("a valid pattern")
    });
    static CHUNK: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"ChunkType \{ type: ([^,}]+)(, [^}]*)? \}").expect("a valid pattern")
    });
    let text = PREFIX.replace(text, "");
    CHUNK.replace_all(&text, "$1").into_owned()
}

/// Converts to the mode Pillow would hold, with 8-bit samples (see the module docs).
fn into_pillow_mode(
    img: DynamicImage,
    source_name: &str,
    format: &str,
) -> Result<(ColorMode, Vec<u8>), ImageError> {
    fn high_bytes(samples: &[u16]) -> Vec<u8> {
        samples.iter().map(|&v| (v >> 8) as u8).collect()
    }
    fn float_bytes(samples: &[f32]) -> Vec<u8> {
        samples
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    }
    Ok(match img {
        DynamicImage::ImageLuma8(b) => (ColorMode::L, b.into_raw()),
        DynamicImage::ImageLumaA8(b) => (ColorMode::La, b.into_raw()),
        DynamicImage::ImageRgb8(b) => (ColorMode::Rgb, b.into_raw()),
        DynamicImage::ImageRgba8(b) => (ColorMode::Rgba, b.into_raw()),
        DynamicImage::ImageLuma16(b) => (ColorMode::L, high_bytes(b.as_raw())),
        DynamicImage::ImageLumaA16(b) => (ColorMode::La, high_bytes(b.as_raw())),
        DynamicImage::ImageRgb16(b) => (ColorMode::Rgb, high_bytes(b.as_raw())),
        DynamicImage::ImageRgba16(b) => (ColorMode::Rgba, high_bytes(b.as_raw())),
        DynamicImage::ImageRgb32F(b) => (ColorMode::Rgb, float_bytes(b.as_raw())),
        DynamicImage::ImageRgba32F(b) => (ColorMode::Rgba, float_bytes(b.as_raw())),
        other => {
            return Err(ImageError::UnsupportedColor {
                source_name: source_name.to_string(),
                format: format.to_string(),
                color: format!("{:?}", other.color()),
            })
        }
    })
}

/// A short description of what unrecognised bytes look like, for the error message, from
/// the first bytes (`bytes`; the first 64 are looked at) and the size of the whole input
/// when it is known.
fn describe_content(bytes: &[u8], size: Option<u64>) -> String {
    let head = &bytes[..bytes.len().min(64)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = text.trim_start();
    let kind = if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") {
        Some("is HTML".to_string())
    } else if trimmed.starts_with("<svg") || (trimmed.starts_with("<?xml") && text.contains("svg"))
    {
        Some("is SVG (vector images are not supported)".to_string())
    } else if trimmed.starts_with("<?xml") {
        Some("is XML".to_string())
    } else if head.starts_with(b"%PDF") {
        Some("is PDF".to_string())
    } else {
        plain_text(head).map(|start| format!("is text: {start:?}"))
    };
    let size = match size {
        Some(1) => " (1 byte in all)".to_string(),
        Some(n) => format!(" ({n} bytes in all)"),
        None => String::new(),
    };
    match kind {
        Some(k) => k,
        None => {
            let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("starts with bytes {}{size}", hex.join(" "))
        }
    }
}

/// The start of `head`'s first line (at most 40 characters) when `head` reads as text: UTF-8
/// (a character cut at the end aside) without control characters other than whitespace.
fn plain_text(head: &[u8]) -> Option<String> {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // A character cut by the 64-byte limit is not a reason to call it binary.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let text = valid.strip_prefix('\u{feff}').unwrap_or(valid);
    let is_text = !text.trim().is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0c'));
    if !is_text {
        return None;
    }
    let line = text.trim_start().lines().next().unwrap_or_default();
    let mut start: String = line.chars().take(40).collect();
    if start.len() < line.len() {
        start.push('…');
    }
    Some(start)
}

impl ImageError {
    /// Whether a larger pixel budget would let this input in: an image over the side or
    /// pixel limits whose decode fits [`MAX_DECODE_BYTES`],
    /// or a file over the size limit that a budget's larger memory would read. False for
    /// every other error.
    pub fn budget_helps(&self) -> bool {
        match self {
            ImageError::TooLarge { budget_helps, .. } => *budget_helps,
            ImageError::FileTooLarge { bytes, .. } => *bytes <= MAX_DECODE_BYTES,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PNG decoder's debug dump of a chunk type reads as the chunk's name, and the
    /// decoder's "Format error decoding Png: " is dropped (the message says "malformed PNG").
    #[test]
    fn decoder_errors_read_as_text() {
        assert_eq!(
            decoder_detail(
                "Format error decoding Png: CRC error: expected 0x1267d145 have 0xed67d145 while \
                 decoding ChunkType { type: IDAT, critical: true, private: false, reserved: \
                 false, safecopy: false } chunk."
            ),
            "CRC error: expected 0x1267d145 have 0xed67d145 while decoding IDAT chunk."
        );
        assert_eq!(
            decoder_detail("Chunk ChunkType { type: tRNS } must appear at most once."),
            "Chunk tRNS must appear at most once."
        );
        assert_eq!(decoder_detail("no dumps here"), "no dumps here");
    }

    #[test]
    fn unsupported_content_is_described() {
        let text =
            b"hello, world\nthis is a plain text file that goes on for well over sixty-four bytes";
        assert_eq!(
            describe_content(text, Some(1000)),
            "is text: \"hello, world\""
        );
        let long = b"a first line of text that is longer than forty characters, surely";
        assert_eq!(
            describe_content(long, None),
            "is text: \"a first line of text that is longer than\u{2026}\""
        );
        // A character cut by the 64-byte head is still text.
        let mut cut = "é".repeat(40).into_bytes();
        cut.truncate(63);
        assert!(describe_content(&cut, None).starts_with("is text"));
        // Binary: the first bytes and the size of the whole file, not of the head.
        let binary = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(
            describe_content(&binary, Some(70_000)),
            "starts with bytes 00 01 02 03 04 05 06 07 (70000 bytes in all)"
        );
        assert_eq!(
            describe_content(&binary[..1], Some(1)),
            "starts with bytes 00 (1 byte in all)"
        );
        assert_eq!(
            describe_content(&binary, None),
            "starts with bytes 00 01 02 03 04 05 06 07"
        );
        assert_eq!(describe_content(b"%PDF-1.7", Some(9)), "is PDF");
    }

    #[test]
    fn a_panicking_decoder_fails_only_its_file() {
        let result: Result<(), ImageError> =
            guarded("photos/poison.png", "PNG", || panic!("decoder bug"));
        let err = result.unwrap_err();
        assert!(matches!(err, ImageError::DecoderPanicked { .. }), "{err:?}");
        assert!(err.to_string().contains("photos/poison.png"), "{err}");
        // The next file decodes normally.
        assert_eq!(guarded("ok.png", "PNG", || Ok(7)).unwrap(), 7);
    }

    #[test]
    fn the_walkers_extensions_are_the_decoders_formats() {
        for ext in IMAGE_EXTENSIONS {
            let format = ImageFormat::from_extension(ext)
                .unwrap_or_else(|| panic!("{ext}: the image crate knows no such extension"));
            assert!(
                format_name(format).is_some(),
                "{ext}: {format:?} is not decoded"
            );
        }
        // And the other way: every extension of every decoded format is listed.
        for format in ImageFormat::all().filter(|f| format_name(*f).is_some()) {
            for ext in format.extensions_str() {
                assert!(is_image_extension(ext), "{format:?}: .{ext} is not listed");
            }
        }
        assert!(is_image_extension("JPG") && !is_image_extension("heic"));
    }

    #[test]
    fn a_pixel_budget_replaces_the_side_limit() {
        let limits = DecodeLimits::default().with_max_megapixels(50.0);
        assert_eq!(limits.max_pixels, 50_000_000);
        let check = |w, h, limits: &DecodeLimits| check_limits(w, h, 0, "pano", "PNG", limits);
        assert!(check(20_000, 2_000, &limits).is_ok());
        assert!(check(20_000, 2_000, &DecodeLimits::default()).is_err());
        // A long thin bomb is still over the budget.
        assert!(check(u32::MAX, 1, &limits).is_err());
        assert!(check(8_000, 8_000, &limits).is_err());
        assert_eq!(
            DecodeLimits::default().with_max_megapixels(f64::NAN),
            DecodeLimits::default()
        );
        // The decoder memory follows a budget over 1 GiB at 8 bytes a pixel.
        let big = DecodeLimits::default().with_max_megapixels(500.0);
        assert_eq!(big.max_alloc_bytes, 4_000_000_000);
        // No budget takes a decode's memory over MAX_DECODE_BYTES, nor the pixels over
        // MAX_MEGAPIXELS.
        let largest = DecodeLimits::default().with_max_megapixels(1e9);
        assert_eq!(largest.max_alloc_bytes, MAX_DECODE_BYTES);
        assert_eq!(largest.max_pixels, 10_000_000_000);
    }

    #[test]
    fn the_memory_cap_holds_whatever_the_budget_and_says_whether_a_budget_helps() {
        let largest = DecodeLimits::default().with_max_megapixels(MAX_MEGAPIXELS);
        let rgb = |w: u32, h: u32| u64::from(w) * u64::from(h) * 3;
        // 10^10 pixels of RGB: inside the pixel budget, over the memory cap.
        let err = check_limits(
            100_000,
            100_000,
            rgb(100_000, 100_000),
            "bomb.ppm",
            "PNM",
            &largest,
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { .. }), "{err:?}");
        assert!(!err.budget_helps(), "{err}");
        assert!(err.to_string().contains("28611 MiB"), "{err}");
        // Under the default limits, the same bomb is over the sides, and no budget helps.
        let err = check_limits(
            100_000,
            100_000,
            rgb(100_000, 100_000),
            "bomb.ppm",
            "PNM",
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(!err.budget_helps(), "{err}");
        // A panorama over the sides whose buffer fits the cap: a budget helps.
        let err = check_limits(
            40_000,
            4_000,
            rgb(40_000, 4_000),
            "pano.png",
            "PNG",
            &DecodeLimits::default(),
        )
        .unwrap_err();
        assert!(err.budget_helps(), "{err}");
        // A JPEG decoded at an eighth needs only the eighth: let in by the largest budget.
        assert!(check_limits(
            65_000,
            65_000,
            rgb(8_125, 8_125),
            "big.jpg",
            "JPEG",
            &largest
        )
        .is_ok());
        // An empty size names the format once.
        let err = check_limits(0, 0, 0, "empty.ppm", "PNM", &largest).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("malformed PNM image: header gives an empty size 0x0"),
            "{err}"
        );
    }

    #[test]
    fn pillow_modes_are_read_from_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x03".to_vec();
        let hints = |png: &[u8]| pillow_hints(png, ImageFormat::Png, ExtendedColorType::L8);
        assert_eq!(
            hints(&png),
            PillowHints {
                nearest: true,
                drop_alpha: true
            }
        );
        png[25] = 6; // RGBA: a real alpha channel
        assert_eq!(hints(&png), PillowHints::default());
        (png[24], png[25]) = (1, 0); // bilevel
        assert_eq!(
            hints(&png),
            PillowHints {
                nearest: true,
                drop_alpha: true
            }
        );
        let gif = pillow_hints(b"GIF89a", ImageFormat::Gif, ExtendedColorType::Rgba8);
        assert!(gif.nearest && gif.drop_alpha);
        let tiff = pillow_hints(b"II*\0", ImageFormat::Tiff, ExtendedColorType::L1);
        assert!(tiff.nearest);
        assert_eq!(
            drop_alpha(ColorMode::La, &[1, 2, 3, 4]),
            (ColorMode::L, vec![1, 3])
        );
    }
}
