//! The autodiff baseline (docs/math.md §9): the Hessian of `log q_sigma` as the Jacobian of a learned
//! first-order score network, from `D` forward tangent passes per point, symmetrised.

use crate::linalg::{Mat, Real};
use crate::nn::{Mlp, MlpTrace};
use rayon::prelude::*;

/// Stacked rows per forward pass: 2 MB per activation matrix at width 128, so that a pass stays in cache
/// and its buffers, reused from chunk to chunk, are never returned to the operating system.
const ROWS_PER_PASS: usize = 1 << 12;

/// `J(x) = d s1 / dx` at every row of `x`, returned as `N * D * D` (row-major per point, `J_ij =
/// d s1_i / d x_j`), symmetrised to `(J + J^T)/2` when `symmetrise` is set.
///
/// # Definition
/// Column `j` of `J(x)` is the JVP of `s1` along the basis vector `e_j`; the `D` tangents of a chunk of
/// points are pushed through one stacked forward pass whose first layer copies the rows of its weight
/// instead of multiplying one-hot rows (`Mlp::forward_basis_trace`). Chunks run in parallel on the
/// pool, each into its own block of `out`, so the bits do not depend on the thread count.
pub fn score_jacobian<F: Real>(s1: &Mlp<F>, x: &Mat<F>, symmetrise: bool) -> Vec<F> {
    let mut out = Vec::new();
    score_jacobian_into(s1, x, symmetrise, &mut out);
    out
}

/// [`score_jacobian`] into a caller's buffer (resized to `N * D * D`; no allocation once it is large
/// enough).
pub fn score_jacobian_into<F: Real>(s1: &Mlp<F>, x: &Mat<F>, symmetrise: bool, out: &mut Vec<F>) {
    let dim = s1.inputs();
    let chunk = (ROWS_PER_PASS / (dim + 1)).max(1);
    out.resize(x.rows() * dim * dim, F::zero());
    out.par_chunks_mut(chunk * dim * dim).enumerate().for_each_init(
        || (Mat::default(), MlpTrace::default(), Vec::new()),
        |(points, trace, tangents), (c, block)| {
            let n = block.len() / (dim * dim);
            points.resize(n, dim);
            points.as_mut_slice().copy_from_slice(&x.as_slice()[c * chunk * dim..(c * chunk + n) * dim]);
            let y = s1.forward_basis_trace(points, trace);
            let stride = dim + TILE;
            tangents.resize(dim * stride, F::zero());
            for (i, jac) in block.chunks_exact_mut(dim * dim).enumerate() {
                // The point's D tangent rows lie n rows apart in `y`: gathered whole rows first (each
                // read in order), the tiles then read one block instead of one cache line from each of
                // 16 far-apart rows.
                for (j, row) in tangents.chunks_exact_mut(stride).enumerate() {
                    row[..dim].copy_from_slice(y.row(n + j * n + i));
                }
                assemble_jacobian(tangents, stride, dim, symmetrise, jac);
            }
        },
    );
}

/// Side of the square tiles [`assemble_jacobian`] works in: a tile's rows of `jac` and its lines of the
/// tangents (16 f32 each, one cache line) stay in L1 while it is written.
const TILE: usize = 16;

