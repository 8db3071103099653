//! The built-in target families: the fixed 2-D mixture, random mixtures and random anisotropic Gaussians.
#![allow(non_snake_case)] // names follow the paper: Q, D, K, Sigma

use super::gaussian_mixture::GaussianMixture;
use super::named::MAX_COND;
use crate::linalg::Mat;
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};

/// Dirichlet concentration $\alpha$ of the random mixture weights.
pub const GMM_WEIGHT_CONCENTRATION: f64 = 3.0;
/// Standard deviation of the random mixture means: $\mu_k \sim \mathcal N(0, 2^2 I)$.
pub const GMM_MEAN_STD: f64 = 2.0;
/// Range of the random covariance eigenvalues $l_i = \exp U(\log 0.05, \log 0.5)$.
pub const GMM_EIGENVALUE_RANGE: (f64, f64) = (0.05, 0.5);

/// The fixed 2-D mixture `gmm2d`: three rotated anisotropic components with weights 0.5 / 0.3 / 0.2,
/// mass within about $[-4, 4]^2$, so that the Hessian field changes direction and scale across the plane.
///
/// # Definition
/// Component $k$: $\Sigma_k = R(\theta_k)\ \mathrm{diag}(l_k)\ R(\theta_k)^\top$ with
///
/// | k | $\pi_k$ | $\mu_k$ | $l_k$ | $\theta_k$ |
/// |---|---|---|---|---|
/// | 0 | 0.5 | (-1.5, 0.8) | (0.50, 0.06) | 30° |
/// | 1 | 0.3 | (1.6, 1.2) | (0.35, 0.05) | -50° |
/// | 2 | 0.2 | (0.4, -1.7) | (0.25, 0.10) | 100° |
pub fn gmm2d() -> GaussianMixture {
    let spec: [(f64, [f64; 2], [f64; 2], f64); 3] = [
        (0.5, [-1.5, 0.8], [0.50, 0.06], 30.0),
        (0.3, [1.6, 1.2], [0.35, 0.05], -50.0),
        (0.2, [0.4, -1.7], [0.25, 0.10], 100.0),
    ];
    let mut weights = Vec::new();
    let mut means = Vec::new();
    let mut covs = Vec::new();
    for (w, mu, l, deg) in spec {
        let (s, c) = deg.to_radians().sin_cos();
        let Q = Mat::from_vec(2, 2, vec![c, -s, s, c]);
        weights.push(w);
        means.push(mu.to_vec());
        covs.push(rotate_diagonal(&Q, &l));
    }
    GaussianMixture::new(weights, means, covs).expect("gmm2d parameters are valid")
}

/// A random mixture `gmm:dim=D,components=K,seed=S`.
///
/// # Definition
/// With `rng = ChaCha8Rng::seed_from_u64(seed)`, drawn in this order:
/// - weights $\pi \sim \text{Dirichlet}(3, \dots, 3)$, as $K$ draws $g_k \sim \Gamma(3, 1)$ normalised;
/// - then for each component in turn: $\mu_k \sim \mathcal N(0, 2^2 I)$ ($D$ normals); a Haar-random
///   orthogonal $Q_k$ (Haar, by QR of a Gaussian matrix with sign correction); eigenvalues $l_i = \exp U(\log 0.05, \log 0.5)$ ($D$
///   uniforms); $\Sigma_k = Q_k \operatorname{diag}(l) Q_k^\top$ (condition numbers up to 10).
///
/// Panics if `dim == 0` or `components == 0` (the parser rejects both).
pub fn random_gmm(dim: usize, components: usize, seed: u64) -> GaussianMixture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gamma = Gamma::new(GMM_WEIGHT_CONCENTRATION, 1.0).expect("Gamma(3, 1) is valid");
    let weights: Vec<f64> = (0..components).map(|_| gamma.sample(&mut rng)).collect();
    let (lo, hi) = (GMM_EIGENVALUE_RANGE.0.ln(), GMM_EIGENVALUE_RANGE.1.ln());
    let mut means = Vec::with_capacity(components);
    let mut covs = Vec::with_capacity(components);
    for _ in 0..components {
        let mu: Vec<f64> = (0..dim)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                GMM_MEAN_STD * z
            })
            .collect();
        let Q = random_orthogonal(dim, &mut rng);
        let l: Vec<f64> = (0..dim).map(|_| (lo + (hi - lo) * rng.random::<f64>()).exp()).collect();
        means.push(mu);
        covs.push(rotate_diagonal(&Q, &l));
    }
    GaussianMixture::new(weights, means, covs).expect("random gmm parameters are valid")
}

