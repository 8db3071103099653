//! The floating-point types the network core runs in (f32 for training, f64 for checks), with the GEMM
//! kernel each one dispatches to (and the thin-factor kernels, [`super::thin_factor`]).
#![allow(unsafe_code)] // calls into the gemm crate's strided GEMM (the other unsafe code: thin_factor, winograd's combine).

use num_traits::{Float, FromPrimitive, ToPrimitive};
use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A real scalar: `f32` or `f64`.
pub trait Real:
    Float
    + FromPrimitive
    + ToPrimitive
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Debug
    + Default
    + Send
    + Sync
    + safetensors_dtype::HasDtype
    + super::thin_factor::ThinFactor
    + 'static
{
    /// Machine epsilon of the type.
    const EPS: Self;

    /// Converts from f64 (rounding for f32).
    fn of(x: f64) -> Self;

    /// `exp(x)` for `x <= 0`; vectorisable for f32 (see `fast_math`), libm for f64.
    fn exp_nonpositive(x: Self) -> Self;

    /// `ln(1 + e)` for `e` in `[0, 1]`; vectorisable for f32, libm for f64.
    fn ln_1p_unit(e: Self) -> Self;

    /// `C = alpha * op(A) * op(B) + beta * C` over strided views: `A` is `m x k` with row stride `rsa`
    /// and column stride `csa`, `B` is `k x n`, `C` is `m x n`. Transposes are expressed by swapping
    /// strides. Panics (programmer error) if a slice is too short for the view it describes.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: (&[Self], usize, usize),
        b: (&[Self], usize, usize),
        beta: Self,
        c: (&mut [Self], usize, usize),
    );
}

/// Products of at least this many multiply-adds (`m k n`) split their output tiles across the rayon
/// pool; smaller ones stay on the calling thread, where the split costs more than it saves. Measured
/// with `tweedie bench --threads 2` against a threshold of 2^20: splitting `dsm_step` d = 100's products
/// (512 x 128 x 128 = 8.4 M and below) gained nothing, splitting `ssm_step` d = 100's stacked ones
/// (1024 x 128 x 128 = 16.8 M) did.
pub const PARALLEL_GEMM_MIN_MULADDS: usize = 1 << 24;

thread_local! {
    /// Set while this thread runs one shard of a data-parallel step ([`with_serial_gemm`]).
    static SERIAL_GEMM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every GEMM it makes on this thread kept on this thread: the caller already spreads its
/// work over the pool (one shard of a batch per thread), so splitting a product again would only add
/// synchronisation. The bits are the same either way (see [`gemm_parallelism`]).
pub(crate) fn with_serial_gemm<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL_GEMM.with(|s| s.replace(true));
    let result = f();
    SERIAL_GEMM.with(|s| s.set(before));
    result
}

/// How gemm runs an `m x k x n` product on the current rayon pool: split across its threads when the
/// product is large enough and the calling thread is not running a shard ([`with_serial_gemm`]). gemm
/// splits the output into tiles and never the `k` sum, whose blocking does not depend on the thread
/// count, so every element is the same dot product in the same order and the bits do not depend on the
/// thread count (tested in `mat.rs`).
pub fn gemm_parallelism(m: usize, k: usize, n: usize) -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    let serial = SERIAL_GEMM.with(std::cell::Cell::get);
    if threads > 1 && !serial && m.saturating_mul(k).saturating_mul(n) >= PARALLEL_GEMM_MIN_MULADDS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// The minimal extent a strided `rows x cols` view needs.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

macro_rules! impl_real {
    ($t:ty, $exp:expr, $ln_1p:expr) => {
        impl Real for $t {
            const EPS: Self = <$t>::EPSILON;

            fn of(x: f64) -> Self {
                x as $t
            }

            #[inline(always)]
            fn exp_nonpositive(x: Self) -> Self {
                $exp(x)
            }

            #[inline(always)]
            fn ln_1p_unit(e: Self) -> Self {
                $ln_1p(e)
            }

            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: (&[Self], usize, usize),
                b: (&[Self], usize, usize),
                beta: Self,
                c: (&mut [Self], usize, usize),
            ) {
                assert!(a.0.len() >= extent(m, k, a.1, a.2), "gemm: A too short");
                assert!(b.0.len() >= extent(k, n, b.1, b.2), "gemm: B too short");
                assert!(c.0.len() >= extent(m, n, c.1, c.2), "gemm: C too short");
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY: the asserts above guarantee every index the kernel touches lies inside the
                // slices; C is borrowed mutably, so it cannot alias A or B. gemm computes
                // dst = alpha_g dst + beta_g lhs rhs, so our (alpha, beta) map to (beta_g, alpha_g).
                super::gemm_profile::counted(m, k, n, || unsafe {
                    gemm::gemm::<$t>(
                        m,
                        n,
                        k,
                        c.0.as_mut_ptr(),
                        c.2 as isize,
                        c.1 as isize,
                        beta != 0.0,
                        a.0.as_ptr(),
                        a.2 as isize,
                        a.1 as isize,
                        b.0.as_ptr(),
                        b.2 as isize,
                        b.1 as isize,
                        beta,
                        alpha,
                        false,
                        false,
                        false,
                        gemm_parallelism(m, k, n),
                    )
                })
            }
        }
    };
}

impl_real!(f32, super::fast_math::exp_nonpositive_f32, super::fast_math::ln_1p_unit_f32);
impl_real!(f64, f64::exp, f64::ln_1p);

/// Maps a [`Real`] to its safetensors dtype.
pub mod safetensors_dtype {
    use safetensors::Dtype;

    /// A scalar type with a safetensors dtype and little-endian byte conversion.
    pub trait HasDtype: Sized + Copy {
        /// The safetensors dtype tag.
        const DTYPE: Dtype;
        /// Appends the little-endian bytes of `values` to `out`.
        fn write_le(values: &[Self], out: &mut Vec<u8>);
        /// Reads little-endian values; `bytes.len()` must be a multiple of the size.
        fn read_le(bytes: &[u8]) -> Vec<Self>;
    }

    macro_rules! impl_dtype {
        ($t:ty, $d:expr, $n:expr) => {
            impl HasDtype for $t {
                const DTYPE: Dtype = $d;
                fn write_le(values: &[Self], out: &mut Vec<u8>) {
                    for v in values {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                fn read_le(bytes: &[u8]) -> Vec<Self> {
                    bytes
                        .chunks_exact($n)
                        .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")))
                        .collect()
                }
            }
        };
    }
    impl_dtype!(f32, Dtype::F32, 4);
    impl_dtype!(f64, Dtype::F64, 8);
}
