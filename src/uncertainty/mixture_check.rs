//! The exact check on a Gaussian mixture, whose posterior is known: the learned head, the autodiff route
//! and the exact posterior's own Gaussian approximation, each measured against the exact posterior
//! moments and calibrated against the clean points, on test points `x~ = x + sigma z`, `x ~ target`.

use super::{
    best_scalar_variance, isotropic_nll, principal_angles, CalibrationReport, ConformalCoverage,
    IteratedComponents, PosteriorCovariance, PosteriorMoments, PrincipalComponents, SplitConformal,
    SubspaceIteration, REM_COMPONENTS,
};
use crate::estimators::score_jacobian;
use crate::evaluation::relative_error;
use crate::linalg::Mat;
use crate::models::ScoreModel;
use crate::targets::GaussianMixture;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::time::Instant;

/// Variances below `VARIANCE_FLOOR sigma^2` are clipped before densities and samples (far below the
/// smallest posterior variance of the named mixtures at their training noise levels).
pub const VARIANCE_FLOOR: f64 = 1e-3;

/// The target coverage of the split-conformal intervals reported.
pub const CONFORMAL_LEVEL: f64 = 0.9;

/// Settings of [`check_on_mixture`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixtureCheck {
    /// Test points (the first half calibrates the conformal scale, the second tests it).
    pub points: usize,
    /// Seed of the test points and of the subspace iteration.
    pub seed: u64,
    /// `N`, the subspace iterations of the autodiff route.
    pub iterations: usize,
}

/// One estimate's measurements.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteReport {
    /// `rel_err` of the posterior means against the exact ones (all points, all coordinates).
    pub post_mean_rel_err: f64,
    /// `rel_err` of the posterior covariances (dense, before clipping) against the exact ones.
    pub post_cov_rel_err: f64,
    /// NLL (nats per dimension) of the errors under `sigma^2 I`.
    pub nll_isotropic: f64,
    /// The same under the best scalar `v I`, `v` fitted on these errors.
    pub nll_scalar: f64,
    /// The other calibration metrics (`nll_diag`, `nll_full` or `nll_lowrank`, `mahalanobis_per_dim`,
    /// coverages, `rem5`, ...).
    #[serde(skip)]
    pub calibration: CalibrationReport,
    /// Mean trace added per point by the PSD correction.
    pub psd_clipped: f64,
    /// Fraction of points whose covariance was clipped.
    pub psd_clipped_points: f64,
    /// The split-conformal scale fitted on the first half of the points.
    pub conformal_scale: f64,
    /// Its coverage and mean interval width on the second half.
    pub conformal: ConformalCoverage,
    /// Network calls per point: 2 for a learned head (`s1` and the head), `1 + K N` for subspace
    /// iteration, 0 for the exact posterior.
    pub network_calls: usize,
    /// Wall-clock milliseconds per point for the moments and components.
    pub ms_per_point: f64,
}

impl RouteReport {
    /// The report as one flat JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let (Some(map), serde_json::Value::Object(extra)) =
            (value.as_object_mut(), self.calibration.to_json())
        {
            map.extend(extra);
        }
        value
    }
}

/// What [`check_on_mixture`] measures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MixtureCheckReport {
    /// Test points.
    pub points: usize,
    /// The noise level.
    pub sigma: f64,
    /// The learned head (absent for a model without one).
    pub learned: Option<RouteReport>,
    /// The autodiff route: covariance `sigma^2 (I + sigma^2 (J + J^T) / 2)` from `D` JVPs, principal
    /// components by subspace iteration.
    pub autodiff: RouteReport,
    /// The Gaussian with the exact posterior mean and covariance (the best any Gaussian estimate does).
    pub exact: RouteReport,
    /// Mean over points of the largest principal angle (degrees) between the learned and the
    /// subspace-iteration components.
    pub learned_vs_iterated_angle_deg: Option<f64>,
}

/// The inputs of one route, before it is measured.
struct Route {
    means: Mat<f64>,
    covariances: Vec<PosteriorCovariance>,
    components: Option<Vec<PrincipalComponents>>,
    network_calls: usize,
    seconds: f64,
}

