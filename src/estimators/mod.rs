//! Score estimators that are not trained by a D2SM objective: the autodiff Jacobian baseline.

mod autodiff_jacobian;

pub use autodiff_jacobian::score_jacobian;
