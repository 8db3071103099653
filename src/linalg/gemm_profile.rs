//! An opt-in tally of the GEMMs run on the calling thread and on the threads of the current rayon pool,
//! for `tweedie bench --profile`: how many multiply-adds (`m k n` per product) and how long they took,
//! summed over those threads. Off, it costs one thread-local read per product.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    /// Whether this thread counts its products, and its counts: multiply-adds and nanoseconds.
    static TALLY: Cell<(bool, u64, u64)> = const { Cell::new((false, 0, 0)) };
}

/// What the GEMMs between [`GemmTally::start`] and [`GemmTally::stop`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GemmTally {
    /// Multiply-adds (`m k n` summed over the products; 2 FLOPs each).
    pub muladds: u64,
    /// Seconds spent inside the products, summed over threads.
    pub seconds: f64,
}

impl GemmTally {
    /// Zeroes the counts and starts counting, on this thread and on every thread of the current pool.
    pub fn start() {
        let on = || TALLY.with(|t| t.set((true, 0, 0)));
        on();
        rayon::broadcast(|_| on());
    }

    /// Stops counting; returns the sum of the counts since [`GemmTally::start`] over this thread and
    /// the threads of the current pool.
    pub fn stop() -> Self {
        let off = || TALLY.with(|t| t.replace((false, 0, 0)));
        let counts = std::iter::once(off()).chain(rayon::broadcast(|_| off()));
        let (muladds, nanos) = counts.fold((0, 0), |(m, s), (_, dm, ds)| (m + dm, s + ds));
        Self { muladds, seconds: nanos as f64 * 1e-9 }
    }
}

/// Runs the `m x k x n` product `gemm`, counted and timed if this thread's tally is on.
#[inline]
pub(crate) fn counted(m: usize, k: usize, n: usize, gemm: impl FnOnce()) {
    if !TALLY.with(|t| t.get().0) {
        return gemm();
    }
    let start = Instant::now();
    gemm();
    let nanos = start.elapsed().as_nanos() as u64;
    TALLY.with(|t| {
        let (on, muladds, spent) = t.get();
        t.set((on, muladds + (m * k * n) as u64, spent + nanos));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Mat;

    /// A tally counts `m k n` per product through `Mat::gemm_into` (both element types), on the calling
    /// thread and on the pool's threads, and nothing once stopped. It runs in its own pool, so the
    /// products of tests running beside it are not counted.
    #[test]
    fn tally_counts_the_multiply_adds_of_each_product() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool starts");
        pool.install(|| {
            let (a, b) = (Mat::<f32>::zeros(7, 5), Mat::<f32>::zeros(5, 3));
            let product = || {
                let mut c = Mat::zeros(7, 3);
                c.gemm_into(1.0, &a, false, &b, false, 0.0);
            };
            GemmTally::start();
            product();
            rayon::broadcast(|_| product());
            let mut d = Mat::<f64>::zeros(5, 5);
            d.gemm_into(1.0, &a.cast(), true, &a.cast(), false, 1.0);
            let tally = GemmTally::stop();
            assert_eq!(tally.muladds, 3 * 7 * 5 * 3 + 5 * 7 * 5, "{tally:?}");
            assert!(tally.seconds > 0.0, "{tally:?}");
            product();
            assert_eq!(GemmTally::stop(), GemmTally { muladds: 0, seconds: 0.0 });
        });
    }
}
