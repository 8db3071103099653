//! The autodiff baseline for posterior principal components (Manor & Michaeli, ICLR 2024): subspace
//! iteration on the Jacobian of the denoiser, `Cov[x | x~] = sigma^2 d E[x | x~] / d x~ =
//! sigma^2 (I + sigma^2 J_s1(x~))`, applied by exact JVPs of the score network.

use super::{PrincipalComponents, ScoreJvp, UncertaintyError};
use crate::linalg::Mat;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Stacked rows per network pass (points times `K + 1`).
const ROWS_PER_PASS: usize = 1 << 12;

/// Settings of the subspace iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubspaceIteration {
    /// `K`, the directions kept.
    pub components: usize,
    /// `N >= 1`, the products with the covariance per direction.
    pub iterations: usize,
    /// Seed of the random starting subspace.
    pub seed: u64,
}

/// What the subspace iteration gives at every noisy point.
#[derive(Clone, Debug, PartialEq)]
pub struct IteratedComponents {
    /// The posterior means `x~ + sigma^2 s1(x~)` (`N x D`).
    pub means: Mat<f64>,
    /// The top `K` directions and variances of each point.
    pub components: Vec<PrincipalComponents>,
    /// Network calls per point, `1 + K N`: one evaluation for the mean and one JVP per direction and
    /// iteration, the count of Manor & Michaeli.
    pub network_calls: usize,
}

/// The rows of `w` (`K x D`) made orthonormal by a thin QR of `w^T`.
fn orthonormal_rows(w: &Mat<f64>) -> Mat<f64> {
    let (k, dim) = (w.rows(), w.cols());
    let q = DMatrix::from_row_slice(k, dim, w.as_slice()).transpose().qr().q();
    Mat::from_fn(k, dim, |r, i| q[(i, r)])
}

