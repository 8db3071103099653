//! The dense layer `y = x W + b`: its math on weight and bias slices held elsewhere (the network
//! graph's parameter vector).

use crate::linalg::{Mat, Real};

/// The sizes of an affine map `y = x W + b` whose weight (`inputs x outputs`, row-major) and bias are
/// slices held elsewhere (the network graph's dense op).
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
        self.forward_rows(weight, bias, x, x.rows(), n, y);
    }

    /// [`Dense::forward`] on the `n` primal rows of the stacked `x` alone: `y` is `n x outputs`.
    pub fn forward_primal<F: Real>(&self, weight: &[F], bias: &[F], x: &Mat<F>, n: usize, y: &mut Mat<F>) {
        self.forward_rows(weight, bias, x, n, n, y);
    }

    /// `y = x W + b` on the first `rows` rows of `x`, the bias on the first `n` of them.
    fn forward_rows<F: Real>(
        &self,
        weight: &[F],
        bias: &[F],
        x: &Mat<F>,
        rows: usize,
        n: usize,
        y: &mut Mat<F>,
    ) {
        self.product_rows(weight, &x.as_slice()[..rows * self.inputs], rows, y);
        for row in y.as_mut_slice()[..n * self.outputs].chunks_exact_mut(self.outputs) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += *b);
        }
    }

    /// [`Dense::forward`] on `n` primal rows `x` stacked with the `D = inputs` basis directions `e_j` as
    /// tangents (direction `j` of point `i` at row `n + j n + i`): `y = x W + b`, and `e_j W` is row `j` of
    /// `W`, copied instead of multiplied (the one-hot GEMM would cost `n D` times the row length per row).
    pub fn forward_basis_tangents<F: Real>(&self, weight: &[F], bias: &[F], x: &Mat<F>, y: &mut Mat<F>) {
        let (n, inputs, outputs) = (x.rows(), self.inputs, self.outputs);
        y.resize(n * (inputs + 1), outputs);
        let (primal, tangents) = y.as_mut_slice().split_at_mut(n * outputs);
        F::gemm(
            n,
            inputs,
            outputs,
            F::one(),
            (x.as_slice(), inputs, 1),
            (weight, outputs, 1),
            F::zero(),
            (primal, outputs, 1),
        );
        for row in primal.chunks_exact_mut(outputs) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += *b);
        }
        for (j, block) in tangents.chunks_exact_mut(n * outputs).enumerate() {
            block
                .chunks_exact_mut(outputs)
                .for_each(|row| row.copy_from_slice(&weight[j * outputs..(j + 1) * outputs]));
        }
    }

    /// `y = x W` on every row (no bias: the map of tangent rows).
    pub fn product<F: Real>(&self, weight: &[F], x: &Mat<F>, y: &mut Mat<F>) {
        self.product_rows(weight, x.as_slice(), x.rows(), y);
    }

    /// `y = x W` on the `rows` rows of `x` (row-major, `inputs` wide); `y` is resized to them.
    fn product_rows<F: Real>(&self, weight: &[F], x: &[F], rows: usize, y: &mut Mat<F>) {
        y.resize(rows, self.outputs);
        let (w, out) = ((weight, self.outputs, 1), (y.as_mut_slice(), self.outputs, 1));
        F::gemm(rows, self.inputs, self.outputs, F::one(), (x, self.inputs, 1), w, F::zero(), out);
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
    use crate::testing::{check_stacked_map, normal_mat, one_hot_stack, test_rng};

    #[test]
    fn tangent_and_reverse_match_finite_differences() {
        for (inputs, outputs, n, tangents) in [(3, 4, 2, 1), (1, 5, 3, 2), (6, 2, 1, 0)] {
            let mut rng = test_rng(7);
            let dense = Dense { inputs, outputs };
            let theta: Vec<f64> = normal_mat(1, dense.param_len(), &mut rng).into_vec();
            let x = normal_mat(n * (1 + tangents), inputs, &mut rng);
            let forward = |x: &Mat<f64>, theta: &[f64]| {
                let (w, b) = theta.split_at(dense.weight_len());
                let mut y = Mat::default();
                dense.forward(w, b, x, n, &mut y);
                y
            };
            let reverse = |x: &Mat<f64>, theta: &[f64], g: &Mat<f64>| {
                let mut grad = vec![0.0; theta.len()];
                let (g_w, g_b) = grad.split_at_mut(dense.weight_len());
                dense.parameter_gradient(x, n, g, g_w, g_b);
                let mut g_x = Mat::zeros(g.rows(), inputs);
                dense.input_cotangent(&theta[..dense.weight_len()], g, &mut g_x, true);
                (g_x, grad)
            };
            check_stacked_map(forward, reverse, &x, n, &theta, 11);
        }
    }

    /// The basis-direction pass equals the general pass on the explicit one-hot stacking `[x; e_j ..]`
    /// bit for bit (`e_j W` is exactly row `j` of `W`: every other product is an exact zero), in f32 and
    /// f64, with a non-zero bias so that a bias wrongly added to the tangent rows would show.
    #[test]
    fn basis_tangent_pass_equals_the_one_hot_pass() {
        fn check<F: Real>(inputs: usize, outputs: usize, n: usize) {
            let mut rng = test_rng(31);
            let dense = Dense { inputs, outputs };
            let w = normal_mat(inputs, outputs, &mut rng).cast::<F>();
            let b = vec![F::of(0.25); outputs];
            let x = normal_mat(n, inputs, &mut rng).cast::<F>();
            let one_hot = one_hot_stack(&x);
            let (mut want, mut got) = (Mat::default(), Mat::default());
            dense.forward(w.as_slice(), &b, &one_hot, n, &mut want);
            dense.forward_basis_tangents(w.as_slice(), &b, &x, &mut got);
            let bits =
                |m: &Mat<F>| m.as_slice().iter().map(|v| v.to_f64().unwrap().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{inputs} -> {outputs}, {n} points");
        }
        for (inputs, outputs, n) in [(3, 8, 5), (17, 33, 9), (64, 128, 20)] {
            check::<f64>(inputs, outputs, n);
            check::<f32>(inputs, outputs, n);
        }
    }
}
