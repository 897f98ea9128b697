//! Matrix products against pre-packed weights: `C[m, n] (+)= A[m, k] · W[n, k]ᵀ + bias[n]`.
//!
//! Our own kernel rather than a general GEMM library because the weights are fixed: they are
//! packed once at load into 32-column panels (f32, or bf16 pairs for `vdpbf16ps`), the bias,
//! the residual add and the activation are applied while the output tile is still in
//! registers or L1, and the same loop nest serves the bf16 path, which no crate we can use
//! offers on x86. Work is split by column panels across the rayon pool.

// The kernels work on raw pointers into buffers whose sizes `matmul` checks once; marking
// every pointer step `unsafe` again inside these `unsafe fn`s would only add noise.
#![allow(unsafe_op_in_unsafe_fn)]

use rayon::prelude::*;

use super::dispatch::{Isa, SendPtr};
use super::ops::Act;

/// Columns per packed panel: two 16-lane vectors.
pub const NR: usize = 32;
/// Rows per register tile.
const MR: usize = 12;
/// Rows per cache block of A.
const MC: usize = MR * 10;
/// Depth per cache block in values of k (so bf16 blocks hold KC / 2 pairs). 768 keeps
/// ViT-B's K = 768 products in one block: the output tile is then loaded and stored once
/// (measured best on Zen 5 among 256, 384 and 768).
const KC: usize = 768;

/// Number format of a packed weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    F32,
    Bf16,
}

#[derive(Clone)]
enum Panels {
    /// `[panel][k][NR]` f32.
    F32(Vec<f32>),
    /// `[panel][k / 2][NR]` u32 words, each holding the bf16 of rows `2i` (low) and `2i + 1`.
    Bf16(Vec<u32>),
}

/// A weight matrix `[n, k]` (PyTorch's `Linear` layout) packed for [`matmul`], with its bias.
#[derive(Clone)]
pub struct Packed {
    n: usize,
    k: usize,
    panels: Panels,
    bias: Option<Vec<f32>>,
}

/// Round-to-nearest-even conversion to bf16 (NaN stays NaN), as `vcvtne2ps2bf16` does.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if x.is_nan() {
        return (b >> 16) | 0x40;
    }
    (b + 0x7fff + ((b >> 16) & 1)) >> 16
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = match self.panels {
            Panels::F32(_) => Format::F32,
            Panels::Bf16(_) => Format::Bf16,
        };
        write!(f, "Packed({}x{} {format:?})", self.n, self.k)
    }
}

impl Packed {
    /// Packs `w` (`n` rows of `k` values) and an optional bias of `n` values.
    pub fn new(w: &[f32], n: usize, k: usize, bias: Option<Vec<f32>>, format: Format) -> Packed {
        assert_eq!(w.len(), n * k, "weight size");
        if let Some(b) = &bias {
            assert_eq!(b.len(), n, "bias size");
        }
        let panels = n.div_ceil(NR);
        let panels = match format {
            Format::F32 => {
                let mut p = vec![0f32; panels * k * NR];
                for (col, row) in w.chunks_exact(k).enumerate() {
                    let (panel, lane) = (col / NR, col % NR);
                    let base = panel * k * NR + lane;
                    for (kk, &v) in row.iter().enumerate() {
                        p[base + kk * NR] = v;
                    }
                }
                Panels::F32(p)
            }
            Format::Bf16 => {
                let k2 = k.div_ceil(2);
                let mut p = vec![0u32; panels * k2 * NR];
                for (col, row) in w.chunks_exact(k).enumerate() {
                    let (panel, lane) = (col / NR, col % NR);
                    let base = panel * k2 * NR + lane;
                    for (kk, &v) in row.iter().enumerate() {
                        p[base + (kk / 2) * NR] |= bf16_bits(v) << (16 * (kk % 2));
                    }
                }
                Panels::Bf16(p)
            }
        };
        Packed { n, k, panels, bias }
    }

    /// Whether the weights are stored as bf16.
    pub fn is_bf16(&self) -> bool {
        matches!(self.panels, Panels::Bf16(_))
    }

