//! An opt-in tally of the GEMMs run on the calling thread and on the threads of the current rayon pool,
//! for `tweedie bench --profile`: how many multiply-adds (`m k n` per product), the time inside the
//! products and the time of the whole tallied stretch, both summed over those threads, by a clock the
//! caller picks ([`GemmTally::start`]; the bench passes each thread's on-CPU clock, so that a loaded
//! machine's waits for a core do not count). Off, it costs one thread-local read per product.

use std::cell::Cell;
use std::sync::OnceLock;

/// Per thread: whether it counts, its multiply-adds, nanoseconds inside products, and the clock's
/// reading at the start.
#[derive(Clone, Copy, Default)]
struct Counts {
    on: bool,
    muladds: u64,
    inside: u64,
    started: u64,
}

thread_local! {
    static COUNTS: Cell<Counts> = Cell::new(Counts::default());
}

/// The clock of the tally (nanoseconds of the calling thread), set by the first [`GemmTally::start`].
static CLOCK: OnceLock<fn() -> u64> = OnceLock::new();

/// What the GEMMs between [`GemmTally::start`] and [`GemmTally::stop`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GemmTally {
    /// Multiply-adds (`m k n` summed over the products; 2 FLOPs each).
    pub muladds: u64,
    /// Seconds inside the products, summed over threads.
    pub inside: f64,
    /// Seconds from start to stop, summed over threads (the whole tallied stretch, products or not).
    pub total: f64,
}

impl GemmTally {
    /// Zeroes the counts and starts counting, on this thread and on every thread of the current pool,
    /// by `clock` (nanoseconds of the calling thread; the first clock given is kept for the process).
    pub fn start(clock: fn() -> u64) {
        let clock = *CLOCK.get_or_init(|| clock);
        let on = move || COUNTS.with(|c| c.set(Counts { on: true, started: clock(), ..Counts::default() }));
        on();
        rayon::broadcast(|_| on());
    }

    /// Stops counting; returns the sum of the counts since [`GemmTally::start`] over this thread and
    /// the threads of the current pool.
    pub fn stop() -> Self {
        let clock = CLOCK.get().copied();
        let off = move || {
            let c = COUNTS.with(|c| c.replace(Counts::default()));
            let total = match (c.on, clock) {
                (true, Some(clock)) => clock().saturating_sub(c.started),
                _ => 0,
            };
            (c.muladds, c.inside, total)
        };
        let counts = std::iter::once(off()).chain(rayon::broadcast(|_| off()));
        let (muladds, inside, total) =
            counts.fold((0, 0, 0), |(m, i, t), (dm, di, dt)| (m + dm, i + di, t + dt));
        Self { muladds, inside: inside as f64 * 1e-9, total: total as f64 * 1e-9 }
    }
}

/// Runs the `m x k x n` product `gemm`, counted and timed if this thread's tally is on.
#[inline]
pub(crate) fn counted(m: usize, k: usize, n: usize, gemm: impl FnOnce()) {
    let clock = match CLOCK.get() {
        Some(clock) if COUNTS.with(|c| c.get().on) => *clock,
        _ => return gemm(),
    };
    let start = clock();
    gemm();
    let spent = clock().saturating_sub(start);
    COUNTS.with(|c| {
        let mut counts = c.get();
        counts.muladds += (m * k * n) as u64;
        counts.inside += spent;
        c.set(counts);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Mat;

    /// Nanoseconds since the first call (a wall clock for the test).
    fn wall_ns() -> u64 {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
    }

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
            GemmTally::start(wall_ns);
            product();
            rayon::broadcast(|_| product());
            let mut d = Mat::<f64>::zeros(5, 5);
            d.gemm_into(1.0, &a.cast(), true, &a.cast(), false, 1.0);
            let tally = GemmTally::stop();
            assert_eq!(tally.muladds, 3 * 7 * 5 * 3 + 5 * 7 * 5, "{tally:?}");
            assert!(tally.inside > 0.0 && tally.total >= tally.inside, "{tally:?}");
            product();
            assert_eq!(GemmTally::stop(), GemmTally { muladds: 0, inside: 0.0, total: 0.0 });
        });
    }
}
