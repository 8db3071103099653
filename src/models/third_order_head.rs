//! The third-order network of a score model and how its outputs give `s3(x~)[v, v, v]` (docs/math.md
//! §4.6): a CP head (a network of `x~` whose outputs are the factors of
//! `T = sum_r a_r u_r ⊗ u_r ⊗ u_r + diag3(c)`, [`CpThirdOrderHead`]) or a directional head (a network of
//! `(x~, v)` whose one output is `s3[v, v, v]` itself).

use super::{CpThirdOrderHead, UnknownHead};
use crate::linalg::{Mat, Real};
use crate::nn::{Mlp, MlpTrace};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the third-order network reads `s3[v, v, v]` (`--s3 cp:R|directional`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ThirdOrderHead {
    /// A network `x~ -> R + R D + D` CP factors of rank `rank`, contracted along `v` in `O(R D)`.
    Cp {
        /// The number of rank-one terms `R >= 1`.
        rank: usize,
    },
    /// A network `(x~, v) -> s3[v, v, v]` (input `2 D`, one output).
    Directional,
}

impl ThirdOrderHead {
    /// The head of `--model s1s2s3` when none is given: CP of rank 4.
    pub const DEFAULT: ThirdOrderHead = ThirdOrderHead::Cp { rank: 4 };

    /// The network's input width for dimension `dim`.
    pub fn inputs(self, dim: usize) -> usize {
        match self {
            ThirdOrderHead::Cp { .. } => dim,
            ThirdOrderHead::Directional => 2 * dim,
        }
    }

    /// The network's output width for dimension `dim`.
    pub fn outputs(self, dim: usize) -> usize {
        match self {
            ThirdOrderHead::Cp { rank } => CpThirdOrderHead { rank }.outputs(dim),
            ThirdOrderHead::Directional => 1,
        }
    }
}

impl fmt::Display for ThirdOrderHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThirdOrderHead::Cp { rank } => write!(f, "cp:{rank}"),
            ThirdOrderHead::Directional => write!(f, "directional"),
        }
    }
}

impl FromStr for ThirdOrderHead {
    type Err = UnknownHead;

    fn from_str(s: &str) -> Result<Self, UnknownHead> {
        if s == "directional" {
            return Ok(ThirdOrderHead::Directional);
        }
        s.strip_prefix("cp:")
            .and_then(|r| r.parse::<usize>().ok())
            .filter(|&rank| rank >= 1)
            .map(|rank| ThirdOrderHead::Cp { rank })
            .ok_or_else(|| UnknownHead { order: 3, name: s.to_string() })
    }
}

impl TryFrom<String> for ThirdOrderHead {
    type Error = UnknownHead;

    fn try_from(s: String) -> Result<Self, UnknownHead> {
        s.parse()
    }
}

impl From<ThirdOrderHead> for String {
    fn from(head: ThirdOrderHead) -> String {
        head.to_string()
    }
}

/// A third-order network and the head that reads its outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct ThirdOrderNet<F> {
    /// How the outputs give `s3[v, v, v]`.
    pub head: ThirdOrderHead,
    /// The network `head.inputs(D) -> head.outputs(D)`.
    pub net: Mlp<F>,
}

impl<F: Real> ThirdOrderNet<F> {
    /// A network of zeros with the same shapes (the shape of its gradient).
    pub fn zeros_like(&self) -> Self {
        Self { head: self.head, net: self.net.zeros_like() }
    }

    /// The network input of the points `x` (`n x D`) and directions `v` (`n x D`): `x` for a CP head,
    /// the rows `[x_i, v_i]` for a directional head.
    pub(crate) fn input_into(&self, x: &[F], v: &[F], dim: usize, out: &mut Mat<F>) {
        let n = x.len() / dim;
        out.resize(n, self.head.inputs(dim));
        match self.head {
            ThirdOrderHead::Cp { .. } => out.as_mut_slice().copy_from_slice(x),
            ThirdOrderHead::Directional => {
                let rows = out.as_mut_slice().chunks_exact_mut(2 * dim);
                for ((row, xi), vi) in rows.zip(x.chunks_exact(dim)).zip(v.chunks_exact(dim)) {
                    row[..dim].copy_from_slice(xi);
                    row[dim..].copy_from_slice(vi);
                }
            }
        }
    }

    /// `s3[v_i, v_i, v_i]` of every row from the raw outputs `raw` (`n x outputs`).
    pub(crate) fn contract_into(&self, raw: &Mat<F>, v: &[F], out: &mut Vec<F>) {
        let dim = v.len() / raw.rows().max(1);
        out.clear();
        match self.head {
            ThirdOrderHead::Cp { rank } => {
                let cp = CpThirdOrderHead { rank };
                out.extend(raw.row_iter().zip(v.chunks_exact(dim)).map(|(r, vi)| cp.contract(r, vi)))
            }
            ThirdOrderHead::Directional => out.extend_from_slice(raw.as_slice()),
        }
    }

    /// The raw cotangent `g_raw` (`n x outputs`) of the cotangents `g` of the contractions.
    pub(crate) fn contract_backprop(&self, raw: &Mat<F>, v: &[F], g: &[F], g_raw: &mut Mat<F>) {
        g_raw.resize(raw.rows(), raw.cols());
        match self.head {
            ThirdOrderHead::Cp { rank } => {
                let (cp, dim) = (CpThirdOrderHead { rank }, v.len() / raw.rows().max(1));
                g_raw.as_mut_slice().iter_mut().for_each(|x| *x = F::zero());
                let rows = raw.row_iter().zip(g_raw.as_mut_slice().chunks_exact_mut(raw.cols()));
                for (((r, g_r), vi), gi) in rows.zip(v.chunks_exact(dim)).zip(g) {
                    cp.contract_backprop(r, vi, *gi, g_r);
                }
            }
            ThirdOrderHead::Directional => g_raw.as_mut_slice().copy_from_slice(g),
        }
    }

    /// The learned `s3(x_i)[v_i, v_i, v_i]` at every row of `x` along the row `v_i` of `v` (both
    /// `n x D`), with caller-owned buffers.
    pub fn directional_into(
        &self,
        x: &Mat<F>,
        v: &Mat<F>,
        buffers: &mut ThirdOrderBuffers<F>,
        out: &mut Vec<F>,
    ) {
        let dim = x.cols();
        self.input_into(x.as_slice(), v.as_slice(), dim, &mut buffers.input);
        let raw = self.net.forward_trace(&buffers.input, x.rows().max(1), &mut buffers.trace);
        self.contract_into(raw, v.as_slice(), out);
    }
}

/// The buffers of [`ThirdOrderNet::directional_into`], reused across calls.
#[derive(Clone, Debug, Default)]
pub struct ThirdOrderBuffers<F> {
    pub(crate) input: Mat<F>,
    pub(crate) trace: MlpTrace<F>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_rejected() {
        for head in [ThirdOrderHead::Cp { rank: 4 }, ThirdOrderHead::Directional] {
            assert_eq!(head.to_string().parse::<ThirdOrderHead>(), Ok(head));
        }
        for bad in ["cp:0", "cp:", "cp", "dense", ""] {
            let err = bad.parse::<ThirdOrderHead>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")) && err.contains("expected cp:R"), "{err}");
        }
    }
}
