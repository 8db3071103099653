//! Moments of a Gaussian mixture (mean, covariance, third central moment) and the centred tensor
//! accumulators shared with the scores.
#![allow(non_snake_case)] // names follow the paper: S, D

use super::GaussianMixture;
use crate::linalg::Mat;

/// `out += w (d d^T + sign * S)` for a row-major `D x D` `out` and `S`.
pub(super) fn add_second_central(out: &mut [f64], w: f64, d: &[f64], S: &[f64], sign: f64) {
    let D = d.len();
    let ws = w * sign;
    for i in 0..D {
        let wdi = w * d[i];
        let row = &mut out[i * D..(i + 1) * D];
        let Srow = &S[i * D..(i + 1) * D];
        for ((o, dj), sij) in row.iter_mut().zip(d).zip(Srow) {
            *o += wdi * dj + ws * sij;
        }
    }
}

/// `out += w (d⊗d⊗d + sign * (S_ij d_l + S_il d_j + S_jl d_i))` for a `D x D x D` `out` indexed
/// `(i * D + j) * D + l` and a row-major symmetric `S`.
pub(super) fn add_third_central(out: &mut [f64], w: f64, d: &[f64], S: &[f64], sign: f64) {
    let D = d.len();
    let ws = w * sign;
    for i in 0..D {
        let Si = &S[i * D..(i + 1) * D];
        for j in 0..D {
            let Sj = &S[j * D..(j + 1) * D];
            let c = w * d[i] * d[j] + ws * Si[j];
            let (wdj, wdi) = (ws * d[j], ws * d[i]);
            let o = &mut out[(i * D + j) * D..(i * D + j + 1) * D];
            for l in 0..D {
                o[l] += c * d[l] + wdj * Si[l] + wdi * Sj[l];
            }
        }
    }
}

impl GaussianMixture {
    /// The mean of the mixture.
    ///
    /// # Definition
    /// $$ m = \mathbb E\ x = \sum_k \pi_k \mu_k. $$
    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.dim];
        for (w, mu) in self.weights.iter().zip(&self.means) {
            for (mi, ui) in m.iter_mut().zip(mu) {
                *mi += w * ui;
            }
        }
        m
    }

    /// The covariance of the mixture, by the law of total covariance.
    ///
    /// # Definition
    /// $$ \operatorname{Cov}(x) = \sum_k \pi_k \big[\Sigma_k + (\mu_k - m)(\mu_k - m)^\top\big]. $$
    ///
    /// # Example
    /// ```
    /// use tweedie::targets::TargetSpec;
    /// let p = "gauss:dim=3,cond=4".parse::<TargetSpec>()?.build();
    /// let c = p.covariance();
    /// assert!(c.as_slice().iter().zip(p.covariances()[0].as_slice()).all(|(a, b)| (a - b).abs() < 1e-15));
    /// # Ok::<(), tweedie::targets::TargetError>(())
    /// ```
    pub fn covariance(&self) -> Mat<f64> {
        let D = self.dim;
        let m = self.mean();
        let mut c = vec![0.0; D * D];
        let mut d = vec![0.0; D];
        for k in 0..self.n_components() {
            for ((di, ui), mi) in d.iter_mut().zip(&self.means[k]).zip(&m) {
                *di = ui - mi;
            }
            add_second_central(&mut c, self.weights[k], &d, self.covariances[k].as_slice(), 1.0);
        }
        Mat::from_vec(D, D, c)
    }

    /// The third central moment of the mixture (which equals its third cumulant), a symmetric
    /// `D x D x D` tensor indexed `(i * D + j) * D + l`.
    ///
    /// # Definition
    /// With $y = x - m$ and $d_k = \mu_k - m$:
    /// $$ \mathbb E[y_i y_j y_l] = \sum_k \pi_k \big[ d_{ki} d_{kj} d_{kl} + \Sigma_{k,ij} d_{kl} +
    ///    \Sigma_{k,il} d_{kj} + \Sigma_{k,jl} d_{ki} \big]. $$
    pub fn third_central_moment(&self) -> Vec<f64> {
        let D = self.dim;
        let m = self.mean();
        let mut t = vec![0.0; D * D * D];
        let mut d = vec![0.0; D];
        for k in 0..self.n_components() {
            for ((di, ui), mi) in d.iter_mut().zip(&self.means[k]).zip(&m) {
                *di = ui - mi;
            }
            add_third_central(&mut t, self.weights[k], &d, self.covariances[k].as_slice(), 1.0);
        }
        t
    }
}