impl IteratedComponents {
    /// Posterior principal components at every row of `x_tilde` by subspace iteration: from a random
    /// orthonormal `V_0` (`K x D`), `W_t = C V_t` by `K` JVPs, `V_{t+1} = QR(W_t)`; the last product is
    /// used for Rayleigh-Ritz instead, `V_{N-1} W^T = Y Lambda Y^T` (symmetrised), so the directions are
    /// `Y^T V_{N-1}` and the variances `Lambda`, after `N` products in all.
    ///
    /// # Errors
    /// [`UncertaintyError::BadSetting`] for `K = 0` or `N = 0`; [`UncertaintyError::TooManyComponents`]
    /// for `K > D`; [`UncertaintyError::SizeMismatch`] if the rows do not have the score's dimension.
    pub fn compute<S: ScoreJvp + ?Sized>(
        score: &S,
        x_tilde: &Mat<f64>,
        sigma: f64,
        settings: SubspaceIteration,
    ) -> Result<IteratedComponents, UncertaintyError> {
        let (dim, k, iterations) = (score.dim(), settings.components, settings.iterations);
        for (what, value) in [("components", k), ("iterations", iterations)] {
            if value == 0 {
                return Err(UncertaintyError::BadSetting { what, value: 0.0, expected: "at least 1" });
            }
        }
        if k > dim {
            return Err(UncertaintyError::TooManyComponents {
                requested: k,
                available: dim,
                why: "the dimension",
            });
        }
        if x_tilde.cols() != dim {
            return Err(UncertaintyError::SizeMismatch {
                what: "noisy point",
                found: x_tilde.cols(),
                expected: dim,
            });
        }
        let s2 = sigma * sigma;
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let chunk = (ROWS_PER_PASS / (k + 1)).max(1);
        let (mut means, mut components) = (Vec::with_capacity(x_tilde.rows() * dim), Vec::new());
        for start in (0..x_tilde.rows()).step_by(chunk) {
            let x = x_tilde.slice_rows(start, (start + chunk).min(x_tilde.rows()));
            let n = x.rows();
            let mut v: Vec<Mat<f64>> = (0..n)
                .map(|_| orthonormal_rows(&Mat::from_fn(k, dim, |_, _| StandardNormal.sample(&mut rng))))
                .collect();
            for t in 0..iterations {
                let tangents = Mat::from_fn(k * n, dim, |row, c| v[row % n].at(row / n, c));
                let (s1, jv) = score.score_and_jvps(&x, &tangents);
                if !s1.is_finite() || !jv.is_finite() {
                    return Err(UncertaintyError::NonFinite { what: "score or its JVPs" });
                }
                if t == 0 {
                    means.extend((0..n * dim).map(|e| x.as_slice()[e] + s2 * s1.as_slice()[e]));
                }
                for (i, vi) in v.iter_mut().enumerate() {
                    // W = sigma^2 (V + sigma^2 J V), row j for direction j.
                    let w = Mat::from_fn(k, dim, |j, c| s2 * (vi.at(j, c) + s2 * jv.at(j * n + i, c)));
                    if t + 1 < iterations {
                        *vi = orthonormal_rows(&w);
                    } else {
                        let h = Mat::matmul(vi, &w, true);
                        let sym = DMatrix::from_fn(k, k, |a, b| 0.5 * (h.at(a, b) + h.at(b, a)));
                        let basis = vi.clone();
                        components.push(PrincipalComponents::top_of(sym, k, |y| {
                            (0..dim).map(|c| (0..k).map(|j| y[j] * basis.at(j, c)).sum()).collect()
                        }));
                    }
                }
            }
        }
        Ok(IteratedComponents {
            means: Mat::from_vec(x_tilde.rows(), dim, means),
            components,
            network_calls: 1 + k * iterations,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::testing::test_rng;
    use crate::uncertainty::PosteriorCovariance;

    /// The linear score `s1(x) = M x` (`M` symmetric): its Jacobian is `M` everywhere.
    pub struct LinearScore(pub Mat<f64>);

    impl ScoreJvp for LinearScore {
        fn dim(&self) -> usize {
            self.0.rows()
        }

        fn score_and_jvps(&self, x: &Mat<f64>, tangents: &Mat<f64>) -> (Mat<f64>, Mat<f64>) {
            (Mat::matmul(x, &self.0, true), Mat::matmul(tangents, &self.0, true))
        }
    }

    /// `M = Q diag(mu) Q^T` with a random orthogonal `Q` at `D = 12` and `mu_k = -0.15 k`: the covariance
    /// `sigma^2 (I + sigma^2 M)` at `sigma = 0.8` has eigenvalues `0.64 (1 - 0.096 k)`, largest at `k = 0`.
    pub fn known_matrix() -> (Mat<f64>, Mat<f64>, Vec<f64>) {
        let dim = 12;
        let q = crate::targets::random_orthogonal(dim, &mut test_rng(9));
        let mu: Vec<f64> = (0..dim).map(|k| -0.15 * k as f64).collect();
        let m = Mat::from_fn(dim, dim, |i, j| (0..dim).map(|k| q.at(i, k) * mu[k] * q.at(j, k)).sum());
        (m, q, mu)
    }

    #[test]
    fn subspace_iteration_recovers_the_top_eigenvectors_of_a_known_matrix() {
        // The 4 top eigenvalues of C = sigma^2 (I + sigma^2 M) are those of mu_0..mu_3; the subspace
        // converges at the rate lambda_5 / lambda_4 = 0.616 / 0.712 = 0.865 per product (largest
        // |eigenvalue| below the 4th), so 150 products leave ~1e-9 in the directions.
        let (m, q, mu) = known_matrix();
        let (dim, sigma, k) = (12, 0.8f64, 4);
        let s2 = sigma * sigma;
        let x = Mat::from_fn(3, dim, |i, j| (i + j) as f64 * 0.1);
        let settings = SubspaceIteration { components: k, iterations: 150, seed: 1 };
        let got = IteratedComponents::compute(&LinearScore(m.clone()), &x, sigma, settings).unwrap();
        assert_eq!(got.network_calls, 1 + 4 * 150);
        let dense = PosteriorCovariance::Full(Mat::from_fn(dim, dim, |i, j| {
            s2 * (f64::from(u8::from(i == j)) + s2 * m.at(i, j))
        }));
        let want = dense.principal_components(k).unwrap();
        for pcs in &got.components {
            for (r, mu_r) in mu.iter().enumerate().take(k) {
                let lambda = s2 * (1.0 + s2 * mu_r);
                assert!((want.variances[r] - lambda).abs() < 1e-12, "closed-form eigenvalue {r}");
                assert!(
                    (pcs.variances[r] - lambda).abs() < 1e-6,
                    "variance {r}: {} vs {lambda}",
                    pcs.variances[r]
                );
                let dot: f64 = (0..dim).map(|c| pcs.directions.at(r, c) * q.at(c, r)).sum();
                assert!((dot.abs() - 1.0).abs() < 1e-6, "direction {r}: |<v, q>| = {}", dot.abs());
            }
        }
        let mean = Mat::matmul(&x, &m, true);
        assert!((got.means.at(2, 5) - (x.at(2, 5) + s2 * mean.at(2, 5))).abs() < 1e-14);
    }

    #[test]
    fn bad_settings_are_errors() {
        let (m, _, _) = known_matrix();
        let score = LinearScore(m);
        let x = Mat::zeros(1, 12);
        let bad = |components, iterations| SubspaceIteration { components, iterations, seed: 0 };
        assert!(matches!(
            IteratedComponents::compute(&score, &x, 0.5, bad(0, 3)),
            Err(UncertaintyError::BadSetting { .. })
        ));
        assert!(matches!(
            IteratedComponents::compute(&score, &x, 0.5, bad(2, 0)),
            Err(UncertaintyError::BadSetting { .. })
        ));
        assert!(matches!(
            IteratedComponents::compute(&score, &x, 0.5, bad(13, 3)),
            Err(UncertaintyError::TooManyComponents { available: 12, .. })
        ));
        assert!(matches!(
            IteratedComponents::compute(&score, &Mat::zeros(1, 5), 0.5, bad(2, 3)),
            Err(UncertaintyError::SizeMismatch { found: 5, .. })
        ));
    }
}
