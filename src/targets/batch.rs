//! The batched forms of the capability traits' methods (`log_densities`, `scores`, `hessians`): one row
//! of a [`Mat`] per point, rows in parallel. The traits' provided methods call these.
//!
//! The work runs on the current rayon pool; a caller that wants to bound the parallelism runs the call
//! inside its own `rayon::ThreadPool::install`.

use super::traits::{LogDensity, Score, ScoreHessian};
use crate::linalg::Mat;
use rayon::prelude::*;

/// Rows per rayon task: enough work per task to amortise scheduling for small `D`.
const ROWS_PER_TASK: usize = 16;

/// `log p` of every row of `x` (`N x D`), as a vector of length `N`.
#[track_caller]
pub(crate) fn log_densities<T: LogDensity + Sync + ?Sized>(target: &T, x: &Mat<f64>) -> Vec<f64> {
    let d = target.dim();
    assert_eq!(x.cols(), d, "log_densities: points have {} coordinates, target has D = {d}", x.cols());
    let mut out = vec![0.0; x.rows()];
    out.par_iter_mut().with_min_len(ROWS_PER_TASK).enumerate().for_each(|(i, o)| {
        *o = target.log_density(x.row(i));
    });
    out
}

/// `s1` of every row of `x` (`N x D`), as an `N x D` matrix.
#[track_caller]
pub(crate) fn scores<T: Score + Sync + ?Sized>(target: &T, x: &Mat<f64>) -> Mat<f64> {
    let d = target.dim();
    assert_eq!(x.cols(), d, "scores: points have {} coordinates, target has D = {d}", x.cols());
    let mut out = Mat::zeros(x.rows(), d);
    if d > 0 {
        out.as_mut_slice().par_chunks_mut(d).with_min_len(ROWS_PER_TASK).enumerate().for_each(|(i, o)| {
            target.score_into(x.row(i), o);
        });
    }
    out
}

/// `s2` of every row of `x` (`N x D`), as `N` row-major `D x D` blocks (length `N * D * D`).
#[track_caller]
pub(crate) fn hessians<T: ScoreHessian + Sync + ?Sized>(target: &T, x: &Mat<f64>) -> Vec<f64> {
    let d = target.dim();
    assert_eq!(x.cols(), d, "hessians: points have {} coordinates, target has D = {d}", x.cols());
    let mut out = vec![0.0; x.rows() * d * d];
    if d > 0 {
        out.par_chunks_mut(d * d).with_min_len(ROWS_PER_TASK).enumerate().for_each(|(i, o)| {
            target.hessian_into(x.row(i), o);
        });
    }
    out
}

#[cfg(test)]
#[allow(non_snake_case)]
mod tests {
    use super::*;
    use crate::targets::named::parse_target;
    use crate::targets::testing::test_rng;

    #[test]
    fn batched_helpers_equal_the_pointwise_calls() {
        let p = parse_target("gmm:dim=5,components=3,seed=1").unwrap();
        let D = p.dim();
        let x = p.sample(100, &mut test_rng(4));
        let (lp, s, h) = (p.log_densities(&x), p.scores(&x), p.hessians(&x));
        let mut s1 = vec![0.0; D];
        let mut s2 = vec![0.0; D * D];
        for (i, row) in x.row_iter().enumerate() {
            p.score_into(row, &mut s1);
            p.hessian_into(row, &mut s2);
            // Same arithmetic in the same order: bitwise equal.
            assert_eq!(lp[i], p.log_density(row));
            assert_eq!(s.row(i), &s1[..]);
            assert_eq!(&h[i * D * D..(i + 1) * D * D], &s2[..]);
        }
        // Through the &T blanket impls (the trait objects hold a `&GaussianMixture`).
        let r: &(dyn ScoreHessian + Sync) = &&p;
        assert_eq!(r.dim(), D);
        assert_eq!(r.scores(&x), s);
        assert_eq!(r.hessians(&x), h);
        let l: &(dyn LogDensity + Sync) = &&p;
        assert_eq!(l.log_densities(&x), lp);
    }

    /// A target on the zero-dimensional space: its score and Hessian are empty.
    struct Point;

    impl crate::targets::HasDim for Point {
        fn dim(&self) -> usize {
            0
        }
    }

    impl Score for Point {
        fn score_into(&self, _: &[f64], _: &mut [f64]) {}
    }

    impl ScoreHessian for Point {
        fn hessian_into(&self, _: &[f64], _: &mut [f64]) {}
    }

    #[test]
    fn zero_dimensional_batches_are_empty_not_a_panic() {
        // Rows of zero entries cannot be split into chunks of length D = 0 (rayon panics).
        let x = Mat::zeros(3, 0);
        assert_eq!((Point.scores(&x).rows(), Point.scores(&x).cols()), (3, 0));
        assert!(Point.hessians(&x).is_empty());
    }

    #[test]
    #[should_panic(expected = "scores: points have 3 coordinates")]
    fn batched_helpers_reject_the_wrong_width() {
        let p = parse_target("gmm2d").unwrap();
        p.scores(&Mat::zeros(4, 3));
    }
}
