//! A trained [`EnergyModel`] $p(x) = e^{-E(x)}/Z$ as a sampler source with scores and log densities, so
//! that ULA and MALA run on it directly:
//! $$ s_1(x) = -\nabla_x E(x), \qquad \log p(x) = -E(x) - \log Z ; $$
//! the log densities it writes omit $\log Z$, the one constant shared by all points that MALA's
//! acceptance ratio never needs. Rows are evaluated in `F` in fixed chunks (results independent of the
//! number of threads) and widened to f64.

use super::model_source::forward_chunks;
use super::source::{LogDensitySource, ScoreSource};
use crate::linalg::{Mat, Real};
use crate::models::EnergyModel;

impl<F: Real> ScoreSource for EnergyModel<F> {
    fn dim(&self) -> usize {
        EnergyModel::dim(self)
    }

    #[track_caller]
    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>) {
        let d = EnergyModel::dim(self);
        assert_eq!(x.cols(), d, "energy source: points have {} coordinates, model has D = {d}", x.cols());
        assert!(
            out.rows() == x.rows() && out.cols() == d,
            "energy source: score output must be {}x{d}",
            x.rows()
        );
        forward_chunks(x, d, out.as_mut_slice(), |chunk: &Mat<F>, o| {
            for (a, b) in o.iter_mut().zip(self.score(chunk).as_slice()) {
                *a = b.to_f64().unwrap_or(f64::NAN);
            }
        });
    }
}

impl<F: Real> LogDensitySource for EnergyModel<F> {
    #[track_caller]
    fn log_densities_into(&self, x: &Mat<f64>, out: &mut [f64]) {
        let d = EnergyModel::dim(self);
        assert_eq!(x.cols(), d, "energy source: points have {} coordinates, model has D = {d}", x.cols());
        assert_eq!(out.len(), x.rows(), "energy source: log-density output must have length {}", x.rows());
        forward_chunks(x, 1, out, |chunk: &Mat<F>, o| {
            for (a, e) in o.iter_mut().zip(self.energy(chunk)) {
                *a = -e.to_f64().unwrap_or(f64::NAN);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::EnergyShape;
    use crate::nn::Activation;
    use crate::samplers::{run, Chains, Mala};
    use crate::testing::{normal_mat, test_rng};
    use rand::Rng;

    #[test]
    fn scores_are_minus_the_gradient_of_the_log_densities_of_a_nonzero_network() {
        // A random network (every weight non-zero) and lambda = 0.5: central differences of the log
        // densities, O(e^2) truncation and O(eps / e) rounding, must give the scores.
        let shape =
            EnergyShape { dim: 3, width: 8, depth: 2, activation: Activation::Softplus, base_precision: 0.5 };
        let mut model = EnergyModel::<f64>::init(&shape, &mut test_rng(4));
        // Biases too (they start at zero), and weights of order 1.
        let mut rng = test_rng(6);
        for p in model.net.params_mut() {
            p.iter_mut().for_each(|v| *v = 2.0 * *v + 0.3 * rng.random::<f64>());
        }
        let src = model;
        let x = normal_mat(5, 3, &mut test_rng(5));
        let mut s = Mat::zeros(5, 3);
        src.scores_into(&x, &mut s);
        // The network's part -grad f is of order 1 here, not lost next to the base term -lambda x.
        let network_part = s.as_slice().iter().zip(x.as_slice()).map(|(s, x)| (s + 0.5 * x).abs());
        let largest = network_part.fold(0.0, f64::max);
        assert!(largest > 0.5, "network part of the score {largest}");
        let e = 1e-5;
        for j in 0..3 {
            let shifted = |t: f64| {
                let y = Mat::from_fn(5, 3, |i, k| x.at(i, k) + if k == j { t } else { 0.0 });
                let mut logp = vec![0.0; 5];
                src.log_densities_into(&y, &mut logp);
                logp
            };
            let (up, down) = (shifted(e), shifted(-e));
            for i in 0..5 {
                let fd = (up[i] - down[i]) / (2.0 * e);
                assert!(
                    (s.at(i, j) - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                    "({i}, {j}): {} vs {fd}",
                    s.at(i, j)
                );
            }
        }
    }

    #[test]
    fn mala_on_an_energy_model_keeps_its_gaussian_invariant() {
        // Zero output weights: f_theta is constant, E = const + lambda |x|^2 / 2, p = N(0, I / lambda).
        let lambda = 4.0;
        let shape = EnergyShape {
            dim: 2,
            width: 8,
            depth: 1,
            activation: Activation::Softplus,
            base_precision: lambda,
        };
        let mut model = EnergyModel::<f64>::init(&shape, &mut test_rng(0));
        let last = model.net.depth() - 1;
        model.net.layer_mut(last).0.iter_mut().for_each(|w| *w = 0.0);
        let src = model;
        let n = 4000;
        let mut x0 = normal_mat(n, 2, &mut test_rng(1));
        x0.as_mut_slice().iter_mut().for_each(|v| *v /= lambda.sqrt());
        let mut chains = Chains::new(x0, 2).unwrap();
        // h lambda = 1: ULA would double the variance; MALA keeps 1 / lambda.
        let mut mala = Mala::new(1.0 / lambda, &src).unwrap();
        let s = run(&mut mala, &mut chains, 30, &mut ());
        assert!(s.acceptance_rate() > 0.3 && s.acceptance_rate() < 1.0);
        for j in 0..2 {
            let v = chains.positions().row_iter().map(|r| r[j] * r[j]).sum::<f64>() / n as f64;
            // The variance of n normal draws around their known mean has sd (1/lambda) sqrt(2/n).
            assert!(
                (v - 1.0 / lambda).abs() <= 5.0 / lambda * (2.0 / n as f64).sqrt(),
                "coordinate {j}: {v}"
            );
        }
    }
}
