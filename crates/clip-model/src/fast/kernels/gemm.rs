//! Matrix products against pre-packed weights: `C[m, n] (+)= A[m, k] · W[n, k]ᵀ + bias[n]`.
//!
//! Our own kernel rather than a general GEMM library because the weights are fixed: they are
//! packed once at load into 32-column panels (f32, or bf16 pairs for `vdpbf16ps`), the bias,
//! the residual add and the activation are applied while the output tile is still in
//! registers or L1, and the same loop nest serves the bf16 path, which no crate we can use
//! offers on x86. Work is split by column panels across the rayon pool.

use rayon::prelude::*;

use super::act::{activate, Act};
use super::bf16::{bf16_bits, to_bf16_pairs};
use super::dispatch::{Isa, SendPtr};
use super::tile::{self, Tile, TileFn, MR, NR};
#[cfg(target_arch = "x86_64")]
use super::x86::{avx512, avx512bf16};

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
            let job = Job {
                a,
                m,
                depth: k,
                panels: p,
                w,
                c: cp,
                out,
                act,
                kc_block: KC,
                tile: f32_tile(),
            };
            let run = |t: usize| {
                let range = (panels * t / tasks, panels * (t + 1) / tasks);
                // SAFETY: `c` holds m rows of n values (asserted); task t writes only the
                // columns of its panels.
                unsafe { run_panels(&job, range) }
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
                .for_each(|(dst, src)| to_bf16_pairs(src, k, dst));
            let job = Job {
                a: &a2[..m * k2],
                m,
                depth: k2,
                panels: p,
                w,
                c: cp,
                out,
                act,
                kc_block: KC / 2,
                tile: bf16_tile(),
            };
            let run = |t: usize| {
                let range = (panels * t / tasks, panels * (t + 1) / tasks);
                // SAFETY: as above.
                unsafe { run_panels(&job, range) }
            };
            (0..tasks).into_par_iter().for_each(run);
            A_BF16.set(a2);
        }
    }
}

/// One product as its tasks share it: `a` (`m` rows of `depth` words, f32 or bf16 pairs)
/// against `panels`, the packed data of `w`, into `c` (`m` rows of `w.n` values), with
/// `tile` for each register tile.
struct Job<'a, T> {
    a: &'a [T],
    m: usize,
    depth: usize,
    panels: &'a [T],
    w: &'a Packed,
    c: SendPtr<f32>,
    out: Out,
    act: Act,
    /// Depth per cache block, in words.
    kc_block: usize,
    tile: TileFn<T>,
}

/// Runs panels `p0..p1` of `job`: the loop nest shared by both formats, one MR×NR register
/// tile at a time.
///
/// # Safety
///
/// `job.c` must point to `job.m` rows of `job.w.n` values, and no other task may touch the
/// columns of panels `p0..p1` meanwhile.
unsafe fn run_panels<T>(job: &Job<'_, T>, (p0, p1): (usize, usize)) {
    let &Job {
        a,
        m,
        depth,
        panels,
        w,
        c,
        out,
        act,
        kc_block,
        tile,
    } = job;
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
        // SAFETY: rows m0..m0+mc of `a`, depth k0..k0+kc of panel p and its columns of `c`
        // lie inside the buffers (`matmul` checked their sizes; the caller's contract covers
        // `c` and who writes it).
        unsafe {
            let bp = panels.as_ptr().add(p * depth * NR + k0 * NR);
            for r0 in (m0..m0 + mc).step_by(MR) {
                let rows = MR.min(m0 + mc - r0);
                let cptr = c.get().add(r0 * n + col);
                tile(Tile {
                    a: a.as_ptr().add(r0 * depth + k0),
                    lda: depth,
                    b: bp,
                    ldb: NR,
                    depth: kc,
                    rows,
                    c: cptr,
                    ldc: n,
                    cols,
                    load,
                    bias,
                });
                if last && act != Act::None {
                    for r in 0..rows {
                        let row = std::slice::from_raw_parts_mut(cptr.add(r * n), cols);
                        activate(act, row);
                    }
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

/// The f32 tile this CPU runs best.
fn f32_tile() -> TileFn<f32> {
    match Isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Bf16 => avx512::tile_f32,
        _ => tile::portable::<f32>,
    }
}

/// The bf16 tile: `vdpbf16ps` where the CPU has it, else the same products in plain Rust.
fn bf16_tile() -> TileFn<u32> {
    match Isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Bf16 => avx512bf16::tile_bf16,
        _ => tile::portable::<u32>,
    }
}

/// `c = a · b` for the small products inside attention: `rows × depth` times `depth × cols`,
/// f32. Each matrix comes as (slice, row stride), row-major. Uses the same register tiles as
/// [`matmul`], without packing (the operands are fresh each call and already in cache).
pub fn small_matmul(
    a: (&[f32], usize),
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    rows: usize,
    depth: usize,
    cols: usize,
) {
    small_product(a, b, c, rows, depth, cols, f32_tile());
}

/// [`small_matmul`] on bf16 pairs: `a` is `rows × depth` words, `b` is `depth × cols` words
/// each holding the bf16 of two consecutive rows of the `2·depth`-deep product.
pub fn small_matmul_bf16(
    a: (&[u32], usize),
    b: (&[u32], usize),
    c: (&mut [f32], usize),
    rows: usize,
    depth: usize,
    cols: usize,
) {
    small_product(a, b, c, rows, depth, cols, bf16_tile());
}

fn small_product<T>(
    (a, lda): (&[T], usize),
    (b, ldb): (&[T], usize),
    (c, ldc): (&mut [f32], usize),
    rows: usize,
    depth: usize,
    cols: usize,
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
                tile(Tile {
                    a: ap,
                    lda,
                    b: bp,
                    ldb,
                    depth,
                    rows: h,
                    c: cp,
                    ldc,
                    cols: w,
                    load: false,
                    bias,
                });
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
                            let job = Job {
                                a: &a,
                                m,
                                depth: k,
                                panels: p,
                                w: &packed,
                                c: cp,
                                out: Out::Set,
                                act: Act::None,
                                kc_block: KC,
                                tile: tile::portable::<f32>,
                            };
                            run_panels(&job, all)
                        }
                        Panels::Bf16(p) => {
                            let mut a2 = vec![0u32; m * k.div_ceil(2)];
                            to_bf16_pairs(&a, k, &mut a2);
                            let job = Job {
                                a: &a2,
                                m,
                                depth: k.div_ceil(2),
                                panels: p,
                                w: &packed,
                                c: cp,
                                out: Out::Set,
                                act: Act::None,
                                kc_block: KC / 2,
                                tile: tile::portable::<u32>,
                            };
                            run_panels(&job, all)
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
