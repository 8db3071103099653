//! The layer contract of the explicit-derivative core: a forward pass that also pushes tangents (JVP),
//! and a reverse pass through both the primal and the tangent streams.
//!
//! # Stacked batches
//! A layer sees one matrix whose first `n` rows are primal inputs `h` (one point per row) and whose
//! remaining `t * n` rows are tangents `h_dot` (tangent `tau` of point `i` at row `n + tau * n + i`).
//! `forward` writes the layer's value on the primal rows and its Jacobian-vector product on the tangent
//! rows; linear maps thus push primal and tangents through one GEMM. With `t = 0` this is a plain
//! forward pass; with `t = D` basis tangents it yields Jacobians; with one tangent `v` per point it gives
//! the directional derivatives that sliced score matching needs.
//!
//! `reverse` takes cotangents of the whole stacked output (`g` for the primal rows, `g_dot` for the
//! tangent rows), accumulates parameter gradients and writes cotangents of the stacked input
//! (docs/math.md §8.2-§8.3):
//! `g_a_dot = act'(a) g_dot`, `g_a = act'(a) g + act''(a) sum_tau a_dot g_dot`,
//! `dW = h^T g_a + h_dot^T g_a_dot`, `db = sum_rows g_a`, `g_h = g_a W^T`, `g_h_dot = g_a_dot W^T`.

use crate::linalg::{Mat, Real};

/// A network layer with forward (primal + tangent) and reverse passes. Both methods are required, so a
/// layer without derivatives does not compile.
pub trait Layer<F: Real> {
    /// What the forward pass keeps for the reverse pass (for example activation derivatives).
    type Cache: Default;
    /// Gradients of the layer's parameters.
    type Grad;

    /// Writes `y = f(x)` on the `n` primal rows and `y_dot = J_f(x) x_dot` on the tangent rows.
    fn forward(&self, x: &Mat<F>, n: usize, y: &mut Mat<F>, cache: &mut Self::Cache);

    /// Given the cotangent `g_y` of the stacked output, accumulates parameter gradients into `grad` and,
    /// when asked, writes the cotangent of the stacked input into `g_x`.
    fn reverse(
        &self,
        x: &Mat<F>,
        n: usize,
        cache: &Self::Cache,
        g_y: &Mat<F>,
        g_x: Option<&mut Mat<F>>,
        grad: &mut Self::Grad,
    );
}
