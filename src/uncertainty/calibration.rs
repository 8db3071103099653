//! Calibration of posterior moments against the clean points `x` (errors `e = x - E[x | x~]`):
//! Gaussian NLL per dimension under isotropic, best-scalar and structured covariances, `E[Mahalanobis^2]
//! / D`, coverage of per-coordinate intervals, and what the top principal components capture of the
//! error (REM5, energy fraction, per-component variance ratio).

use super::{PosteriorCovariance, PrincipalComponents, UncertaintyError};
use crate::linalg::Mat;
use serde::Serialize;

/// Nominal levels of the per-coordinate intervals `|e_i| <= z sd_i` and their two-sided normal quantiles
/// `z = Phi^{-1}((1 + level) / 2)`.
pub const INTERVAL_LEVELS: [(f64, f64); 3] =
    [(0.68, 0.994_457_883_209_753_2), (0.90, 1.644_853_626_951_472_2), (0.95, 1.959_963_984_540_054)];

/// Principal components kept for the residual error magnitude (REM5).
pub const REM_COMPONENTS: usize = 5;

/// Calibration metrics of one uncertainty estimate over a set of points (absent where the estimate
/// lacks what a metric needs).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CalibrationReport {
    /// NLL (nats per dimension) under the estimate's own covariance, keyed by its form: `full`,
    /// `lowrank` or `diag`.
    #[serde(skip)]
    pub nll: Option<(&'static str, f64)>,
    /// NLL under the diagonal of the estimate's covariance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll_diag: Option<f64>,
    /// `E[e^T C^{-1} e] / D` (1 when calibrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mahalanobis_per_dim: Option<f64>,
    /// Fraction of coordinates inside the 68 % interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_68: Option<f64>,
    /// The same at 90 %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_90: Option<f64>,
    /// The same at 95 %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_95: Option<f64>,
    /// `E ||(I - V V^T) e||` with the top `min(5, K)` principal directions `V`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rem5: Option<f64>,
    /// How many components REM5 and the energy fraction used: `min(5, K)` (fewer than 5 for a low-rank
    /// head of rank below 5 or `D < 5`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rem_components: Option<usize>,
    /// `sum ||V^T e||^2 / sum ||e||^2` over the points, with the same directions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captured_error_energy: Option<f64>,
    /// Per component `k`: `E[(v_k^T e)^2 / lambda_k]` (1 when the variance along `v_k` is calibrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pc_variance_ratio: Option<Vec<f64>>,
}

/// The NLL in nats per dimension of every error (rows of `errors`) under `N(0, v I)`.
pub fn isotropic_nll(errors: &Mat<f64>, variance: f64) -> f64 {
    let d = errors.cols() as f64;
    let mean_sq = errors.norm_sq() / (errors.rows() as f64 * d);
    0.5 * ((2.0 * std::f64::consts::PI * variance).ln() + mean_sq / variance)
}

/// The variance `v = E[e_i^2]` of the best single-scalar covariance `v I` (it minimises
/// [`isotropic_nll`] on these errors: an oracle fitted on the evaluation set).
pub fn best_scalar_variance(errors: &Mat<f64>) -> f64 {
    errors.norm_sq() / (errors.rows() * errors.cols()) as f64
}

/// Mean NLL per dimension and mean `e^T C^{-1} e / D` over the points.
///
/// # Errors
/// As [`PosteriorCovariance::gaussian_terms`]; [`UncertaintyError::SizeMismatch`] if the counts differ.
pub fn covariance_scores(
    covariances: &[PosteriorCovariance],
    errors: &Mat<f64>,
) -> Result<(f64, f64), UncertaintyError> {
    if covariances.len() != errors.rows() {
        return Err(UncertaintyError::SizeMismatch {
            what: "covariances",
            found: covariances.len(),
            expected: errors.rows(),
        });
    }
    let (mut nll, mut maha) = (0.0, 0.0);
    for (c, e) in covariances.iter().zip(errors.row_iter()) {
        let t = c.gaussian_terms(e)?;
        nll += t.nll_per_dim(e.len());
        maha += t.mahalanobis_sq / e.len() as f64;
    }
    let n = errors.rows() as f64;
    Ok((nll / n, maha / n))
}

/// The fraction of entries with `|e_ij| <= z sd_ij`.
#[track_caller]
pub fn interval_coverage(errors: &Mat<f64>, stds: &Mat<f64>, z: f64) -> f64 {
    assert_eq!(errors.as_slice().len(), stds.as_slice().len(), "interval_coverage: shapes differ");
    let inside = errors.as_slice().iter().zip(stds.as_slice()).filter(|(e, s)| e.abs() <= z * **s).count();
    inside as f64 / errors.as_slice().len() as f64
}

