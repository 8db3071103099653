//! Target names: the `family:key=value,...` syntax of the CLI and checkpoints, parsed into a typed spec.

use super::error::TargetError;
use super::families::{gmm2d, random_gauss, random_gmm};
use super::gaussian_mixture::GaussianMixture;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Largest accepted `dim`: guards against a typo allocating `K` dense `D x D` matrices of many GB.
pub const MAX_DIM: usize = 4096;
/// Largest accepted `components`.
pub const MAX_COMPONENTS: usize = 1024;
/// Default `components` of `gmm`.
pub const DEFAULT_COMPONENTS: usize = 4;
/// Largest accepted `cond`: the covariance's smallest eigenvalue `1/C` must stay well above the f64
/// rounding error (about `D eps`, `eps = 2.2e-16`) of building `Q diag(l) Q^T`, or the matrix is not
/// positive definite in floating point.
pub const MAX_COND: f64 = 1e12;
/// Default `cond` of `gauss`.
pub const DEFAULT_COND: f64 = 10.0;

/// A parsed target name. Strings appear only at the CLI / file boundary: serde stores the canonical
/// string form ([`Display`](fmt::Display)) and validates it when reading back.
///
/// # Example
/// ```
/// use tweedie::targets::TargetSpec;
/// let spec: TargetSpec = " gmm : seed=7, dim=3 ".parse()?;
/// assert_eq!(spec, TargetSpec::Gmm { dim: 3, components: 4, seed: 7 });
/// assert_eq!(spec.to_string(), "gmm:dim=3,components=4,seed=7");
/// assert_eq!(spec.build().dim(), 3);
/// # Ok::<(), tweedie::targets::TargetError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TargetSpec {
    /// The fixed 2-D mixture: three rotated anisotropic components, weights 0.5 / 0.3 / 0.2, mass within
    /// about `[-4, 4]^2`.
    Gmm2d,
    /// A random mixture: Dirichlet(3) weights, means from `N(0, 2^2 I)`, Haar-rotated covariances with
    /// eigenvalues in `[0.05, 0.5]`, drawn in a fixed order from the seed.
    Gmm {
        /// Dimension `D`, `1..=MAX_DIM`.
        dim: usize,
        /// Number of components `K`, `1..=MAX_COMPONENTS`.
        components: usize,
        /// Seed of the `ChaCha8Rng` drawing the parameters.
        seed: u64,
    },
    /// A random zero-mean Gaussian: covariance `Q diag(l) Q^T` with eigenvalues log-spaced from 1 down
    /// to `1/cond` and a Haar-random `Q` from the seed.
    Gauss {
        /// Dimension `D`, `1..=MAX_DIM`.
        dim: usize,
        /// Condition number `C` of the covariance, in `[1, MAX_COND]`.
        cond: f64,
        /// Seed of the `ChaCha8Rng` drawing the rotation.
        seed: u64,
    },
}

impl TargetSpec {
    /// Builds the mixture this spec names (deterministic in the spec).
    pub fn build(&self) -> GaussianMixture {
        match *self {
            TargetSpec::Gmm2d => gmm2d(),
            TargetSpec::Gmm { dim, components, seed } => random_gmm(dim, components, seed),
            TargetSpec::Gauss { dim, cond, seed } => random_gauss(dim, cond, seed),
        }
    }
}

impl fmt::Display for TargetSpec {
    /// The canonical name: every key written, in a fixed order, defaults included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Gmm2d => write!(f, "gmm2d"),
            TargetSpec::Gmm { dim, components, seed } => {
                write!(f, "gmm:dim={dim},components={components},seed={seed}")
            }
            TargetSpec::Gauss { dim, cond, seed } => write!(f, "gauss:dim={dim},cond={cond},seed={seed}"),
        }
    }
}

/// The `key=value` items of one spec, checked against a family's keys as they are read.
struct Params<'a> {
    spec: &'a str,
    items: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    /// Splits `params` on `,` and `=`, rejecting items without `=`, unknown keys and repeated keys.
    fn parse(spec: &'a str, params: &'a str, allowed: &'static [&'static str]) -> Result<Self, TargetError> {
        let mut items: Vec<(&str, &str)> = Vec::new();
        for item in params.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(TargetError::BadParameter {
                    spec: spec.to_string(),
                    key: item.to_string(),
                    value: String::new(),
                    expected: "a key=value pair",
                });
            };
            let (key, value) = (key.trim(), value.trim());
            if !allowed.contains(&key) {
                return Err(TargetError::UnknownKey {
                    spec: spec.to_string(),
                    key: key.to_string(),
                    allowed: allowed_list(allowed),
                });
            }
            if items.iter().any(|(k, _)| *k == key) {
                return Err(TargetError::DuplicateKey { spec: spec.to_string(), key: key.to_string() });
            }
            items.push((key, value));
        }
        Ok(Self { spec, items })
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.items.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn bad(&self, key: &str, value: &str, expected: &'static str) -> TargetError {
        TargetError::BadParameter {
            spec: self.spec.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            expected,
        }
    }

    /// An integer in `lo..=hi`; `default = None` makes the key required.
    fn usize_in(
        &self,
        key: &'static str,
        lo: usize,
        hi: usize,
        default: Option<usize>,
        expected: &'static str,
    ) -> Result<usize, TargetError> {
        match self.get(key) {
            None => default.ok_or(TargetError::MissingParameter { spec: self.spec.to_string(), key }),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(self.bad(key, v, expected)),
            },
        }
    }

    fn seed(&self) -> Result<u64, TargetError> {
        match self.get("seed") {
            None => Ok(0),
            Some(v) => v.parse::<u64>().map_err(|_| self.bad("seed", v, "an unsigned 64-bit integer")),
        }
    }

    fn cond(&self) -> Result<f64, TargetError> {
        match self.get("cond") {
            None => Ok(DEFAULT_COND),
            Some(v) => match v.parse::<f64>() {
                Ok(c) if (1.0..=MAX_COND).contains(&c) => Ok(c),
                _ => Err(self.bad("cond", v, "a number in [1, 1e12]")),
            },
        }
    }
}

