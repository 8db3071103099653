//! A trained [`ScoreModel<f32>`] as a sampler source: its scores for ULA and annealed ULA, and, with a
//! second-order head, its curvature for Ozaki (the head decides the structure: full gives dense blocks,
//! diagonal and low-rank + diagonal are read from the raw outputs, never forming `D x D`). A model
//! trained by denoising at noise level `sigma` learns the score of `q_sigma`, so samplers driven by it
//! target `q_sigma`. Batched forward passes in f32, results widened to f64.

use super::curvature::{CurvatureBatch, CurvatureLayout};
use super::source::{CurvatureSource, ScoreSource};
use crate::linalg::{Mat, Real};
use crate::models::{ScoreModel, SecondOrderHead, SecondOrderNet};
use rayon::prelude::*;

/// Rows per forward pass. Fixed, so that results do not depend on the number of threads (each chunk is
/// one deterministic GEMM sequence); large enough that the GEMMs stay efficient.
const ROWS_PER_FORWARD: usize = 256;

/// Runs `f` on row chunks of `x` (cast to `F`) in parallel and writes its f64 results, `width` numbers
/// per row, into `out`.
pub(crate) fn forward_chunks<F: Real>(
    x: &Mat<f64>,
    width: usize,
    out: &mut [f64],
    f: impl Fn(&Mat<F>, &mut [f64]) + Sync,
) {
    let (n, d) = (x.rows(), x.cols());
    assert_eq!(out.len(), n * width, "model forward: output has the wrong length");
    if n == 0 || width == 0 {
        return;
    }
    out.par_chunks_mut(ROWS_PER_FORWARD * width).enumerate().for_each(|(c, o)| {
        let start = c * ROWS_PER_FORWARD;
        let rows = o.len() / width;
        let chunk = Mat::from_vec(
            rows,
            d,
            x.as_slice()[start * d..(start + rows) * d].iter().map(|&v| F::of(v)).collect(),
        );
        f(&chunk, o);
    });
}

#[track_caller]
fn check_dim(dim: usize, x: &Mat<f64>, out: &Mat<f64>) {
    assert_eq!(x.cols(), dim, "model source: points have {} coordinates, model has D = {dim}", x.cols());
    assert!(
        out.rows() == x.rows() && out.cols() == dim,
        "model source: score output must be {}x{dim}",
        x.rows()
    );
}

fn model_scores(model: &ScoreModel<f32>, x: &Mat<f64>, out: &mut Mat<f64>) {
    let d = model.dim();
    forward_chunks(x, d, out.as_mut_slice(), |chunk, o| {
        for (a, b) in o.iter_mut().zip(model.score(chunk).as_slice()) {
            *a = f64::from(*b);
        }
    });
}

impl ScoreSource for ScoreModel<f32> {
    fn dim(&self) -> usize {
        ScoreModel::dim(self)
    }

    #[track_caller]
    fn scores_into(&self, x: &Mat<f64>, out: &mut Mat<f64>) {
        check_dim(ScoreModel::dim(self), x, out);
        model_scores(self, x, out);
    }
}

impl CurvatureSource for ScoreModel<f32> {
    fn layout(&self) -> Option<CurvatureLayout> {
        Some(CurvatureLayout::of_head(self.s2.as_ref()?.head))
    }

