//! The geometric noise schedule of a noise-conditional image model: `--sigmas HI:LO:N` gives
//! `sigma_k = HI (LO / HI)^(k / (N - 1))`, `k = 0, ..., N - 1`, each training row at a level drawn
//! uniformly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `N` noise levels from `hi` down to `lo`, evenly spaced in `log sigma`: the levels a noise-conditional
/// model is trained on and an annealed sampler walks down.
///
/// # Example
/// ```
/// use tweedie::models::NoiseSchedule;
/// let s: NoiseSchedule = "1.0:0.01:3".parse()?;
/// let sig = s.sigmas();
/// assert!((sig[1] - 0.1).abs() < 1e-15 && sig[2] == 0.01);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoiseSchedule {
    /// The largest level.
    pub hi: f64,
    /// The smallest level.
    pub lo: f64,
    /// The number of levels (at least 2 for training; an annealed sampler also takes 1).
    pub levels: usize,
}

impl NoiseSchedule {
    /// Level `k` (0: `hi`; `levels - 1`: exactly `lo`, which is also the one level of a one-level schedule).
    pub fn sigma(&self, k: usize) -> f64 {
        if k + 1 >= self.levels {
            self.lo
        } else {
            self.hi * (self.lo / self.hi).powf(k as f64 / (self.levels - 1) as f64)
        }
    }

    /// Every level, largest first.
    pub fn sigmas(&self) -> Vec<f64> {
        (0..self.levels).map(|k| self.sigma(k)).collect()
    }
}

impl FromStr for NoiseSchedule {
    type Err = String;

    /// `HI:LO:N` with `HI > LO > 0` finite and `N >= 2`; the error is one line naming the value.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--sigmas `{text}`: {why} (expected HI:LO:N with HI > LO > 0 and N >= 2, e.g. 1.0:0.01:10)"
            )
        };
        let parts: Vec<&str> = text.split(':').collect();
        let [hi, lo, levels] = parts[..] else { return Err(bad("not three fields")) };
        let level = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0);
        let (Some(hi), Some(lo)) = (level(hi), level(lo)) else {
            return Err(bad("HI and LO must be numbers > 0"));
        };
        let Ok(levels) = levels.trim().parse::<usize>() else { return Err(bad("N must be a whole number")) };
        if hi <= lo {
            return Err(bad("HI <= LO"));
        }
        if levels < 2 {
            return Err(bad("N < 2"));
        }
        Ok(Self { hi, lo, levels })
    }
}

impl TryFrom<String> for NoiseSchedule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<NoiseSchedule> for String {
    fn from(s: NoiseSchedule) -> String {
        s.to_string()
    }
}

impl fmt::Display for NoiseSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.hi, self.lo, self.levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_geometric_schedule_and_refuses_bad_ones_in_one_line() {
        let s: NoiseSchedule = "1.0:0.01:5".parse().unwrap();
        let want = [1.0, 0.316_227_766, 0.1, 0.031_622_776_6, 0.01];
        s.sigmas()
            .iter()
            .zip(want)
            .for_each(|(got, want)| assert!((got - want).abs() < 1e-9, "{got} vs {want}"));
        assert_eq!(s.to_string().parse::<NoiseSchedule>().unwrap(), s);
        for (text, why) in [
            ("0.1:1.0:5", "HI <= LO"),
            ("1:1:5", "HI <= LO"),
            ("1:0.1:1", "N < 2"),
            ("1:0.1", "not three fields"),
            ("1:-0.1:4", "HI and LO must be numbers > 0"),
            ("1:0.1:x", "N must be a whole number"),
        ] {
            let err = text.parse::<NoiseSchedule>().unwrap_err();
            assert_eq!(
                err,
                format!("--sigmas `{text}`: {why} (expected HI:LO:N with HI > LO > 0 and N >= 2, e.g. 1.0:0.01:10)")
            );
        }
    }
}
