//! The affine layer `a = h W + b`: its math on weight and bias slices ([`Dense`], shared with the
//! network graph's dense op) and the owning layer [`Linear`].

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

    /// The sizes of the map.
    pub fn dense(&self) -> Dense {
        Dense { inputs: self.inputs(), outputs: self.outputs() }
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

    fn forward(&self, x: &Mat<F>, n: usize, y: &mut Mat<F>, _cache: &mut ()) {
        self.dense().forward(self.weight.as_slice(), &self.bias, x, n, y);
    }

    fn reverse(
        &self,
        x: &Mat<F>,
        n: usize,
        _cache: &(),
        g_y: &Mat<F>,
        g_x: Option<&mut Mat<F>>,
        grad: &mut Linear<F>,
    ) {
        let dense = self.dense();
        dense.parameter_gradient(x, n, g_y, grad.weight.as_mut_slice(), &mut grad.bias);
        if let Some(g_x) = g_x {
            g_x.resize(g_y.rows(), self.inputs());
            dense.input_cotangent(self.weight.as_slice(), g_y, g_x, true);
        }
    }
}

/// The sizes of an affine map `y = x W + b` whose weight (`inputs x outputs`, row-major) and bias are
/// slices held elsewhere: the math of [`Linear`] and of the network graph's dense op.
///
/// On a stacked batch (`n` primal rows, then tangent or jet rows) one GEMM maps every row, `[y; y_dot] =
/// [x; x_dot] W`, and the bias touches the primal rows only. Reverse: `dW += [x; x_dot]^T [g; g_dot]`,
/// `db += sum_{primal rows} g`, `[g_x; g_x_dot] = [g; g_dot] W^T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    /// Width of an input row.
    pub inputs: usize,
    /// Width of an output row.
    pub outputs: usize,
}

impl Dense {
    /// Number of weights, `inputs outputs`.
    pub fn weight_len(&self) -> usize {
        self.inputs * self.outputs
    }

    /// Number of parameters (weights, then biases).
    pub fn param_len(&self) -> usize {
        self.weight_len() + self.outputs
    }

    /// `y = x W` on every stacked row, `+ b` on the `n` primal rows.
    pub fn forward<F: Real>(&self, weight: &[F], bias: &[F], x: &Mat<F>, n: usize, y: &mut Mat<F>) {
        self.product(weight, x, y, true);
        for row in y.as_mut_slice()[..n * self.outputs].chunks_exact_mut(self.outputs) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += *b);
        }
    }

    /// `y = x W` on every row (no bias: the map of tangent rows); `y += x W` unless `fresh`.
    pub fn product<F: Real>(&self, weight: &[F], x: &Mat<F>, y: &mut Mat<F>, fresh: bool) {
        let rows = x.rows();
        if fresh {
            y.resize(rows, self.outputs);
        }
        let beta = if fresh { F::zero() } else { F::one() };
        let (w, out) = ((weight, self.outputs, 1), (y.as_mut_slice(), self.outputs, 1));
        F::gemm(rows, self.inputs, self.outputs, F::one(), (x.as_slice(), self.inputs, 1), w, beta, out);
    }

    /// `dW += x^T g_y` over every stacked row, `db += sum_{primal rows} g_y`.
    pub fn parameter_gradient<F: Real>(
        &self,
        x: &Mat<F>,
        n: usize,
        g_y: &Mat<F>,
        g_weight: &mut [F],
        g_bias: &mut [F],
    ) {
        self.weight_gradient(x, g_y, g_weight);
        for row in g_y.as_slice()[..n * self.outputs].chunks_exact(self.outputs) {
            g_bias.iter_mut().zip(row).for_each(|(gb, g)| *gb += *g);
        }
    }

    /// `dW += a^T b` for `a` with `inputs` columns and `b` with `outputs` columns (equal rows).
    pub fn weight_gradient<F: Real>(&self, a: &Mat<F>, b: &Mat<F>, g_weight: &mut [F]) {
        let (ins, outs, rows) = (self.inputs, self.outputs, a.rows());
        let (a, b) = ((a.as_slice(), 1, ins), (b.as_slice(), outs, 1));
        F::gemm(ins, rows, outs, F::one(), a, b, F::one(), (g_weight, outs, 1));
    }

    /// `g_x = g_y W^T` (every row) when `fresh`, else `g_x += g_y W^T`; `g_x` is already sized.
    pub fn input_cotangent<F: Real>(&self, weight: &[F], g_y: &Mat<F>, g_x: &mut Mat<F>, fresh: bool) {
        let beta = if fresh { F::zero() } else { F::one() };
        let (w_t, g) = ((weight, 1, self.outputs), (g_y.as_slice(), self.outputs, 1));
        let out = (g_x.as_mut_slice(), self.inputs, 1);
        F::gemm(g_y.rows(), self.outputs, self.inputs, F::one(), g, w_t, beta, out);
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
