//! The RBF kernel of the kernel score estimators, its Gram matrix, and the median-heuristic bandwidth
//! (docs/math.md §11.1).

use super::error::EstimatorError;
use crate::linalg::Mat;
#[cfg(test)]
use nalgebra::DMatrix;

/// Most samples the median heuristic looks at (the first ones; samples are exchangeable), which keeps
/// it at a few million pairs.
pub const MEDIAN_MAX_SAMPLES: usize = 2000;

/// Checks that `x` has at least `needed` rows and only finite values.
pub(super) fn check_samples(x: &Mat<f64>, needed: usize) -> Result<(), EstimatorError> {
    if x.rows() < needed || x.cols() == 0 {
        return Err(EstimatorError::TooFewSamples { found: x.rows(), needed });
    }
    for (k, v) in x.as_slice().iter().enumerate() {
        if !v.is_finite() {
            return Err(EstimatorError::NonFiniteSample {
                row: k / x.cols(),
                column: k % x.cols(),
                value: *v,
            });
        }
    }
    Ok(())
}

/// Squared distances `||a_i - b_j||^2` (`a.rows() x b.rows()`, row-major) through one GEMM.
pub(super) fn squared_distances(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    let mut d2 = Mat::matmul(a, b, true);
    let na: Vec<f64> = a.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
    let nb: Vec<f64> = b.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
    let cols = b.rows();
    for (k, v) in d2.as_mut_slice().iter_mut().enumerate() {
        *v = (na[k / cols.max(1)] + nb[k % cols.max(1)] - 2.0 * *v).max(0.0);
    }
    d2
}

/// The median heuristic: the median of the pairwise distances `||x_i - x_j||` (`i < j`) among the first
/// [`MEDIAN_MAX_SAMPLES`] samples.
///
/// # Reference
/// Gretton et al. 2012 (kernel two-sample test), Sec. 8; Li & Turner 2018, Sec. 5; Shi et al. 2018, Sec. 5.
pub fn median_bandwidth(x: &Mat<f64>) -> f64 {
    let m = x.rows().min(MEDIAN_MAX_SAMPLES);
    if m < 2 {
        return f64::NAN;
    }
    let head = x.slice_rows(0, m);
    let d2 = squared_distances(&head, &head);
    let mut pairs: Vec<f64> =
        (0..m).flat_map(|i| (i + 1..m).map(move |j| (i, j))).map(|(i, j)| d2.at(i, j)).collect();
    let mid = pairs.len() / 2;
    let (_, median, _) = pairs.select_nth_unstable_by(mid, f64::total_cmp);
    median.sqrt()
}

/// The RBF kernel `k(x, y) = exp(-||x - y||^2 / (2 w^2))` with bandwidth `w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RbfKernel {
    bandwidth: f64,
}

impl RbfKernel {
    /// A kernel of bandwidth `w` (given, or the median heuristic on `x` when `None`).
    pub fn new(bandwidth: Option<f64>, x: &Mat<f64>) -> Result<Self, EstimatorError> {
        let bandwidth = bandwidth.unwrap_or_else(|| median_bandwidth(x));
        if !(bandwidth > 0.0 && bandwidth.is_finite()) {
            return Err(EstimatorError::BadBandwidth { bandwidth });
        }
        Ok(Self { bandwidth })
    }

    /// The bandwidth `w`.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// `k(a_i, b_j)` as a row-major `a.rows() x b.rows()` matrix.
    pub fn matrix(&self, a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
        let mut k = squared_distances(a, b);
        let scale = -0.5 / (self.bandwidth * self.bandwidth);
        k.as_mut_slice().iter_mut().for_each(|v| *v = (*v * scale).exp());
        k
    }

    #[cfg(test)]
    /// The Gram matrix `K_ij = k(x_i, x_j)` as an nalgebra matrix (symmetric, so row- and column-major
    /// agree).
    pub fn gram(&self, x: &Mat<f64>) -> DMatrix<f64> {
        let m = x.rows();
        DMatrix::from_vec(m, m, self.matrix(x, x).into_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_and_median_match_direct_formulas() {
        let x = Mat::from_vec(3, 2, vec![0.0, 0.0, 3.0, 4.0, 0.0, 1.0]);
        // Distances: 5, 1, sqrt(9 + 9) = 4.24...; median 4.24.
        assert!((median_bandwidth(&x) - 18f64.sqrt()).abs() < 1e-12);
        let kernel = RbfKernel::new(Some(2.0), &x).unwrap();
        let k = kernel.gram(&x);
        assert!(
            (k[(0, 1)] - (-25.0f64 / 8.0).exp()).abs() < 1e-15 && k[(1, 0)] == k[(0, 1)] && k[(2, 2)] == 1.0
        );
        let same = Mat::from_vec(2, 1, vec![1.0, 1.0]);
        assert!(matches!(RbfKernel::new(None, &same), Err(EstimatorError::BadBandwidth { .. })));
    }
}
