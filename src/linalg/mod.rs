//! Dense linear algebra: the matrix type and the GEMM seam (the one place a GPU backend would plug in).

mod fast_math;
mod mat;
mod real;

pub use mat::Mat;
pub use real::Real;