    /// Output columns.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// What happens to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// `C = A·Wᵀ + bias`.
    Set,
    /// `C += A·Wᵀ + bias` (the residual stream).
    Add,
}

thread_local! {
    static A_BF16: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `c[m, n] = / += a[m, k] · wᵀ + bias`, then `act` on the result (`Out::Set` only).
pub fn matmul(a: &[f32], m: usize, w: &Packed, c: &mut [f32], out: Out, act: Act) {
    let (n, k) = (w.n, w.k);
    assert_eq!(a.len(), m * k, "A size");
    assert_eq!(c.len(), m * n, "C size");
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    let panels = n.div_ceil(NR);
    let tasks = threads.min(panels);
    let cp = SendPtr::new(c);
    match &w.panels {
        Panels::F32(p) => {
            let tile = f32_tile();
            let run = |t: usize| {
                let range = (panels * t / tasks, panels * (t + 1) / tasks);
                // SAFETY: task t writes only the columns of its panels.
                unsafe { run_panels(a, m, k, p, w, range, cp, out, act, KC, tile) }
            };
            (0..tasks).into_par_iter().for_each(run);
        }
        Panels::Bf16(p) => {
            let k2 = k.div_ceil(2);
            // The bf16 copy of A is reused between calls: a fresh 10 MB buffer per product
            // showed up as page-clearing in profiles. It is taken out of the thread-local
            // while in use, so a product that rayon runs on this thread meanwhile (work
            // stealing while we wait) gets a buffer of its own instead of a borrow panic.
            let mut a2 = A_BF16.take();
            if a2.len() < m * k2 {
                a2.resize(m * k2, 0);
            }
            let rows_per = m.div_ceil(threads).max(1);
            a2[..m * k2]
                .par_chunks_mut(rows_per * k2)
                .zip(a.par_chunks(rows_per * k))
                .for_each(|(dst, src)| super::ops::to_bf16_pairs(src, k, dst));
            let tile = bf16_tile();
            let a2s = &a2[..m * k2];
            let run = |t: usize| {
                let range = (panels * t / tasks, panels * (t + 1) / tasks);
                // SAFETY: as above.
                unsafe { run_panels(a2s, m, k2, p, w, range, cp, out, act, KC / 2, tile) }
            };
            (0..tasks).into_par_iter().for_each(run);
            A_BF16.set(a2);
        }
    }
}

/// The loop nest shared by both formats; `tile` runs one MR×NR register tile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<T, F>(
    m: usize,
    depth: usize,
    w: &Packed,
    p0: usize,
    p1: usize,
    c: SendPtr<f32>,
    out: Out,
    act: Act,
    panel_data: &[T],
    kc_block: usize,
    tile: F,
) where
    F: Fn(usize, usize, *const T, usize, usize, *mut f32, usize, bool, Option<&[f32]>),
{
    let n = w.n;
    let zeros = [0f32; NR];
    // One register tile column: rows m0..m0+mc of panel p, depth k0..k0+kc.
    let step = |m0: usize, mc: usize, k0: usize, kc: usize, p: usize| {
        let first = k0 == 0;
        let last = k0 + kc == depth;
        let col = p * NR;
        let cols = NR.min(n - col);
        let bias = match (&w.bias, first) {
            (Some(b), true) => Some(&b[col..col + cols]),
            (None, true) if out == Out::Set => Some(&zeros[..cols]),
            _ => None,
        };
        // First block of `Set`: start from the bias; later blocks and `Add`: load C.
        let load = !(first && out == Out::Set);
        let bp = panel_data.as_ptr().add(p * depth * NR + k0 * NR);
        for r0 in (m0..m0 + mc).step_by(MR) {
            let rows = MR.min(m0 + mc - r0);
            let cptr = c.get().add(r0 * n + col);
            tile(r0, k0, bp, kc, rows, cptr, cols, load, bias);
            if last && act != Act::None {
                for r in 0..rows {
                    let row = std::slice::from_raw_parts_mut(cptr.add(r * n), cols);
                    super::ops::activate(act, row);
                }
            }
        }
    };
    if m <= MC {
        // Few rows (small batches): the weights are the traffic, so read each thread's panels
        // as one sequential stream.
        for p in p0..p1 {
            for k0 in (0..depth).step_by(kc_block) {
                step(0, m, k0, kc_block.min(depth - k0), p);
            }
        }
        return;
    }
    // Many rows: keep an MC×KC block of A in L2 while it meets every panel.
    for m0 in (0..m).step_by(MC) {
        let mc = MC.min(m - m0);
        for k0 in (0..depth).step_by(kc_block) {
            let kc = kc_block.min(depth - k0);
            for p in p0..p1 {
                step(m0, mc, k0, kc, p);
            }
        }
    }
}