/// Measures one route against the exact posterior and the clean points.
fn measure(
    mut route: Route,
    clean: &Mat<f64>,
    exact: &(Mat<f64>, Vec<f64>),
    sigma: f64,
) -> Result<RouteReport, crate::Error> {
    let (n, dim) = (clean.rows(), clean.cols());
    let dense: Vec<f64> = route.covariances.iter().flat_map(|c| c.dense().into_vec()).collect();
    let floor = VARIANCE_FLOOR * sigma * sigma;
    let clipped: Vec<f64> = route.covariances.iter_mut().map(|c| c.clip_to_psd(floor)).collect();
    let components = match route.components.take() {
        Some(c) => c,
        None => route
            .covariances
            .iter()
            .map(|c| c.principal_components(REM_COMPONENTS.min(c.max_components())))
            .collect::<Result<_, _>>()?,
    };
    let stds =
        Mat::from_vec(n, dim, route.covariances.iter().flat_map(|c| c.variances()).map(f64::sqrt).collect());
    let errors = Mat::from_fn(n, dim, |i, j| clean.at(i, j) - route.means.at(i, j));
    let calibration =
        CalibrationReport::measure(&errors, Some(&route.covariances), &stds, Some(&components))?;
    let half = n / 2;
    let conformal =
        SplitConformal::fit(&errors.slice_rows(0, half), &stds.slice_rows(0, half), CONFORMAL_LEVEL)?;
    Ok(RouteReport {
        post_mean_rel_err: relative_error(route.means.as_slice(), exact.0.as_slice()),
        post_cov_rel_err: relative_error(&dense, &exact.1),
        nll_isotropic: isotropic_nll(&errors, sigma * sigma),
        nll_scalar: isotropic_nll(&errors, best_scalar_variance(&errors)),
        calibration,
        psd_clipped: clipped.iter().sum::<f64>() / n as f64,
        psd_clipped_points: clipped.iter().filter(|&&c| c > 0.0).count() as f64 / n as f64,
        conformal_scale: conformal.scale,
        conformal: conformal.evaluate(&errors.slice_rows(half, n), &stds.slice_rows(half, n)),
        network_calls: route.network_calls,
        ms_per_point: route.seconds * 1e3 / n as f64,
    })
}

