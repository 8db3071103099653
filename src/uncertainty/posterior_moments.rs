//! Posterior moments of a noisy point by Tweedie's formula at first and second order (docs/math.md §2):
//! `E[x | x~] = x~ + sigma^2 s1(x~)` and `Cov[x | x~] = sigma^4 S2(x~) + sigma^2 I`, from one forward
//! pass of the score network and of the second-order head.

use super::{PosteriorCovariance, UncertaintyError};
use crate::linalg::{Mat, Real};
use crate::models::{ImageScoreModel, ScoreModel, SecondOrderHead};

/// The posterior mean and covariance of the clean point given one noisy point.
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorMoments {
    /// `x~ + sigma^2 s1(x~)`.
    pub mean: Vec<f64>,
    /// `sigma^4 S2(x~) + sigma^2 I` in the head's structure.
    pub covariance: PosteriorCovariance,
}

impl PosteriorMoments {
    /// The moments at `x_tilde` from `s1(x~)` and the raw outputs of a second-order head there (any
    /// model that gives `s1` and a head's outputs can call this).
    #[track_caller]
    pub fn from_scores(x_tilde: &[f64], sigma: f64, s1: &[f64], head: SecondOrderHead, raw: &[f64]) -> Self {
        assert_eq!(x_tilde.len(), s1.len(), "from_scores: x~ and s1 lengths differ");
        let s2 = sigma * sigma;
        Self {
            mean: x_tilde.iter().zip(s1).map(|(x, s)| x + s2 * s).collect(),
            covariance: PosteriorCovariance::from_head(head, raw, x_tilde.len(), sigma),
        }
    }
}

/// The posterior means `x~ + sigma^2 s1(x~)` of every row of `x_tilde` (`N x D`).
pub fn posterior_means(s1: &Mat<f64>, x_tilde: &Mat<f64>, sigma: f64) -> Mat<f64> {
    let s2 = sigma * sigma;
    Mat::from_fn(x_tilde.rows(), x_tilde.cols(), |i, j| x_tilde.at(i, j) + s2 * s1.at(i, j))
}

impl PosteriorMoments {
    /// The posterior moments of a score model with a second-order head at every row of `x_tilde`: one pass
    /// of `s1` and one of the head's network over all rows.
    ///
    /// # Errors
    /// [`UncertaintyError::NoSecondOrderHead`] for a model without a head;
    /// [`UncertaintyError::SizeMismatch`] if the rows do not have the model's dimension.
    pub fn at_rows<F: Real>(
        model: &ScoreModel<F>,
        x_tilde: &Mat<f64>,
        sigma: f64,
    ) -> Result<Vec<PosteriorMoments>, UncertaintyError> {
        let s2 = model.s2.as_ref().ok_or(UncertaintyError::NoSecondOrderHead)?;
        let dim = model.dim();
        if x_tilde.cols() != dim {
            return Err(UncertaintyError::SizeMismatch {
                what: "noisy point",
                found: x_tilde.cols(),
                expected: dim,
            });
        }
        let x: Mat<F> = x_tilde.cast();
        let (s1, raw): (Mat<f64>, Mat<f64>) = (model.score(&x).cast(), s2.net.forward(&x).cast());
        if !s1.is_finite() || !raw.is_finite() {
            return Err(UncertaintyError::NonFinite { what: "model output" });
        }
        Ok((0..x_tilde.rows())
            .map(|i| PosteriorMoments::from_scores(x_tilde.row(i), sigma, s1.row(i), s2.head, raw.row(i)))
            .collect())
    }
}

/// Images per network pass of [`image_posterior_moments`] (bounds the memory of the U-Net's trace: the
/// 10000 MNIST test images in one pass took over 20 GB).
const IMAGES_PER_PASS: usize = 256;

