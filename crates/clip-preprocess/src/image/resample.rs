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

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`.
fn precompute(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut start = Vec::with_capacity(out_size);
    let mut len = Vec::with_capacity(out_size);
    let mut taps = vec![0i32; out_size * ksize];
    let mut weights = vec![0f64; ksize];
    let ss = 1.0 / filterscale;
    for xx in 0..out_size {
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
            taps[xx * ksize + x] = if k < 0.0 {
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

/// Resizes an interleaved 8-bit image to `out_w` x `out_h` exactly as Pillow's
/// `Image.resize((out_w, out_h), filter)` does for an 8-bit mode of `channels` bands.
///
/// Returns the input unchanged when the size already matches (Pillow copies in that case).
pub fn resize(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out_w: usize,
    out_h: usize,
    filter: Filter,
) -> Vec<u8> {
    assert_eq!(src.len(), width * height * channels, "buffer size mismatch");
    assert!(out_w > 0 && out_h > 0, "empty output size");
    if out_w == width && out_h == height {
        return src.to_vec();
    }
    if filter == Filter::Nearest {
        return resize_nearest(src, width, height, channels, out_w, out_h);
    }
    let vert = precompute(height, out_h, filter);
    // Rows of the source that the vertical pass reads.
    let first_row = vert.start[0];
    let last_row = vert.start[out_h - 1] + vert.len[out_h - 1];

    let need_horizontal = out_w != width;
    let need_vertical = out_h != height;

    let (tmp, tmp_w, row_offset);
    if need_horizontal {
        let horiz = precompute(width, out_w, filter);
        let rows = last_row - first_row;
        let mut out = vec![0u8; rows * out_w * channels];
        let mut acc = [0i32; 4];
        for y in 0..rows {
            let src_row = &src[(y + first_row) * width * channels..][..width * channels];
            let dst_row = &mut out[y * out_w * channels..][..out_w * channels];
            for xx in 0..out_w {
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
        tmp = out;
        tmp_w = out_w;
        row_offset = first_row;
    } else {
        tmp = src.to_vec();
        tmp_w = width;
        row_offset = 0;
    }
    if !need_vertical {
        return tmp;
    }
    let stride = tmp_w * channels;
    let mut out = vec![0u8; out_h * stride];
    let mut acc = vec![0i32; stride];
    for yy in 0..out_h {
        let k = &vert.taps[yy * vert.ksize..][..vert.len[yy]];
        let base = vert.start[yy] - row_offset;
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

/// Pillow's `ImagingScaleAffine`: nearest neighbour with positions accumulated in `f64`
/// from the pixel centres, as `Image.resize(..., NEAREST)` computes them.
fn resize_nearest(
    src: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    let coord = |v: f64| -> Option<usize> {
        if v < 0.0 {
            None
        } else {
            Some(v as usize)
        }
    };
    let ax = width as f64 / out_w as f64;
    let ay = height as f64 / out_h as f64;
    let mut xs = Vec::with_capacity(out_w);
    let mut xo = ax * 0.5;
    for _ in 0..out_w {
        xs.push(coord(xo).filter(|&x| x < width));
        xo += ax;
    }
    let mut out = vec![0u8; out_w * out_h * channels];
    let mut yo = ay * 0.5;
    for yy in 0..out_h {
        if let Some(y) = coord(yo).filter(|&y| y < height) {
            let row = &src[y * width * channels..][..width * channels];
            let dst = &mut out[yy * out_w * channels..][..out_w * channels];
            for (xx, x) in xs.iter().enumerate() {
                if let Some(x) = x {
                    dst[xx * channels..][..channels]
                        .copy_from_slice(&row[x * channels..][..channels]);
                }
            }
        }
        yo += ay;
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
        let c = precompute(640, 224, Filter::Bicubic);
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
