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
    let image = Image {
        src,
        width,
        channels,
    };
    resize_region_with(passes::Isa::detect(), &image, height, out, region, filter)
}

/// [`resize_region`] with the kernels of `isa`, which the CPU must support.
fn resize_region_with(
    isa: passes::Isa,
    image: &Image<'_>,
    height: usize,
    out: (usize, usize),
    region: Region,
    filter: Filter,
) -> Vec<u8> {
    let Image {
        src,
        width,
        channels,
    } = *image;
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
    let horiz = need_horizontal.then(|| precompute(width, out_w, cols.clone(), filter));
    passes::run(isa, image, horiz.as_ref(), vert.as_ref(), cols, src_rows)
}

/// The source image of a resize.
#[derive(Clone, Copy)]
struct Image<'a> {
    src: &'a [u8],
    width: usize,
    channels: usize,
}

/// Both passes of the resize, with the arithmetic of Pillow's `ImagingResampleHorizontal_8bpc`
/// and `ImagingResampleVertical_8bpc`: products of a sample and a 22-bit coefficient summed in
/// `i32` from `1 << (PRECISION_BITS - 1)`, then [`clip8`]. Integer sums do not depend on their
/// order, so the fast paths below regroup and vectorize them freely and still give the same
/// bytes. (They cannot overflow: the taps are normalized to sum to `1 << PRECISION_BITS`, and
/// their absolute values to well under twice that. The fast paths wrap, as Pillow's C does in
/// practice, so even then they would agree modulo 2^32.)
///
/// The horizontal pass, the costly one (a downscale reads many taps per output sample), runs
/// on blocks of [`BLOCK`] source rows transposed so that one vector holds the same sample of
/// every row of the block: all rows share the taps, so each tap is one vector multiply-add
/// by a broadcast coefficient. The vertical pass is vectorized along the row as it is.
mod passes {
    use super::{clip8, Coeffs, Image, PRECISION_BITS};
    use std::ops::Range;

    /// Rows per block of the horizontal pass (16 bytes: one SSE register of samples).
    pub(super) const BLOCK: usize = 16;

    /// Samples of an output row that the vertical pass accumulates at once.
    const VCHUNK: usize = 64;

    const HALF: i32 = 1 << (PRECISION_BITS - 1);

