//! Maximum mean discrepancy (MMD^2) between a sample and a reference sample: the unbiased U-statistic
//! with the RBF kernel and its median-heuristic bandwidth ([`RbfKernel::median`]).

use super::error::{at_least, MetricError};
use super::rbf_kernel::RbfKernel;
use crate::linalg::Mat;
use rayon::prelude::*;

/// $\sum_{i \ne j} k(a_i, a_j)$ (`same = true`, `b` ignored) or $\sum_{i, j} k(a_i, b_j)$, summed per row in
/// parallel and then over rows in order (deterministic whatever the number of threads).
fn kernel_sum(k: &RbfKernel, a: &Mat<f64>, b: Option<&Mat<f64>>) -> f64 {
    let rows: Vec<f64> = (0..a.rows())
        .into_par_iter()
        .map(|i| match b {
            None => (0..a.rows()).filter(|&j| j != i).map(|j| k.eval(a.row(i), a.row(j))).sum(),
            Some(b) => b.row_iter().map(|bj| k.eval(a.row(i), bj)).sum(),
        })
        .collect();
    rows.iter().sum()
}

#[cfg(test)]
/// The unbiased estimate of $\mathrm{MMD}^2$ between the distributions of `x` (`n x D`) and `y`
/// (`m x D`).
///
/// # Definition
/// $$ \widehat{\mathrm{MMD}}{}^2_u = \frac{1}{n(n-1)} \sum_{i \ne j} k(x_i, x_j) +
///    \frac{1}{m(m-1)} \sum_{i \ne j} k(y_i, y_j) - \frac{2}{nm} \sum_{i, j} k(x_i, y_j) , $$
///
/// It is an unbiased estimate of $\mathbb E k(x, x') + \mathbb E k(y, y') - 2 \mathbb E k(x, y)$, and can
/// be slightly negative when the distributions agree.
///
/// # Reference
/// docs/math.md §12.2; Gretton et al. (2012), *A Kernel Two-Sample Test*, JMLR 13, Eq. (3).
///
/// # Errors
/// [`MetricError::TooFewSamples`] when either sample has fewer than 2 rows.
///
/// # Example
/// ```
/// use tweedie::linalg::Mat;
/// use tweedie::metrics::{mmd2_unbiased, RbfKernel};
/// let x = Mat::from_vec(2, 1, vec![0.0, 1.0]);
/// let k = RbfKernel::new(1.0)?;
/// // Identical two-point samples: 2 k(0, 1) - 2 (2 + 2 k(0, 1)) / 4 = k(0, 1) - 1.
/// let want = (-0.5f64).exp() - 1.0;
/// assert!((mmd2_unbiased(&x, &x, &k)? - want).abs() < 1e-15);
/// # Ok::<(), tweedie::metrics::MetricError>(())
/// ```
#[track_caller]
pub fn mmd2_unbiased(x: &Mat<f64>, y: &Mat<f64>, kernel: &RbfKernel) -> Result<f64, MetricError> {
    assert_eq!(x.cols(), y.cols(), "mmd2_unbiased: samples have {} and {} columns", x.cols(), y.cols());
    at_least("sample", 2, x.rows())?;
    at_least("reference", 2, y.rows())?;
    let yy = kernel_sum(kernel, y, None) / (y.rows() * (y.rows() - 1)) as f64;
    Ok(mmd2_with_reference_term(x, y, kernel, yy))
}

fn mmd2_with_reference_term(x: &Mat<f64>, y: &Mat<f64>, kernel: &RbfKernel, yy: f64) -> f64 {
    let (n, m) = (x.rows() as f64, y.rows() as f64);
    let xx = kernel_sum(kernel, x, None) / (n * (n - 1.0));
    let xy = kernel_sum(kernel, x, Some(y)) / (n * m);
    xx + yy - 2.0 * xy
}

/// MMD² against one fixed reference sample, with the kernel and the reference-reference term computed
/// once (for traces of MMD² along a run: the same kernel at every step).
#[derive(Clone, Debug)]
pub struct MmdEstimator {
    reference: Mat<f64>,
    kernel: RbfKernel,
    yy: f64,
}

impl MmdEstimator {
    /// Uses `reference` (at least 2 rows) and the median-heuristic bandwidth of the reference itself (docs/math.md §12.2).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer than 2 rows; [`MetricError::BadKernel`] when the median distance is 0.
    pub fn new(reference: Mat<f64>) -> Result<Self, MetricError> {
        let kernel = RbfKernel::median(&reference)?;
        Self::with_kernel(reference, kernel)
    }