/// The allowed keys as one static string for error messages.
fn allowed_list(allowed: &'static [&'static str]) -> &'static str {
    match allowed {
        [] => "no keys",
        ["dim", "components", "seed"] => "dim, components, seed",
        ["dim", "cond", "seed"] => "dim, cond, seed",
        _ => "see `tweedie sample --help`",
    }
}

impl FromStr for TargetSpec {
    type Err = TargetError;

    /// Parses `family[:key=value,...]`; whitespace around tokens is ignored, keys may come in any order.
    ///
    /// # Errors
    /// [`TargetError::UnknownTarget`], [`TargetError::UnknownKey`], [`TargetError::DuplicateKey`],
    /// [`TargetError::MissingParameter`] (`dim`), [`TargetError::BadParameter`] (not a number, or out of
    /// range), each quoting the whole spec.
    fn from_str(spec: &str) -> Result<Self, TargetError> {
        let (family, params) = spec.split_once(':').unwrap_or((spec, ""));
        let dim_expected = "an integer in 1..=4096";
        match family.trim() {
            "gmm2d" => {
                Params::parse(spec, params, &[])?;
                Ok(TargetSpec::Gmm2d)
            }
            "gmm" => {
                let p = Params::parse(spec, params, &["dim", "components", "seed"])?;
                Ok(TargetSpec::Gmm {
                    dim: p.usize_in("dim", 1, MAX_DIM, None, dim_expected)?,
                    components: p.usize_in(
                        "components",
                        1,
                        MAX_COMPONENTS,
                        Some(DEFAULT_COMPONENTS),
                        "an integer in 1..=1024",
                    )?,
                    seed: p.seed()?,
                })
            }
            "gauss" => {
                let p = Params::parse(spec, params, &["dim", "cond", "seed"])?;
                Ok(TargetSpec::Gauss {
                    dim: p.usize_in("dim", 1, MAX_DIM, None, dim_expected)?,
                    cond: p.cond()?,
                    seed: p.seed()?,
                })
            }
            _ => Err(TargetError::UnknownTarget { spec: spec.to_string() }),
        }
    }
}

impl TryFrom<String> for TargetSpec {
    type Error = TargetError;

    fn try_from(s: String) -> Result<Self, TargetError> {
        s.parse()
    }
}

impl From<TargetSpec> for String {
    fn from(spec: TargetSpec) -> String {
        spec.to_string()
    }
}

/// Parses a target name and builds its mixture (`spec.parse::<TargetSpec>()?.build()`).
///
/// # Errors
/// As [`TargetSpec::from_str`].
pub(crate) fn parse_target(spec: &str) -> Result<GaussianMixture, TargetError> {
    Ok(spec.parse::<TargetSpec>()?.build())
}

/// The canonical form of a target name (defaults filled in, fixed key order), for checkpoints and logs.
///
/// # Errors
/// As [`TargetSpec::from_str`].
pub fn canonical_name(spec: &str) -> Result<String, TargetError> {
    Ok(spec.parse::<TargetSpec>()?.to_string())
}

/// A mixture together with the spec that built it, so a checkpoint can record where its target came from.
#[derive(Clone, Debug)]
pub struct NamedTarget {
    spec: TargetSpec,
    mixture: GaussianMixture,
}

impl NamedTarget {
    /// Parses `spec` and builds the mixture.
    ///
    /// # Errors
    /// As [`TargetSpec::from_str`].
    pub fn parse(spec: &str) -> Result<Self, TargetError> {
        Ok(Self::from_spec(spec.parse()?))
    }

    /// Builds the mixture of an already parsed spec.
    pub fn from_spec(spec: TargetSpec) -> Self {
        let mixture = spec.build();
        Self { spec, mixture }
    }

    /// The canonical name (see [`canonical_name`]).
    pub fn name(&self) -> String {
        self.spec.to_string()
    }

    /// The mixture.
    pub fn mixture(&self) -> &GaussianMixture {
        &self.mixture
    }