    /// Instruction sets with a kernel of their own.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Isa {
        /// Plain Rust, left to the compiler's vectorizer: every target.
        Portable,
        /// x86-64 with AVX2 (8 lanes of `i32`).
        #[cfg(target_arch = "x86_64")]
        Avx2,
        /// x86-64 with AVX-512 F and BW (16 lanes of `i32`).
        #[cfg(target_arch = "x86_64")]
        Avx512,
    }

    impl Isa {
        /// The widest instruction set this CPU has.
        pub(super) fn detect() -> Isa {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
                    return Isa::Avx512;
                }
                if is_x86_feature_detected!("avx2") {
                    return Isa::Avx2;
                }
            }
            Isa::Portable
        }

        /// Every instruction set this CPU has (for tests).
        #[cfg(test)]
        pub(super) fn available() -> Vec<Isa> {
            let mut out = vec![Isa::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx2") {
                    out.push(Isa::Avx2);
                }
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
                    out.push(Isa::Avx512);
                }
            }
            out
        }
    }

    /// Runs the horizontal pass over source rows `rows` (with `horiz`, or copying the columns
    /// `cols` where there is none), then the vertical pass (where there is one), with the
    /// kernels of `isa`, which the CPU must support.
    pub(super) fn run(
        isa: Isa,
        image: &Image<'_>,
        horiz: Option<&Coeffs>,
        vert: Option<&Coeffs>,
        cols: Range<usize>,
        rows: Range<usize>,
    ) -> Vec<u8> {
        let channels = image.channels;
        let tmp = match horiz {
            Some(h) => match channels {
                1 => horizontal::<1>(isa, image, h, rows.clone()),
                2 => horizontal::<2>(isa, image, h, rows.clone()),
                3 => horizontal::<3>(isa, image, h, rows.clone()),
                4 => horizontal::<4>(isa, image, h, rows.clone()),
                _ => super::horizontal_scalar(image, h, rows.clone()),
            },
            None => {
                super::copy_window(image.src, image.width, channels, cols.clone(), rows.clone())
            }
        };
        match vert {
            Some(v) => vertical(isa, &tmp, cols.len() * channels, v, rows.start),
            None => tmp,
        }
    }

    /// The horizontal pass for `C` channels over source rows `rows`: one row of
    /// `horiz.start.len()` pixels per source row.
    fn horizontal<const C: usize>(
        isa: Isa,
        image: &Image<'_>,
        horiz: &Coeffs,
        rows: Range<usize>,
    ) -> Vec<u8> {
        let out_w = horiz.start.len();
        let stride = out_w * C;
        let mut out = vec![0u8; rows.len() * stride];
        // Source columns read by some output (both ends only grow with the output index).
        let col0 = horiz.start[0];
        let col1 = horiz.start[out_w - 1] + horiz.len[out_w - 1];
        let in_row = image.width * C;
        let samples = (col0 * C)..(col1 * C);
        // `t_in[j * BLOCK + r]`: sample `samples.start + j` of row `r` of the block;
        // `t_out[j * BLOCK + r]`: output sample `j` of row `r`.
        let mut t_in = vec![0u8; samples.len() * BLOCK];
        let mut t_out = vec![0u8; stride * BLOCK];
        for (block, y0) in rows.clone().step_by(BLOCK).enumerate() {
            let n = BLOCK.min(rows.end - y0);
            let src_rows: [&[u8]; BLOCK] = std::array::from_fn(|r| {
                // A short last block repeats its last row; those results are dropped.
                let y = y0 + r.min(n - 1);
                &image.src[y * in_row..][samples.clone()]
            });
            transpose_in(&src_rows, &mut t_in);
            match isa {
                Isa::Portable => filter_block::<C>(&t_in, horiz, col0, &mut t_out),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx2` is only used on CPUs with AVX2.
                Isa::Avx2 => unsafe { x86::filter_block_avx2::<C>(&t_in, horiz, col0, &mut t_out) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx512` is only used on CPUs with AVX-512 F and BW.
                Isa::Avx512 => unsafe {
                    x86::filter_block_avx512::<C>(&t_in, horiz, col0, &mut t_out)
                },
            }
            let dst = &mut out[block * BLOCK * stride..][..n * stride];
            transpose_out(&t_out, stride, dst);
        }
        out
    }

    /// Filters one transposed block: `t_out[(xx * C + c) * BLOCK + r]` is output pixel `xx`,
    /// channel `c`, of row `r`.
    fn filter_block<const C: usize>(t_in: &[u8], horiz: &Coeffs, col0: usize, t_out: &mut [u8]) {
        let pixel = C * BLOCK;
        for (xx, dst) in t_out.chunks_exact_mut(pixel).enumerate() {
            let k = &horiz.taps[xx * horiz.ksize..][..horiz.len[xx]];
            let src = &t_in[(horiz.start[xx] - col0) * pixel..][..k.len() * pixel];
            let mut acc = [[HALF; BLOCK]; C];
            for (&w, px) in k.iter().zip(src.chunks_exact(pixel)) {
                for (c, acc) in acc.iter_mut().enumerate() {
                    let col: &[u8; BLOCK] = px[c * BLOCK..][..BLOCK].try_into().unwrap();
                    for r in 0..BLOCK {
                        acc[r] = acc[r].wrapping_add(i32::from(col[r]).wrapping_mul(w));
                    }
                }
            }
            for (c, acc) in acc.iter().enumerate() {
                for r in 0..BLOCK {
                    dst[c * BLOCK + r] = clip8(acc[r]);
                }
            }
        }
    }

    /// `t[j * BLOCK + r] = rows[r][j]`.
    fn transpose_in(rows: &[&[u8]; BLOCK], t: &mut [u8]) {
        let len = rows[0].len();
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        let tiles = len / BLOCK * BLOCK;
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        for j in (0..tiles).step_by(BLOCK) {
            x86::transpose_in_tile(rows, j, &mut t[j * BLOCK..]);
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        let tiles = 0;
        for j in tiles..len {
            for (r, row) in rows.iter().enumerate() {
                t[j * BLOCK + r] = row[j];
            }
        }
    }

    /// `out[r * stride + j] = t[j * BLOCK + r]` for the rows `r` that `out` holds.
    fn transpose_out(t: &[u8], stride: usize, out: &mut [u8]) {
        let n = out.len() / stride;
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        let tiles = stride / BLOCK * BLOCK;
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        for j in (0..tiles).step_by(BLOCK) {
            x86::transpose_out_tile(t, j, stride, out);
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        let tiles = 0;
        for r in 0..n {
            for j in tiles..stride {
                out[r * stride + j] = t[j * BLOCK + r];
            }
        }
    }

    /// The vertical pass: `out_h = vert.start.len()` rows of `stride` samples from the rows
    /// of `tmp`, the first of which is source row `row0`.
    fn vertical(isa: Isa, tmp: &[u8], stride: usize, vert: &Coeffs, row0: usize) -> Vec<u8> {
        let out_h = vert.start.len();
        let mut out = vec![0u8; out_h * stride];
        for (yy, dst) in out.chunks_exact_mut(stride).enumerate() {
            let k = &vert.taps[yy * vert.ksize..][..vert.len[yy]];
            let rows = &tmp[(vert.start[yy] - row0) * stride..][..k.len() * stride];
            match isa {
                Isa::Portable => vertical_row(rows, k, dst),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx2` is only used on CPUs with AVX2.
                Isa::Avx2 => unsafe { x86::vertical_row_avx2(rows, k, dst) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx512` is only used on CPUs with AVX-512 F and BW.
                Isa::Avx512 => unsafe { x86::vertical_row_avx512(rows, k, dst) },
            }
        }
        out
    }

    /// One output row of the vertical pass: `dst[x] = clip8(sum k[t] * rows[t][x])` where
    /// `rows` holds `k.len()` rows of `dst.len()` samples.
    fn vertical_row(rows: &[u8], k: &[i32], dst: &mut [u8]) {
        let stride = dst.len();
        for (x, dst) in (0..stride).step_by(VCHUNK).zip(dst.chunks_mut(VCHUNK)) {
            let mut acc = [HALF; VCHUNK];
            let acc = &mut acc[..dst.len()];
            for (&w, row) in k.iter().zip(rows.chunks_exact(stride)) {
                for (a, &p) in acc.iter_mut().zip(&row[x..x + dst.len()]) {
                    *a = a.wrapping_add(i32::from(p).wrapping_mul(w));
                }
            }
            for (d, &a) in dst.iter_mut().zip(acc.iter()) {
                *d = clip8(a);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::{Coeffs, BLOCK, HALF, VCHUNK};
        use crate::image::resample::PRECISION_BITS;
        use std::arch::x86_64::*;

        // The helpers below use SSE2 only. They are inlined into code that has it: the
        // transposes, compiled only where SSE2 is enabled, and the AVX2 and AVX-512 kernels.

        /// Reads the first 16 bytes of `b`.
        #[inline(always)]
        fn load16(b: &[u8]) -> __m128i {
            let b: &[u8; 16] = b[..16].try_into().unwrap();
            // SAFETY: `b` is 16 readable bytes; the load is unaligned; SSE2 (see above).
            unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
        }

        /// Reads the first 8 bytes of `b` into the low half.
        #[inline(always)]
        fn load8(b: &[u8]) -> __m128i {
            let b: &[u8; 8] = b[..8].try_into().unwrap();
            // SAFETY: `b` is 8 readable bytes; the load is unaligned; SSE2 (see above).
            unsafe { _mm_loadl_epi64(b.as_ptr().cast()) }
        }

        /// Writes the first 16 bytes of `b`.
        #[inline(always)]
        fn store16(b: &mut [u8], v: __m128i) {
            let b: &mut [u8; 16] = (&mut b[..16]).try_into().unwrap();
            // SAFETY: `b` is 16 writable bytes; the store is unaligned; SSE2 (see above).
            unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
        }

        /// An all-zero vector.
        #[cfg(target_feature = "sse2")]
        #[inline(always)]
        fn zero128() -> __m128i {
            // SAFETY: SSE2 is enabled (checked by the `cfg` above).
            unsafe { _mm_setzero_si128() }
        }

        /// Transposes a 16 x 16 byte matrix: byte `c` of vector `r` becomes byte `r` of
        /// vector `c`.
        ///
        /// Four rounds of interleaving vector `i` with vector `i + 8` each rotate the 8-bit
        /// (vector, byte) index of every element left by one bit; four rotations swap the
        /// vector (row) and byte (column) halves.
        #[cfg(target_feature = "sse2")]
        #[inline(always)]
        fn transpose16(mut a: [__m128i; BLOCK]) -> [__m128i; BLOCK] {
            for _ in 0..4 {
                let mut b = a;
                for i in 0..BLOCK / 2 {
                    // SAFETY: SSE2 is enabled (checked by the `cfg` above).
                    unsafe {
                        b[2 * i] = _mm_unpacklo_epi8(a[i], a[i + 8]);
                        b[2 * i + 1] = _mm_unpackhi_epi8(a[i], a[i + 8]);
                    }
                }
                a = b;
            }
            a
        }

        /// `dst[c * 16 + r] = rows[r][j + c]` for `c` and `r` below 16.
        #[cfg(target_feature = "sse2")]
        #[inline(always)]
        pub(super) fn transpose_in_tile(rows: &[&[u8]; BLOCK], j: usize, dst: &mut [u8]) {
            let mut a = [zero128(); BLOCK];
            for (a, row) in a.iter_mut().zip(rows) {
                *a = load16(&row[j..]);
            }
            let a = transpose16(a);
            let dst = &mut dst[..BLOCK * BLOCK];
            for (i, a) in a.iter().enumerate() {
                store16(&mut dst[i * BLOCK..], *a);
            }
        }

        /// `out[r * stride + j + i] = t[(j + i) * 16 + r]` for `i` below 16 and the `r` that
        /// `out` holds (at most 16).
        #[cfg(target_feature = "sse2")]
        #[inline(always)]
        pub(super) fn transpose_out_tile(t: &[u8], j: usize, stride: usize, out: &mut [u8]) {
            let t = &t[j * BLOCK..][..BLOCK * BLOCK];
            let mut a = [zero128(); BLOCK];
            for (i, a) in a.iter_mut().enumerate() {
                *a = load16(&t[i * BLOCK..]);
            }
            let a = transpose16(a);
            for (a, row) in a.iter().zip(out.chunks_exact_mut(stride)) {
                store16(&mut row[j..], *a);
            }
        }

        /// [`super::filter_block`] with AVX-512: one register per channel holds the 16 rows.
        #[target_feature(enable = "avx512f,avx512bw")]
        pub(super) fn filter_block_avx512<const C: usize>(
            t_in: &[u8],
            horiz: &Coeffs,
            col0: usize,
            t_out: &mut [u8],
        ) {
            let pixel = C * BLOCK;
            let half = _mm512_set1_epi32(HALF);
            let zero = _mm512_setzero_si512();
            for (xx, dst) in t_out.chunks_exact_mut(pixel).enumerate() {
                let k = &horiz.taps[xx * horiz.ksize..][..horiz.len[xx]];
                let src = &t_in[(horiz.start[xx] - col0) * pixel..][..k.len() * pixel];
                let mut acc = [half; C];
                for (&w, px) in k.iter().zip(src.chunks_exact(pixel)) {
                    let w = _mm512_set1_epi32(w);
                    for (c, acc) in acc.iter_mut().enumerate() {
                        let p = _mm512_cvtepu8_epi32(load16(&px[c * BLOCK..]));
                        *acc = _mm512_add_epi32(*acc, _mm512_mullo_epi32(p, w));
                    }
                }
                for (c, acc) in acc.iter().enumerate() {
                    let v = _mm512_max_epi32(_mm512_srai_epi32::<PRECISION_BITS>(*acc), zero);
                    store16(&mut dst[c * BLOCK..], _mm512_cvtusepi32_epi8(v));
                }
            }
        }

        /// [`super::vertical_row`] with AVX-512.
        #[target_feature(enable = "avx512f,avx512bw")]
        pub(super) fn vertical_row_avx512(rows: &[u8], k: &[i32], dst: &mut [u8]) {
            /// Samples `x .. x + 16 * N` of the row.
            #[target_feature(enable = "avx512f,avx512bw")]
            #[inline]
            fn span<const N: usize>(rows: &[u8], k: &[i32], x: usize, dst: &mut [u8]) {
                let stride = dst.len();
                let mut acc = [_mm512_set1_epi32(HALF); N];
                for (&w, row) in k.iter().zip(rows.chunks_exact(stride)) {
                    let w = _mm512_set1_epi32(w);
                    let row = &row[x..x + 16 * N];
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let p = _mm512_cvtepu8_epi32(load16(&row[16 * i..]));
                        *acc = _mm512_add_epi32(*acc, _mm512_mullo_epi32(p, w));
                    }
                }
                let zero = _mm512_setzero_si512();
                for (i, acc) in acc.iter().enumerate() {
                    let v = _mm512_max_epi32(_mm512_srai_epi32::<PRECISION_BITS>(*acc), zero);
                    store16(&mut dst[x + 16 * i..], _mm512_cvtusepi32_epi8(v));
                }
            }
            let stride = dst.len();
            if stride < 16 {
                return super::vertical_row(rows, k, dst);
            }
            let mut x = 0;
            while x + VCHUNK <= stride {
                span::<{ VCHUNK / 16 }>(rows, k, x, dst);
                x += VCHUNK;
            }
            while x < stride {
                // The last span may overlap the one before; it writes the same values again.
                span::<1>(rows, k, x.min(stride - 16), dst);
                x += 16;
            }
        }

        /// 16 lanes of `i32` sums (rows 0-7 in `lo`, 8-15 in `hi`) to bytes, as [`clip8`].
        ///
        /// [`clip8`]: super::clip8
        #[target_feature(enable = "avx2")]
        #[inline]
        fn clip16_avx2(lo: __m256i, hi: __m256i) -> __m128i {
            const SHIFT: i32 = PRECISION_BITS as i32;
            let lo = _mm256_srai_epi32::<SHIFT>(lo);
            let hi = _mm256_srai_epi32::<SHIFT>(hi);
            // In 128-bit lanes: lo 0-3, hi 0-3 | lo 4-7, hi 4-7 (no saturation: |v| < 2^10).
            let v = _mm256_packs_epi32(lo, hi);
            // lo 0-7 | hi 0-7.
            let v = _mm256_permute4x64_epi64::<0b11_01_10_00>(v);
            // Unsigned saturation clamps to 0..=255.
            _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v))
        }

        /// [`super::filter_block`] with AVX2: two registers per channel hold the 16 rows.
        #[target_feature(enable = "avx2")]
        pub(super) fn filter_block_avx2<const C: usize>(
            t_in: &[u8],
            horiz: &Coeffs,
            col0: usize,
            t_out: &mut [u8],
        ) {
            let pixel = C * BLOCK;
            let half = _mm256_set1_epi32(HALF);
            for (xx, dst) in t_out.chunks_exact_mut(pixel).enumerate() {
                let k = &horiz.taps[xx * horiz.ksize..][..horiz.len[xx]];
                let src = &t_in[(horiz.start[xx] - col0) * pixel..][..k.len() * pixel];
                let mut acc = [[half; 2]; C];
                for (&w, px) in k.iter().zip(src.chunks_exact(pixel)) {
                    let w = _mm256_set1_epi32(w);
                    for (c, acc) in acc.iter_mut().enumerate() {
                        for (h, acc) in acc.iter_mut().enumerate() {
                            let p = _mm256_cvtepu8_epi32(load8(&px[c * BLOCK + 8 * h..]));
                            *acc = _mm256_add_epi32(*acc, _mm256_mullo_epi32(p, w));
                        }
                    }
                }
                for (c, acc) in acc.iter().enumerate() {
                    store16(&mut dst[c * BLOCK..], clip16_avx2(acc[0], acc[1]));
                }
            }
        }

        /// [`super::vertical_row`] with AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) fn vertical_row_avx2(rows: &[u8], k: &[i32], dst: &mut [u8]) {
            /// Samples `x .. x + 16 * N` of the row.
            #[target_feature(enable = "avx2")]
            #[inline]
            fn span<const N: usize>(rows: &[u8], k: &[i32], x: usize, dst: &mut [u8]) {
                let stride = dst.len();
                let mut acc = [[_mm256_set1_epi32(HALF); 2]; N];
                for (&w, row) in k.iter().zip(rows.chunks_exact(stride)) {
                    let w = _mm256_set1_epi32(w);
                    let row = &row[x..x + 16 * N];
                    for (i, acc) in acc.iter_mut().enumerate() {
                        for (h, acc) in acc.iter_mut().enumerate() {
                            let p = _mm256_cvtepu8_epi32(load8(&row[16 * i + 8 * h..]));
                            *acc = _mm256_add_epi32(*acc, _mm256_mullo_epi32(p, w));
                        }
                    }
                }
                for (i, acc) in acc.iter().enumerate() {
                    store16(&mut dst[x + 16 * i..], clip16_avx2(acc[0], acc[1]));
                }
            }
            let stride = dst.len();
            if stride < 16 {
                return super::vertical_row(rows, k, dst);
            }
            let mut x = 0;
            while x + VCHUNK / 2 <= stride {
                span::<{ VCHUNK / 32 }>(rows, k, x, dst);
                x += VCHUNK / 2;
            }
            while x < stride {
                // The last span may overlap the one before; it writes the same values again.
                span::<1>(rows, k, x.min(stride - 16), dst);
                x += 16;
            }
        }
    }
}

