//! Reductions accumulated in [`LANES`] partial sums: dot products and sums for the per-sample algebra of
//! the objectives, the batch losses with their cotangents, and the network passes' contractions. A sequential f32 sum may not be reordered, so it runs one
//! scalar add at a time; chunks of a fixed width let the compiler use whole vector registers.

use crate::linalg::Real;

/// Number of partial sums (one AVX-512 register of f32).
const LANES: usize = 16;

/// The sum of the partial sums by a pairwise tree.
#[inline(always)]
fn hsum<F: Real>(mut b: [F; LANES]) -> F {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            b[l] += b[l + width];
        }
        width /= 2;
    }
    b[0]
}

/// `sum_i a_i b_i c_i` over slices of equal length.
#[inline]
pub fn dot3<F: Real>(a: &[F], b: &[F], c: &[F]) -> F {
    debug_assert!(a.len() == b.len() && b.len() == c.len(), "dot3: lengths differ");
    let (ca, cb, cc) = (a.chunks_exact(LANES), b.chunks_exact(LANES), c.chunks_exact(LANES));
    let tail = (ca.remainder().iter().zip(cb.remainder()).zip(cc.remainder()))
        .fold(F::zero(), |t, ((x, y), z)| t + *x * *y * *z);
    let mut acc = [F::zero(); LANES];
    for ((x, y), z) in ca.zip(cb).zip(cc) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l] * z[l];
        }
    }
    hsum(acc) + tail
}

/// `a . b` over slices of equal length.
#[inline]
pub fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    debug_assert_eq!(a.len(), b.len(), "dot: lengths differ");
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca.remainder().iter().zip(cb.remainder()).fold(F::zero(), |t, (x, y)| t + *x * *y);
    let mut acc = [F::zero(); LANES];
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    hsum(acc) + tail
}

/// `sum_i a_i`.
#[inline]
pub fn sum<F: Real>(a: &[F]) -> F {
    let chunks = a.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(F::zero(), |t, x| t + *x);
    let mut acc = [F::zero(); LANES];
    for x in chunks {
        acc.iter_mut().zip(x).for_each(|(s, v)| *s += *v);
    }
    hsum(acc) + tail
}

/// `sum_k t_k` over `K` input slices of equal length, where `f` maps element `k` of the inputs to `J`
/// values, stored at `k` of the `J` outputs, and the term `t_k`, summed in lanes: one vectorised pass
/// over a batch computes a loss and writes its gradient (the cotangents) element by element.
#[inline(always)]
pub fn sum_writing<F: Real, const K: usize, const J: usize>(
    inputs: [&[F]; K],
    mut outputs: [&mut [F]; J],
    f: impl Fn([F; K]) -> ([F; J], F),
) -> F {
    let len = inputs.first().map_or(0, |a| a.len());
    debug_assert!(inputs.iter().all(|a| a.len() == len), "sum_writing: input lengths differ");
    debug_assert!(outputs.iter().all(|a| a.len() == len), "sum_writing: output lengths differ");
    let full = len - len % LANES;
    let mut acc = [F::zero(); LANES];
    for start in (0..full).step_by(LANES) {
        // Fixed-size chunks and a local block of results: the lane loop unrolls into vector code.
        let chunks: [&[F; LANES]; K] =
            inputs.map(|a| a[start..start + LANES].try_into().expect("full chunk"));
        let mut values = [[F::zero(); LANES]; J];
        for (l, sum) in acc.iter_mut().enumerate() {
            let (value, term) = f(chunks.map(|c| c[l]));
            for (block, v) in values.iter_mut().zip(value) {
                block[l] = v;
            }
            *sum += term;
        }
        for (o, block) in outputs.iter_mut().zip(&values) {
            o[start..start + LANES].copy_from_slice(block);
        }
    }
    let mut tail = F::zero();
    for k in full..len {
        let (values, term) = f(inputs.map(|a| a[k]));
        outputs.iter_mut().zip(values).for_each(|(o, v)| o[k] = v);
        tail += term;
    }
    hsum(acc) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_reductions_equal_plain_sums_at_every_length() {
        for len in [0, 1, 15, 16, 17, 40] {
            let a: Vec<f64> = (0..len).map(|i| (i as f64 * 0.7).sin()).collect();
            let b: Vec<f64> = (0..len).map(|i| 1.0 + i as f64 * 0.1).collect();
            let c: Vec<f64> = (0..len).map(|i| (i as f64).cos()).collect();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
            assert!(close(dot(&a, &b), a.iter().zip(&b).map(|(x, y)| x * y).sum()), "dot, len {len}");
            let want: f64 = (0..len).map(|i| a[i] * b[i] * c[i]).sum();
            assert!(close(dot3(&a, &b, &c), want), "dot3, len {len}");
            assert!(close(sum(&a), a.iter().sum()), "sum, len {len}");
            let want: f64 = (0..len).map(|i| a[i] * b[i] - c[i]).sum();
            let mut written = vec![0.0; len];
            let got = sum_writing([&a, &b, &c], [&mut written], |[x, y, z]| ([x - z], x * y - z));
            assert!(close(got, want), "sum_writing, len {len}");
            assert!(written.iter().zip(&a).zip(&c).all(|((w, x), z)| *w == x - z), "written, len {len}");
        }
    }
}