/// The posterior moments of an image score model with a second-order head at every row of `x_tilde`
/// (one image per row), the network conditioned on `sigma`: one pass of `s1` and one of the head.
///
/// # Errors
/// As [`PosteriorMoments::at_rows`].
pub(crate) fn image_posterior_moments<F: Real>(
    model: &ImageScoreModel<F>,
    x_tilde: &Mat<f64>,
    sigma: f64,
) -> Result<Vec<PosteriorMoments>, UncertaintyError> {
    let head = model.s2.as_ref().ok_or(UncertaintyError::NoSecondOrderHead)?.head;
    if x_tilde.cols() != model.dim() {
        return Err(UncertaintyError::SizeMismatch {
            what: "noisy image",
            found: x_tilde.cols(),
            expected: model.dim(),
        });
    }
    // A chunk of images at a time: the network's trace grows with the rows it is given.
    let mut moments = Vec::with_capacity(x_tilde.rows());
    for start in (0..x_tilde.rows()).step_by(IMAGES_PER_PASS) {
        let chunk = x_tilde.slice_rows(start, (start + IMAGES_PER_PASS).min(x_tilde.rows()));
        let x: Mat<F> = chunk.cast();
        let s1: Mat<f64> = model.score_at(&x, sigma).cast();
        let (u, d) = model.second_order_at(&x, sigma).ok_or(UncertaintyError::NoSecondOrderHead)?;
        let (u, d): (Mat<f64>, Mat<f64>) = (u.cast(), d.cast());
        if !s1.is_finite() || !u.is_finite() || !d.is_finite() {
            return Err(UncertaintyError::NonFinite { what: "model output" });
        }
        // The head's raw outputs, as for a point-cloud head: the low-rank factor (D x R, row-major), then d.
        moments.extend((0..chunk.rows()).map(|i| {
            let raw: Vec<f64> = u.row(i).iter().chain(d.row(i)).copied().collect();
            PosteriorMoments::from_scores(chunk.row(i), sigma, s1.row(i), head, &raw)
        }));
    }
    Ok(moments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{parse_target, Score, ScoreHessian};
    use crate::testing::{normal_mat, test_rng};
    use nalgebra::{DMatrix, DVector, SymmetricEigen};

    /// The upper triangle of a symmetric `D x D` matrix, row-major: the raw outputs of a full head.
    fn upper_triangle(m: &[f64], dim: usize) -> Vec<f64> {
        (0..dim).flat_map(|i| (i..dim).map(move |j| m[i * dim + j])).collect()
    }

    #[test]
    fn exact_mixture_scores_give_the_exact_posterior_moments() {
        // s1, s2 of q_sigma of a mixture, read through a full head, against the mean and covariance of
        // the exact posterior mixture; the rounding of both sides is a few eps times the entries.
        let mut rng = test_rng(2);
        for (spec, sigma) in
            [("gmm:dim=3,components=4,seed=1", 0.4), ("gmm2d", 0.3), ("gmm:dim=8,components=4,seed=901", 0.3)]
        {
            let p = parse_target(spec).unwrap();
            let (q, dim) = (p.noisy(sigma).unwrap(), p.dim());
            for xt in q.sample(5, &mut rng).row_iter() {
                let (mut s1, mut s2) = (vec![0.0; dim], vec![0.0; dim * dim]);
                q.score_into(xt, &mut s1);
                q.hessian_into(xt, &mut s2);
                let m = PosteriorMoments::from_scores(
                    xt,
                    sigma,
                    &s1,
                    SecondOrderHead::Full,
                    &upper_triangle(&s2, dim),
                );
                let exact = p.posterior(xt, sigma).unwrap();
                let scale = 1.0 + xt.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(
                    m.mean.iter().zip(exact.mean()).all(|(a, b)| (a - b).abs() < 1e-10 * scale),
                    "{spec} mean"
                );
                let c = exact.covariance();
                assert!(
                    m.covariance
                        .dense()
                        .as_slice()
                        .iter()
                        .zip(c.as_slice())
                        .all(|(a, b)| (a - b).abs() < 1e-10),
                    "{spec} covariance"
                );
            }
        }
    }

    #[test]
    fn a_low_rank_head_holding_the_exact_gaussian_score_gives_the_closed_form_posterior() {
        // x ~ N(mu, Sigma), Sigma = c I + B B^T (B: D x r). With C = Sigma + sigma^2 I and a = 1/(c + sigma^2),
        // s2 = -C^{-1} = -a I + U U^T, U = a B (I + a B^T B)^{-1/2} (Woodbury): a low-rank head holds it
        // exactly. The posterior is N(x~ - sigma^2 C^{-1} (x~ - mu), sigma^2 Sigma C^{-1}) (closed form).
        let mut rng = test_rng(4);
        let (dim, rank, c, sigma) = (6, 2, 0.2, 0.5);
        let b = DMatrix::from_row_slice(dim, rank, normal_mat(dim, rank, &mut rng).as_slice());
        let mu = DVector::from_column_slice(normal_mat(1, dim, &mut rng).as_slice());
        let sigma_x = DMatrix::identity(dim, dim) * c + &b * b.transpose();
        let big_c = &sigma_x + DMatrix::identity(dim, dim) * (sigma * sigma);
        let c_inv = big_c.clone().try_inverse().unwrap();
        let a = 1.0 / (c + sigma * sigma);
        let inner = SymmetricEigen::new(DMatrix::identity(rank, rank) + b.transpose() * &b * a);
        let inv_sqrt = &inner.eigenvectors
            * DMatrix::from_diagonal(&inner.eigenvalues.map(|l| 1.0 / l.sqrt()))
            * inner.eigenvectors.transpose();
        let u = &b * inv_sqrt * a;
        let raw: Vec<f64> = (0..dim)
            .flat_map(|i| (0..rank).map(|k| u[(i, k)]).collect::<Vec<_>>())
            .chain(vec![-a; dim])
            .collect();
        let post_cov = &sigma_x * &c_inv * (sigma * sigma);
        for _ in 0..3 {
            let xt = DVector::from_column_slice(normal_mat(1, dim, &mut rng).as_slice());
            let s1 = -(&c_inv * (&xt - &mu));
            let m = PosteriorMoments::from_scores(
                xt.as_slice(),
                sigma,
                s1.as_slice(),
                SecondOrderHead::LowRank { rank },
                &raw,
            );
            let want_mean = &xt - &c_inv * (&xt - &mu) * (sigma * sigma);
            assert!(m.mean.iter().zip(want_mean.iter()).all(|(a, b)| (a - b).abs() < 1e-12), "mean");
            let got = m.covariance.dense();
            for i in 0..dim {
                for j in 0..dim {
                    assert!((got.at(i, j) - post_cov[(i, j)]).abs() < 1e-12, "covariance ({i}, {j})");
                }
            }
            // The factored principal components are the closed form's top eigenpairs (isotropic e).
            let pcs = m.covariance.principal_components(rank).unwrap();
            let dense = PosteriorCovariance::Full(got).principal_components(rank).unwrap();
            for k in 0..rank {
                assert!((pcs.variances[k] - dense.variances[k]).abs() < 1e-12, "lambda_{k}");
            }
        }
    }

    #[test]
    fn a_model_without_a_head_or_of_another_size_is_an_error() {
        use crate::models::ModelShape;
        use crate::nn::Activation;
        let mut rng = test_rng(1);
        let shape = ModelShape { dim: 3, width: 4, depth: 1, activation: Activation::Tanh, head: None };
        let model = ScoreModel::<f64>::init(&shape, &mut rng);
        let x = normal_mat(2, 3, &mut rng);
        assert_eq!(PosteriorMoments::at_rows(&model, &x, 0.5), Err(UncertaintyError::NoSecondOrderHead));
        let shape = ModelShape { head: Some(SecondOrderHead::Diagonal), ..shape };
        let model = ScoreModel::<f64>::init(&shape, &mut rng);
        let m = PosteriorMoments::at_rows(&model, &x, 0.5).unwrap();
        let s1 = model.score(&x);
        assert!((m[1].mean[2] - (x.at(1, 2) + 0.25 * s1.at(1, 2))).abs() < 1e-15);
        assert!(matches!(
            PosteriorMoments::at_rows(&model, &normal_mat(2, 4, &mut rng), 0.5),
            Err(UncertaintyError::SizeMismatch { found: 4, expected: 3, .. })
        ));
        // A diverged model (NaN weights) is an error, not a hang in an eigensolver later.
        let mut diverged = model.clone();
        diverged.set_params(&vec![f64::NAN; model.num_params()]);
        assert_eq!(
            PosteriorMoments::at_rows(&diverged, &x, 0.5),
            Err(UncertaintyError::NonFinite { what: "model output" })
        );
        let nan = PosteriorCovariance::Full(Mat::from_vec(2, 2, vec![f64::NAN, 0.0, 0.0, 1.0]));
        assert_eq!(nan.principal_components(1), Err(UncertaintyError::NonFinite { what: "covariance" }));
        assert_eq!(nan.clone().clip_to_psd(0.1), 0.0);
    }

    #[test]
    fn image_moments_over_several_network_passes_equal_those_of_each_image_alone() {
        // More images than one pass takes: every image's moments as if it were given alone.
        use crate::models::{HeadLayout, ImageScoreModel};
        use crate::nn::graph::Shape;
        use crate::testing::tiny_unet;
        let head = SecondOrderHead::LowRank { rank: 2 };
        let model = ImageScoreModel::<f64>::init_with_head(
            &tiny_unet(Shape::new(4, 4, 1)),
            0.5,
            head,
            HeadLayout::Shared,
            &mut test_rng(5),
        )
        .unwrap();
        let n = IMAGES_PER_PASS + 3;
        let x = normal_mat(n, 16, &mut test_rng(6));
        let all = image_posterior_moments(&model, &x, 0.5).unwrap();
        assert_eq!(all.len(), n);
        for i in [0, IMAGES_PER_PASS - 1, IMAGES_PER_PASS, n - 1] {
            let alone = image_posterior_moments(&model, &x.slice_rows(i, i + 1), 0.5).unwrap();
            let close =
                |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + b.abs()));
            assert!(close(&all[i].mean, &alone[0].mean), "mean of image {i}");
            let (a, b) = (all[i].covariance.dense(), alone[0].covariance.dense());
            assert!(close(a.as_slice(), b.as_slice()), "covariance of image {i}");
        }
    }
}
