//! The register tile of the matrix products: up to [`MR`] rows by [`NR`] columns of C kept in
//! registers while a block of products accumulates into them. [`TileFn`] is what every
//! instruction set's tile implements; [`portable`] is the plain-Rust one (what CPUs without
//! AVX-512 run, and the readable statement of what the tiles in `x86/` compute).

// The tiles work on raw pointers into buffers whose sizes their callers check once; marking
// every pointer step `unsafe` again inside these `unsafe fn`s would only add noise.
#![allow(unsafe_op_in_unsafe_fn)]

/// Columns per packed panel: two 16-lane vectors.
pub const NR: usize = 32;
/// Rows per register tile.
pub const MR: usize = 12;

/// One register tile: `(a, lda, b, ldb, depth, rows, c, ldc, cols, load, bias)`; see
/// [`portable`].
pub type TileFn<T> = unsafe fn(
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
#[allow(clippy::too_many_arguments)]
pub unsafe fn portable<T: Word>(
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