/// One register tile: `(a, lda, b, ldb, depth, rows, c, ldc, cols, load, bias)`; see
/// [`portable::tile`].
type TileFn<T> = unsafe fn(
    *const T,
    usize,
    *const T,
    usize,
    usize,
    usize,
    *mut f32,
    usize,
    usize,
    bool,
    Option<&[f32]>,
);

/// The f32 tile this CPU runs best.
fn f32_tile() -> TileFn<f32> {
    match Isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => x86::tile_f32,
        _ => portable::tile::<f32>,
    }
}

/// The bf16 tile: `vdpbf16ps` where the CPU has it, else the same products in plain Rust.
fn bf16_tile() -> TileFn<u32> {
    match Isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Bf16 => x86::tile_bf16,
        _ => portable::tile::<u32>,
    }
}

/// Runs panels `p0..p1` of `w` (whose data is `panels`) against `a` (`m` rows of `depth`
/// words) with `tile`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_panels<T>(
    a: &[T],
    m: usize,
    depth: usize,
    panels: &[T],
    w: &Packed,
    (p0, p1): (usize, usize),
    c: SendPtr<f32>,
    out: Out,
    act: Act,
    kc_block: usize,
    tile: TileFn<T>,
) {
    let n = w.n;
    let one = |r0: usize,
               k0: usize,
               bp: *const T,
               kc: usize,
               rows: usize,
               cp: *mut f32,
               cols: usize,
               load: bool,
               bias: Option<&[f32]>| {
        let ap = a.as_ptr().add(r0 * depth + k0);
        tile(ap, depth, bp, NR, kc, rows, cp, n, cols, load, bias)
    };
    block(m, depth, w, p0, p1, c, out, act, panels, kc_block, one)
}

/// Plain Rust tiles, for CPUs without AVX-512 (and as the readable statement of the kernel).
mod portable {
    use super::{MR, NR};