/// A random anisotropic Gaussian `gauss:dim=D,cond=C,seed=S`.
///
/// # Definition
/// $$ \mathcal N(0,\ Q \operatorname{diag}(l) Q^\top), \qquad l_i = C^{-i/(D-1)},\ i = 0, \dots, D-1, $$
/// eigenvalues log-spaced from 1 down to $1/C$ (just $l_0 = 1$ when $D = 1$), $Q$ Haar-random from
/// `ChaCha8Rng::seed_from_u64(seed)`.
///
/// Panics if `dim == 0` or `cond` is outside `[1, MAX_COND]` (the parser rejects both).
pub fn random_gauss(dim: usize, cond: f64, seed: u64) -> GaussianMixture {
    assert!((1.0..=MAX_COND).contains(&cond), "random_gauss: cond = {cond} must be in [1, {MAX_COND:e}]");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let Q = random_orthogonal(dim, &mut rng);
    let l: Vec<f64> =
        (0..dim).map(|i| if dim == 1 { 1.0 } else { cond.powf(-(i as f64) / (dim - 1) as f64) }).collect();
    GaussianMixture::gaussian(vec![0.0; dim], rotate_diagonal(&Q, &l)).expect("gauss parameters are valid")
}

/// A Haar-distributed random orthogonal `D x D` matrix.
///
/// # Definition
/// $G$ with i.i.d. $\mathcal N(0, 1)$ entries (drawn row by row), $G = QR$, then $Q \leftarrow Q
/// \operatorname{diag}(\operatorname{sign} R_{ii})$ so the factorisation is unique and $Q$ is Haar.
///
/// # Reference
/// Mezzadri, "How to generate random matrices from the classical compact groups", Notices AMS 2007.
pub fn random_orthogonal<R: Rng + ?Sized>(dim: usize, rng: &mut R) -> Mat<f64> {
    let g: Vec<f64> = (0..dim * dim).map(|_| StandardNormal.sample(rng)).collect();
    let qr = DMatrix::from_row_slice(dim, dim, &g).qr();
    let (q, r) = (qr.q(), qr.r());
    Mat::from_fn(dim, dim, |i, j| if r[(j, j)] < 0.0 { -q[(i, j)] } else { q[(i, j)] })
}

