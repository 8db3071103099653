//! What the autodiff route needs of a model: its first-order score and exact forward-mode directional
//! derivatives (JVPs) of it, several tangents per point in one pass.

use crate::linalg::{Mat, Real};
use crate::models::ImageScoreModel;
use crate::nn::graph::GraphTrace;
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

impl<F: Real> ScoreJvp for ImageScoreModel<F> {
    fn dim(&self) -> usize {
        ImageScoreModel::dim(self)
    }

    /// One stacked pass of the U-Net over `[x; tangents]` at the model's `sigma` (the graph pushes tangent
    /// rows as JVPs, docs/math.md §8); `s1` and `J t` are the first `C` output maps of each row.
    fn score_and_jvps(&self, x: &Mat<f64>, tangents: &Mat<f64>) -> (Mat<f64>, Mat<f64>) {
        let (n, d) = (x.rows(), ImageScoreModel::dim(self));
        if n == 0 {
            return (Mat::zeros(0, d), Mat::zeros(tangents.rows(), d));
        }
        let mut trace = GraphTrace::default();
        let log_sigma = vec![F::of(self.sigma.ln()); n];
        let out = self.net.forward(&Mat::vstack(&[x, tangents]).cast(), n, &log_sigma, &mut trace);
        let layout = self.score_layout();
        let first_maps = |start: usize, rows: usize| -> Mat<f64> {
            let mut s1 = Mat::<F>::zeros(rows, d);
            (0..rows).for_each(|i| layout.read_s1(out.row(start + i), s1.row_mut(i)));
            s1.cast()
        };
        (first_maps(0, n), first_maps(n, out.rows() - n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimators::score_jacobian;
    use crate::nn::Activation;
    use crate::testing::{assert_close, normal_mat, test_rng, tiny_unet};

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

    #[test]
    fn image_model_jvps_are_central_differences_of_its_score() {
        use crate::models::ImageScoreModel;
        use crate::nn::graph::{SecondOrderMaps, Shape, UNetConfig};
        let mut rng = test_rng(7);
        // A low-rank head adds output maps after the C = 1 score map: only the first map is s1.
        let unet = UNetConfig { second_order: SecondOrderMaps::LowRank(1), ..tiny_unet(Shape::new(8, 8, 1)) };
        let model = ImageScoreModel::<f64>::init(&unet, 0.5, &mut rng).unwrap();
        let (x, t) = (normal_mat(2, 64, &mut rng), normal_mat(4, 64, &mut rng));
        let (s1, jt) = model.score_and_jvps(&x, &t);
        assert_close(s1.as_slice(), model.score(&x).as_slice(), 1e-13, "s1");
        let h = 1e-5;
        for row in 0..4 {
            let i = row % 2;
            let shifted =
                |sign: f64| model.score(&Mat::from_fn(1, 64, |_, j| x.at(i, j) + sign * h * t.at(row, j)));
            let (plus, minus) = (shifted(1.0), shifted(-1.0));
            let want: Vec<f64> = (0..64).map(|j| (plus.at(0, j) - minus.at(0, j)) / (2.0 * h)).collect();
            // Central differences: truncation O(h^2) and rounding O(eps / h), both near 1e-10 here.
            assert_close(jt.row(row), &want, 1e-6, "J t");
        }
    }
}