    /// A word of the packed data as the products it contributes.
    pub trait Word: Copy {
        fn dot(a: Self, b: Self) -> f32;
    }
    impl Word for f32 {
        #[inline(always)]
        fn dot(a: f32, b: f32) -> f32 {
            a * b
        }
    }
    impl Word for u32 {
        #[inline(always)]
        fn dot(a: u32, b: u32) -> f32 {
            let lo = |x: u32| f32::from_bits(x << 16);
            let hi = |x: u32| f32::from_bits(x & 0xffff_0000);
            lo(a) * lo(b) + hi(a) * hi(b)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile<T: Word>(
        a: *const T,
        lda: usize,
        b: *const T,
        ldb: usize,
        kc: usize,
        rows: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        load: bool,
        bias: Option<&[f32]>,
    ) {
        let mut acc = [[0f32; NR]; MR];
        for (r, row) in acc.iter_mut().enumerate().take(rows) {
            for j in 0..cols {
                let mut v = if load { *c.add(r * ldc + j) } else { 0.0 };
                if let Some(b) = bias {
                    v += b[j];
                }
                row[j] = v;
            }
        }
        for kk in 0..kc {
            let bk = b.add(kk * ldb);
            for (r, row) in acc.iter_mut().enumerate().take(rows) {
                let av = *a.add(r * lda + kk);
                for (j, v) in row.iter_mut().enumerate().take(cols) {
                    *v += T::dot(av, *bk.add(j));
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(rows) {
            for (j, v) in row.iter().enumerate().take(cols) {
                *c.add(r * ldc + j) = *v;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    /// Loads the C tile (or the bias) into accumulators, runs `body`, stores the tile.
    macro_rules! tile_body {
        ($rows:expr, $c:expr, $ldc:expr, $cols:expr, $load:expr, $bias:expr, |$acc0:ident, $acc1:ident, $R:ident| $body:block) => {{
            let (m0, m1) = col_masks($cols);
            macro_rules! run {
                ($n:literal) => {{
                    const $R: usize = $n;
                    let mut $acc0 = [_mm512_setzero_ps(); $R];
                    let mut $acc1 = [_mm512_setzero_ps(); $R];
                    let (b0, b1) = match $bias {
                        Some(b) => (
                            _mm512_maskz_loadu_ps(m0, b.as_ptr()),
                            _mm512_maskz_loadu_ps(m1, b.as_ptr().add(16.min(b.len()))),
                        ),
                        None => (_mm512_setzero_ps(), _mm512_setzero_ps()),
                    };
                    for r in 0..$R {
                        let cr = $c.add(r * $ldc);
                        if $load {
                            $acc0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), b0);
                            $acc1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr.add(16)), b1);
                        } else {
                            $acc0[r] = b0;
                            $acc1[r] = b1;
                        }
                    }
                    $body
                    for r in 0..$R {
                        let cr = $c.add(r * $ldc);
                        _mm512_mask_storeu_ps(cr, m0, $acc0[r]);
                        _mm512_mask_storeu_ps(cr.add(16), m1, $acc1[r]);
                    }
                }};
            }
            match $rows {
                12 => run!(12),
                11 => run!(11),
                10 => run!(10),
                9 => run!(9),
                8 => run!(8),
                7 => run!(7),
                6 => run!(6),
                5 => run!(5),
                4 => run!(4),
                3 => run!(3),
                2 => run!(2),
                1 => run!(1),
                _ => unreachable!("tile of {} rows", $rows),
            }
        }};
    }

    const _: () = assert!(MR == 12 && NR == 32);

    /// Lane masks of the two 16-column halves of a tile `cols` wide.
    #[inline(always)]
    fn col_masks(cols: usize) -> (__mmask16, __mmask16) {
        let half = |n: usize| -> __mmask16 {
            if n >= 16 {
                0xffff
            } else {
                ((1u32 << n) - 1) as u16
            }
        };
        (half(cols), half(cols.saturating_sub(16)))
    }

    /// How many k steps ahead the weight panel is prefetched (a prefetch never faults, so
    /// running past the panel's end is harmless).
    const PREFETCH: usize = 64;

    /// f32 tile: `rows` ≤ 12 rows of A (row stride `lda`) times one packed panel.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_f32(
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        kc: usize,
        rows: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        load: bool,
        bias: Option<&[f32]>,
    ) {
        // B may be an unpadded matrix (attention), so its loads are masked to `cols` too.
        let (k0, k1) = col_masks(cols);
        tile_body!(rows, c, ldc, cols, load, bias, |acc0, acc1, R| {
            // Masked loads are slow on some cores (measured: 2x on this Zen), so packed
            // panels (zero-padded to NR) use plain ones.
            if ldb == NR && cols == NR {
                for kk in 0..kc {
                    let bk = b.add(kk * NR);
                    // The weights stream from memory on their first use: fetch ahead.
                    _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR).cast());
                    _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR + 16).cast());
                    let w0 = _mm512_loadu_ps(bk);
                    let w1 = _mm512_loadu_ps(bk.add(16));
                    for r in 0..R {
                        let av = _mm512_set1_ps(*a.add(r * lda + kk));
                        acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                        acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
                    }
                }
            } else {
                for kk in 0..kc {
                    let bk = b.add(kk * ldb);
                    let w0 = _mm512_maskz_loadu_ps(k0, bk);
                    let w1 = _mm512_maskz_loadu_ps(k1, bk.add(16));
                    for r in 0..R {
                        let av = _mm512_set1_ps(*a.add(r * lda + kk));
                        acc0[r] = _mm512_fmadd_ps(av, w0, acc0[r]);
                        acc1[r] = _mm512_fmadd_ps(av, w1, acc1[r]);
                    }
                }
            }
        })
    }

    /// bf16 tile: A and the panel hold bf16 pairs; products accumulate in f32.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_bf16(
        a: *const u32,
        lda: usize,
        b: *const u32,
        ldb: usize,
        kc: usize,
        rows: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        load: bool,
        bias: Option<&[f32]>,
    ) {
        let (k0, k1) = col_masks(cols);
        tile_body!(rows, c, ldc, cols, load, bias, |acc0, acc1, R| {
            // As in `tile_f32`: plain loads from packed panels, masked ones otherwise.
            if ldb == NR && cols == NR {
                for kk in 0..kc {
                    let bk = b.add(kk * NR);
                    _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR).cast());
                    _mm_prefetch::<_MM_HINT_T0>(bk.add(PREFETCH * NR + 16).cast());
                    let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bk.cast()));
                    let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bk.add(16).cast()));
                    for r in 0..R {
                        let av: __m512bh =
                            std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + kk) as i32));
                        acc0[r] = _mm512_dpbf16_ps(acc0[r], av, w0);
                        acc1[r] = _mm512_dpbf16_ps(acc1[r], av, w1);
                    }
                }
            } else {
                for kk in 0..kc {
                    let bk = b.add(kk * ldb);
                    let w0: __m512bh = std::mem::transmute(_mm512_maskz_loadu_epi32(k0, bk.cast()));
                    let w1: __m512bh =
                        std::mem::transmute(_mm512_maskz_loadu_epi32(k1, bk.add(16).cast()));
                    for r in 0..R {
                        let av: __m512bh =
                            std::mem::transmute(_mm512_set1_epi32(*a.add(r * lda + kk) as i32));
                        acc0[r] = _mm512_dpbf16_ps(acc0[r], av, w0);
                        acc1[r] = _mm512_dpbf16_ps(acc1[r], av, w1);
                    }
                }
            }
        })
    }
}

