//! The projection distributions of sliced score matching: Gaussian, Rademacher and the sphere of radius
//! `sqrt(D)`, each with `E[v v^T] = I` (docs/math.md §6.4).

use super::error::ObjectiveError;
use crate::linalg::Real;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The distribution of the projection directions `v` of sliced score matching.
///
/// # Definition
/// Every choice has $\mathbb E[v v^\top] = I$, which makes $\mathbb E_v[v^\top A v] = \operatorname{tr} A$
/// and $\mathbb E_v[(v^\top s)^2] = \Vert s \Vert^2$:
/// - `Gaussian`: $v \sim \mathcal N(0, I)$;
/// - `Rademacher`: $v_d = \pm 1$ independently with probability 1/2 (the lowest variance of $v^\top A v$);
/// - `Sphere`: $v$ uniform on the sphere of radius $\sqrt D$.
///
/// Each is a deterministic map of one standard normal vector $z$ ([`Projection::from_normal_into`]):
/// $v = z$, $v = \operatorname{sign}(z)$, $v = \sqrt D\ z / \Vert z \Vert$, so a training step draws all
/// its randomness as standard normal noise.
///
/// # Reference
/// Song, Garg, Shi, Ermon, "Sliced Score Matching", UAI 2019, Sec. 3 and App. B; docs/math.md §6.4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Projection {
    /// `v ~ N(0, I)`.
    Gaussian,
    /// `v_d = +-1` with equal probability.
    #[default]
    Rademacher,
    /// `v` uniform on the sphere of radius `sqrt(D)`.
    Sphere,
}

impl Projection {
    /// Every projection, in a fixed order.
    pub const ALL: [Projection; 3] = [Projection::Gaussian, Projection::Rademacher, Projection::Sphere];

    /// Maps one standard normal vector `z` to a direction `v` of this distribution (see the type docs).
    /// A zero `z` (probability zero) maps to a valid direction as well.
    #[track_caller]
    pub fn from_normal_into<F: Real>(self, z: &[F], v: &mut [F]) {
        assert_eq!(
            z.len(),
            v.len(),
            "projection: {} normal draws for a direction of length {}",
            z.len(),
            v.len()
        );
        match self {
            Projection::Gaussian => v.copy_from_slice(z),
            Projection::Rademacher => {
                for (v, z) in v.iter_mut().zip(z) {
                    *v = if *z < F::zero() { -F::one() } else { F::one() };
                }
            }
            Projection::Sphere => {
                let norm = z.iter().map(|z| *z * *z).sum::<F>().sqrt();
                let dim = F::of(z.len() as f64);
                if norm > F::zero() {
                    let scale = dim.sqrt() / norm;
                    v.iter_mut().zip(z).for_each(|(v, z)| *v = *z * scale);
                } else {
                    v.iter_mut().for_each(|v| *v = F::zero());
                    v[0] = dim.sqrt();
                }
            }
        }
    }

    /// Draws one direction into `v`.
    pub fn sample_into<F: Real, R: Rng + ?Sized>(self, rng: &mut R, v: &mut [F]) {
        let z: Vec<F> = (0..v.len()).map(|_| F::of(StandardNormal.sample(rng))).collect();
        self.from_normal_into(&z, v);
    }

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Projection::Gaussian => "gaussian",
            Projection::Rademacher => "rademacher",
            Projection::Sphere => "sphere",
        }
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Projection {
    type Err = ObjectiveError;

    /// Parses `gaussian`, `rademacher` or `sphere` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, ObjectiveError> {
        let name = s.trim().to_ascii_lowercase();
        Projection::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| ObjectiveError::UnknownProjection { name: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_rng;

    #[test]
    fn every_projection_has_identity_second_moment() {
        let (dim, draws) = (4, 40_000);
        for projection in Projection::ALL {
            let mut rng = test_rng(61);
            let mut moment = [[0.0f64; 4]; 4];
            let mut v = [0.0f64; 4];
            for _ in 0..draws {
                projection.sample_into(&mut rng, &mut v);
                for i in 0..dim {
                    for j in 0..dim {
                        moment[i][j] += v[i] * v[j] / draws as f64;
                    }
                }
            }
            // Each entry is a mean of `draws` terms of variance at most 3 (Gaussian diagonal: E z^4 - 1 = 2).
            let tol = 5.0 * (3.0f64 / draws as f64).sqrt();
            for (i, row) in moment.iter().enumerate() {
                for (j, m) in row.iter().enumerate() {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((m - want).abs() < tol, "{projection}: E[v v^T]_{i}{j} = {m}");
                }
            }
            if projection != Projection::Gaussian {
                let squared: f64 = v.iter().map(|x| x * x).sum();
                assert!((squared - dim as f64).abs() < 1e-12, "{projection}: ||v||^2 = {squared}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for p in Projection::ALL {
            assert_eq!(p.to_string().parse::<Projection>().unwrap(), p);
        }
        let err = "uniform".parse::<Projection>().unwrap_err();
        assert!(matches!(err, ObjectiveError::UnknownProjection { ref name } if name == "uniform"), "{err}");
        assert!(err.to_string().contains("gaussian, rademacher, sphere"));
    }
}