    /// Uses `reference` and a given kernel.
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] when `reference` has fewer than 2 rows.
    pub fn with_kernel(reference: Mat<f64>, kernel: RbfKernel) -> Result<Self, MetricError> {
        at_least("reference", 2, reference.rows())?;
        let m = reference.rows() as f64;
        let yy = kernel_sum(&kernel, &reference, None) / (m * (m - 1.0));
        Ok(Self { reference, kernel, yy })
    }

    /// The kernel.
    pub fn kernel(&self) -> &RbfKernel {
        &self.kernel
    }

    /// The reference samples.
    pub fn reference(&self) -> &Mat<f64> {
        &self.reference
    }

    /// $\widehat{\mathrm{MMD}}{}^2_u$ of `x` against the reference.
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] when `x` has fewer than 2 rows.
    #[track_caller]
    pub fn mmd2(&self, x: &Mat<f64>) -> Result<f64, MetricError> {
        assert_eq!(x.cols(), self.reference.cols(), "MmdEstimator::mmd2: sample has the wrong dimension");
        at_least("sample", 2, x.rows())?;
        Ok(mmd2_with_reference_term(x, &self.reference, &self.kernel, self.yy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    /// Closed form for x ~ N(0, s^2 I_D), y ~ N(mu, s^2 I_D): with c = (w^2 / (w^2 + 2 s^2))^{D/2},
    /// E k(x, x') = E k(y, y') = c and E k(x, y) = c exp(-|mu|^2 / (2 (w^2 + 2 s^2))).
    fn mmd2_shifted_gaussians(D: usize, s: f64, mu2: f64, w: f64) -> f64 {
        let v = w * w + 2.0 * s * s;
        let c = (w * w / v).powf(D as f64 / 2.0);
        2.0 * c * (1.0 - (-mu2 / (2.0 * v)).exp())
    }

    #[test]
    fn shifted_gaussians_match_the_closed_form_within_the_replicate_error() {
        let (D, n, reps, s, w) = (2, 200, 40, 1.0, 1.5);
        let mut rng = test_rng(11);
        let k = RbfKernel::new(w).unwrap();
        for shift in [0.0, 0.5, 1.5] {
            let est: Vec<f64> = (0..reps)
                .map(|_| {
                    let x = normal_mat(n, D, &mut rng);
                    let mut y = normal_mat(n, D, &mut rng);
                    y.as_mut_slice().chunks_exact_mut(D).for_each(|r| r[0] += shift);
                    mmd2_unbiased(&x, &y, &k).unwrap()
                })
                .collect();
            let mean = est.iter().sum::<f64>() / reps as f64;
            let sd = (est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
            let want = mmd2_shifted_gaussians(D, s, shift * shift, w);
            // Unbiased: the replicate mean is within 5 standard errors of the truth.
            assert!(
                (mean - want).abs() <= 5.0 * sd / (reps as f64).sqrt(),
                "shift {shift}: {mean} vs {want} (sd {sd})"
            );
        }
    }

    #[test]
    fn identical_samples_give_the_exact_small_negative_value() {
        // MMD^2_u(x, x) = 2 (S / (n^2 (n - 1)) - 1/n), S = sum_{i != j} k_ij: within 2/n of 0.
        let x = normal_mat(100, 3, &mut test_rng(2));
        let k = RbfKernel::median(&x).unwrap();
        let n = 100.0;
        let s = kernel_sum(&k, &x, None);
        let got = mmd2_unbiased(&x, &x, &k).unwrap();
        let want = 2.0 * (s / (n * n * (n - 1.0)) - 1.0 / n);
        assert!((got - want).abs() <= 64.0 * f64::EPSILON * s / n);
        assert!(got.abs() <= 2.0 / n);
        // The estimator with a cached reference term gives the same number.
        let est = MmdEstimator::with_kernel(x.clone(), k).unwrap();
        assert!((est.mmd2(&x).unwrap() - got).abs() <= 16.0 * f64::EPSILON);
    }

    #[test]
    fn too_few_samples_and_bad_bandwidths_are_typed_errors() {
        let one = Mat::zeros(1, 2);
        assert!(matches!(RbfKernel::new(0.0), Err(MetricError::BadKernel { .. })));
        assert!(matches!(RbfKernel::new(f64::NAN), Err(MetricError::BadKernel { .. })));
        let k = RbfKernel::new(1.0).unwrap();
        assert!(matches!(mmd2_unbiased(&one, &Mat::zeros(3, 2), &k), Err(MetricError::TooFewSamples { .. })));
    }
}