/// The horizontal pass in plain scalar code, for any number of channels: Pillow's loop.
fn horizontal_scalar(image: &Image<'_>, horiz: &Coeffs, rows: std::ops::Range<usize>) -> Vec<u8> {
    let Image {
        src,
        width,
        channels,
    } = *image;
    let tmp_w = horiz.start.len();
    let mut out = vec![0u8; rows.len() * tmp_w * channels];
    let mut acc = vec![0i32; channels];
    for (y, sy) in rows.enumerate() {
        let src_row = &src[sy * width * channels..][..width * channels];
        let dst_row = &mut out[y * tmp_w * channels..][..tmp_w * channels];
        for xx in 0..tmp_w {
            let k = &horiz.taps[xx * horiz.ksize..][..horiz.len[xx]];
            let base = horiz.start[xx];
            acc.fill(1 << (PRECISION_BITS - 1));
            for (x, &w) in k.iter().enumerate() {
                let px = &src_row[(base + x) * channels..][..channels];
                for c in 0..channels {
                    acc[c] = acc[c].wrapping_add(i32::from(px[c]).wrapping_mul(w));
                }
            }
            for c in 0..channels {
                dst_row[xx * channels + c] = clip8(acc[c]);
            }
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

    /// The straightforward port of Pillow's loops that the vectorized passes replace: one
    /// output sample at a time, horizontal pass then vertical pass.
    fn reference(
        src: &[u8],
        (width, height, channels): (usize, usize, usize),
        (out_w, out_h): (usize, usize),
        region: Region,
        filter: Filter,
    ) -> Vec<u8> {
        let cols = region.x..region.x + region.width;
        let rows = region.y..region.y + region.height;
        if out_w == width && out_h == height {
            return copy_window(src, width, channels, cols, rows);
        }
        if filter == Filter::Nearest {
            return resize_nearest(src, (width, height), channels, (out_w, out_h), region);
        }
        let vert = (out_h != height).then(|| precompute(height, out_h, rows.clone(), filter));
        let src_rows = match &vert {
            Some(v) => v.start[0]..v.start[v.start.len() - 1] + v.len[v.len.len() - 1],
            None => rows.clone(),
        };
        let tmp_w = region.width;
        let tmp = if out_w != width {
            let horiz = precompute(width, out_w, cols.clone(), filter);
            let mut out = vec![0u8; src_rows.len() * tmp_w * channels];
            let mut acc = vec![0i32; channels];
            for (y, sy) in src_rows.clone().enumerate() {
                let src_row = &src[sy * width * channels..][..width * channels];
                let dst_row = &mut out[y * tmp_w * channels..][..tmp_w * channels];
                for xx in 0..tmp_w {
                    let k = &horiz.taps[xx * horiz.ksize..][..horiz.len[xx]];
                    let base = horiz.start[xx];
                    acc.fill(1 << (PRECISION_BITS - 1));
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

    /// xorshift64*: reproducible test data without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() >> 33) as usize % n
        }

        /// Noise, or (one time in three) only 0 and 255, which drives the sums of filters
        /// with negative lobes below 0 and above 255.
        fn image(&mut self, len: usize) -> Vec<u8> {
            let extremes = self.below(3) == 0;
            (0..len)
                .map(|_| {
                    let v = self.next() >> 56;
                    if extremes {
                        if v & 1 == 0 {
                            0
                        } else {
                            255
                        }
                    } else {
                        v as u8
                    }
                })
                .collect()
        }
    }

    const FILTERS: [Filter; 6] = [
        Filter::Bicubic,
        Filter::Bilinear,
        Filter::Lanczos,
        Filter::Box,
        Filter::Hamming,
        Filter::Nearest,
    ];

    /// Checks every instruction set's kernels against [`reference`] on one case.
    fn check(
        src: &[u8],
        size: (usize, usize, usize),
        out: (usize, usize),
        region: Region,
        filter: Filter,
    ) {
        let (width, height, channels) = size;
        let expect = reference(src, size, out, region, filter);
        let image = Image {
            src,
            width,
            channels,
        };
        for isa in passes::Isa::available() {
            let got = resize_region_with(isa, &image, height, out, region, filter);
            assert!(
                got == expect,
                "{isa:?} {filter:?}: {width}x{height}x{channels} -> {out:?}, {region:?}"
            );
        }
    }

    #[test]
    fn vectorized_passes_match_the_reference_on_random_images() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let sides = [1usize, 2, 3, 5, 8, 15, 16, 17, 23, 31, 33, 47, 64, 65, 100];
        for case in 0..1500 {
            let channels = 1 + case % 5;
            let width = sides[rng.below(sides.len())];
            let height = sides[rng.below(sides.len())];
            // Down by up to 8x, up by up to 4x, or the same size (one pass only).
            let scale = |rng: &mut Rng, n: usize| {
                match rng.below(4) {
                    0 => n,
                    1 => 1 + rng.below(4 * n),
                    _ => 1 + rng.below(n.max(2)),
                }
                .max(1)
            };
            let out = (scale(&mut rng, width), scale(&mut rng, height));
            let (x, y) = (rng.below(out.0), rng.below(out.1));
            let region = Region {
                x,
                y,
                width: 1 + rng.below(out.0 - x),
                height: 1 + rng.below(out.1 - y),
            };
            let filter = FILTERS[rng.below(FILTERS.len())];
            let src = rng.image(width * height * channels);
            check(&src, (width, height, channels), out, region, filter);
        }
    }

    #[test]
    fn vectorized_passes_match_the_reference_on_photo_sized_images() {
        let mut rng = Rng(42);
        let cases = [
            // CLIP's center crop of a 1000 x 872 photo, and of a portrait one.
            ((1000, 872), (256, 224), (16, 0, 224, 224)),
            ((427, 640), (224, 335), (0, 56, 224, 224)),
            // Upscaling a thumbnail, and a strip.
            ((61, 45), (302, 224), (39, 0, 224, 224)),
            ((3, 400), (224, 29866), (0, 14821, 224, 224)),
            // Whole images, odd sizes.
            ((333, 251), (97, 131), (0, 0, 97, 131)),
            ((129, 77), (130, 78), (0, 0, 130, 78)),
        ];
        for (channels, filter) in [
            (3, Filter::Bicubic),
            (1, Filter::Lanczos),
            (4, Filter::Bilinear),
            (2, Filter::Hamming),
            (3, Filter::Box),
        ] {
            for ((w, h), out, (x, y, rw, rh)) in cases {
                let src = rng.image(w * h * channels);
                let region = Region {
                    x,
                    y,
                    width: rw,
                    height: rh,
                };
                check(&src, (w, h, channels), out, region, filter);
            }
        }
    }

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