    /// The mixture, by value.
    pub fn into_mixture(self) -> GaussianMixture {
        self.mixture
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_defaults_and_print_canonically() {
        let cases = [
            ("gmm2d", TargetSpec::Gmm2d, "gmm2d"),
            (" gmm2d ", TargetSpec::Gmm2d, "gmm2d"),
            (
                "gmm:dim=3",
                TargetSpec::Gmm { dim: 3, components: 4, seed: 0 },
                "gmm:dim=3,components=4,seed=0",
            ),
            (
                "gmm: seed = 5 , components=2, dim=8,",
                TargetSpec::Gmm { dim: 8, components: 2, seed: 5 },
                "gmm:dim=8,components=2,seed=5",
            ),
            ("gauss:dim=2", TargetSpec::Gauss { dim: 2, cond: 10.0, seed: 0 }, "gauss:dim=2,cond=10,seed=0"),
            (
                "gauss:cond=2.5,dim=4,seed=1",
                TargetSpec::Gauss { dim: 4, cond: 2.5, seed: 1 },
                "gauss:dim=4,cond=2.5,seed=1",
            ),
        ];
        for (text, spec, canonical) in cases {
            let parsed: TargetSpec = text.parse().unwrap();
            assert_eq!(parsed, spec, "{text}");
            assert_eq!(parsed.to_string(), canonical);
            assert_eq!(canonical.parse::<TargetSpec>().unwrap(), spec, "round trip of {canonical}");
            assert_eq!(canonical_name(text).unwrap(), canonical);
        }
    }

    #[test]
    fn parse_target_builds_the_named_family() {
        let p = parse_target("gmm:dim=5,components=3,seed=2").unwrap();
        assert_eq!((p.dim(), p.n_components()), (5, 3));
        assert_eq!(parse_target("gauss:dim=7").unwrap().n_components(), 1);
        assert_eq!(parse_target("gmm2d").unwrap().dim(), 2);
        let named = NamedTarget::parse("gmm:dim=2,seed=4").unwrap();
        assert_eq!(named.name(), "gmm:dim=2,components=4,seed=4");
        assert_eq!(named.mixture().means(), random_gmm(2, 4, 4).means());
    }

    #[test]
    fn bad_names_give_the_right_error_with_its_data() {
        use TargetError as E;
        let err = |s: &str| s.parse::<TargetSpec>().unwrap_err();
        assert!(matches!(err("banana"), E::UnknownTarget { spec } if spec == "banana"));
        assert!(matches!(err(""), E::UnknownTarget { .. }));
        assert!(matches!(err("gmm2d:dim=3"), E::UnknownKey { key, .. } if key == "dim"));
        assert!(matches!(err("gmm:dim=3,cond=2"), E::UnknownKey { key, .. } if key == "cond"));
        assert!(matches!(err("gauss:dim=3,components=2"), E::UnknownKey { key, .. } if key == "components"));
        assert!(matches!(err("gmm:components=2"), E::MissingParameter { key: "dim", .. }));
        assert!(matches!(err("gauss:"), E::MissingParameter { key: "dim", .. }));
        assert!(matches!(err("gmm:dim=3,dim=4"), E::DuplicateKey { key, .. } if key == "dim"));
        assert!(
            matches!(err("gmm:dim"), E::BadParameter { key, expected: "a key=value pair", .. } if key == "dim")
        );
        for (spec, bad_key, bad_value) in [
            ("gmm:dim=0", "dim", "0"),
            ("gmm:dim=2.5", "dim", "2.5"),
            ("gmm:dim=-1", "dim", "-1"),
            ("gmm:dim=4097", "dim", "4097"),
            ("gmm:dim=x", "dim", "x"),
            ("gmm:dim=2,components=0", "components", "0"),
            ("gmm:dim=2,seed=-3", "seed", "-3"),
            ("gauss:dim=2,cond=0.5", "cond", "0.5"),
            ("gauss:dim=2,cond=NaN", "cond", "NaN"),
            ("gauss:dim=2,cond=inf", "cond", "inf"),
            ("gauss:dim=2,cond=1e17", "cond", "1e17"),
        ] {
            match err(spec) {
                E::BadParameter { spec: s, key, value, .. } => {
                    assert_eq!((s.as_str(), key.as_str(), value.as_str()), (spec, bad_key, bad_value));
                }
                other => panic!("{spec}: expected BadParameter, got {other:?}"),
            }
        }
        // The message names the spec, key, value and what was expected.
        let msg = err("gauss:dim=2,cond=0.5").to_string();
        assert!(
            msg.contains("gauss:dim=2,cond=0.5") && msg.contains("cond") && msg.contains("[1, 1e12]"),
            "{msg}"
        );
    }

    #[test]
    fn spec_serialises_as_its_canonical_string_and_validates_on_read() {
        let spec = TargetSpec::Gmm { dim: 3, components: 2, seed: 1 };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, "\"gmm:dim=3,components=2,seed=1\"");
        assert_eq!(serde_json::from_str::<TargetSpec>(&json).unwrap(), spec);
        assert!(serde_json::from_str::<TargetSpec>("\"gmm:dim=0\"").is_err());
    }
}
