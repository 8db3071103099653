//! Parameter lists as one flat vector (optimiser state, weight averages and checks read them that way).

use crate::linalg::Real;

/// Overwrites the slices of `params`, in order, with consecutive values of `flat`. Panics (a programmer
/// error) unless the lengths add up exactly.
#[track_caller]
pub fn copy_from_flat<F: Real>(params: Vec<&mut [F]>, flat: &[F]) {
    let mut rest = flat;
    for p in params {
        let (head, tail) = rest.split_at(p.len());
        p.copy_from_slice(head);
        rest = tail;
    }
    assert!(rest.is_empty(), "copy_from_flat: {} values left over", rest.len());
}
