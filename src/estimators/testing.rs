//! Test helpers of the estimators: Gaussian samples with their exact scores, and the relative error.

use crate::linalg::Mat;
use crate::targets::{random_gauss, Score};
use rand::SeedableRng;

/// `m` samples of a random `dim`-dimensional Gaussian (condition number 4) and their exact scores.
pub fn gaussian_samples_and_scores(m: usize, dim: usize, seed: u64) -> (Mat<f64>, Mat<f64>) {
    let target = random_gauss(dim, 4.0, 3);
    let x = target.sample(m, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let s = target.scores(&x);
    (x, s)
}

/// [`crate::evaluation::relative_error`] of two matrices.
pub fn relative_error(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    crate::evaluation::relative_error(a.as_slice(), b.as_slice())
}
