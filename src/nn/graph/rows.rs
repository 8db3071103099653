//! How the stacked rows of a graph pass are laid out. Every op but the activation and group norm maps
//! each row on its own by one linear map (plus a bias on the primal rows), so the layouts differ only
//! in what the activation does with the derivative rows.
//!
//! - [`Rows::Tangents`]: `n` primal rows, then any number of blocks of `n` tangent rows
//!   (`h_dot = act'(a) a_dot`; `src/nn/layer.rs`).
//! - [`Rows::Jet`]: `n` primal rows, `m n` first-order rows, `m n` second-order rows of the lines
//!   `t -> x + t v` (`h'' = act''(a) a'^2 + act'(a) a''`; `src/nn/jet.rs`).

/// The row layout of a stacked batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rows {
    /// Primal rows, then tangent rows (none for a plain pass).
    #[default]
    Tangents,
    /// Primal rows, then first- and second-order jet rows.
    Jet,
}
