//! Resampling that reproduces Pillow's `Image.resize` bit for bit on 8-bit images.
//!
//! CLIP's reference preprocessing (OpenAI `clip`, open_clip) resizes with Pillow's antialiased
//! bicubic filter. Generic resizers (including `fast_image_resize`, which follows Pillow-SIMD's
//! 16-bit coefficients) land one level away on a share of pixels, and that shift moves every
//! embedding a little. Exactness is the product here, so this module ports the arithmetic of
//! Pillow's `libImaging/Resample.c` (coefficients in `f64`, normalised to 22-bit fixed point,
//! horizontal pass to an 8-bit intermediate, then vertical pass) and the nearest-neighbour path
//! of `libImaging/Geometry.c` (`ImagingScaleAffine`), which Pillow uses for palette images.
//!
//! Images are interleaved `u8` buffers with `channels` samples per pixel; every channel is
//! filtered independently, exactly as Pillow does for its 8-bit modes.

/// Resampling filters, numbered as in Pillow's `Image.Resampling` (and in Hugging Face
/// `preprocessor_config.json` files' `resample` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `0`: nearest neighbour (Pillow also forces it for palette images).
    Nearest,
    /// `1`: Lanczos, support 3.
    Lanczos,
    /// `2`: bilinear (triangle), support 1.
    Bilinear,
    /// `3`: bicubic with a = -0.5, support 2: CLIP's filter.
    Bicubic,
    /// `4`: box, support 0.5.
    Box,
    /// `5`: Hamming, support 1.
    Hamming,
}

impl Filter {
    /// The filter with Pillow's number `n`, if there is one.
    pub fn from_pil(n: u32) -> Option<Filter> {
        Some(match n {
            0 => Filter::Nearest,
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            4 => Filter::Box,
            5 => Filter::Hamming,
            _ => return None,
        })
    }

    /// Pillow's number for this filter.
    pub fn pil_number(self) -> u32 {
        match self {
            Filter::Nearest => 0,
            Filter::Lanczos => 1,
            Filter::Bilinear => 2,
            Filter::Bicubic => 3,
            Filter::Box => 4,
            Filter::Hamming => 5,
        }
    }

