//! The affine layer `a = h W + b`.

use super::layer::Layer;
use crate::linalg::{Mat, Real};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// An affine map `a = h W + b` with `W` of shape `inputs x outputs` (rows of `h` are points).
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<F> {
    /// Weights, `inputs x outputs`.
    pub weight: Mat<F>,
    /// Bias, one per output.
    pub bias: Vec<F>,
}

impl<F: Real> Linear<F> {
    /// A layer of zeros (also the shape of its gradient).
    pub fn zeros(inputs: usize, outputs: usize) -> Self {
        Self { weight: Mat::zeros(inputs, outputs), bias: vec![F::zero(); outputs] }
    }

    /// LeCun-normal initialisation: `W_ij ~ N(0, 1/inputs)`, `b = 0`.
    pub fn init<R: Rng + ?Sized>(inputs: usize, outputs: usize, rng: &mut R) -> Self {
        let scale = 1.0 / (inputs as f64).sqrt();
        let weight = Mat::from_fn(inputs, outputs, |_, _| {
            let z: f64 = StandardNormal.sample(rng);
            F::of(z * scale)
        });
        Self { weight, bias: vec![F::zero(); outputs] }
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.weight.rows()
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.weight.cols()
    }

    /// The parameters as slices, in a fixed order (weights, then bias).
    pub fn params(&self) -> [&[F]; 2] {
        [self.weight.as_slice(), &self.bias]
    }

    /// The parameters as mutable slices, in the order of [`Linear::params`].
    pub fn params_mut(&mut self) -> [&mut [F]; 2] {
        [self.weight.as_mut_slice(), &mut self.bias]
    }
}

impl<F: Real> Linear<F> {
    /// [`Layer::forward`] on `n` primal rows `x` stacked with the `D` basis directions `e_j` as tangents
    /// (direction `j` of point `i` at row `n + j n + i`): `a = x W + b`, and `e_j W` is row `j` of `W`,
    /// copied instead of multiplied (the one-hot GEMM would cost `n D` times the row length per row).
    pub(crate) fn forward_basis_tangents(&self, x: &Mat<F>, y: &mut Mat<F>) {
        let (n, inputs, outputs) = (x.rows(), self.inputs(), self.outputs());
        y.resize(n * (inputs + 1), outputs);
        let (primal, tangents) = y.as_mut_slice().split_at_mut(n * outputs);
        F::gemm(
            n,
            inputs,
            outputs,
            F::one(),
            (x.as_slice(), inputs, 1),
            (self.weight.as_slice(), outputs, 1),
            F::zero(),
            (primal, outputs, 1),
        );
        for row in primal.chunks_exact_mut(outputs) {
            row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += *b);
        }
        for (j, block) in tangents.chunks_exact_mut(n * outputs).enumerate() {
            block.chunks_exact_mut(outputs).for_each(|row| row.copy_from_slice(self.weight.row(j)));
        }
    }
}

impl<F: Real> Layer<F> for Linear<F> {
    type Cache = ();
    type Grad = Linear<F>;

    /// `a = h W + b` on primal rows, `a_dot = h_dot W` on tangent rows: one GEMM for both.
    fn forward(&self, x: &Mat<F>, n: usize, y: &mut Mat<F>, _cache: &mut ()) {
        y.resize(x.rows(), self.outputs());
        y.gemm_into(F::one(), x, false, &self.weight, false, F::zero());
        for i in 0..n {
            for (v, b) in y.row_mut(i).iter_mut().zip(&self.bias) {
                *v += *b;
            }
        }
    }

    /// `dW += [h; h_dot]^T [g_a; g_a_dot]`, `db += sum_rows g_a`, `[g_h; g_h_dot] = [g_a; g_a_dot] W^T`.
    fn reverse(
        &self,
        x: &Mat<F>,
        n: usize,
        _cache: &(),
        g_y: &Mat<F>,
        g_x: Option<&mut Mat<F>>,
        grad: &mut Linear<F>,
    ) {
        grad.weight.gemm_into(F::one(), x, true, g_y, false, F::one());
        for i in 0..n {
            for (gb, g) in grad.bias.iter_mut().zip(g_y.row(i)) {
                *gb += *g;
            }
        }
        if let Some(g_x) = g_x {
            g_x.resize(g_y.rows(), self.inputs());
            g_x.gemm_into(F::one(), g_y, false, &self.weight, true, F::zero());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_stacked_map, normal_mat, test_rng};

    fn from_flat(theta: &[f64], inputs: usize, outputs: usize) -> Linear<f64> {
        let (w, b) = theta.split_at(inputs * outputs);
        Linear { weight: Mat::from_vec(inputs, outputs, w.to_vec()), bias: b.to_vec() }
    }

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for (inputs, outputs, n, tangents) in [(3, 4, 2, 1), (1, 5, 3, 2), (6, 2, 1, 0)] {
            let mut rng = test_rng(7);
            let layer = Linear::<f64>::init(inputs, outputs, &mut rng);
            let mut theta: Vec<f64> = layer.params().concat();
            theta.iter_mut().skip(inputs * outputs).for_each(|b| *b = 0.3);
            let x = normal_mat(n * (1 + tangents), inputs, &mut rng);
            let forward = |x: &Mat<f64>, theta: &[f64]| {
                let mut y = Mat::default();
                from_flat(theta, inputs, outputs).forward(x, n, &mut y, &mut ());
                y
            };
            let reverse = |x: &Mat<f64>, theta: &[f64], g: &Mat<f64>| {
                let layer = from_flat(theta, inputs, outputs);
                let mut grad = Linear::zeros(inputs, outputs);
                let mut g_x = Mat::default();
                layer.reverse(x, n, &(), g, Some(&mut g_x), &mut grad);
                (g_x, grad.params().concat())
            };
            check_stacked_map(forward, reverse, &x, n, &theta, 11);
        }
    }
}