/// `(||(I - V^T V) e||, ||V e||^2, (V e)^2 per row)` for orthonormal rows `V` (`K x D`).
fn project(directions: &Mat<f64>, e: &[f64]) -> (f64, f64, Vec<f64>) {
    let coef: Vec<f64> = directions.row_iter().map(|v| v.iter().zip(e).map(|(a, b)| a * b).sum()).collect();
    let captured: f64 = coef.iter().map(|c| c * c).sum();
    let total: f64 = e.iter().map(|v| v * v).sum();
    ((total - captured).max(0.0).sqrt(), captured, coef.iter().map(|c| c * c).collect())
}

/// `(REM, captured energy fraction, per-component variance ratios)` of the top `min(keep, K)`
/// components of every point.
fn component_scores(pcs: &[PrincipalComponents], errors: &Mat<f64>, keep: usize) -> (f64, f64, Vec<f64>) {
    let k = pcs.iter().map(|p| p.variances.len()).min().unwrap_or(0).min(keep);
    let (mut rem, mut captured, mut ratio) = (0.0, 0.0, vec![0.0; k]);
    for (p, e) in pcs.iter().zip(errors.row_iter()) {
        let (r, c, sq) = project(&p.directions.slice_rows(0, k), e);
        rem += r;
        captured += c;
        ratio.iter_mut().zip(&sq).zip(&p.variances).for_each(|((o, s), l)| *o += s / l);
    }
    let n = errors.rows() as f64;
    (rem / n, captured / errors.norm_sq(), ratio.iter().map(|r| r / n).collect())
}

impl CalibrationReport {
    /// The metrics of an estimate over points with errors `errors` (`N x D`): its covariances (if it has
    /// them; clip them first), per-coordinate standard deviations `stds` (`N x D`) and principal
    /// components (if any).
    ///
    /// # Errors
    /// As [`PosteriorCovariance::gaussian_terms`]; [`UncertaintyError::SizeMismatch`] if the counts differ.
    pub fn measure(
        errors: &Mat<f64>,
        covariances: Option<&[PosteriorCovariance]>,
        stds: &Mat<f64>,
        pcs: Option<&[PrincipalComponents]>,
    ) -> Result<Self, UncertaintyError> {
        let mut report = Self::default();
        let diagonal: Vec<PosteriorCovariance> = stds
            .row_iter()
            .map(|s| PosteriorCovariance::Diagonal(s.iter().map(|s| s * s).collect()))
            .collect();
        let (nll_diag, maha_diag) = covariance_scores(&diagonal, errors)?;
        report.nll_diag = Some(nll_diag);
        report.mahalanobis_per_dim = Some(maha_diag);
        if let Some(covs) = covariances {
            let (nll, maha) = covariance_scores(covs, errors)?;
            report.nll = covs.first().map(|c| (c.form(), nll));
            report.mahalanobis_per_dim = Some(maha);
        }
        let [c68, c90, c95] = INTERVAL_LEVELS.map(|(_, z)| Some(interval_coverage(errors, stds, z)));
        (report.coverage_68, report.coverage_90, report.coverage_95) = (c68, c90, c95);
        if let Some(pcs) = pcs {
            let (rem, captured, ratio) = component_scores(pcs, errors, REM_COMPONENTS);
            report.rem_components = Some(ratio.len());
            (report.rem5, report.captured_error_energy, report.pc_variance_ratio) =
                (Some(rem), Some(captured), Some(ratio));
        }
        Ok(report)
    }

    /// The report as JSON, with the NLL of the estimate's own covariance under `nll_full`,
    /// `nll_lowrank` or `nll_diag`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some((form, nll)) = self.nll {
            value[format!("nll_{form}")] = nll.into();
        }
        value
    }
}

