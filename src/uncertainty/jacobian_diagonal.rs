//! Per-coordinate posterior variances by the autodiff route: `Var[x_i | x~] = sigma^2 (1 + sigma^2
//! J_ii(x~))`, with the diagonal of the score's Jacobian from `D` exact JVPs (one per basis vector) or
//! estimated by Hutchinson's estimator `diag(J) ~ (1/M) sum_m v_m * (J v_m)` with Rademacher `v_m`.

use super::{ScoreJvp, UncertaintyError};
use crate::linalg::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the diagonal of the Jacobian is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagonalProbes {
    /// `D` JVPs along the basis vectors: `J_ii = (J e_i)_i`, exact.
    Exact,
    /// `M` Rademacher probes (unbiased; the variance of entry `i` is `sum_{j != i} J_ij^2 / M`).
    Hutchinson {
        /// `M >= 1`.
        probes: usize,
        /// Seed of the probes.
        seed: u64,
    },
}

impl DiagonalProbes {
    /// JVPs per point: `D` or `M`.
    pub fn jvps(self, dim: usize) -> usize {
        match self {
            Self::Exact => dim,
            Self::Hutchinson { probes, .. } => probes,
        }
    }
}

/// The posterior variances `sigma^2 (1 + sigma^2 J_ii)` at every row of `x_tilde` (`N x D`).
///
/// # Errors
/// [`UncertaintyError::BadSetting`] for `M = 0`; [`UncertaintyError::SizeMismatch`] if the rows do not
/// have the score's dimension.
pub fn jacobian_variances<S: ScoreJvp + ?Sized>(
    score: &S,
    x_tilde: &Mat<f64>,
    sigma: f64,
    probes: DiagonalProbes,
) -> Result<Mat<f64>, UncertaintyError> {
    let dim = score.dim();
    if x_tilde.cols() != dim {
        return Err(UncertaintyError::SizeMismatch {
            what: "noisy point",
            found: x_tilde.cols(),
            expected: dim,
        });
    }
    let m = probes.jvps(dim);
    if m == 0 {
        return Err(UncertaintyError::BadSetting { what: "probes", value: 0.0, expected: "at least 1" });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(match probes {
        DiagonalProbes::Hutchinson { seed, .. } => seed,
        DiagonalProbes::Exact => 0,
    });
    let s2 = sigma * sigma;
    // Each basis vector gives one diagonal entry; the Rademacher probes are averaged.
    let weight = match probes {
        DiagonalProbes::Exact => 1.0,
        DiagonalProbes::Hutchinson { .. } => 1.0 / m as f64,
    };
    let chunk = ((1 << 12) / (m + 1)).max(1);
    let mut out = Mat::zeros(x_tilde.rows(), dim);
    for start in (0..x_tilde.rows()).step_by(chunk) {
        let x = x_tilde.slice_rows(start, (start + chunk).min(x_tilde.rows()));
        let n = x.rows();
        let tangents = match probes {
            DiagonalProbes::Exact => Mat::from_fn(m * n, dim, |row, c| f64::from(u8::from(row / n == c))),
            DiagonalProbes::Hutchinson { .. } => {
                Mat::from_fn(m * n, dim, |_, _| if rng.random::<bool>() { 1.0 } else { -1.0 })
            }
        };
        let (_, jv) = score.score_and_jvps(&x, &tangents);
        for i in 0..n {
            let row = out.row_mut(start + i);
            for p in 0..m {
                let (v, w) = (tangents.row(p * n + i), jv.row(p * n + i));
                row.iter_mut().zip(v.iter().zip(w)).for_each(|(o, (v, w))| *o += weight * v * w);
            }
            row.iter_mut().for_each(|d| *d = s2 * (1.0 + s2 * *d));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uncertainty::subspace_iteration::tests::{known_matrix, LinearScore};

    #[test]
    fn exact_and_hutchinson_diagonals_of_a_known_jacobian() {
        let (m, _, _) = known_matrix();
        let (dim, sigma) = (12, 0.8f64);
        let s2 = sigma * sigma;
        let x = Mat::zeros(2, dim);
        let exact = jacobian_variances(&LinearScore(m.clone()), &x, sigma, DiagonalProbes::Exact).unwrap();
        for i in 0..dim {
            assert!((exact.at(1, i) - s2 * (1.0 + s2 * m.at(i, i))).abs() < 1e-14, "exact {i}");
        }
        // Hutchinson with 4000 probes: entry i has standard deviation sqrt(sum_{j != i} M_ij^2 / 4000);
        // every entry is within 5 of them (the variance scale s2^2 multiplies both).
        let probes = DiagonalProbes::Hutchinson { probes: 4000, seed: 3 };
        let est = jacobian_variances(&LinearScore(m.clone()), &x, sigma, probes).unwrap();
        for i in 0..dim {
            let off: f64 = (0..dim).filter(|&j| j != i).map(|j| m.at(i, j).powi(2)).sum();
            let sd = s2 * s2 * (off / 4000.0).sqrt();
            assert!((est.at(0, i) - exact.at(0, i)).abs() < 5.0 * sd, "Hutchinson {i}");
        }
        assert!(jacobian_variances(
            &LinearScore(m),
            &x,
            sigma,
            DiagonalProbes::Hutchinson { probes: 0, seed: 0 }
        )
        .is_err());
    }
}
