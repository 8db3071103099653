//! Class balance of generated images: the label of each sample's nearest training image (Euclidean, in
//! pixel space), and the total-variation distance of those labels' frequencies from uniform.

use super::error::{at_least, MetricError};
use crate::linalg::Mat;
use rayon::prelude::*;
use serde::Serialize;

/// The result of [`class_balance`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassBalance {
    /// $\tfrac12 \sum_k |f_k - 1/K|$, in $[0, 1 - 1/K]$.
    pub tv: f64,
    /// How many samples fell to each class `0..K`.
    pub counts: Vec<usize>,
}

/// The labels of the nearest rows of `train` to the rows of `x`, and their distance from uniform.
///
/// # Definition
/// With $k(x_i) = \text{label}(\arg\min_j \Vert x_i - t_j \Vert)$ and $f_k$ the fraction of samples
/// with $k(x_i) = k$, over the $K$ classes `0..classes`:
/// $$ \mathrm{TV} = \tfrac12 \sum_{k < K} |f_k - 1/K| . $$
/// A sample that covers every class equally scores near 0 (exact draws of `n` images: about
/// $\tfrac12 \sum_k \sqrt{(1/K)(1 - 1/K)/n}$ by sampling noise alone); a sample of a single class scores
/// $1 - 1/K$.
///
/// # Errors
/// [`MetricError::TooFewSamples`] for an empty `x` or `train`.
#[track_caller]
pub(crate) fn class_balance(
    x: &Mat<f64>,
    train: &Mat<f64>,
    labels: &[u8],
    classes: usize,
) -> Result<ClassBalance, MetricError> {
    assert_eq!(x.cols(), train.cols(), "class_balance: samples and training images differ in dimension");
    assert_eq!(train.rows(), labels.len(), "class_balance: one label per training image");
    at_least("sample", 1, x.rows())?;
    at_least("training images", 1, train.rows())?;
    let nearest: Vec<usize> = (0..x.rows())
        .into_par_iter()
        .map(|i| {
            let distance = |t: &[f64]| x.row(i).iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
            let (best, _) = train
                .row_iter()
                .map(distance)
                .enumerate()
                .fold((0, f64::INFINITY), |(bi, bd), (j, d)| if d < bd { (j, d) } else { (bi, bd) });
            usize::from(labels[best])
        })
        .collect();
    let mut counts = vec![0; classes.max(nearest.iter().max().map_or(0, |m| m + 1))];
    nearest.iter().for_each(|&k| counts[k] += 1);
    let (n, uniform) = (x.rows() as f64, 1.0 / counts.len() as f64);
    let tv = 0.5 * counts.iter().map(|&c| (c as f64 / n - uniform).abs()).sum::<f64>();
    Ok(ClassBalance { tv, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_nearest_training_image_and_tv_is_against_uniform() {
        // Training images of 4 classes at the corners of a square; labels 0..3.
        let train = Mat::from_vec(4, 2, vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let labels = [0, 1, 2, 3];
        // One sample near each corner: uniform, TV 0.
        let spread = Mat::from_vec(4, 2, vec![0.1, 0.2, 0.9, 0.1, 0.2, 0.8, 0.7, 0.9]);
        let even = class_balance(&spread, &train, &labels, 4).unwrap();
        assert_eq!((even.counts.clone(), even.tv), (vec![1, 1, 1, 1], 0.0));
        // Three near corner 3, one near corner 1: f = (0, 1/4, 0, 3/4), TV = (1/4 + 0 + 1/4 + 1/2) / 2.
        let skewed = Mat::from_vec(4, 2, vec![0.9, 0.9, 0.8, 0.7, 0.6, 0.9, 0.9, 0.2]);
        let b = class_balance(&skewed, &train, &labels, 4).unwrap();
        assert_eq!(b.counts, vec![0, 1, 0, 3]);
        assert!((b.tv - 0.5).abs() < 1e-15, "{b:?}");
        // All in one class: 1 - 1/K, with K from `classes` even where the labels seen are fewer.
        let one = Mat::from_vec(2, 2, vec![0.0, 0.1, 0.1, 0.0]);
        let b = class_balance(&one, &train, &labels, 10).unwrap();
        assert!((b.tv - 0.9).abs() < 1e-15 && b.counts.len() == 10, "{b:?}");
        assert!(class_balance(&Mat::zeros(0, 2), &train, &labels, 4).is_err());
    }
}
