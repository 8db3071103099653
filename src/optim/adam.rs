//! Adam and AdamW (decoupled weight decay) over a list of parameter slices.

use crate::linalg::Real;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters per task when a step updates a large tensor on a pool of several threads (a 784 x 256
/// weight is 12 tasks); smaller tensors, and every tensor on one thread, are updated in one loop.
const PARALLEL_CHUNK: usize = 1 << 14;

/// Adam hyper-parameters (Kingma & Ba 2015; AdamW: Loshchilov & Hutter 2019).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamSettings {
    /// Learning rate `eta`.
    pub learning_rate: f64,
    /// First-moment decay `beta1`.
    pub beta1: f64,
    /// Second-moment decay `beta2`.
    pub beta2: f64,
    /// Denominator offset `epsilon`.
    pub epsilon: f64,
    /// Decoupled weight decay `lambda` (AdamW); 0 gives Adam.
    pub weight_decay: f64,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self { learning_rate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: 0.0 }
    }
}

/// Adam state: the moment estimates `m`, `v` (flat, in parameter order) and the step count `t`.
///
/// # Definition
/// Elementwise, at step $t = 1, 2, \dots$ with gradient $g$:
/// $$ m \leftarrow \beta_1 m + (1 - \beta_1) g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2) g^2, $$
/// $$ \theta \leftarrow \theta - \eta \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon} -
///    \eta \lambda \theta $$
/// (docs/math.md §15.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<F> {
    settings: AdamSettings,
    m: Vec<F>,
    v: Vec<F>,
    t: u64,
}

impl<F: Real> Adam<F> {
    /// Fresh state for `num_params` parameters.
    pub fn new(settings: AdamSettings, num_params: usize) -> Self {
        Self { settings, m: vec![F::zero(); num_params], v: vec![F::zero(); num_params], t: 0 }
    }

    /// Restores a saved state.
    pub fn from_state(settings: AdamSettings, m: Vec<F>, v: Vec<F>, t: u64) -> Self {
        Self { settings, m, v, t }
    }

    /// Sets the learning rate of the next steps (a schedule's current value).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.settings.learning_rate = learning_rate;
    }

    /// The moments and step count, for checkpoints.
    pub fn state(&self) -> (&[F], &[F], u64) {
        (&self.m, &self.v, self.t)
    }

    /// One update of `params` with gradients `grads` (both in the same flat order).
    #[track_caller]
    pub fn step(&mut self, params: Vec<&mut [F]>, grads: Vec<&[F]>) {
        let s = self.settings;
        self.t += 1;
        let bias1 = 1.0 - s.beta1.powf(self.t as f64);
        let bias2 = 1.0 - s.beta2.powf(self.t as f64);
        let (b1, b2) = (F::of(s.beta1), F::of(s.beta2));
        let step = F::of(s.learning_rate / bias1);
        let inv_bias2 = F::of(1.0 / bias2);
        let (eps, decay) = (F::of(s.epsilon), F::of(s.learning_rate * s.weight_decay));
        let update = |p: &mut [F], g: &[F], m: &mut [F], v: &mut [F]| {
            for k in 0..p.len() {
                m[k] = b1 * m[k] + (F::one() - b1) * g[k];
                v[k] = b2 * v[k] + (F::one() - b2) * g[k] * g[k];
                p[k] -= step * m[k] / ((v[k] * inv_bias2).sqrt() + eps) + decay * p[k];
            }
        };
        let parallel = rayon::current_num_threads() > 1;
        let mut offset = 0;
        for (p, g) in params.into_iter().zip(grads) {
            assert_eq!(p.len(), g.len(), "Adam: parameter and gradient lengths differ");
            let (m, v) = (&mut self.m[offset..offset + p.len()], &mut self.v[offset..offset + p.len()]);
            offset += p.len();
            if parallel && p.len() > PARALLEL_CHUNK {
                // Elementwise, so the bits do not depend on which thread updates which chunk.
                let chunks = p.par_chunks_mut(PARALLEL_CHUNK).zip(g.par_chunks(PARALLEL_CHUNK));
                let moments = m.par_chunks_mut(PARALLEL_CHUNK).zip(v.par_chunks_mut(PARALLEL_CHUNK));
                chunks.zip(moments).for_each(|((p, g), (m, v))| update(p, g, m, v));
            } else {
                update(p, g, m, v);
            }
        }
        assert_eq!(offset, self.m.len(), "Adam: parameter count changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_the_learning_rate_against_its_gradient_sign() {
        let mut adam = Adam::<f64>::new(AdamSettings::default(), 3);
        let mut p = vec![1.0, -2.0, 0.5];
        adam.step(vec![&mut p], vec![&[0.3, -4.0, 0.0]]);
        // Bias-corrected m/sqrt(v) = sign(g) on the first step.
        let want = [1.0 - 1e-3, -2.0 + 1e-3, 0.5];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    /// A tensor of several chunks updated on a pool of 3 threads gets the bits of the one-thread loop,
    /// parameters and moments, over a few steps (f32, where any change of operation order would show).
    #[test]
    fn parallel_update_equals_the_one_thread_update_bit_for_bit() {
        let len = 3 * PARALLEL_CHUNK + 5;
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool starts");
            pool.install(|| {
                let settings = AdamSettings { weight_decay: 0.01, ..Default::default() };
                let mut adam = Adam::<f32>::new(settings, len + 3);
                let mut p: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
                let mut bias = vec![0.5f32, -0.25, 2.0];
                for t in 0..3 {
                    let g: Vec<f32> = (0..len).map(|i| ((i + t) as f32 * 0.11).cos()).collect();
                    adam.step(vec![&mut p, &mut bias], vec![&g, &[0.1, -0.2, 0.3]]);
                }
                let (m, v, _) = adam.state();
                p.iter().chain(&bias).chain(m).chain(v).map(|x| x.to_bits()).collect::<Vec<_>>()
            })
        };
        let one = run(1);
        assert_eq!(run(3), one);
        let start: Vec<u32> = (0..len).map(|i| (i as f32 * 0.37).sin().to_bits()).collect();
        assert_ne!(&one[..len], &start[..], "the steps moved the parameters");
    }

    #[test]
    fn minimises_a_quadratic() {
        let settings = AdamSettings { learning_rate: 0.05, ..Default::default() };
        let mut adam = Adam::<f64>::new(settings, 2);
        let mut p = vec![3.0, -1.0];
        for _ in 0..2000 {
            let g = [2.0 * (p[0] - 1.0), 20.0 * (p[1] + 0.5)];
            adam.step(vec![&mut p], vec![&g]);
        }
        assert!((p[0] - 1.0).abs() < 1e-3 && (p[1] + 0.5).abs() < 1e-3, "{p:?}");
    }
}
