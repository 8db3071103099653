//! The exact denoising posterior p(x | x~) of a Gaussian mixture, itself a Gaussian mixture.
#![allow(non_snake_case)] // names follow the paper: Sigma, C, S, P

use super::{check_sigma, GaussianMixture};
use crate::linalg::Mat;
use crate::targets::error::TargetError;

impl GaussianMixture {
    /// The exact posterior $p(x \mid \tilde x)$ of the clean point given a noisy one, $\tilde x = x +
    /// \sigma z$, $z \sim \mathcal N(0, I)$.
    ///
    /// # Definition
    /// With $C_k = \Sigma_k + \sigma^2 I$ and $r_k(\tilde x)$ the responsibilities of $q_\sigma$
    /// ([`noisy`](Self::noisy)):
    /// $$ p(x \mid \tilde x) = \sum_k r_k(\tilde x)\  \mathcal N(x;\ m_k, S_k), \quad
    ///    m_k = \mu_k + \Sigma_k C_k^{-1} (\tilde x - \mu_k), \quad
    ///    S_k = \Sigma_k - \Sigma_k C_k^{-1} \Sigma_k. $$
    /// They are computed in the equivalent forms $m_k = \tilde x - \sigma^2 C_k^{-1} (\tilde x - \mu_k)$ and
    /// $S_k = \sigma^2 \Sigma_k C_k^{-1}$ (symmetrised; $\Sigma_k$ and $C_k$ commute), which do not cancel
    /// when $\sigma$ is large or small against $\Sigma_k$. By Tweedie's formula its mean is $\tilde x +
    /// \sigma^2 s_1(\tilde x)$ and its covariance $\sigma^4 s_2(\tilde x) + \sigma^2 I$, with $s_k$ the scores
    /// of $q_\sigma$ (checked by this module's tests).
    ///
    /// Components whose responsibility underflows to exactly zero are dropped, so the result may have
    /// fewer components than `self` (its weights must be positive).
    ///
    /// # Reference
    /// docs/math.md §2 and §14.4 (Meng et al. 2021, Sec. 3; Efron 2011).
    ///
    /// # Errors
    /// [`TargetError::NonPositiveSigma`] unless $\sigma$ is positive and finite;
    /// [`TargetError::NotPositiveDefinite`] if rounding makes some $S_k$ indefinite (only for $\sigma$
    /// negligible against $\Sigma_k$ at the scale of $\varepsilon$).
    ///
    /// # Example
    /// ```
    /// use tweedie::targets::{TargetSpec, Score};
    /// let (p, sigma, xt) = ("gmm2d".parse::<TargetSpec>()?.build(), 0.5, [0.3, -0.2]);
    /// let post = p.posterior(&xt, sigma)?;
    /// let mut s1 = [0.0; 2];
    /// p.noisy(sigma)?.score_into(&xt, &mut s1);
    /// let m = post.mean();
    /// assert!((0..2).all(|i| (m[i] - (xt[i] + sigma * sigma * s1[i])).abs() < 1e-12));
    /// # Ok::<(), tweedie::targets::TargetError>(())
    /// ```
    #[track_caller]
    pub fn posterior(&self, x_tilde: &[f64], sigma: f64) -> Result<GaussianMixture, TargetError> {
        let D = self.dim;
        assert_eq!(x_tilde.len(), D, "posterior: x_tilde has length {}, D = {D}", x_tilde.len());
        check_sigma(sigma)?;
        let q = self.noisy(sigma)?;
        let mut r = vec![0.0; self.n_components()];
        q.responsibilities_into(x_tilde, &mut r);
        let s2 = sigma * sigma;
        let (mut weights, mut means, mut covs) = (Vec::new(), Vec::new(), Vec::new());
        for (k, &rk) in r.iter().enumerate() {
            if !(rk > 0.0) {
                continue;
            }
            let Pc = q.precisions[k].as_slice();
            let mu = &self.means[k];
            let m: Vec<f64> = (0..D)
                .map(|i| {
                    let Pi = &Pc[i * D..(i + 1) * D];
                    let v: f64 = (0..D).map(|j| Pi[j] * (x_tilde[j] - mu[j])).sum();
                    x_tilde[i] - s2 * v
                })
                .collect();
            let Sigma = &self.covariances[k];
            let mut SP = Mat::zeros(D, D);
            SP.gemm_into(s2, Sigma, false, &q.precisions[k], false, 0.0);
            let S = Mat::from_fn(D, D, |i, j| 0.5 * (SP.at(i, j) + SP.at(j, i)));
            weights.push(rk);
            means.push(m);
            covs.push(S);
        }
        GaussianMixture::new(weights, means, covs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::named::parse_target;
    use crate::targets::testing::{max_abs, max_abs_diff, test_rng};
    use crate::targets::traits::{Score, ScoreHessian};

    /// Clean targets, noise levels and noisy points x~ ~ q_sigma (plus one far point) for the Tweedie checks.
    fn cases() -> Vec<(String, GaussianMixture, f64, Vec<Vec<f64>>)> {
        let mut rng = test_rng(21);
        let mut out = Vec::new();
        for spec in ["gmm2d", "gmm:dim=3,components=4,seed=1", "gmm:dim=6,components=3,seed=4"] {
            let p = parse_target(spec).unwrap();
            for sigma in [0.1, 0.5, 2.0] {
                let q = p.noisy(sigma).unwrap();
                let mut pts: Vec<Vec<f64>> = q.sample(5, &mut rng).row_iter().map(<[f64]>::to_vec).collect();
                pts.push(vec![6.0; p.dim()]);
                out.push((format!("{spec} sigma={sigma}"), p.clone(), sigma, pts));
            }
        }
        out
    }

    /// Rounding tolerance for the identities: both sides are sums of O(K D) products of terms of size
    /// `scale`, each rounded at eps.
    fn tol(p: &GaussianMixture, scale: f64) -> f64 {
        64.0 * (p.dim() * p.n_components()) as f64 * f64::EPSILON * scale
    }

    #[test]
    fn posterior_mean_is_tweedies_denoiser() {
        for (name, p, sigma, pts) in cases() {
            let q = p.noisy(sigma).unwrap();
            for xt in &pts {
                let mut s1 = vec![0.0; p.dim()];
                q.score_into(xt, &mut s1);
                let want: Vec<f64> = xt.iter().zip(&s1).map(|(x, s)| x + sigma * sigma * s).collect();
                let got = p.posterior(xt, sigma).unwrap().mean();
                let scale = max_abs(xt) + sigma * sigma * max_abs(&s1) + 1.0;
                let err = max_abs_diff(&got, &want);
                assert!(err <= tol(&p, scale), "{name} x~={xt:?}: |E[x|x~] - tweedie| = {err:e}");
            }
        }
    }

    #[test]
    fn posterior_covariance_is_sigma4_s2_plus_sigma2_identity() {
        for (name, p, sigma, pts) in cases() {
            let (q, D) = (p.noisy(sigma).unwrap(), p.dim());
            for xt in &pts {
                let mut s2 = vec![0.0; D * D];
                q.hessian_into(xt, &mut s2);
                let s4 = sigma.powi(4);
                let want: Vec<f64> = (0..D * D)
                    .map(|ij| s4 * s2[ij] + if ij / D == ij % D { sigma * sigma } else { 0.0 })
                    .collect();
                let got = p.posterior(xt, sigma).unwrap().covariance();
                let scale = s4 * max_abs(&s2) + sigma * sigma;
                let err = max_abs_diff(got.as_slice(), &want);
                assert!(err <= tol(&p, scale), "{name} x~={xt:?}: |Cov[x|x~] - tweedie| = {err:e}");
            }
        }
    }

    #[test]
    fn posterior_third_cumulant_is_sigma6_s3() {
        for (name, p, sigma, pts) in cases() {
            let (q, D) = (p.noisy(sigma).unwrap(), p.dim());
            for xt in &pts {
                let mut s3 = vec![0.0; D * D * D];
                q.third_score_into(xt, &mut s3);
                let want: Vec<f64> = s3.iter().map(|v| sigma.powi(6) * v).collect();
                let got = p.posterior(xt, sigma).unwrap().third_central_moment();
                // Terms of size (posterior spread)^3 cancel to the cumulant.
                let spread = p
                    .posterior(xt, sigma)
                    .unwrap()
                    .covariance()
                    .as_slice()
                    .iter()
                    .fold(0.0, |m: f64, v| m.max(v.abs()));
                let scale = max_abs(&want) + spread.powf(1.5);
                let err = max_abs_diff(&got, &want);
                assert!(err <= tol(&p, scale), "{name} x~={xt:?}: |k3[x|x~] - sigma^6 s3| = {err:e}");
            }
        }
    }

    #[test]
    fn posterior_components_follow_the_definition() {
        // m_k = mu_k + Sigma_k C_k^{-1} (x~ - mu_k), S_k = Sigma_k - Sigma_k C_k^{-1} Sigma_k
        // (docs/math.md §14.4), against the stable forms the code uses.
        let p = parse_target("gmm:dim=3,components=2,seed=9").unwrap();
        let (sigma, xt, D) = (0.7, [0.4, -1.0, 2.5], 3);
        let q = p.noisy(sigma).unwrap();
        let post = p.posterior(&xt, sigma).unwrap();
        assert_eq!(post.n_components(), 2);
        let mut r = vec![0.0; 2];
        q.responsibilities_into(&xt, &mut r);
        for (k, &rk) in r.iter().enumerate() {
            let (S, Pc, mu) = (&p.covariances()[k], &q.precisions()[k], &p.means()[k]);
            let SPc = Mat::matmul(S, Pc, false);
            let m: Vec<f64> =
                (0..D).map(|i| mu[i] + (0..D).map(|j| SPc.at(i, j) * (xt[j] - mu[j])).sum::<f64>()).collect();
            let SPcS = Mat::matmul(&SPc, S, false);
            let Sk: Vec<f64> = (0..D * D).map(|ij| S.as_slice()[ij] - SPcS.as_slice()[ij]).collect();
            let scale = max_abs(S.as_slice()) * (1.0 + max_abs(Pc.as_slice()) * max_abs(S.as_slice()));
            assert!(
                max_abs_diff(&post.means()[k], &m)
                    <= 64.0 * D as f64 * f64::EPSILON * (1.0 + max_abs(&xt)) * scale
            );
            assert!(
                max_abs_diff(post.covariances()[k].as_slice(), &Sk) <= 64.0 * D as f64 * f64::EPSILON * scale
            );
            assert!((post.weights()[k] - rk).abs() <= 4.0 * f64::EPSILON);
        }
    }

    #[test]
    fn posterior_rejects_bad_sigma() {
        let p = parse_target("gmm2d").unwrap();
        for sigma in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(p.posterior(&[0.0, 0.0], sigma), Err(TargetError::NonPositiveSigma { .. })));
        }
    }
}
