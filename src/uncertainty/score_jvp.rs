//! What the autodiff route needs of a model: its first-order score and exact forward-mode directional
//! derivatives (JVPs) of it, several tangents per point in one pass.

use crate::linalg::{Mat, Real};
use crate::nn::Mlp;

/// A first-order score `s1: R^D -> R^D` with exact JVPs `J(x) t`, `J = d s1 / dx`.
pub trait ScoreJvp {
    /// The dimension `D`.
    fn dim(&self) -> usize;

    /// `s1` at the `n` rows of `x` and the JVPs along `tangents` (`t n x D`, tangent `j` of point `i`
    /// at row `j n + i`): returns `(s1, J t)`, `n x D` and `t n x D` in the same layout.
    fn score_and_jvps(&self, x: &Mat<f64>, tangents: &Mat<f64>) -> (Mat<f64>, Mat<f64>);
}

impl<F: Real> ScoreJvp for Mlp<F> {
    fn dim(&self) -> usize {
        self.inputs()
    }

    /// One stacked forward pass of `[x; tangents]` (the network pushes the tangent rows as JVPs).
    fn score_and_jvps(&self, x: &Mat<f64>, tangents: &Mat<f64>) -> (Mat<f64>, Mat<f64>) {
        let n = x.rows();
        let y: Mat<f64> = self.forward_stacked(&Mat::vstack(&[x, tangents]).cast(), n.max(1)).cast();
        (y.slice_rows(0, n), y.slice_rows(n, y.rows()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimators::score_jacobian;
    use crate::nn::Activation;
    use crate::testing::{assert_close, normal_mat, test_rng};

    #[test]
    fn network_jvps_are_the_jacobian_times_the_tangents() {
        let mut rng = test_rng(6);
        let mlp = Mlp::<f64>::init(&[3, 8, 3], Activation::Tanh, &mut rng);
        let (x, t) = (normal_mat(2, 3, &mut rng), normal_mat(4, 3, &mut rng));
        let (s1, jt) = mlp.score_and_jvps(&x, &t);
        assert_close(s1.as_slice(), mlp.forward(&x).as_slice(), 1e-14, "s1");
        let jac = score_jacobian(&mlp, &x, false);
        for row in 0..4 {
            let (i, tangent) = (row % 2, t.row(row));
            let want: Vec<f64> =
                (0..3).map(|r| (0..3).map(|c| jac[i * 9 + r * 3 + c] * tangent[c]).sum()).collect();
            assert_close(jt.row(row), &want, 1e-12, "J t");
        }
    }
}
