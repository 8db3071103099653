//! Parameterisations of the second-order score `S2(x~)`: how the raw outputs of a network are read as a
//! symmetric `D x D` matrix (docs/math.md §5.1).

use super::UnknownHead;
use crate::linalg::Real;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a network's raw outputs parameterise the symmetric matrix `S2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SecondOrderHead {
    /// `D (D + 1) / 2` outputs: the upper triangle (row-major, `i <= j`) of a symmetric matrix.
    Full,
    /// `D` outputs: `S2 = diag(d)`.
    Diagonal,
    /// `D r + D` outputs: `S2 = U U^T + diag(d)`, `U` (`D x r`, row-major) first, then `d`.
    LowRank {
        /// The rank `r` of `U`.
        rank: usize,
    },
}

impl SecondOrderHead {
    /// Number of raw outputs for dimension `dim`.
    pub fn outputs(self, dim: usize) -> usize {
        match self {
            SecondOrderHead::Full => dim * (dim + 1) / 2,
            SecondOrderHead::Diagonal => dim,
            SecondOrderHead::LowRank { rank } => dim * rank + dim,
        }
    }

    /// The rank of the factor `U` (0 for full and diagonal heads).
    pub fn rank(self) -> usize {
        match self {
            SecondOrderHead::LowRank { rank } => rank,
            _ => 0,
        }
    }

    /// Writes the dense `D x D` matrix `S2` of one raw output row into `out` (row-major).
    pub fn dense_into<F: Real>(self, raw: &[F], dim: usize, out: &mut [F]) {
        out.iter_mut().for_each(|v| *v = F::zero());
        match self {
            SecondOrderHead::Full => {
                let mut k = 0;
                for i in 0..dim {
                    for j in i..dim {
                        out[i * dim + j] = raw[k];
                        out[j * dim + i] = raw[k];
                        k += 1;
                    }
                }
            }
            SecondOrderHead::Diagonal => (0..dim).for_each(|i| out[i * dim + i] = raw[i]),
            SecondOrderHead::LowRank { rank } => {
                let (u, d) = raw.split_at(dim * rank);
                for i in 0..dim {
                    for j in 0..dim {
                        out[i * dim + j] = (0..rank).map(|k| u[i * rank + k] * u[j * rank + k]).sum();
                    }
                    out[i * dim + i] += d[i];
                }
            }
        }
    }

    /// The derivative `d/dt v^T S2(raw + t raw_dot) v` at `t = 0`: `v^T S2(raw_dot) v` for the heads
    /// linear in their outputs (full, diagonal), `2 (U^T v).(U'^T v) + sum_d d'_d v_d^2` for the low-rank
    /// head `U U^T + diag(d)`. With `raw_dot = J_raw(x) v` it is the derivative of the learned
    /// `v^T S2(x) v` along `v`.
    pub fn quadratic_form_derivative<F: Real>(self, raw: &[F], raw_dot: &[F], v: &[F]) -> F {
        let dim = v.len();
        match self {
            SecondOrderHead::Full | SecondOrderHead::Diagonal => {
                let mut dense = vec![F::zero(); dim * dim];
                self.dense_into(raw_dot, dim, &mut dense);
                let rows = dense.chunks_exact(dim).zip(v);
                rows.map(|(row, vi)| *vi * row.iter().zip(v).map(|(a, b)| *a * *b).sum::<F>()).sum()
            }
            SecondOrderHead::LowRank { rank } => {
                let (u, u_dot) = (&raw[..dim * rank], &raw_dot[..dim * rank]);
                let project = |m: &[F], k: usize| (0..dim).map(|i| m[i * rank + k] * v[i]).sum::<F>();
                let low_rank: F = (0..rank).map(|k| F::of(2.0) * project(u, k) * project(u_dot, k)).sum();
                low_rank + raw_dot[dim * rank..].iter().zip(v).map(|(d, vi)| *d * *vi * *vi).sum::<F>()
            }
        }
    }