/// `c = a · b` for the small products inside attention: `rows × depth` times `depth × cols`,
/// each matrix row-major with its own row stride, f32. Uses the same register tiles as
/// [`matmul`], without packing (the operands are fresh each call and already in cache).
#[allow(clippy::too_many_arguments)]
pub fn small_matmul(
    a: &[f32],
    lda: usize,
    rows: usize,
    b: &[f32],
    ldb: usize,
    depth: usize,
    cols: usize,
    c: &mut [f32],
    ldc: usize,
) {
    small_product(a, lda, rows, b, ldb, depth, cols, c, ldc, f32_tile());
}

/// [`small_matmul`] on bf16 pairs: `a` is `rows × depth` words, `b` is `depth × cols` words
/// each holding the bf16 of two consecutive rows of the `2·depth`-deep product.
#[allow(clippy::too_many_arguments)]
pub fn small_matmul_bf16(
    a: &[u32],
    lda: usize,
    rows: usize,
    b: &[u32],
    ldb: usize,
    depth: usize,
    cols: usize,
    c: &mut [f32],
    ldc: usize,
) {
    small_product(a, lda, rows, b, ldb, depth, cols, c, ldc, bf16_tile());
}

#[allow(clippy::too_many_arguments)]
fn small_product<T>(
    a: &[T],
    lda: usize,
    rows: usize,
    b: &[T],
    ldb: usize,
    depth: usize,
    cols: usize,
    c: &mut [f32],
    ldc: usize,
    tile: TileFn<T>,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(a.len() >= (rows - 1) * lda + depth, "A size");
    assert!(depth == 0 || b.len() >= (depth - 1) * ldb + cols, "B size");
    assert!(c.len() >= (rows - 1) * ldc + cols, "C size");
    let zeros = [0f32; NR];
    for col in (0..cols).step_by(NR) {
        let w = NR.min(cols - col);
        for r0 in (0..rows).step_by(MR) {
            let h = MR.min(rows - r0);
            let bias = Some(&zeros[..w]);
            // SAFETY: the asserts above bound every row and column the tile touches; masked
            // loads and stores keep partial panels inside `cols`.
            unsafe {
                let (ap, bp) = (a.as_ptr().add(r0 * lda), b.as_ptr().add(col));
                let cp = c.as_mut_ptr().add(r0 * ldc + col);
                tile(ap, lda, bp, ldb, depth, h, cp, ldc, w, false, bias);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Activation;

    fn naive(a: &[f32], m: usize, k: usize, w: &[f32], n: usize, bias: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|x| a[i * k + x] as f64 * w[j * k + x] as f64)
                    .sum();
                c[i * n + j] = dot as f32 + bias[j];
            }
        }
        c
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn round_bf16(v: &[f32]) -> Vec<f32> {
        v.iter()
            .map(|&x| f32::from_bits(bf16_bits(x) << 16))
            .collect()
    }

    /// Every edge of the blocking: rows past MC and not a multiple of MR, depth past KC and
    /// odd (a half-filled bf16 pair), columns not a multiple of NR.
    #[test]
    fn matches_a_naive_product() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 33, 45),
            (131, 1547, 70),
            (12, 256, 32),
            (5, 64, 16),
        ] {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            for format in [Format::F32, Format::Bf16] {
                let (ar, wr) = match format {
                    Format::F32 => (a.clone(), w.clone()),
                    Format::Bf16 => (round_bf16(&a), round_bf16(&w)),
                };
                let want = naive(&ar, m, k, &wr, n, &bias);
                let packed = Packed::new(&w, n, k, Some(bias.clone()), format);
                let tol = 1e-4 * k as f32;
                let mut c = vec![f32::NAN; m * n];
                matmul(&a, m, &packed, &mut c, Out::Set, Act::None);
                for (i, (x, y)) in c.iter().zip(&want).enumerate() {
                    assert!(
                        (x - y).abs() <= tol,
                        "{m}x{k}x{n} {format:?} [{i}]: {x} vs {y}"
                    );
                }
                // Accumulating into a residual adds the product once more.
                let base = values(m * n, 4);
                let mut c = base.clone();
                matmul(&a, m, &packed, &mut c, Out::Add, Act::None);
                for (i, x) in c.iter().enumerate() {
                    assert!((x - base[i] - want[i]).abs() <= tol, "{format:?} add [{i}]");
                }
                let mut c = vec![0f32; m * n];
                let relu = Act::Model(Activation::Relu);
                matmul(&a, m, &packed, &mut c, Out::Set, relu);
                for (i, x) in c.iter().enumerate() {
                    assert!((x - want[i].max(0.0)).abs() <= tol, "{format:?} relu [{i}]");
                }
                // The plain-Rust tiles (what CPUs without AVX-512 run) give the same.
                let mut c = vec![f32::NAN; m * n];
                let all = (0, n.div_ceil(NR));
                let cp = SendPtr::new(&mut c);
                // SAFETY: one task writes every panel of a buffer of the right size.
                unsafe {
                    match &packed.panels {
                        Panels::F32(p) => {
                            let tile = portable::tile::<f32>;
                            run_panels(&a, m, k, p, &packed, all, cp, Out::Set, Act::None, KC, tile)
                        }
                        Panels::Bf16(p) => {
                            let mut a2 = vec![0u32; m * k.div_ceil(2)];
                            crate::fast::ops::to_bf16_pairs(&a, k, &mut a2);
                            let (k2, tile) = (k.div_ceil(2), portable::tile::<u32>);
                            run_panels(
                                &a2,
                                m,
                                k2,
                                p,
                                &packed,
                                all,
                                cp,
                                Out::Set,
                                Act::None,
                                KC / 2,
                                tile,
                            )
                        }
                    }
                }
                for (i, (x, y)) in c.iter().zip(&want).enumerate() {
                    assert!(
                        (x - y).abs() <= tol,
                        "portable {format:?} [{i}]: {x} vs {y}"
                    );
                }
            }
        }
    }
}
