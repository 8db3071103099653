//! A (conditional) score network `[c, z] -> s_hat(z | c)` trained by SSM-VR on the samples it is asked
//! about, one RMSProp step at a time.

use super::bernoulli_decoder::two_layer_mlp;
use crate::linalg::Mat;
use crate::nn::{Mlp, MlpTrace};
use crate::objectives::{ssm_loss, SlicedScores};
use crate::optim::{RmsProp, RmsPropSettings};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// `[a, b]`: the columns of `a`, then those of `b` (equal row counts).
pub(crate) fn concat_columns(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    assert_eq!(a.rows(), b.rows(), "concat_columns: row counts differ");
    let (ca, cb) = (a.cols(), b.cols());
    Mat::from_fn(a.rows(), ca + cb, |r, c| if c < ca { a.at(r, c) } else { b.at(r, c - ca) })
}

/// The score network of `q(z | c)` (`c` has 0 columns for an unconditional one), with its optimiser.
#[derive(Clone, Debug)]
pub struct ScoreNet {
    /// `[c, z] -> s_hat`.
    pub net: Mlp<f64>,
    condition_dim: usize,
    projections: usize,
    optimiser: RmsProp<f64>,
}

impl ScoreNet {
    /// A network for `condition_dim` conditioning inputs and `latent` dimensions, `M = projections`
    /// Gaussian projections per sample.
    pub fn init<R: Rng + ?Sized>(
        condition_dim: usize,
        latent: usize,
        hidden: usize,
        projections: usize,
        optimiser: RmsPropSettings,
        rng: &mut R,
    ) -> Self {
        let net = two_layer_mlp(condition_dim + latent, hidden, latent, rng);
        let optimiser = RmsProp::new(optimiser, net.num_params());
        Self { net, condition_dim, projections: projections.max(1), optimiser }
    }

    /// `s_hat(z_i | c_i)` for every row.
    pub fn scores(&self, c: &Mat<f64>, z: &Mat<f64>) -> Mat<f64> {
        self.net.forward(&concat_columns(c, z))
    }

    /// One SSM-VR step on the samples `z_i ~ q(. | c_i)`; returns the loss before the step.
    ///
    /// # Definition
    /// `J = (1/nM) sum v^T (d s_hat / dz) v + (1/n) sum ||s_hat||^2 / 2`, `v ~ N(0, I)`
    /// (SSM-VR, docs/math.md §6), the tangents taken along `z` only.
    pub fn train_step<R: Rng + ?Sized>(&mut self, c: &Mat<f64>, z: &Mat<f64>, rng: &mut R) -> f64 {
        let (n, d, m) = (z.rows(), z.cols(), self.projections);
        let v = Mat::from_fn(m * n, d, |_, _| StandardNormal.sample(rng));
        let tangent_input = concat_columns(&Mat::zeros(m * n, self.condition_dim), &v);
        let input = Mat::vstack(&[&concat_columns(c, z), &tangent_input]);
        let mut trace = MlpTrace::default();
        // SSM-VR is linear in s_dot: the contracted pass leaves that term to the reverse pass.
        let s = &self.net.forward_trace_contracted(&input, n, &mut trace).as_slice()[..n * d];
        let (mut g_s, mut g_dot) = (vec![0.0; n * d], vec![0.0; m * n * d]);
        let batch = SlicedScores { dim: d, points: n, s, v: v.as_slice(), s_dot: None };
        let loss = ssm_loss(&batch, true, &mut g_s, &mut g_dot);
        g_s.extend_from_slice(&g_dot);
        let mut grad = self.net.zeros_like();
        self.net.reverse(&input, &mut trace, &Mat::from_vec((m + 1) * n, d, g_s), &mut grad, None);
        self.optimiser.step(self.net.params_mut(), grad.params());
        loss + trace.output_tangent_dot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normal_mat, test_rng};

    #[test]
    fn ssm_vr_steps_learn_the_score_of_a_gaussian() {
        // q = N(0, 0.25 I) in 2-D, score -4 z; conditioned on a constant input (so the conditional path
        // with its zero tangent columns is exercised).
        let mut rng = test_rng(21);
        let settings = RmsPropSettings { learning_rate: 3e-3, ..Default::default() };
        let mut net = ScoreNet::init(1, 2, 32, 1, settings, &mut rng);
        let c = Mat::from_fn(128, 1, |_, _| 1.0);
        for _ in 0..1500 {
            let z = Mat::from_fn(128, 2, |_, _| {
                let e: f64 = StandardNormal.sample(&mut rng);
                0.5 * e
            });
            net.train_step(&c, &z, &mut rng);
        }
        let fresh = normal_mat(500, 2, &mut test_rng(9));
        let z = Mat::from_fn(500, 2, |r, k| 0.5 * fresh.at(r, k));
        let s = net.scores(&Mat::from_fn(500, 1, |_, _| 1.0), &z);
        let err: f64 = s.as_slice().iter().zip(z.as_slice()).map(|(s, z)| (s + 4.0 * z).powi(2)).sum();
        let norm: f64 = z.as_slice().iter().map(|z| (4.0 * z).powi(2)).sum();
        assert!((err / norm).sqrt() < 0.2, "relative error {}", (err / norm).sqrt());
    }
}