    /// True when the head stores only the diagonal (errors are then measured on the diagonal only).
    pub fn is_diagonal(self) -> bool {
        self == SecondOrderHead::Diagonal
    }
}

impl fmt::Display for SecondOrderHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecondOrderHead::Full => write!(f, "full"),
            SecondOrderHead::Diagonal => write!(f, "diag"),
            SecondOrderHead::LowRank { rank } => write!(f, "lowrank:{rank}"),
        }
    }
}

impl TryFrom<String> for SecondOrderHead {
    type Error = UnknownHead;

    fn try_from(s: String) -> Result<Self, UnknownHead> {
        s.parse()
    }
}

impl From<SecondOrderHead> for String {
    fn from(head: SecondOrderHead) -> String {
        head.to_string()
    }
}

impl FromStr for SecondOrderHead {
    type Err = UnknownHead;

    fn from_str(s: &str) -> Result<Self, UnknownHead> {
        match s {
            "full" => Ok(SecondOrderHead::Full),
            "diag" | "diagonal" => Ok(SecondOrderHead::Diagonal),
            _ => s
                .strip_prefix("lowrank:")
                .and_then(|r| r.parse::<usize>().ok())
                .filter(|&rank| rank >= 1)
                .map(|rank| SecondOrderHead::LowRank { rank })
                .ok_or_else(|| UnknownHead { order: 2, name: s.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_rejected() {
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 4 }] {
            assert_eq!(head.to_string().parse::<SecondOrderHead>(), Ok(head));
        }
        for bad in ["lowrank:0", "lowrank:x", "dense", ""] {
            assert!(bad.parse::<SecondOrderHead>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_quadratic_form_derivative_matches_finite_differences() {
        let dim = 3;
        let v = [0.6, -0.8, 0.3];
        let quad = |head: SecondOrderHead, raw: &[f64]| {
            let mut m = vec![0.0; dim * dim];
            head.dense_into(raw, dim, &mut m);
            (0..dim * dim).map(|k| m[k] * v[k / dim] * v[k % dim]).sum::<f64>()
        };
        for head in [SecondOrderHead::Full, SecondOrderHead::Diagonal, SecondOrderHead::LowRank { rank: 2 }] {
            let p = head.outputs(dim);
            let raw: Vec<f64> = (0..p).map(|k| (k as f64 * 0.7).sin()).collect();
            let raw_dot: Vec<f64> = (0..p).map(|k| (k as f64 * 1.3).cos()).collect();
            let h = 1e-5;
            let at =
                |t: f64| quad(head, &raw.iter().zip(&raw_dot).map(|(r, d)| r + t * d).collect::<Vec<_>>());
            // Central differences of a polynomial of degree <= 2 in t are exact up to rounding.
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let got = head.quadratic_form_derivative(&raw, &raw_dot, &v);
            assert!((got - fd).abs() < 1e-8 && fd.abs() > 0.1, "{head}: {got} vs {fd}");
        }
    }

    #[test]
    fn dense_matrices_are_symmetric_with_the_stated_structure() {
        let dim = 3;
        let raw: Vec<f64> =
            (0..SecondOrderHead::LowRank { rank: 2 }.outputs(dim)).map(|k| k as f64 * 0.3 - 1.0).collect();
        let mut m = vec![0.0; dim * dim];
        SecondOrderHead::LowRank { rank: 2 }.dense_into(&raw, dim, &mut m);
        // Entry (0, 1) = U_0 . U_1 with U rows (-1, -0.7), (-0.4, -0.1); diagonal adds d.
        assert!((m[1] - (0.4 + 0.07)).abs() < 1e-12 && m[1] == m[3]);
        assert!((m[0] - (1.0 + 0.49 + raw[6])).abs() < 1e-12);
        SecondOrderHead::Full.dense_into(&raw[..6], dim, &mut m);
        assert_eq!(m, vec![raw[0], raw[1], raw[2], raw[1], raw[3], raw[4], raw[2], raw[4], raw[5]]);
    }
}
