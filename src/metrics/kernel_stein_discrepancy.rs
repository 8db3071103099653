//! Kernel Stein discrepancy (KSD^2) of a sample against a distribution known through its score, with the
//! inverse multiquadric (IMQ) kernel; U-statistic estimator.

use super::error::{at_least, MetricError};
use crate::linalg::Mat;
use rayon::prelude::*;

/// The inverse multiquadric kernel $k(x, y) = (c^2 + \Vert x - y\Vert^2)^{\beta}$, $c > 0$,
/// $\beta \in (-1, 0)$.
///
/// The default $c = 1$, $\beta = -1/2$ is the choice of Gorham & Mackey (2017), for which KSD controls
/// weak convergence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImqKernel {
    c: f64,
    beta: f64,
}

impl Default for ImqKernel {
    fn default() -> Self {
        Self { c: 1.0, beta: -0.5 }
    }
}

impl ImqKernel {
    /// A kernel with scale $c > 0$ and exponent $\beta \in (-1, 0)$.
    ///
    /// # Errors
    /// [`MetricError::BadKernel`].
    pub fn new(c: f64, beta: f64) -> Result<Self, MetricError> {
        if !(c > 0.0 && c.is_finite()) {
            return Err(MetricError::BadKernel { name: "c", value: c, expected: "positive and finite" });
        }
        if !(beta > -1.0 && beta < 0.0) {
            return Err(MetricError::BadKernel { name: "beta", value: beta, expected: "in (-1, 0)" });
        }
        Ok(Self { c, beta })
    }

    /// The Stein kernel $u_p(x, y)$ given the scores $s_x = \nabla\log p(x)$, $s_y = \nabla \log p(y)$.
    ///
    /// # Definition
    /// With $r = x - y$, $q = c^2 + \Vert r\Vert^2$ and $k = q^\beta$:
    /// $$ u_p(x, y) = s_x^\top s_y\  k + s_x^\top \nabla_y k + s_y^\top \nabla_x k + \operatorname{tr}
    ///    \nabla_x \nabla_y^\top k $$
    /// $$ = q^\beta s_x^\top s_y + 2\beta q^{\beta-1} (s_y - s_x)^\top r - 2\beta D q^{\beta-1} -
    ///    4\beta(\beta-1) q^{\beta-2} \Vert r\Vert^2 . $$
    pub fn stein(&self, x: &[f64], y: &[f64], s_x: &[f64], s_y: &[f64]) -> f64 {
        let D = x.len() as f64;
        let (mut r2, mut sxsy, mut ds_r) = (0.0, 0.0, 0.0);
        for i in 0..x.len() {
            let r = x[i] - y[i];
            r2 += r * r;
            sxsy += s_x[i] * s_y[i];
            ds_r += (s_y[i] - s_x[i]) * r;
        }
        let b = self.beta;
        let q = self.c * self.c + r2;
        let qb1 = q.powf(b - 1.0);
        qb1 * q * sxsy + 2.0 * b * qb1 * ds_r - 2.0 * b * D * qb1 - 4.0 * b * (b - 1.0) * qb1 / q * r2
    }
}

