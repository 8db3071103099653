//! A U-Net image score model as a [`NoiseConditionalScore`]: `s1` from
//! [`ImageScoreModel::score_at`], the curvature from [`ImageScoreModel::second_order_at`]
//! ($S_2 = U U^\top + \operatorname{diag}(d)$, the rows of `U` then `d`: the
//! [`CurvatureLayout::LowRank`] block as it is, or [`CurvatureLayout::Diagonal`] for a diagonal head).

use super::curvature::{CurvatureBatch, CurvatureLayout};
use super::model_source::forward_chunks;
use super::noise_conditional_score::NoiseConditionalScore;
use crate::linalg::{Mat, Real};
use crate::models::ImageScoreModel;

impl<F: Real> NoiseConditionalScore for ImageScoreModel<F> {
    fn dim(&self) -> usize {
        ImageScoreModel::dim(self)
    }

    fn curvature_layout(&self) -> Option<CurvatureLayout> {
        self.second_order_head().map(CurvatureLayout::of_head)
    }

    fn scores_into(&self, x: &Mat<f64>, sigma: f64, out: &mut Mat<f64>) {
        let dim = NoiseConditionalScore::dim(self);
        assert!(
            x.cols() == dim && out.rows() == x.rows() && out.cols() == dim,
            "image score source: points and scores must be N x {dim}"
        );
        forward_chunks(x, dim, out.as_mut_slice(), |chunk: &Mat<F>, o| {
            let s1 = self.score_at(chunk, sigma).cast::<f64>();
            o.copy_from_slice(s1.as_slice());
        });
    }

    fn scores_and_curvature_into(
        &self,
        x: &Mat<f64>,
        sigma: f64,
        scores: &mut Mat<f64>,
        curvature: &mut CurvatureBatch,
    ) {
        self.scores_into(x, sigma, scores);
        let layout = self.curvature_layout().expect("called only for a model with a second-order head");
        let dim = NoiseConditionalScore::dim(self);
        assert!(
            curvature.layout() == layout && curvature.dim() == dim,
            "image score source: curvature batch must have layout {layout:?} and D = {dim}"
        );
        let width = curvature.block_len();
        let blocks = curvature.resize(x.rows());
        forward_chunks(x, width, blocks, |chunk: &Mat<F>, o| {
            let (u, d) = self.second_order_at(chunk, sigma).expect("the model has a head");
            let (u, d) = (u.cast::<f64>(), d.cast::<f64>());
            // Row by row (`U` has no columns for a diagonal head): `U` row-major, then `d`.
            for (i, block) in o.chunks_exact_mut(width).enumerate() {
                let (block_u, block_d) = block.split_at_mut(u.cols());
                block_u.copy_from_slice(&u.as_slice()[i * u.cols()..(i + 1) * u.cols()]);
                block_d.copy_from_slice(d.row(i));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{HeadLayout, NoiseSchedule, SecondOrderHead};
    use crate::nn::graph::{Shape, UNetConfig};
    use crate::testing::{normal_mat, test_rng, tiny_unet};

    fn unet() -> UNetConfig {
        tiny_unet(Shape::new(4, 4, 2))
    }

    #[test]
    fn scores_and_curvature_are_the_models_own_at_the_level_asked() {
        let schedule = NoiseSchedule { hi: 1.0, lo: 0.1, levels: 4 };
        let x = normal_mat(3, 32, &mut test_rng(61));
        // sigma = 0.3 is not the model's own level (1.0): the source must condition on the level asked.
        let sigma = 0.3;
        for (head, layout, want_layout) in [
            (
                SecondOrderHead::LowRank { rank: 2 },
                HeadLayout::Separate,
                CurvatureLayout::LowRank { rank: 2 },
            ),
            (SecondOrderHead::Diagonal, HeadLayout::Shared, CurvatureLayout::Diagonal),
        ] {
            let model = ImageScoreModel::<f32>::init_with_head(&unet(), 1.0, head, layout, &mut test_rng(60))
                .unwrap()
                .noise_conditional(schedule);
            assert_eq!(model.curvature_layout(), Some(want_layout));
            let mut scores = Mat::zeros(3, 32);
            let mut curvature = CurvatureBatch::new(want_layout, 32);
            model.scores_and_curvature_into(&x, sigma, &mut scores, &mut curvature);
            let want_s1 = model.score_at(&x.cast(), sigma).cast::<f64>();
            assert_eq!(scores.as_slice(), want_s1.as_slice());
            let mut only = Mat::zeros(3, 32);
            model.scores_into(&x, sigma, &mut only);
            assert_eq!(only.as_slice(), want_s1.as_slice());
            let (u, d) = model.second_order_at(&x.cast(), sigma).unwrap();
            let (u, d) = (u.cast::<f64>(), d.cast::<f64>());
            let rank = head.rank();
            for i in 0..3 {
                let block = &curvature.as_slice()[i * 32 * (rank + 1)..(i + 1) * 32 * (rank + 1)];
                assert_eq!(&block[..32 * rank], &u.as_slice()[i * 32 * rank..(i + 1) * 32 * rank]);
                assert_eq!(&block[32 * rank..], d.row(i), "{head:?}: d of image {i}");
            }
        }
        let plain = ImageScoreModel::<f32>::init(&unet(), 1.0, &mut test_rng(62)).unwrap();
        assert_eq!(plain.curvature_layout(), None);
    }
}