/// Writes one point's `jac = J` (or `(J + J^T)/2`) from its `D` tangent rows `J e_j`, row `j` (column `j`
/// of `J`) at `tangents[j * stride..]`: `jac[r][c] = tangent(c)[r]`, and `(tangent(c)[r] +
/// tangent(r)[c]) / 2` off the diagonal when symmetrising (the diagonal stays `J_rr`).
///
/// Tile by tile, from rows gathered into one block whose stride is not a multiple of 1 KB: element by
/// element, the strided reads and writes of a `D x D` transpose at `D = 256` hit the same few L1 sets
/// and made this assembly take longer than the forward pass. Each element is the same sum of the same
/// two values in every order, so the bits do not depend on the tiling.
fn assemble_jacobian<F: Real>(tangents: &[F], stride: usize, dim: usize, symmetrise: bool, jac: &mut [F]) {
    let half = F::of(0.5);
    for r0 in (0..dim).step_by(TILE) {
        for c0 in (0..dim).step_by(TILE) {
            let cols = c0..(c0 + TILE).min(dim);
            for r in r0..(r0 + TILE).min(dim) {
                let dst = &mut jac[r * dim + c0..r * dim + cols.end];
                // tangent(c)[r] for c in cols: column r of the block, from row c0 down.
                let column = tangents[c0 * stride + r..].iter().step_by(stride);
                if symmetrise {
                    let own = tangents[r * stride + c0..r * stride + cols.end].iter().zip(cols.clone());
                    for ((d, t), (o, c)) in dst.iter_mut().zip(column).zip(own) {
                        *d = if r == c { *t } else { (*t + *o) * half };
                    }
                } else {
                    dst.iter_mut().zip(column).for_each(|(d, t)| *d = *t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Activation;
    use crate::testing::{assert_close, normal_mat, test_rng};

    /// The tiled assembly equals the element-by-element definition bit for bit at sizes that leave
    /// partial tiles (1, 15, 17, 40), with and without symmetrisation, from rows stored with and
    /// without padding (the padding, NaN, must never be read).
    #[test]
    fn tiled_assembly_equals_the_plain_transpose_and_mean() {
        for (dim, pad) in [1, 15, 16, 17, 40].into_iter().flat_map(|d| [(d, 0), (d, 3)]) {
            let mut rng = test_rng(dim as u64);
            let tangents = normal_mat(dim, dim, &mut rng).cast::<f32>();
            let stride = dim + pad;
            let padded: Vec<f32> = (0..dim * stride)
                .map(|k| if k % stride < dim { tangents.at(k / stride, k % stride) } else { f32::NAN })
                .collect();
            for symmetrise in [false, true] {
                let mut got = vec![f32::NAN; dim * dim];
                assemble_jacobian(&padded, stride, dim, symmetrise, &mut got);
                let mut want: Vec<f32> = (0..dim * dim).map(|k| tangents.at(k % dim, k / dim)).collect();
                if symmetrise {
                    for r in 0..dim {
                        for c in r + 1..dim {
                            let mean = (want[r * dim + c] + want[c * dim + r]) * 0.5;
                            (want[r * dim + c], want[c * dim + r]) = (mean, mean);
                        }
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "D = {dim}, stride {stride}, symmetrise = {symmetrise}");
            }
        }
    }

    #[test]
    fn jacobian_matches_finite_differences_and_symmetrisation_averages() {
        let mut rng = test_rng(12);
        let mlp = Mlp::<f64>::init(&[3, 8, 8, 3], Activation::Tanh, &mut rng);
        let x = normal_mat(4, 3, &mut rng);
        let jac = score_jacobian(&mlp, &x, false);
        let eps = 1e-6;
        for i in 0..4 {
            for j in 0..3 {
                let shifted = |s: f64| {
                    let mut p = x.slice_rows(i, i + 1);
                    p.set(0, j, p.at(0, j) + s * eps);
                    mlp.forward(&p).into_vec()
                };
                let (up, down) = (shifted(1.0), shifted(-1.0));
                let fd: Vec<f64> = (0..3).map(|r| (up[r] - down[r]) / (2.0 * eps)).collect();
                let got: Vec<f64> = (0..3).map(|r| jac[i * 9 + r * 3 + j]).collect();
                assert_close(&got, &fd, 1e-7, "Jacobian column");
            }
        }
        let sym = score_jacobian(&mlp, &x, true);
        assert!((sym[1] - 0.5 * (jac[1] + jac[3])).abs() < 1e-15 && sym[1] == sym[3]);
        // Many points run in several chunks through reused buffers: each point's Jacobian is the one it
        // gets alone, also in a buffer that held a larger result before.
        let many = normal_mat(2500, 3, &mut rng);
        let mut out = vec![7.0; 2500 * 9 + 5];
        score_jacobian_into(&mlp, &many, false, &mut out);
        assert_eq!(out.len(), 2500 * 9);
        for i in [0, 1023, 1024, 2047, 2048, 2499] {
            let alone = score_jacobian(&mlp, &many.slice_rows(i, i + 1), false);
            assert_close(&out[i * 9..(i + 1) * 9], &alone, 1e-12, "chunked Jacobian");
        }
    }
}
