//! Mixture-weight total variation: how far the fractions of samples nearest each component of a Gaussian
//! mixture are from the mixture's weights (mode coverage).

use super::error::{at_least, MetricError};
use crate::linalg::Mat;
use crate::targets::GaussianMixture;
use rayon::prelude::*;
use serde::Serialize;

/// The result of [`mixture_weight_tv`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MixtureWeightTv {
    /// The total-variation distance $\tfrac12 \sum_k |f_k - \pi_k|$, in $[0, 1]$.
    pub tv: f64,
    /// $f_k$: the fraction of samples whose nearest component is $k$.
    pub fractions: Vec<f64>,
}

/// Total variation between the weights $\pi_k$ of `mixture` and the fractions of the rows of `x` nearest
/// each component.
///
/// # Definition
/// With $k(x) = \arg\max_k \pi_k \mathcal N(x; \mu_k, \Sigma_k)$
/// ([`GaussianMixture::nearest_component`]) and $f_k = |\lbrace i : k(x_i) = k \rbrace| / n$,
/// $$ \mathrm{TV} = \tfrac12 \sum_k |f_k - \pi_k| . $$
/// Even exact samples give $\mathrm{TV} > 0$: by sampling noise (about $\tfrac12\sum_k
/// \sqrt{\pi_k(1-\pi_k)/n}$) and, when components overlap, because $P(k(x) = k) \ne \pi_k$. Compare
/// with the same statistic of an exact sample of the same size.
///
/// # Reference
/// docs/math.md §12.4.
///
/// # Errors
/// [`MetricError::TooFewSamples`] for an empty sample.
#[track_caller]
pub fn mixture_weight_tv(mixture: &GaussianMixture, x: &Mat<f64>) -> Result<MixtureWeightTv, MetricError> {
    assert_eq!(x.cols(), mixture.dim(), "mixture_weight_tv: sample has the wrong dimension");
    at_least("sample", 1, x.rows())?;
    let labels: Vec<usize> =
        (0..x.rows()).into_par_iter().map(|i| mixture.nearest_component(x.row(i))).collect();
    let mut fractions = vec![0.0; mixture.n_components()];
    for k in labels {
        fractions[k] += 1.0;
    }
    let n = x.rows() as f64;
    fractions.iter_mut().for_each(|f| *f /= n);
    let tv = 0.5 * fractions.iter().zip(mixture.weights()).map(|(f, w)| (f - w).abs()).sum::<f64>();
    Ok(MixtureWeightTv { tv, fractions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;

    fn separated() -> GaussianMixture {
        let eye = Mat::from_vec(2, 2, vec![0.1, 0.0, 0.0, 0.1]);
        GaussianMixture::new(
            vec![0.5, 0.3, 0.2],
            vec![vec![-10.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]],
            vec![eye.clone(), eye.clone(), eye],
        )
        .unwrap()
    }

    #[test]
    fn all_samples_in_one_mode_give_one_minus_its_weight() {
        let p = separated();
        let x = Mat::from_fn(50, 2, |_, j| if j == 0 { 10.0 } else { 0.1 });
        let r = mixture_weight_tv(&p, &x).unwrap();
        assert_eq!(r.fractions, vec![0.0, 1.0, 0.0]);
        assert!((r.tv - 0.7).abs() < 1e-15);
    }

    #[test]
    fn exact_samples_of_separated_modes_give_multinomial_noise_only() {
        let p = separated();
        let n = 4000;
        let x = p.sample(n, &mut test_rng(3));
        let r = mixture_weight_tv(&p, &x).unwrap();
        // Each |f_k - pi_k| has standard deviation sqrt(pi (1 - pi) / n); allow 5 of them per component.
        let bound: f64 =
            0.5 * p.weights().iter().map(|w| 5.0 * (w * (1.0 - w) / n as f64).sqrt()).sum::<f64>();
        assert!(r.tv <= bound, "{} > {bound}", r.tv);
        assert!(matches!(mixture_weight_tv(&p, &Mat::zeros(0, 2)), Err(MetricError::TooFewSamples { .. })));
    }
}
