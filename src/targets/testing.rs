//! Test helpers shared by the `targets` tests: seeded rng, finite-difference Jacobians, test points.
#![allow(non_snake_case)] // D, M, J as in the math

use super::gaussian_mixture::GaussianMixture;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The deterministic rng of every test.
pub fn test_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Fourth-order central-difference Jacobian of `f: R^D -> R^M` at `x`, as `M x D` row-major:
/// `J[m * D + l] = d f_m / d x_l`, stencil `(f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / (12 h)`.
/// Truncation error `h^4 f^(5) / 30`, rounding error about `eps |f| / h`.
pub fn fd_jacobian(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], h: f64) -> Vec<f64> {
    let D = x.len();
    let M = f(x).len();
    let mut J = vec![0.0; M * D];
    let mut xp = x.to_vec();
    for l in 0..D {
        let eval = |xp: &mut Vec<f64>, t: f64| {
            xp[l] = x[l] + t;
            f(xp)
        };
        let (m2, m1, p1, p2) =
            (eval(&mut xp, -2.0 * h), eval(&mut xp, -h), eval(&mut xp, h), eval(&mut xp, 2.0 * h));
        xp[l] = x[l];
        for m in 0..M {
            J[m * D + l] = (m2[m] - 8.0 * m1[m] + 8.0 * p1[m] - p2[m]) / (12.0 * h);
        }
    }
    J
}

/// Smallest eigenvalue over components of a mixture's covariances: `ell^2` of its shortest length scale.
pub fn min_variance(p: &GaussianMixture) -> f64 {
    p.covariances()
        .iter()
        .map(|c| {
            let m = nalgebra::DMatrix::from_row_slice(p.dim(), p.dim(), c.as_slice());
            m.symmetric_eigenvalues().min()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Max-norm of `a - b`.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Max-norm of `a`.
pub fn max_abs(a: &[f64]) -> f64 {
    a.iter().map(|x| x.abs()).fold(0.0, f64::max)
}