/// Measures the learned head (if any), the autodiff route and the exact posterior of `model` on
/// `settings.points` test points of `target` at noise level `sigma`.
///
/// # Errors
/// [`crate::Error::Target`] for a bad `sigma`; [`crate::Error::Uncertainty`] for fewer than 4 points,
/// zero iterations, or a model of another dimension.
pub fn check_on_mixture(
    model: &ScoreModel<f32>,
    target: &GaussianMixture,
    sigma: f64,
    settings: MixtureCheck,
) -> Result<MixtureCheckReport, crate::Error> {
    let (n, dim) = (settings.points, target.dim());
    if n < 4 {
        return Err(super::UncertaintyError::BadSetting {
            what: "points",
            value: n as f64,
            expected: "at least 4",
        }
        .into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let clean = target.sample(n, &mut rng);
    let noisy = Mat::from_fn(n, dim, |i, j| {
        clean.at(i, j) + sigma * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
    });
    let mut exact_means = Vec::with_capacity(n * dim);
    let mut exact_covs = Vec::with_capacity(n);
    for x in noisy.row_iter() {
        let post = target.posterior(x, sigma)?;
        exact_means.extend(post.mean());
        exact_covs.push(PosteriorCovariance::Full(post.covariance()));
    }
    let exact_dense: Vec<f64> = exact_covs.iter().flat_map(|c| c.dense().into_vec()).collect();
    let exact = (Mat::from_vec(n, dim, exact_means), exact_dense);

    let learned = match &model.s2 {
        Some(_) => {
            let start = Instant::now();
            let moments = PosteriorMoments::at_rows(model, &noisy, sigma)?;
            let seconds = start.elapsed().as_secs_f64();
            let means = Mat::from_vec(n, dim, moments.iter().flat_map(|m| m.mean.clone()).collect());
            let covariances = moments.into_iter().map(|m| m.covariance).collect();
            Some(Route { means, covariances, components: None, network_calls: 2, seconds })
        }
        None => None,
    };
    let learned_components: Option<Vec<PrincipalComponents>> = learned
        .as_ref()
        .map(|r| {
            r.covariances
                .iter()
                .map(|c| c.principal_components(REM_COMPONENTS.min(c.max_components())))
                .collect::<Result<_, _>>()
        })
        .transpose()?;

    let start = Instant::now();
    let k = REM_COMPONENTS.min(dim);
    let iteration = SubspaceIteration { components: k, iterations: settings.iterations, seed: settings.seed };
    let iterated = IteratedComponents::compute(&model.s1, &noisy, sigma, iteration)?;
    let seconds = start.elapsed().as_secs_f64();
    let jacobian: Vec<f64> =
        score_jacobian(&model.s1, &noisy.cast::<f32>(), true).iter().map(|&v| f64::from(v)).collect();
    if !jacobian.iter().all(|v| v.is_finite()) {
        return Err(super::UncertaintyError::NonFinite { what: "Jacobian of s1" }.into());
    }
    let s2 = sigma * sigma;
    let autodiff_covs = jacobian
        .chunks_exact(dim * dim)
        .map(|j| {
            PosteriorCovariance::Full(Mat::from_fn(dim, dim, |a, b| {
                s2 * (f64::from(u8::from(a == b)) + s2 * j[a * dim + b])
            }))
        })
        .collect();
    let angles = learned_components.as_ref().map(|learned| {
        let total: f64 = learned
            .iter()
            .zip(&iterated.components)
            .map(|(a, b)| {
                let k = a.variances.len().min(b.variances.len());
                principal_angles(&a.directions.slice_rows(0, k), &b.directions.slice_rows(0, k))
                    .last()
                    .copied()
                    .unwrap_or(0.0)
            })
            .sum();
        (total / n as f64).to_degrees()
    });
    let autodiff = Route {
        means: iterated.means,
        covariances: autodiff_covs,
        components: Some(iterated.components),
        network_calls: iterated.network_calls,
        seconds,
    };
    let exact_route = Route {
        means: exact.0.clone(),
        covariances: exact_covs,
        components: None,
        network_calls: 0,
        seconds: 0.0,
    };
    Ok(MixtureCheckReport {
        points: n,
        sigma,
        learned: learned
            .map(|r| measure(Route { components: learned_components, ..r }, &clean, &exact, sigma))
            .transpose()?,
        autodiff: measure(autodiff, &clean, &exact, sigma)?,
        exact: measure(exact_route, &clean, &exact, sigma)?,
        learned_vs_iterated_angle_deg: angles,
    })
}

impl MixtureCheckReport {
    /// The report as JSON: `learned`, `autodiff` and `exact` objects with flat metric keys.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "points": self.points,
            "sigma": self.sigma,
            "learned": self.learned.as_ref().map(RouteReport::to_json),
            "autodiff": self.autodiff.to_json(),
            "exact": self.exact.to_json(),
            "learned_vs_iterated_angle_deg": self.learned_vs_iterated_angle_deg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::parse_target;

    #[test]
    fn the_exact_route_has_zero_error_and_an_untrained_model_does_not() {
        let target = parse_target("gmm:dim=3,components=2,seed=5").unwrap();
        let shape = crate::models::ModelShape {
            dim: 3,
            width: 8,
            depth: 1,
            activation: crate::nn::Activation::Softplus,
            head: Some(crate::models::SecondOrderHead::LowRank { rank: 2 }),
        };
        let model = ScoreModel::<f32>::init(&shape, &mut crate::testing::test_rng(1));
        let settings = MixtureCheck { points: 200, seed: 3, iterations: 4 };
        let report = check_on_mixture(&model, &target, 0.4, settings).unwrap();
        assert_eq!(report.exact.post_mean_rel_err, 0.0);
        assert_eq!(report.exact.post_cov_rel_err, 0.0);
        let learned = report.learned.as_ref().unwrap();
        assert!(learned.post_mean_rel_err > 0.01 && report.autodiff.post_cov_rel_err > 0.01);
        assert_eq!((learned.network_calls, report.autodiff.network_calls), (2, 1 + 3 * 4));
        let json = report.to_json();
        for key in [
            "nll_isotropic",
            "nll_scalar",
            "nll_diag",
            "nll_lowrank",
            "mahalanobis_per_dim",
            "coverage_90",
            "rem5",
        ] {
            assert!(json["learned"][key].is_number(), "learned {key}: {json}");
        }
        assert!(json["autodiff"]["nll_full"].is_number() && json["exact"]["nll_full"].is_number());
        let too_few = MixtureCheck { points: 3, ..settings };
        assert!(check_on_mixture(&model, &target, 0.4, too_few).is_err());
    }
}