/// The principal angles (radians, ascending) between the spans of the orthonormal rows of `a` and `b`:
/// `arccos` of the singular values of `a b^T`.
pub fn principal_angles(a: &Mat<f64>, b: &Mat<f64>) -> Vec<f64> {
    let m = Mat::matmul(a, b, true);
    let svd = nalgebra::DMatrix::from_row_slice(m.rows(), m.cols(), m.as_slice()).svd(false, false);
    let mut angles: Vec<f64> = svd.singular_values.iter().map(|s| s.clamp(-1.0, 1.0).acos()).collect();
    angles.sort_by(f64::total_cmp);
    angles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn exact_gaussian_errors_are_calibrated_and_a_scaled_covariance_is_not() {
        // e ~ N(0, C) with C = A A^T + diag(e): E[e^T C^{-1} e] / D = 1, with standard error
        // sqrt(2 / (N D)) = 0.0045 at N = 20000, D = 5; the tolerance is 5 of those. Coverages of the
        // per-coordinate intervals have standard error sqrt(p (1 - p) / (N D)) <= 0.0036 (5 of them).
        let mut rng = test_rng(11);
        let (n, dim) = (20_000, 5);
        let factor = normal_mat(dim, 2, &mut rng);
        let cov = PosteriorCovariance::LowRankDiagonal { factor, diagonal: vec![0.3; dim] };
        let errors = cov.samples(&[0.0; 5], n, &mut rng).unwrap();
        let covs = vec![cov.clone(); n];
        let sd: Vec<f64> = cov.variances().iter().map(|v| v.sqrt()).collect();
        let stds = Mat::from_fn(n, dim, |_, j| sd[j]);
        let pcs = vec![cov.principal_components(2).unwrap(); n];
        let report = CalibrationReport::measure(&errors, Some(&covs), &stds, Some(&pcs)).unwrap();
        let se = (2.0 / (n * dim) as f64).sqrt();
        assert!((report.mahalanobis_per_dim.unwrap() - 1.0).abs() < 5.0 * se, "{report:?}");
        for (got, (level, _)) in
            [report.coverage_68, report.coverage_90, report.coverage_95].iter().zip(INTERVAL_LEVELS)
        {
            let se = (level * (1.0 - level) / (n * dim) as f64).sqrt();
            assert!((got.unwrap() - level).abs() < 5.0 * se, "coverage at {level}: {got:?}");
        }
        // Along each principal direction the error variance is lambda_k: ratio 1 with standard error
        // sqrt(2 / N) = 0.01.
        for r in report.pc_variance_ratio.clone().unwrap() {
            assert!((r - 1.0).abs() < 0.05, "pc variance ratio {r}");
        }
        // The true covariance has a lower NLL than its diagonal, which beats the isotropic fit; a
        // covariance 4 times too large has Mahalanobis / D near 1/4.
        let (form, lowrank) = report.nll.unwrap();
        assert_eq!(form, "lowrank");
        assert!(lowrank < report.nll_diag.unwrap());
        assert!(report.nll_diag.unwrap() < isotropic_nll(&errors, best_scalar_variance(&errors)) + 0.01);
        let big: Vec<PosteriorCovariance> = covs
            .iter()
            .map(|c| match c {
                PosteriorCovariance::LowRankDiagonal { factor, diagonal } => {
                    PosteriorCovariance::LowRankDiagonal {
                        factor: Mat::from_fn(dim, 2, |i, j| 2.0 * factor.at(i, j)),
                        diagonal: diagonal.iter().map(|v| 4.0 * v).collect(),
                    }
                }
                _ => unreachable!(),
            })
            .collect();
        let (_, maha) = covariance_scores(&big, &errors).unwrap();
        assert!((maha - 0.25).abs() < 5.0 * se / 4.0, "{maha}");
        let json = report.to_json();
        assert!(json["nll_lowrank"].is_number() && json["rem5"].is_number() && json.get("nll").is_none());
    }

    #[test]
    fn residuals_energy_and_angles_on_hand_computed_cases() {
        // V = e_1 (D = 3), e = (3, 4, 0): the residual is 3, the captured energy 16 / 25.
        let pcs = vec![PrincipalComponents {
            directions: Mat::from_vec(1, 3, vec![0.0, 1.0, 0.0]),
            variances: vec![4.0],
        }];
        let errors = Mat::from_vec(1, 3, vec![3.0, 4.0, 0.0]);
        let (rem, captured, ratio) = component_scores(&pcs, &errors, 5);
        assert!(
            (rem - 3.0).abs() < 1e-15 && (captured - 0.64).abs() < 1e-15 && (ratio[0] - 4.0).abs() < 1e-15
        );
        // span(e_0, e_1) against span(e_0, (e_1 + e_2)/sqrt 2): angles 0 and 45 degrees.
        let h = 0.5f64.sqrt();
        let a = Mat::from_vec(2, 3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let b = Mat::from_vec(2, 3, vec![0.0, h, h, 1.0, 0.0, 0.0]);
        let angles = principal_angles(&a, &b);
        assert!(
            angles[0].abs() < 1e-7 && (angles[1] - std::f64::consts::FRAC_PI_4).abs() < 1e-12,
            "{angles:?}"
        );
        assert!(
            (isotropic_nll(&errors, 1.0) - 0.5 * ((2.0 * std::f64::consts::PI).ln() + 25.0 / 3.0)).abs()
                < 1e-14
        );
        let rng_errors = normal_mat(4, 3, &mut test_rng(1));
        assert!(covariance_scores(&[PosteriorCovariance::Diagonal(vec![1.0; 3])], &rng_errors).is_err());
    }
}
