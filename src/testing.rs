//! Shared test helpers: seeded RNGs, central finite differences, and tolerance scaling.

use crate::linalg::Mat;
use crate::nn::graph::{SecondOrderMaps, Shape, UNetConfig};
use crate::nn::Activation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The small U-Net of the unit tests over `image`: channels 4, 8, one block, 2 groups, SiLU, 2 Fourier
/// frequencies, the score maps alone.
pub fn tiny_unet(image: Shape) -> UNetConfig {
    UNetConfig {
        image,
        channels: vec![4, 8],
        blocks: 1,
        groups: 2,
        activation: Activation::Silu,
        frequencies: 2,
        second_order: SecondOrderMaps::None,
    }
}

/// The RNG every unit test uses.
pub fn test_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The stacked batch of `x` (`n` rows) with the `D` one-hot tangents of every row: row `n + c n + i` is
/// `e_c` for point `i` (the Jacobian batch that `forward_basis` passes build without the one-hot rows).
pub fn one_hot_stack<F: crate::linalg::Real>(x: &Mat<F>) -> Mat<F> {
    let (n, dim) = (x.rows(), x.cols());
    Mat::from_fn(n * (dim + 1), dim, |r, c| {
        if r < n {
            x.at(r, c)
        } else if (r - n) / n == c {
            F::one()
        } else {
            F::zero()
        }
    })
}

/// A matrix of standard normal draws.
pub fn normal_mat(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Mat<f64> {
    Mat::from_fn(rows, cols, |_, _| StandardNormal.sample(rng))
}

/// Central finite-difference gradient of a scalar function.
pub fn fd_gradient(f: impl Fn(&[f64]) -> f64, x: &[f64], eps: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            xp[i] = x[i] + eps;
            let up = f(&xp);
            xp[i] = x[i] - eps;
            let down = f(&xp);
            xp[i] = x[i];
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// Asserts `|got - want| <= tol * (1 + |want|)` elementwise, naming the first failing index.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w} (tol {tol})");
    }
}

/// Frobenius inner product of two equally shaped slices.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks a stacked-batch map `y = f(x, theta)` (primal rows then tangent rows) against finite
/// differences:
/// - the tangent rows of `f` equal the directional derivatives of its primal rows along the tangents;
/// - the reverse pass `(g_x, g_theta)` equals the gradient of `<g, f(x, theta)>` in `x` (both streams)
///   and in `theta`.
///
/// `reverse(x, theta, g)` must return the stacked input cotangent and the parameter gradient.
pub fn check_stacked_map(
    forward: impl Fn(&Mat<f64>, &[f64]) -> Mat<f64>,
    reverse: impl Fn(&Mat<f64>, &[f64], &Mat<f64>) -> (Mat<f64>, Vec<f64>),
    x: &Mat<f64>,
    n: usize,
    theta: &[f64],
    seed: u64,
) {
    let mut rng = test_rng(seed);
    let (d, tangents) = (x.cols(), x.rows() / n - 1);
    let y = forward(x, theta);
    let width = y.cols();
    // Tangent rows are directional derivatives of the primal rows.
    let eps = 1e-6;
    for tau in 0..tangents {
        let shifted = |sign: f64| {
            let primal = Mat::from_fn(n, d, |i, j| x.at(i, j) + sign * eps * x.at(n + tau * n + i, j));
            forward(&primal, theta)
        };
        let (up, down) = (shifted(1.0), shifted(-1.0));
        let fd: Vec<f64> =
            up.as_slice().iter().zip(down.as_slice()).map(|(u, v)| (u - v) / (2.0 * eps)).collect();
        let got = y.slice_rows(n + tau * n, n + (tau + 1) * n);
        assert_close(got.as_slice(), &fd, 1e-6, "tangent vs finite differences");
    }
    // Reverse pass: gradient of <g, f(x, theta)>.
    let g = normal_mat(y.rows(), width, &mut rng);
    let (g_x, g_theta) = reverse(x, theta, &g);
    let objective_x = |flat: &[f64]| {
        dot(g.as_slice(), forward(&Mat::from_vec(x.rows(), d, flat.to_vec()), theta).as_slice())
    };
    let fd_x = fd_gradient(objective_x, x.as_slice(), 1e-5);
    assert_close(g_x.as_slice(), &fd_x, 1e-6, "input cotangent vs finite differences");
    let objective_theta = |p: &[f64]| dot(g.as_slice(), forward(x, p).as_slice());
    let fd_theta = fd_gradient(objective_theta, theta, 1e-5);
    assert_close(&g_theta, &fd_theta, 1e-6, "parameter gradient vs finite differences");
}

/// The `2 D` signed basis directions `+e_1, -e_1, ..., +e_D, -e_D` of each of `points` points, stacked
/// as projection blocks (block `tau` holds direction `tau` on every row): SSM over these equals ESM.
pub fn signed_basis_directions(points: usize, dim: usize) -> Mat<f64> {
    Mat::from_fn(2 * dim * points, dim, |r, c| {
        let tau = r / points;
        match (tau / 2 == c, tau % 2) {
            (true, 0) => 1.0,
            (true, _) => -1.0,
            _ => 0.0,
        }
    })
}
