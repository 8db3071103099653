//! `--subset`: train on part of a data set, the first `N` rows or `N` rows drawn without replacement
//! by a seeded shuffle.

use crate::linalg::Mat;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which rows of a training split to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Subset {
    /// The first `N` rows (`N`).
    First(usize),
    /// `N` rows chosen by a seeded shuffle, in file order (`random:N`).
    Random(usize),
}

impl Subset {
    /// The number of rows kept.
    pub fn len(self) -> usize {
        match self {
            Subset::First(n) | Subset::Random(n) => n,
        }
    }

    /// Never true: a subset keeps at least one row.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The rows of `x` this subset keeps (`seed` draws the random ones); `None` when `x` has fewer rows.
    pub fn select(self, x: &Mat<f64>, seed: u64) -> Option<Mat<f64>> {
        let n = self.len();
        if n > x.rows() {
            return None;
        }
        Some(match self {
            Subset::First(_) => x.slice_rows(0, n),
            Subset::Random(_) => {
                let mut rows =
                    sample(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5b5e), x.rows(), n).into_vec();
                rows.sort_unstable();
                Mat::from_fn(n, x.cols(), |i, j| x.at(rows[i], j))
            }
        })
    }
}

impl fmt::Display for Subset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subset::First(n) => write!(f, "{n}"),
            Subset::Random(n) => write!(f, "random:{n}"),
        }
    }
}

impl FromStr for Subset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (random, count) = match s.trim().strip_prefix("random:") {
            Some(n) => (true, n),
            None => (false, s.trim()),
        };
        match count.parse::<usize>() {
            Ok(n) if n >= 1 && random => Ok(Subset::Random(n)),
            Ok(n) if n >= 1 => Ok(Subset::First(n)),
            _ => Err(format!("subset `{s}` (expected N or random:N with N >= 1)")),
        }
    }
}

impl TryFrom<String> for Subset {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subset> for String {
    fn from(subset: Subset) -> String {
        subset.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_random_rows_are_kept_in_order_and_reproducibly() {
        let x = Mat::from_fn(10, 2, |i, j| (i * 2 + j) as f64);
        assert_eq!(Subset::First(3).select(&x, 0).unwrap(), x.slice_rows(0, 3));
        let a = Subset::Random(4).select(&x, 7).unwrap();
        assert_eq!(a, Subset::Random(4).select(&x, 7).unwrap(), "same seed, same rows");
        let firsts: Vec<f64> = a.row_iter().map(|r| r[0]).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "distinct rows in file order: {firsts:?}");
        assert_ne!(firsts, [0.0, 2.0, 4.0, 6.0], "not the first rows");
        assert!(Subset::First(11).select(&x, 0).is_none());
        for (text, subset) in [("5", Subset::First(5)), ("random:2", Subset::Random(2))] {
            assert_eq!(text.parse::<Subset>(), Ok(subset));
            assert_eq!(subset.to_string(), text);
        }
        for bad in ["0", "random:0", "x", "-3", "random:"] {
            assert!(bad.parse::<Subset>().is_err(), "{bad}");
        }
    }
}