impl ImqKernel {
    /// The U-statistic estimate of $\mathrm{KSD}^2$ of the sample `x` (`n x D`) against the distribution whose
    /// scores at the sample points are `scores` (`n x D`).
    ///
    /// # Definition
    /// $$ \widehat{\mathrm{KSD}}{}^2_u = \frac{1}{n(n-1)} \sum_{i \ne j} u_p(x_i, x_j) , $$
    /// unbiased for $\mathbb E_{x, x' \sim q}\  u_p(x, x')$, which is 0 iff $q = p$ (it can be slightly
    /// negative). Rows are summed in parallel, then over rows in order (deterministic).
    ///
    /// # Reference
    /// docs/math.md §12.3; Liu, Lee & Jordan (2016), *A Kernelized Stein Discrepancy for Goodness-of-fit Tests*,
    /// Eq. (14); Gorham & Mackey (2017), *Measuring Sample Quality with Kernels*, Sec. 3 (IMQ kernel).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer than 2 rows.
    ///
    /// # Example
    /// ```
    /// use tweedie::linalg::Mat;
    /// use tweedie::metrics::ImqKernel;
    /// // Two points of N(0, 1), scores -x.
    /// let x = Mat::from_vec(2, 1, vec![-1.0, 1.0]);
    /// let s = Mat::from_vec(2, 1, vec![1.0, -1.0]);
    /// let k = ImqKernel::default();
    /// assert_eq!(k.ksd2_unbiased(&x, &s)?, k.stein(&[-1.0], &[1.0], &[1.0], &[-1.0]));
    /// # Ok::<(), tweedie::metrics::MetricError>(())
    /// ```
    #[track_caller]
    pub fn ksd2_unbiased(&self, x: &Mat<f64>, scores: &Mat<f64>) -> Result<f64, MetricError> {
        assert!(
            x.rows() == scores.rows() && x.cols() == scores.cols(),
            "ksd2_unbiased: x and scores differ in shape"
        );
        let n = x.rows();
        at_least("sample", 2, n)?;
        let rows: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| {
                (0..n)
                    .filter(|&j| j != i)
                    .map(|j| self.stein(x.row(i), x.row(j), scores.row(i), scores.row(j)))
                    .sum()
            })
            .collect();
        Ok(rows.iter().sum::<f64>() / (n * (n - 1)) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn stein_kernel_is_the_mixed_derivative_of_p_k_p_over_p_p() {
        // u_p(x, y) p(x) p(y) = sum_i d/dx_i d/dy_i [p(x) k(x, y) p(y)]; check by central differences
        // for p = N(m, diag(v)) in D = 2.
        let (m, v) = ([0.3, -0.2], [0.8, 1.5]);
        let logp = |x: &[f64]| -> f64 { (0..2).map(|i| -(x[i] - m[i]).powi(2) / (2.0 * v[i])).sum() };
        let score = |x: &[f64]| -> Vec<f64> { (0..2).map(|i| -(x[i] - m[i]) / v[i]).collect() };
        let k = ImqKernel::new(1.3, -0.4).unwrap();
        let kern =
            |x: &[f64], y: &[f64]| (k.c * k.c + (x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2)).powf(k.beta);
        let f = |x: &[f64], y: &[f64]| (logp(x) + logp(y)).exp() * kern(x, y);
        let (x, y) = ([0.7, 0.1], [-0.4, 0.9]);
        let e = 1e-4;
        let mut mixed = 0.0;
        for i in 0..2 {
            // Builds a new array instead of mutating the by-value argument in place: rustc 1.95 miscompiles
            // a closure that mutates an argument passed by pointer when the caller reuses the variable
            // (rust-lang/rust#155241, fixed by #155343), which shifted `x` twice in the test profile.
            let shift = |a: [f64; 2], t: f64| -> [f64; 2] {
                std::array::from_fn(|j| if j == i { a[j] + t } else { a[j] })
            };
            mixed += (f(&shift(x, e), &shift(y, e))
                - f(&shift(x, e), &shift(y, -e))
                - f(&shift(x, -e), &shift(y, e))
                + f(&shift(x, -e), &shift(y, -e)))
                / (4.0 * e * e);
        }
        let want = mixed / (logp(&x) + logp(&y)).exp();
        let got = k.stein(&x, &y, &score(&x), &score(&y));
        // Central differences: O(e^2) truncation, O(eps / e^2) rounding.
        assert!((got - want).abs() < 1e-6 * (1.0 + want.abs()), "{got} vs {want}");
    }

    /// KSD^2 of q = N(mu, 1) against p = N(0, 1) in 1-D: E_{x, y ~ q} u_p(x, y) by the trapezoid rule on
    /// [mu - 12, mu + 12]^2 (spectrally accurate for this smooth, Gaussian-decaying integrand).
    fn ksd2_by_quadrature(mu: f64, k: &ImqKernel) -> f64 {
        let (n, half) = (801, 12.0);
        let dx = 2.0 * half / (n - 1) as f64;
        let pts: Vec<f64> = (0..n).map(|i| mu - half + i as f64 * dx).collect();
        let w: Vec<f64> = pts
            .iter()
            .map(|x| (-(x - mu).powi(2) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * dx)
            .collect();
        let mut total = 0.0;
        for (a, wa) in pts.iter().zip(&w) {
            for (b, wb) in pts.iter().zip(&w) {
                total += wa * wb * k.stein(&[*a], &[*b], &[-a], &[-b]);
            }
        }
        total
    }

    #[test]
    fn ksd_is_unbiased_for_zero_under_p_and_for_the_quadrature_value_under_a_shift() {
        let k = ImqKernel::default();
        let (n, reps) = (200, 30);
        let mut rng = test_rng(7);
        for mu in [0.0, 0.5, 1.0] {
            let est: Vec<f64> = (0..reps)
                .map(|_| {
                    let mut x = normal_mat(n, 1, &mut rng);
                    x.as_mut_slice().iter_mut().for_each(|v| *v += mu);
                    let s = Mat::from_fn(n, 1, |i, _| -x.at(i, 0));
                    k.ksd2_unbiased(&x, &s).unwrap()
                })
                .collect();
            let mean = est.iter().sum::<f64>() / reps as f64;
            let sd = (est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
            let want = if mu == 0.0 { 0.0 } else { ksd2_by_quadrature(mu, &k) };
            assert!(
                (mean - want).abs() <= 5.0 * sd / (reps as f64).sqrt(),
                "mu {mu}: {mean} vs {want} (sd {sd})"
            );
            if mu > 0.0 {
                assert!(want > 0.0);
            }
        }
        // The quadrature itself gives 0 under p (Stein's identity).
        assert!(ksd2_by_quadrature(0.0, &k).abs() < 1e-10);
    }

    #[test]
    fn bad_kernels_are_rejected() {
        assert!(matches!(ImqKernel::new(0.0, -0.5), Err(MetricError::BadKernel { name: "c", .. })));
        assert!(matches!(ImqKernel::new(1.0, 0.5), Err(MetricError::BadKernel { name: "beta", .. })));
    }
}