    #[track_caller]
    fn scores_and_curvature_into(&self, x: &Mat<f64>, scores: &mut Mat<f64>, curvature: &mut CurvatureBatch) {
        let d = ScoreModel::dim(self);
        check_dim(d, x, scores);
        let SecondOrderNet { head, net } =
            self.s2.as_ref().expect("model source: no second-order head, so no curvature (layout() is None)");
        let (head, layout) = (*head, CurvatureLayout::of_head(*head));
        assert!(
            curvature.layout() == layout && curvature.dim() == d,
            "model source: curvature batch must have layout {layout:?} and D = {d}"
        );
        model_scores(self, x, scores);
        let width = curvature.block_len();
        let blocks = curvature.resize(x.rows());
        forward_chunks(x, width, blocks, |chunk, o| {
            let raw = net.forward(chunk);
            match head {
                SecondOrderHead::Full => {
                    let mut dense = vec![0.0f32; d * d];
                    for (row, block) in raw.row_iter().zip(o.chunks_exact_mut(width)) {
                        head.dense_into(row, d, &mut dense);
                        block.iter_mut().zip(&dense).for_each(|(a, b)| *a = f64::from(*b));
                    }
                }
                // The raw layout (U then d, or d) is the curvature layout.
                SecondOrderHead::Diagonal | SecondOrderHead::LowRank { .. } => {
                    o.iter_mut().zip(raw.as_slice()).for_each(|(a, b)| *a = f64::from(*b));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelShape;
    use crate::nn::Activation;
    use crate::samplers::{Ozaki, OzakiSettings, SamplerError, Ula};
    use crate::testing::{normal_mat, test_rng};

    fn model(dim: usize, head: Option<SecondOrderHead>) -> ScoreModel<f32> {
        let shape = ModelShape { dim, width: 8, depth: 1, activation: Activation::Softplus, head };
        ScoreModel::init(&shape, &mut test_rng(1))
    }

    #[test]
    fn model_sources_match_the_model_and_give_the_heads_structure() {
        let D = 3;
        // 300 rows: two forward chunks.
        let x = normal_mat(300, D, &mut test_rng(2));
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }] {
            let m = model(D, Some(head));
            let src = m.clone();
            let mut s = Mat::zeros(300, D);
            let mut c = CurvatureBatch::new(src.layout().unwrap(), D);
            src.scores_and_curvature_into(&x, &mut s, &mut c);
            let want_s = m.score(&x.cast::<f32>()).cast::<f64>();
            assert_eq!(s, want_s);
            let want_h = m.hessian_dense(&x.cast::<f32>()).unwrap();
            let mut dense = vec![0.0; D * D];
            for i in 0..300 {
                c.chain(i).dense_into(&mut dense);
                for (a, b) in dense.iter().zip(&want_h[i * D * D..(i + 1) * D * D]) {
                    // f32 products summed in f64 vs in f32: a few f32 ulps.
                    assert!((a - f64::from(*b)).abs() <= 8.0 * f64::from(f32::EPSILON) * (1.0 + a.abs()));
                }
            }
        }
    }

    /// Zeroes the last layer's weights of `net` and sets its bias to `bias`: the output is `bias` at
    /// every point.
    fn constant_output(net: &mut crate::nn::Mlp<f32>, bias: &[f32]) {
        let (weight, last_bias) = net.layer_mut(net.depth() - 1);
        weight.iter_mut().for_each(|w| *w = 0.0);
        last_bias.copy_from_slice(bias);
    }

    #[test]
    fn curvature_is_the_documented_matrix_of_the_raw_outputs() {
        // With constant network outputs, every point's curvature must be the head's formula applied to
        // the raw numbers, written out here entry by entry: the upper triangle read row-major (full),
        // diag(d) (diagonal), and U U^T + diag(d) with U (D x r) row-major before d (low rank).
        let (D, rank) = (3, 2);
        let x = normal_mat(5, D, &mut test_rng(3));
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank }] {
            let mut m = model(D, Some(head));
            let b = [0.5f32, -1.25, 2.0];
            constant_output(&mut m.s1, &b);
            let raw: Vec<f32> = (0..head.outputs(D)).map(|k| 0.25 * k as f32 - 1.0).collect();
            constant_output(&mut m.s2.as_mut().unwrap().net, &raw);
            let want = |i: usize, j: usize| -> f64 {
                let r = |k: usize| f64::from(raw[k]);
                match head {
                    SecondOrderHead::Full => {
                        let (lo, hi) = (i.min(j), i.max(j));
                        let triangle = (0..D).flat_map(|a| (a..D).map(move |b| (a, b)));
                        r(triangle.into_iter().position(|p| p == (lo, hi)).unwrap())
                    }
                    SecondOrderHead::Diagonal => {
                        if i == j {
                            r(i)
                        } else {
                            0.0
                        }
                    }
                    SecondOrderHead::LowRank { rank } => {
                        (0..rank).map(|k| r(i * rank + k) * r(j * rank + k)).sum::<f64>()
                            + if i == j { r(D * rank + i) } else { 0.0 }
                    }
                }
            };
            let src = m;
            let (mut s, mut c) = (Mat::zeros(5, D), CurvatureBatch::new(src.layout().unwrap(), D));
            src.scores_and_curvature_into(&x, &mut s, &mut c);
            let mut dense = vec![0.0; D * D];
            for p in 0..5 {
                assert_eq!(s.row(p), &[0.5, -1.25, 2.0]);
                c.chain(p).dense_into(&mut dense);
                for (k, got) in dense.iter().enumerate() {
                    let w = want(k / D, k % D);
                    assert!(
                        (got - w).abs() <= 1e-12,
                        "{head}: entry ({}, {}) = {got}, expected {w}",
                        k / D,
                        k % D
                    );
                }
            }
        }
    }

    #[test]
    fn a_model_without_a_head_drives_ula_but_not_ozaki() {
        let m = model(2, None);
        assert_eq!((ScoreSource::dim(&m), m.layout()), (2, None));
        assert!(Ula::new(0.01, &m).is_ok());
        let ozaki = Ozaki::new(OzakiSettings::default(), &m);
        assert!(matches!(ozaki, Err(SamplerError::NoSecondOrderHead)));
    }
}