    fn support(self) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Nearest | Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes these constants as C floats.
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// 8 bits of result, 2 bits of headroom for negative lobes and sums above one.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point filter taps for one axis: for output index `i`, source indices
/// `start[i] .. start[i] + len[i]` weighted by `taps[i * ksize ..]`.
struct Coeffs {
    ksize: usize,
    start: Vec<usize>,
    len: Vec<usize>,
    taps: Vec<i32>,
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the output indices
/// `outputs` of an axis resized from `in_size` to `out_size` (entry `i` is for index
/// `outputs.start + i`). Each output's taps depend only on its own index, so a sub-range gives
/// exactly the values of the full computation.
fn precompute(
    in_size: usize,
    out_size: usize,
    outputs: std::ops::Range<usize>,
    filter: Filter,
) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let count = outputs.len();
    let mut start = Vec::with_capacity(count);
    let mut len = Vec::with_capacity(count);
    let mut taps = vec![0i32; count * ksize];
    let mut weights = vec![0f64; ksize];
    let ss = 1.0 / filterscale;
    for (i, xx) in outputs.enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero; the result is clamped to the image.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, w) in weights.iter_mut().enumerate().take(n) {
            *w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            ww += *w;
        }
        for (x, w) in weights.iter().enumerate().take(n) {
            let k = if ww != 0.0 { w / ww } else { *w };
            let fixed = k * f64::from(1u32 << PRECISION_BITS);
            taps[i * ksize + x] = if k < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        start.push(xmin);
        len.push(n);
    }
    Coeffs {
        ksize,
        start,
        len,
        taps,
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// A rectangle of an image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

/// Resizes an interleaved 8-bit image to `out_w` x `out_h` exactly as Pillow's
/// `Image.resize((out_w, out_h), filter)` does for an 8-bit mode of `channels` bands.
pub fn resize(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out_w: usize,
    out_h: usize,
    filter: Filter,
) -> Vec<u8> {
    let all = Region {
        x: 0,
        y: 0,
        width: out_w,
        height: out_h,
    };
    resize_region(src, width, height, channels, (out_w, out_h), all, filter)
}

/// Like [`resize`] to `out = (width, height)`, but computes only the pixels of `region` of
/// the result (a crop of it, with exactly the values the full resize would have there). Work
/// and memory follow the region, so an extreme aspect ratio cannot blow up a center crop.
///
/// # Panics
/// If `src` does not hold `width * height * channels` samples or `region` is empty or not
/// inside the output.
pub fn resize_region(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out: (usize, usize),
    region: Region,
    filter: Filter,
) -> Vec<u8> {
    let (out_w, out_h) = out;
    assert_eq!(src.len(), width * height * channels, "buffer size mismatch");
    assert!(
        region.width > 0
            && region.height > 0
            && region.x + region.width <= out_w
            && region.y + region.height <= out_h,
        "region {region:?} outside {out_w}x{out_h}"
    );
    let cols = region.x..region.x + region.width;
    let rows = region.y..region.y + region.height;
    if out_w == width && out_h == height {
        // Pillow copies when the size already matches.
        return copy_window(src, width, channels, cols, rows);
    }
    if filter == Filter::Nearest {
        return resize_nearest(src, (width, height), channels, out, region);
    }
    let need_horizontal = out_w != width;
    let need_vertical = out_h != height;
    let vert = need_vertical.then(|| precompute(height, out_h, rows.clone(), filter));
    // Source rows the vertical pass reads (all of the region's rows when there is none).
    let src_rows = match &vert {
        Some(v) => v.start[0]..v.start[v.start.len() - 1] + v.len[v.len.len() - 1],
        None => rows.clone(),
    };
    let tmp_w = region.width;
    let tmp = if need_horizontal {
        let horiz = precompute(width, out_w, cols.clone(), filter);
        let mut out = vec![0u8; src_rows.len() * tmp_w * channels];
        let mut acc = [0i32; 4];
        for (y, sy) in src_rows.clone().enumerate() {
            let src_row = &src[sy * width * channels..][..width * channels];
            let dst_row = &mut out[y * tmp_w * channels..][..tmp_w * channels];
            for xx in 0..tmp_w {
                let k = &horiz.taps[xx * horiz.ksize..][..horiz.len[xx]];
                let base = horiz.start[xx];
                acc[..channels].fill(1 << (PRECISION_BITS - 1));
                for (x, &w) in k.iter().enumerate() {
                    let px = &src_row[(base + x) * channels..][..channels];
                    for c in 0..channels {
                        acc[c] += i32::from(px[c]) * w;
                    }
                }
                for c in 0..channels {
                    dst_row[xx * channels + c] = clip8(acc[c]);
                }
            }
        }
        out
    } else {
        copy_window(src, width, channels, cols, src_rows.clone())
    };
    let Some(vert) = vert else {
        return tmp;
    };
    let stride = tmp_w * channels;
    let mut out = vec![0u8; region.height * stride];
    let mut acc = vec![0i32; stride];
    for yy in 0..region.height {
        let k = &vert.taps[yy * vert.ksize..][..vert.len[yy]];
        let base = vert.start[yy] - src_rows.start;
        acc.fill(1 << (PRECISION_BITS - 1));
        for (y, &w) in k.iter().enumerate() {
            let row = &tmp[(base + y) * stride..][..stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * w;
            }
        }
        for (o, &a) in out[yy * stride..][..stride].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// The pixels of columns `cols` and rows `rows` of an image `width` pixels wide.
fn copy_window(
    src: &[u8],
    width: usize,
    channels: usize,
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(cols.len() * rows.len() * channels);
    for y in rows {
        out.extend_from_slice(&src[(y * width + cols.start) * channels..][..cols.len() * channels]);
    }
    out
}

/// Pillow's `ImagingScaleAffine`: nearest neighbour with positions accumulated in `f64`
/// from the pixel centres, as `Image.resize(..., NEAREST)` computes them.
fn resize_nearest(
    src: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    (out_w, out_h): (usize, usize),
    region: Region,
) -> Vec<u8> {
    // Source index of each output index in `range`, accumulated from 0 as Pillow does (the
    // sums must be the same floating-point values).
    let positions = |size_in: usize, size_out: usize, range: std::ops::Range<usize>| {
        let step = size_in as f64 / size_out as f64;
        let mut pos = step * 0.5;
        let mut out = Vec::with_capacity(range.len());
        for i in 0..range.end {
            if i >= range.start {
                // COORD(): negative means outside; then only indices inside the image.
                out.push(
                    (pos >= 0.0)
                        .then_some(pos as usize)
                        .filter(|&p| p < size_in),
                );
            }
            pos += step;
        }
        out
    };
    let xs = positions(width, out_w, region.x..region.x + region.width);
    let ys = positions(height, out_h, region.y..region.y + region.height);
    let stride = region.width * channels;
    let mut out = vec![0u8; region.height * stride];
    for (yy, y) in ys.iter().enumerate() {
        let Some(y) = y else { continue };
        let row = &src[y * width * channels..][..width * channels];
        let dst = &mut out[yy * stride..][..stride];
        for (xx, x) in xs.iter().enumerate() {
            if let Some(x) = x {
                dst[xx * channels..][..channels].copy_from_slice(&row[x * channels..][..channels]);
            }
        }
    }
    out
}

/// Pillow's `MULDIV255`: `round(a * b / 255)` in integers.
#[inline]
pub(crate) fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// Premultiplies colour by alpha in place (Pillow's `RGBA` to `RGBa` and `LA` to `La`), where
/// alpha is the last of `channels` samples.
pub(crate) fn premultiply(buf: &mut [u8], channels: usize) {
    for px in buf.chunks_exact_mut(channels) {
        let (color, alpha) = px.split_at_mut(channels - 1);
        for c in color {
            *c = muldiv255(*c, alpha[0]);
        }
    }
}

/// Undoes [`premultiply`] as Pillow's `RGBa` to `RGBA` conversion does (integer division,
/// fully transparent and opaque pixels left as they are).
pub(crate) fn unpremultiply(buf: &mut [u8], channels: usize) {
    for px in buf.chunks_exact_mut(channels) {
        let (color, alpha) = px.split_at_mut(channels - 1);
        let a = u32::from(alpha[0]);
        if a != 0 && a != 255 {
            for c in color {
                *c = ((255 * u32::from(*c)) / a).min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_weights_sum_to_one_in_fixed_point() {
        let c = precompute(640, 224, 0..224, Filter::Bicubic);
        for i in 0..224 {
            let s: i64 = c.taps[i * c.ksize..][..c.len[i]]
                .iter()
                .map(|&t| i64::from(t))
                .sum();
            assert!(
                (s - (1 << PRECISION_BITS)).abs() <= c.len[i] as i64,
                "{i}: {s}"
            );
        }
    }

    #[test]
    fn same_size_is_a_copy() {
        let src: Vec<u8> = (0..48).collect();
        assert_eq!(resize(&src, 4, 4, 3, 4, 4, Filter::Bicubic), src);
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![200u8; 37 * 23 * 3];
        for f in [
            Filter::Bicubic,
            Filter::Bilinear,
            Filter::Lanczos,
            Filter::Box,
            Filter::Hamming,
            Filter::Nearest,
        ] {
            let out = resize(&src, 37, 23, 3, 11, 9, f);
            assert!(out.iter().all(|&v| v == 200), "{f:?}");
            let out = resize(&src, 37, 23, 3, 80, 51, f);
            assert!(out.iter().all(|&v| v == 200), "{f:?}");
        }
    }

    #[test]
    fn a_region_equals_the_same_crop_of_the_full_resize() {
        let (w, h, ch) = (37usize, 23usize, 3usize);
        let src: Vec<u8> = (0..w * h * ch).map(|i| (i * 7919 % 251) as u8).collect();
        for filter in [
            Filter::Bicubic,
            Filter::Lanczos,
            Filter::Nearest,
            Filter::Box,
        ] {
            for (ow, oh) in [(80, 51), (11, 9), (37, 9), (80, 23)] {
                let full = resize(&src, w, h, ch, ow, oh, filter);
                let r = Region {
                    x: ow / 4,
                    y: oh / 3,
                    width: ow / 2,
                    height: oh / 2,
                };
                let part = resize_region(&src, w, h, ch, (ow, oh), r, filter);
                let expect = copy_window(&full, ow, ch, r.x..r.x + r.width, r.y..r.y + r.height);
                assert_eq!(part, expect, "{filter:?} {ow}x{oh}");
            }
        }
    }

    #[test]
    fn nearest_picks_pixel_centres() {
        // 4 -> 2 picks source pixels 1 and 3 (centres at 1.0 and 3.0).
        let src = [10u8, 20, 30, 40];
        assert_eq!(resize(&src, 4, 1, 1, 2, 1, Filter::Nearest), vec![20, 40]);
    }

    #[test]
    fn premultiply_round_trip_matches_pillow_rules() {
        let mut px = [200u8, 100, 50, 128];
        premultiply(&mut px, 4);
        assert_eq!(px, [100, 50, 25, 128]);
        unpremultiply(&mut px, 4);
        assert_eq!(px, [199, 99, 49, 128]);
        let mut clear = [0u8, 0, 0, 0];
        unpremultiply(&mut clear, 4);
        assert_eq!(clear, [0, 0, 0, 0]);
    }
}
