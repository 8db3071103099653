//! What the kernel score estimators share: the check of their samples, and the RBF kernel
//! ([`RbfKernel`], the one the metrics use) with a given or median-heuristic bandwidth (docs/math.md §11.1).

use super::error::EstimatorError;
use crate::linalg::Mat;
use crate::metrics::RbfKernel;

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

/// The kernel of bandwidth `bandwidth`, or of the median heuristic on `x` ([`RbfKernel::median`]) when
/// `None`.
pub(super) fn kernel_for(bandwidth: Option<f64>, x: &Mat<f64>) -> Result<RbfKernel, EstimatorError> {
    let kernel = match bandwidth {
        Some(w) => RbfKernel::new(w),
        None => RbfKernel::median(x),
    };
    kernel.map_err(|_| EstimatorError::BadBandwidth { bandwidth: bandwidth.unwrap_or(0.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_or_degenerate_bandwidth_is_an_estimator_error() {
        let same = Mat::from_vec(2, 1, vec![1.0, 1.0]);
        assert!(matches!(kernel_for(None, &same), Err(EstimatorError::BadBandwidth { .. })));
        assert!(
            matches!(kernel_for(Some(-1.0), &same), Err(EstimatorError::BadBandwidth { bandwidth }) if bandwidth == -1.0)
        );
        let x = Mat::from_vec(3, 2, vec![0.0, 0.0, 3.0, 4.0, 0.0, 1.0]);
        assert!((kernel_for(None, &x).unwrap().bandwidth() - 18f64.sqrt()).abs() < 1e-12);
    }
}
