//! Exact sampling from a Gaussian mixture: a categorical draw of the component, then mu_k + L_k z.
#![allow(non_snake_case)] // names follow the paper: L, D

use super::GaussianMixture;
use crate::linalg::Mat;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

impl GaussianMixture {
    /// `n` independent draws from the mixture, one per row of an `n x D` matrix.
    ///
    /// See [`sample_with_labels`](Self::sample_with_labels) for the algorithm and the order in which
    /// random numbers are consumed.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Mat<f64> {
        self.sample_with_labels(n, rng).0
    }

    /// `n` independent draws and the component each came from.
    ///
    /// # Definition
    /// For each row: $k \sim \text{Categorical}(\pi)$, then $x = \mu_k + L_k z$, $z \sim \mathcal N(0, I_D)$,
    /// so $x \sim \mathcal N(\mu_k, L_k L_k^\top = \Sigma_k)$.
    ///
    /// Value stability: per row, one `f64` uniform from `rng.random::<f64>()` picks `k` (inverse CDF over the
    /// cumulative weights), then `D` standard normals (rand_distr's `StandardNormal`) fill `z`.
    ///
    /// # Example
    /// ```
    /// use rand::SeedableRng;
    /// use tweedie::targets::TargetSpec;
    /// let p = "gmm2d".parse::<TargetSpec>()?.build();
    /// let (x, labels) = p.sample_with_labels(100, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    /// assert_eq!((x.rows(), x.cols(), labels.len()), (100, 2, 100));
    /// assert!(labels.iter().all(|&k| k < p.n_components()));
    /// # Ok::<(), tweedie::targets::TargetError>(())
    /// ```
    pub fn sample_with_labels<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Mat<f64>, Vec<usize>) {
        let D = self.dim;
        let K = self.n_components();
        let mut cumulative = Vec::with_capacity(K);
        let mut acc = 0.0;
        for w in &self.weights {
            acc += w;
            cumulative.push(acc);
        }
        let mut x = Mat::zeros(n, D);
        let mut labels = Vec::with_capacity(n);
        let mut z = vec![0.0; D];
        for row in 0..n {
            let u: f64 = rng.random::<f64>() * acc;
            let k = cumulative.iter().position(|&c| u < c).unwrap_or(K - 1);
            labels.push(k);
            for zi in z.iter_mut() {
                *zi = StandardNormal.sample(rng);
            }
            let L = self.cholesky[k].as_slice();
            let mu = &self.means[k];
            let out = x.row_mut(row);
            for i in 0..D {
                let Li = &L[i * D..i * D + i + 1];
                out[i] = mu[i] + Li.iter().zip(&z).map(|(l, zj)| l * zj).sum::<f64>();
            }
        }
        (x, labels)
    }
}

#[cfg(test)]
mod tests {
    use crate::targets::named::parse_target;
    use crate::targets::testing::test_rng;

    /// Sample mean, covariance and third central moment of 200k draws against the analytic moments,
    /// each entry within 5 standard errors; the standard error of an entry E[f(x)] is the sample
    /// standard deviation of f(x) over sqrt(n). Centring uses the exact mean, so no O(1/n) bias enters.
    #[test]
    fn sample_moments_match_the_analytic_moments() {
        const N: usize = 200_000;
        for (spec, seed) in [("gmm2d", 1), ("gmm:dim=3,components=4,seed=1", 2)] {
            let p = parse_target(spec).unwrap();
            let D = p.dim();
            let (x, labels) = p.sample_with_labels(N, &mut test_rng(seed));
            let (m, c, t) = (p.mean(), p.covariance(), p.third_central_moment());
            // Mean and variance of f over the sample, then the 5-sigma check.
            let check = |what: &str, want: f64, f: &dyn Fn(&[f64]) -> f64| {
                let (mut s, mut s2) = (0.0, 0.0);
                for row in x.row_iter() {
                    let v = f(row);
                    s += v;
                    s2 += v * v;
                }
                let mean = s / N as f64;
                let se = ((s2 / N as f64 - mean * mean) / N as f64).sqrt();
                assert!((mean - want).abs() <= 5.0 * se, "{spec} {what}: sample {mean} vs {want}, se {se:e}");
            };
            for i in 0..D {
                check(&format!("mean[{i}]"), m[i], &|r| r[i]);
                for j in 0..D {
                    check(&format!("cov[{i},{j}]"), c.at(i, j), &|r| (r[i] - m[i]) * (r[j] - m[j]));
                    for l in 0..D {
                        let want = t[(i * D + j) * D + l];
                        check(&format!("m3[{i},{j},{l}]"), want, &|r| {
                            (r[i] - m[i]) * (r[j] - m[j]) * (r[l] - m[l])
                        });
                    }
                }
            }
            for (k, &w) in p.weights().iter().enumerate() {
                let freq = labels.iter().filter(|&&l| l == k).count() as f64 / N as f64;
                let se = (w * (1.0 - w) / N as f64).sqrt();
                assert!((freq - w).abs() <= 5.0 * se, "{spec}: component {k} drawn {freq} vs weight {w}");
            }
        }
    }

    #[test]
    fn labelled_draws_come_from_their_component() {
        // Whitened by its own Cholesky factor, a draw from component k is N(0, I): check the mean square.
        let p = parse_target("gmm:dim=4,components=3,seed=5").unwrap();
        let (D, N) = (p.dim(), 20_000);
        let (x, labels) = p.sample_with_labels(N, &mut test_rng(3));
        let mut sq = 0.0;
        for (row, &k) in x.row_iter().zip(&labels) {
            let L = &p.cholesky_factors()[k];
            let mut y = vec![0.0; D];
            for i in 0..D {
                let s: f64 = (0..i).map(|j| L.at(i, j) * y[j]).sum();
                y[i] = (row[i] - p.means()[k][i] - s) / L.at(i, i);
            }
            sq += y.iter().map(|v| v * v).sum::<f64>();
        }
        // ||y||^2 ~ chi^2_D: mean D, variance 2D.
        let mean = sq / N as f64;
        assert!((mean - D as f64).abs() <= 5.0 * (2.0 * D as f64 / N as f64).sqrt(), "mean ||y||^2 = {mean}");
    }

    #[test]
    fn same_seed_same_draws() {
        let p = parse_target("gmm2d").unwrap();
        assert_eq!(p.sample(50, &mut test_rng(7)), p.sample(50, &mut test_rng(7)));
        assert_ne!(p.sample(50, &mut test_rng(7)), p.sample(50, &mut test_rng(8)));
    }
}
