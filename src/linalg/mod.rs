//! Dense linear algebra: the matrix type, the GEMM seam (the one place a GPU backend would plug in), the
//! lane-sum reductions of the elementwise losses and the per-sample kernels of a thin factor.

mod fast_math;
mod gemm_profile;
pub(crate) mod lanes;
mod mat;
mod real;
mod thin_factor;

pub(crate) use gemm_profile::GemmTally;
pub use mat::Mat;
pub(crate) use real::with_serial_gemm;
pub use real::Real;
pub(crate) use thin_factor::Outer;
#[cfg(test)]
pub(crate) use thin_factor::ThinFactor;
