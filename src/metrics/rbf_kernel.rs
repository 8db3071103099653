//! The Gaussian (RBF) kernel and its median-heuristic bandwidth, one definition for the sample-quality
//! metrics (MMD², docs/math.md §12.2) and the kernel score estimators (Stein, SSGE, §11.1).

use super::error::{at_least, MetricError};
use crate::linalg::Mat;

/// Rows the median heuristic looks at: the first `MEDIAN_POINTS` (samples are exchangeable, so these are
/// a random subset), which bounds it at half a million pairs.
pub(crate) const MEDIAN_POINTS: usize = 1000;

/// The Gaussian (RBF) kernel $k(x, y) = \exp(-\Vert x - y\Vert^2 / (2 w^2))$.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RbfKernel {
    bandwidth: f64,
}

impl RbfKernel {
    /// A kernel of bandwidth $w > 0$ (finite).
    ///
    /// # Errors
    /// [`MetricError::BadKernel`].
    pub fn new(bandwidth: f64) -> Result<Self, MetricError> {
        if bandwidth > 0.0 && bandwidth.is_finite() {
            Ok(Self { bandwidth })
        } else {
            Err(MetricError::BadKernel {
                name: "bandwidth",
                value: bandwidth,
                expected: "positive and finite",
            })
        }
    }

    /// The kernel whose bandwidth is the median heuristic on `x`: the median of the pairwise distances
    /// $\Vert x_i - x_j\Vert$, $i < j$, over the first 1000 rows (the lower middle element for an even
    /// count). One rule for every use, so that a bandwidth reported by `tweedie sample` (MMD²) and one
    /// used by `tweedie estimate` (Stein, SSGE) mean the same thing; 1000 rows keep it at half a million
    /// distances (Gretton et al. 2012, Sec. 8; Li & Turner 2018, Sec. 5; Shi et al. 2018, Sec. 5).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer than 2 rows; [`MetricError::BadKernel`] when the median
    /// distance is 0 (more than half the pairs coincide).
    pub fn median(x: &Mat<f64>) -> Result<Self, MetricError> {
        let n = x.rows().min(MEDIAN_POINTS);
        at_least("sample", 2, n)?;
        let head = x.slice_rows(0, n);
        let d2 = squared_distances(&head, &head);
        let mut pairs: Vec<f64> =
            (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| d2.at(i, j)).collect();
        let mid = (pairs.len() - 1) / 2;
        let (_, median, _) = pairs.select_nth_unstable_by(mid, f64::total_cmp);
        Self::new(median.sqrt())
    }

    /// The bandwidth $w$.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// $k(x, y)$.
    pub fn eval(&self, x: &[f64], y: &[f64]) -> f64 {
        let d2: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
        (-d2 / (2.0 * self.bandwidth * self.bandwidth)).exp()
    }

    /// $k(a_i, b_j)$ as a row-major `a.rows() x b.rows()` matrix, through one GEMM.
    pub(crate) fn matrix(&self, a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
        let mut k = squared_distances(a, b);
        let scale = -0.5 / (self.bandwidth * self.bandwidth);
        k.as_mut_slice().iter_mut().for_each(|v| *v = (*v * scale).exp());
        k
    }
}

/// Squared distances $\Vert a_i - b_j\Vert^2$ (`a.rows() x b.rows()`, row-major) as
/// $\Vert a_i\Vert^2 + \Vert b_j\Vert^2 - 2 a_i \cdot b_j$ through one GEMM, clamped at 0.
fn squared_distances(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    let mut d2 = Mat::matmul(a, b, true);
    let na: Vec<f64> = a.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
    let nb: Vec<f64> = b.row_iter().map(|r| r.iter().map(|v| v * v).sum()).collect();
    let cols = b.rows().max(1);
    for (k, v) in d2.as_mut_slice().iter_mut().enumerate() {
        *v = (na[k / cols] + nb[k % cols] - 2.0 * *v).max(0.0);
    }
    d2
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn kernel_matrix_and_median_match_direct_formulas() {
        let x = Mat::from_vec(3, 2, vec![0.0, 0.0, 3.0, 4.0, 0.0, 1.0]);
        // Distances 5, 1 and sqrt(9 + 9) = 4.24...: the median is 4.24.
        assert!((RbfKernel::median(&x).unwrap().bandwidth() - 18f64.sqrt()).abs() < 1e-12);
        // Four points on a line, six distances 1,1,1,2,2,3: the lower middle (third smallest) is 1.
        let line = Mat::from_vec(4, 1, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(RbfKernel::median(&line).unwrap().bandwidth(), 1.0);
        let kernel = RbfKernel::new(2.0).unwrap();
        let k = kernel.matrix(&x, &x);
        assert!((k.at(0, 1) - (-25.0f64 / 8.0).exp()).abs() < 1e-15 && k.at(1, 0) == k.at(0, 1));
        assert!((k.at(1, 2) - kernel.eval(x.row(1), x.row(2))).abs() < 1e-15 && k.at(2, 2) == 1.0);
        let same = Mat::from_vec(2, 1, vec![1.0, 1.0]);
        assert!(matches!(RbfKernel::median(&same), Err(MetricError::BadKernel { .. })));
        assert!(matches!(RbfKernel::median(&Mat::zeros(1, 2)), Err(MetricError::TooFewSamples { .. })));
    }

    #[test]
    fn median_bandwidth_of_a_standard_normal_sample_is_its_distance_median() {
        // ||x - x'||^2 / 2 ~ chi^2_2 for D = 2: median distance sqrt(2 * 2 ln 2) = 1.665. Over 1000 rows
        // (499500 dependent pairs) the sample median is within a few 1e-2 of it.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let x = Mat::from_fn(3000, 2, |_, _| StandardNormal.sample(&mut rng));
        let w = RbfKernel::median(&x).unwrap().bandwidth();
        assert!((w - (4.0 * 2f64.ln()).sqrt()).abs() < 0.05, "{w}");
    }
}
