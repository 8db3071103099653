//! Integrated autocorrelation time (IAT) and effective sample size (ESS) of one chain's scalar series, by
//! Geyer's initial monotone sequence estimator.

use super::error::{at_least, MetricError};
use serde::Serialize;

/// The integrated autocorrelation time of a series and the window it summed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Iat {
    /// $\hat\tau$ (1 for independent draws; `+inf` for a constant series).
    pub tau: f64,
    /// Number of autocorrelation lags summed (`2 (M + 1)` in Geyer's notation).
    pub window: usize,
    /// Series length $n$.
    pub n: usize,
}

impl Iat {
    /// The effective sample size $n / \hat\tau$ (0 for a constant series).
    pub fn ess(&self) -> f64 {
        self.n as f64 / self.tau
    }
}

/// The integrated autocorrelation time of `series` by Geyer's initial monotone sequence estimator.
///
/// # Definition
/// With the sample autocovariances $\hat\gamma_k = \frac1n \sum_{t=0}^{n-k-1} (x_t - \bar x)(x_{t+k} -
/// \bar x)$, $\hat\rho_k = \hat\gamma_k / \hat\gamma_0$ and the pair sums $\Gamma_m = \hat\rho_{2m} +
/// \hat\rho_{2m+1}$: keep $\Gamma_0, \dots, \Gamma_M$ up to (excluding) the first non-positive one,
/// make them non-increasing ($\Gamma_m \leftarrow \min(\Gamma_m, \Gamma_{m-1})$), and
/// $$ \hat\tau = \max\Big(-1 + 2 \sum_{m=0}^{M} \Gamma_m,\ 1/\log_{10} n\Big), \qquad
///    \mathrm{ESS} = n / \hat\tau , $$
/// the lower bound being Stan's cap $\mathrm{ESS} \le n \log_{10} n$ (short anti-correlated series can
/// otherwise give $\hat\tau \le 0$).
/// For an AR(1) series with coefficient $\rho$, $\tau = (1 + \rho)/(1 - \rho)$. Cost $O(n W)$ for a
/// window of $W$ lags. A constant series has $\hat\tau = +\infty$.
///
/// # Reference
/// docs/math.md §12.5; Geyer (1992), *Practical Markov Chain Monte Carlo*, Statist. Sci. 7(4), Sec. 3.3.
///
/// # Errors
/// [`MetricError::TooFewSamples`] for fewer than 4 values.
pub fn integrated_autocorrelation_time(series: &[f64]) -> Result<Iat, MetricError> {
    let n = series.len();
    at_least("series", 4, n)?;
    let mean = series.iter().sum::<f64>() / n as f64;
    let c: Vec<f64> = series.iter().map(|x| x - mean).collect();
    let gamma = |k: usize| c[..n - k].iter().zip(&c[k..]).map(|(a, b)| a * b).sum::<f64>() / n as f64;
    let g0 = gamma(0);
    if !(g0 > 0.0) {
        return Ok(Iat { tau: f64::INFINITY, window: 0, n });
    }
    let mut sum = 0.0;
    let mut prev = f64::INFINITY;
    let mut m = 0;
    while 2 * m + 1 < n {
        let pair = (gamma(2 * m) + gamma(2 * m + 1)) / g0;
        if !(pair > 0.0) {
            break;
        }
        prev = prev.min(pair);
        sum += prev;
        m += 1;
    }
    // Gamma_0 = 1 + rho_1 <= 0 only for a perfectly alternating series (m = 0, sum = 0).
    let tau = (-1.0 + 2.0 * sum).max(1.0 / (n as f64).log10());
    Ok(Iat { tau, window: 2 * m, n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;
    use rand_distr::{Distribution, StandardNormal};

    fn ar1(n: usize, rho: f64, seed: u64) -> Vec<f64> {
        let mut rng = test_rng(seed);
        let innovation = (1.0 - rho * rho).sqrt();
        let mut x: f64 = StandardNormal.sample(&mut rng);
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                x = rho * x + innovation * z;
                x
            })
            .collect()
    }

    /// Sokal's large-sample standard deviation of an IAT estimate summing W lags: tau sqrt(2 (2W + 1) / n).
    fn sd(iat: &Iat) -> f64 {
        iat.tau * (2.0 * (2.0 * iat.window as f64 + 1.0) / iat.n as f64).sqrt()
    }

    #[test]
    fn iid_series_have_tau_one_and_ess_n() {
        let iat = integrated_autocorrelation_time(&ar1(50_000, 0.0, 1)).unwrap();
        assert!((iat.tau - 1.0).abs() <= 4.0 * sd(&iat), "{iat:?}");
        assert!((iat.ess() / 50_000.0 - 1.0).abs() <= 4.0 * sd(&iat));
    }

    #[test]
    fn ar1_series_have_tau_one_plus_rho_over_one_minus_rho() {
        for (rho, seed) in [(0.5, 2), (0.9, 3)] {
            let n = 200_000;
            let iat = integrated_autocorrelation_time(&ar1(n, rho, seed)).unwrap();
            let want = (1.0 + rho) / (1.0 - rho);
            assert!((iat.tau - want).abs() <= 4.0 * sd(&iat), "rho {rho}: {iat:?} vs {want}");
            // ESS = n (1 - rho) / (1 + rho).
            assert!((iat.ess() - n as f64 / want).abs() <= 4.0 * sd(&iat) / want * n as f64 / want);
        }
    }

    #[test]
    fn anti_correlated_series_are_capped_at_ess_n_log10_n() {
        let x: Vec<f64> = (0..100).map(|t| if t % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let iat = integrated_autocorrelation_time(&x).unwrap();
        assert_eq!((iat.tau, iat.ess()), (0.5, 200.0));
    }

    #[test]
    fn constant_and_short_series() {
        let iat = integrated_autocorrelation_time(&[2.0; 10]).unwrap();
        assert_eq!((iat.tau, iat.ess()), (f64::INFINITY, 0.0));
        assert!(matches!(
            integrated_autocorrelation_time(&[1.0, 2.0]),
            Err(MetricError::TooFewSamples { .. })
        ));
    }

    #[test]
    fn integrated_autocorrelation_time_example() -> Result<(), crate::metrics::MetricError> {
        use crate::metrics::integrated_autocorrelation_time;
        // A slowly varying series: strongly autocorrelated, few effective samples.
        let x: Vec<f64> = (0..1000).map(|t| (t as f64 / 20.0).sin()).collect();
        let iat = integrated_autocorrelation_time(&x)?;
        assert!(iat.tau > 5.0 && iat.ess() < 200.0);
        Ok(())
    }
}