/// $Q \operatorname{diag}(l) Q^\top$, computed on the lower triangle and mirrored so it is exactly symmetric.
fn rotate_diagonal(Q: &Mat<f64>, l: &[f64]) -> Mat<f64> {
    let D = l.len();
    let mut S = Mat::zeros(D, D);
    for i in 0..D {
        for j in 0..=i {
            let v: f64 = (0..D).map(|m| Q.at(i, m) * l[m] * Q.at(j, m)).sum();
            S.set(i, j, v);
            S.set(j, i, v);
        }
    }
    S
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::testing::{max_abs_diff, test_rng};

    fn eigenvalues(S: &Mat<f64>) -> Vec<f64> {
        let mut e: Vec<f64> = DMatrix::from_row_slice(S.rows(), S.cols(), S.as_slice())
            .symmetric_eigenvalues()
            .iter()
            .copied()
            .collect();
        e.sort_by(f64::total_cmp);
        e
    }

    #[test]
    fn random_orthogonal_is_orthogonal() {
        for D in [1, 2, 7, 32] {
            let Q = random_orthogonal(D, &mut test_rng(D as u64));
            let QtQ = Mat::matmul(&Q, &Q, true);
            let I = Mat::from_fn(D, D, |i, j| if i == j { 1.0 } else { 0.0 });
            assert!(max_abs_diff(QtQ.as_slice(), I.as_slice()) <= 16.0 * D as f64 * f64::EPSILON, "D = {D}");
        }
    }

    #[test]
    fn random_gmm_is_deterministic_in_its_seed() {
        let (a, b, c) = (random_gmm(4, 3, 9), random_gmm(4, 3, 9), random_gmm(4, 3, 10));
        assert_eq!((a.dim(), a.n_components()), (4, 3));
        assert_eq!(a.weights(), b.weights());
        assert_eq!(a.means(), b.means());
        assert_eq!(a.covariances(), b.covariances());
        assert_ne!(a.weights(), c.weights());
        assert_ne!(a.means(), c.means());
    }

    #[test]
    fn random_gmm_eigenvalues_lie_in_the_documented_range() {
        let p = random_gmm(6, 4, 1);
        let (lo, hi) = GMM_EIGENVALUE_RANGE;
        let tol = 64.0 * 6.0 * f64::EPSILON;
        for S in p.covariances() {
            let e = eigenvalues(S);
            assert!(e[0] >= lo * (1.0 - tol) && e[5] <= hi * (1.0 + tol), "eigenvalues {e:?}");
        }
        assert!((p.weights().iter().sum::<f64>() - 1.0).abs() <= 4.0 * f64::EPSILON);
    }

    #[test]
    fn the_largest_accepted_cond_builds_at_every_dimension_tried() {
        // cond = 1e17 made the Cholesky factorisation fail (a panic); MAX_COND keeps 1/C far above the
        // rounding error of Q diag(l) Q^T.
        for dim in [2, 3, 7, 40, 200] {
            for seed in 0..4 {
                assert_eq!(random_gauss(dim, MAX_COND, seed).dim(), dim);
            }
        }
    }

    #[test]
    fn random_gauss_eigenvalues_span_one_over_cond_to_one() {
        for (D, cond) in [(1, 10.0), (2, 10.0), (8, 100.0), (16, 1.0)] {
            let p = random_gauss(D, cond, 3);
            assert_eq!(p.means()[0], vec![0.0; D]);
            let e = eigenvalues(&p.covariances()[0]);
            let tol = 64.0 * D as f64 * f64::EPSILON;
            let want_min = if D == 1 { 1.0 } else { 1.0 / cond };
            assert!((e[0] - want_min).abs() <= tol && (e[D - 1] - 1.0).abs() <= tol, "D={D}: {e:?}");
            // Log-spaced: consecutive ratios all equal cond^(1/(D-1)).
            for w in e.windows(2) {
                let ratio = cond.powf(1.0 / (D - 1) as f64);
                assert!((w[1] / w[0] - ratio).abs() <= tol * ratio * cond, "D={D}: {e:?}");
            }
        }
        assert_ne!(random_gauss(3, 10.0, 0).covariances(), random_gauss(3, 10.0, 1).covariances());
    }

    #[test]
    fn gmm2d_has_unequal_weights_anisotropy_and_mass_within_the_box() {
        let p = gmm2d();
        assert_eq!(p.weights(), &[0.5, 0.3, 0.2]);
        for (mu, S) in p.means().iter().zip(p.covariances()) {
            let e = eigenvalues(S);
            assert!(e[1] / e[0] >= 2.5, "anisotropy {e:?}");
            assert!(S.at(0, 1).abs() > 0.01, "rotated: off-diagonal {}", S.at(0, 1));
            // 3 standard deviations along every axis stay within [-4, 4].
            for (i, m) in mu.iter().enumerate() {
                assert!(m.abs() + 3.0 * S.at(i, i).sqrt() <= 4.0);
            }
        }
    }
}
