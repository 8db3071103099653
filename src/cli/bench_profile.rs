//! `tweedie bench --profile`: the on-CPU time of each timed call (what the calling thread spent running,
//! without the time it waited for a core on a loaded machine), and, after the timed calls, as many calls
//! again with the GEMMs tallied ([`GemmTally`]: `m k n` multiply-adds and the time inside each
//! product), reported beside the median as the step's GEMM FLOPs, the GEMMs' rate and their share of the
//! time, and the rate of one large square product on one thread for scale. The tallied calls are not
//! the timed ones: the clock reads around each product would otherwise sit inside the median.

use crate::linalg::{GemmTally, Mat};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
/// The tally of the last profiled workload and the number of calls it covers.
static LAST: Mutex<Option<(GemmTally, usize)>> = Mutex::new(None);
/// On-CPU milliseconds of the calling thread in each timed call since the last [`add_fields`].
static CPU_MS: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// Nanoseconds the calling thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`), where the OS has it.
#[cfg(unix)]
#[allow(unsafe_code)] // one clock_gettime call into a local struct.
fn thread_cpu_ns() -> Option<u64> {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec for the duration of the call.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0;
    ok.then_some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64)
}

/// No thread clock off Unix: no on-CPU times.
#[cfg(not(unix))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

/// Runs `f` once; returns its wall-clock milliseconds and, with profiling on, records its on-CPU time
/// (read outside the wall-clock window).
pub(super) fn timed_call(f: &mut impl FnMut()) -> f64 {
    let profiling = ON.load(Relaxed);
    let cpu_start = if profiling { thread_cpu_ns() } else { None };
    let start = Instant::now();
    f();
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    if let (Some(a), Some(b)) = (cpu_start, cpu_start.and_then(|_| thread_cpu_ns())) {
        CPU_MS.lock().unwrap_or_else(|e| e.into_inner()).push(b.saturating_sub(a) as f64 * 1e-6);
    }
    wall_ms
}

/// Turns profiling on for every later workload.
pub(super) fn enable() {
    ON.store(true, Relaxed);
}

/// With profiling on, runs `f` `reps` times under a GEMM tally by the threads' on-CPU clocks and keeps
/// the result for [`add_fields`]; otherwise does nothing.
pub(super) fn profile_calls(reps: usize, f: &mut impl FnMut()) {
    if !ON.load(Relaxed) {
        return;
    }
    GemmTally::start(thread_cpu_or_zero);
    (0..reps).for_each(|_| f());
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((GemmTally::stop(), reps));
}

/// [`thread_cpu_ns`], 0 where the OS has no thread clock (the tally's times then read 0).
fn thread_cpu_or_zero() -> u64 {
    thread_cpu_ns().unwrap_or(0)
}

/// Adds the profile to a workload's JSON line (timed at `median_ms`): `cpu_ms` (the median on-CPU time
/// of the calling thread per timed call; all of a call's work at one thread), `gemm_gflop` (GEMM FLOPs
/// per call, 2 per multiply-add), `gflops` (those FLOPs over the median wall time), `gemm_gflops` (over
/// the on-CPU time inside the products, summed over threads), `gemm_share` (that time over the on-CPU
/// time of the calling thread and the pool's threads while the tallied calls ran, idle spinning
/// included) and `peak_gflops` (a 1024^3 f32 product on one thread, the best rate of the same kernel).
pub(super) fn add_fields(line: &mut Value, median_ms: f64) {
    let mut cpu = std::mem::take(&mut *CPU_MS.lock().unwrap_or_else(|e| e.into_inner()));
    if !cpu.is_empty() {
        cpu.sort_by(f64::total_cmp);
        line["cpu_ms"] = json!(cpu[cpu.len() / 2]);
    }
    let Some((tally, calls)) = LAST.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let gflop = 2.0 * tally.muladds as f64 / calls as f64 / 1e9;
    line["gemm_gflop"] = json!(gflop);
    line["gflops"] = json!(gflop / (median_ms * 1e-3));
    if tally.inside > 0.0 {
        line["gemm_gflops"] = json!(2.0 * tally.muladds as f64 / tally.inside / 1e9);
        line["gemm_share"] = json!(tally.inside / tally.total);
        line["peak_gflops"] = json!(square_product_gflops());
    }
}

/// GFLOP/s of a 1024 x 1024 x 1024 f32 product on the calling thread by its on-CPU time, best of 5
/// (measured once).
fn square_product_gflops() -> f64 {
    static PEAK: Mutex<Option<f64>> = Mutex::new(None);
    *PEAK.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| {
        let size = 1024;
        let a = Mat::<f32>::from_fn(size, size, |i, j| ((i * 7 + j) % 13) as f32 * 0.1);
        let mut c = Mat::zeros(size, size);
        let best = (0..5)
            .map(|_| {
                let start = thread_cpu_or_zero();
                crate::linalg::with_serial_gemm(|| c.gemm_into(1.0, &a, false, &a, false, 0.0));
                thread_cpu_or_zero().saturating_sub(start)
            })
            .min()
            .unwrap_or(0);
        2.0 * (size * size * size) as f64 / (best.max(1) as f64 * 1e-9) / 1e9
    })
}
