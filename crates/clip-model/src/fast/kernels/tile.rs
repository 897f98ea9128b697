//! The register tile of the matrix products: up to [`MR`] rows by [`NR`] columns of C kept in
//! registers while a block of products accumulates into them. [`TileFn`] is what every
//! instruction set's tile implements, with its operands in one [`Tile`]; [`portable`] is the
//! plain-Rust tile (what CPUs without AVX-512 run, and the readable statement of what the
//! tiles in `x86/` compute).

/// Columns per packed panel: two 16-lane vectors.
pub const NR: usize = 32;
/// Rows per register tile.
pub const MR: usize = 12;

/// The operands of one register tile: C's `rows` × `cols` block becomes
/// (C if `load`) + `bias` + A·B, where A is `rows` × `depth` words, B is `depth` × `cols`
/// words, and each is row-major with its own row stride (B's is [`NR`] for a packed panel).
/// A word is an f32, or a `u32` holding two bf16 (then `depth` counts pairs).
#[derive(Clone, Copy)]
pub struct Tile<'a, T> {
    pub a: *const T,
    pub lda: usize,
    pub b: *const T,
    pub ldb: usize,
    pub depth: usize,
    /// At most [`MR`].
    pub rows: usize,
    pub c: *mut f32,
    pub ldc: usize,
    /// At most [`NR`].
    pub cols: usize,
    /// Whether C's values are part of the sum (else they are only written).
    pub load: bool,
    /// `cols` values added to every row.
    pub bias: Option<&'a [f32]>,
}

/// One register tile; see [`portable`].
///
/// # Safety
///
/// The tile's pointers must be valid for the rows and columns it names: `rows` rows of
/// `depth` words from `a`, `depth` rows of `cols` words from `b`, and `rows` rows of `cols`
/// values from `c`, which nothing else may touch meanwhile. A tile for an instruction set
/// needs a CPU that has it.
pub type TileFn<T> = unsafe fn(Tile<'_, T>);

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

/// The plain-Rust tile, for CPUs without AVX-512 (and as the readable statement of the
/// kernel).
///
/// # Safety
///
/// As for every [`TileFn`].
pub unsafe fn portable<T: Word>(t: Tile<'_, T>) {
    let (a, lda, b, ldb, kc) = (t.a, t.lda, t.b, t.ldb, t.depth);
    let (c, ldc, rows, cols, load, bias) = (t.c, t.ldc, t.rows, t.cols, t.load, t.bias);
    // SAFETY: the caller's contract bounds every offset below.
    unsafe {
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
