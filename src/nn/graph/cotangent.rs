//! The cotangent of an op's input during a reverse pass. Cotangents accumulate (`+=`: one output may
//! feed several ops), but the first op to reach an input in the reverse walk ASSIGNS it instead, so no
//! cotangent buffer is zeroed before the walk: a buffer kept from the last step holds stale values until
//! its first writer overwrites them. `0 + v = v` exactly, so the result is the same bits as zeroing and
//! adding.

use crate::linalg::{Mat, Real};

/// An input's cotangent buffer, and whether this op is its first writer in the current reverse walk.
pub struct InputCotangent<'a, F> {
    /// The buffer, shaped like the input.
    pub g: &'a mut Mat<F>,
    /// No op has written `g` yet in this walk: assign, do not add.
    pub fresh: bool,
}

impl<'a, F: Real> InputCotangent<'a, F> {
    /// For an op that can only add: zeroes a fresh buffer, then hands it out for `+=`.
    pub fn zeroed_for_adding(self) -> &'a mut Mat<F> {
        if self.fresh {
            self.g.fill_zero();
        }
        self.g
    }
}

/// The cotangent buffers of a node's inputs (`lower` holds those of every earlier node), each marked
/// fresh when nothing has written it yet in this walk; node 0's only when `input_wanted`.
pub fn input_cotangents<'a, F>(
    inputs: &[usize],
    lower: &'a mut [Mat<F>],
    written: &mut [bool],
    input_wanted: bool,
) -> [Option<InputCotangent<'a, F>>; 2] {
    let mut out = [None, None];
    for (j, g) in lower.iter_mut().enumerate() {
        if let Some(slot) = inputs.iter().position(|&i| i == j) {
            if j > 0 || input_wanted {
                out[slot] = Some(InputCotangent { g, fresh: !written[j] });
                written[j] = true;
            }
        }
    }
    out
}

/// `dst = f(src)` elementwise when `fresh`, else `dst += f(src)`.
#[inline(always)]
pub fn put<F: Real>(fresh: bool, dst: &mut [F], src: &[F], f: impl Fn(F) -> F) {
    put_values(fresh, dst, src.iter().map(|s| f(*s)));
}

/// `dst = values` elementwise when `fresh`, else `dst += values`.
#[inline(always)]
pub fn put_values<F: Real>(fresh: bool, dst: &mut [F], values: impl Iterator<Item = F>) {
    if fresh {
        dst.iter_mut().zip(values).for_each(|(d, v)| *d = v);
    } else {
        dst.iter_mut().zip(values).for_each(|(d, v)| *d += v);
    }
}
