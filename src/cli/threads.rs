//! `--threads N`, the one thread-count flag of every command: the size of the global rayon pool that the
//! parallel loops (chains, batches of points) and the large GEMMs share.

use crate::memory_budget::check_threads;
use anyhow::Result;

/// Builds the global rayon pool with `threads` threads (`None`: rayon's default, all cores unless
/// `RAYON_NUM_THREADS` says otherwise) and returns its size. Call once, before any parallel work.
pub fn init_pool(threads: Option<usize>) -> Result<usize> {
    if let Some(t) = threads {
        check_threads("--threads", t).map_err(anyhow::Error::msg)?;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build_global()
        .map_err(|e| anyhow::anyhow!("--threads: the thread pool could not start ({e})"))?;
    Ok(rayon::current_num_threads())
}
