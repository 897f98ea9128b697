//! The one way the kernels pick an instruction set, and the one pointer type their rayon tasks
//! share.
//!
//! [`Isa::current`] detects the widest tier the CPU has once and caches it; every kernel with
//! versions for several instruction sets matches on it (the hand-written ones in a `match`, the
//! plain-Rust loops through [`per_isa!`], which compiles them once per tier). The idiom is the
//! one of `passes::Isa` in clip-preprocess's `image/resample.rs`.

use std::sync::OnceLock;

/// Instruction-set tiers with kernels of their own, narrowest first. Each tier includes the
/// ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust at the target's baseline (SSE2 on x86-64), left to the compiler's
    /// vectorizer: every target.
    Portable,
    /// x86-64 with AVX2 and FMA: the plain-Rust loops compiled again for 8 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 with AVX-512 F, BW, DQ and VL: the hand-written AVX-512 kernels (f32 register
    /// tile, quick_gelu, softmax) and the plain-Rust loops compiled again for 16 lanes. The
    /// hand-written ones need only F, but every AVX-512 CPU since Skylake-SP has all four, so
    /// one tier serves both (an F-only Xeon Phi runs the AVX2 tier).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// [`Isa::Avx512`] and AVX512-BF16 (`vdpbf16ps`, `vcvtne2ps2bf16`): the bf16 register tile
    /// and the bf16 packing too.
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16,
}

impl Isa {
    /// The widest tier this CPU has, detected on the first call.
    #[inline]
    pub fn current() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(Isa::detect)
    }

    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl");
            if avx512 && is_x86_feature_detected!("avx512bf16") {
                return Isa::Avx512Bf16;
            }
            if avx512 {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// Defines `fn $name` as a plain-Rust body compiled three times, for [`Isa::Avx512`] (and
/// [`Isa::Avx512Bf16`]), for [`Isa::Avx2`] and for the baseline, and calls the version of
/// [`Isa::current`] (the default x86-64 target only allows SSE2, so the compiler vectorizes
/// the wider copies for wider registers).
macro_rules! per_isa {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::fast::kernels::dispatch::Isa;
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                match Isa::current() {
                    // SAFETY: `Isa::current` returns an AVX-512 tier only on CPUs with AVX-512
                    // F, BW, DQ and VL (which imply AVX2 and FMA).
                    Isa::Avx512 | Isa::Avx512Bf16 => return unsafe { v4($($arg),*) },
                    // SAFETY: `Isa::Avx2` only on CPUs with AVX2 and FMA.
                    Isa::Avx2 => return unsafe { v3($($arg),*) },
                    Isa::Portable => {}
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use per_isa;

/// A raw pointer into a buffer that may cross into the rayon pool; the tasks that share it
/// write disjoint parts of the buffer (each user says which).
#[derive(Clone, Copy)]
pub struct SendPtr<T>(*mut T);

// SAFETY: the pointer is only written through by tasks that touch disjoint elements, while the
// function that spawned them holds the buffer's mutable borrow.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The start of `buf`.
    pub fn new(buf: &mut [T]) -> Self {
        SendPtr(buf.as_mut_ptr())
    }

    // A method, so that closures capture the whole (Send) wrapper, not its raw field.
    pub fn get(self) -> *mut T {
        self.0
    }
}
