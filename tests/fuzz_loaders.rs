//! Property-based fuzzing of every loader (CSV, NPY, safetensors checkpoint, TOML config) and of the
//! target-spec parser: arbitrary bytes and mutated valid files give `Ok` with sane values or an `Err`,
//! never a panic or an abort, and no single allocation beyond [`ALLOCATION_BOUND`] (a file that lies
//! about its size must be refused before its lie is allocated). The case counts keep the whole suite to
//! a few seconds.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use tweedie::data::{load_points, write_npy};

/// The largest magnitude the loaders accept (`data::MAX_ABS_VALUE` inside the crate; larger values are
/// rejected so that squares and sums of them stay finite in f64).
const MAX_ABS_VALUE: f64 = 1e16;
use tweedie::targets::TargetSpec;
use tweedie::train::{Checkpoint, TrainConfig, Trainer};

/// The largest single allocation any case may make: far above what inputs of a few hundred bytes need.
const ALLOCATION_BOUND: usize = 64 << 20;

/// The system allocator, recording the largest request it has seen.
struct RecordingAllocator;

static LARGEST_REQUEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a size is recorded.
unsafe impl GlobalAlloc for RecordingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_REQUEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: RecordingAllocator = RecordingAllocator;

/// The cases of this binary's tests run one at a time, each from a cleared record, so that an
/// allocation beyond the bound is charged to the case that made it (and proptest shrinks that case,
/// not one that merely ran after it).
static ONE_CASE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts a case: holds the lock until the returned guard drops, with the record cleared.
fn start_case() -> std::sync::MutexGuard<'static, ()> {
    let guard = ONE_CASE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    LARGEST_REQUEST.store(0, Ordering::Relaxed);
    guard
}

/// Fails if any allocation of the current case exceeded [`ALLOCATION_BOUND`].
fn check_allocations() {
    let largest = LARGEST_REQUEST.load(Ordering::Relaxed);
    assert!(largest <= ALLOCATION_BOUND, "an allocation of {largest} bytes (bound {ALLOCATION_BOUND})");
}

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: Some(Box::new(FileFailurePersistence::Off)), ..Config::default() }
}

/// `bytes` with each `(position, byte)` edit applied (positions taken modulo the length), then cut to
/// `keep` bytes when that is shorter: flips, overwrites and truncations of a valid file.
fn mutate(bytes: &[u8], edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        let n = out.len();
        for &(at, byte) in edits {
            out[at % n] = byte;
        }
    }
    out.truncate(keep);
    out
}

/// A loaded point cloud must be a non-empty rectangle of values in the documented range.
fn check_points(path: &Path) {
    if let Ok(x) = load_points(path) {
        assert!(x.rows() > 0 && x.cols() > 0);
        assert_eq!(x.as_slice().len(), x.rows() * x.cols());
        assert!(x.as_slice().iter().all(|v| v.abs() <= MAX_ABS_VALUE));
    }
}

/// A valid checkpoint of a tiny run, written once.
fn valid_checkpoint() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let config = TrainConfig { steps: 2, batch: 4, width: 4, depth: 1, ..TrainConfig::default() };
        Trainer::new(config, &tweedie::data::DataDir::resolve(None))
            .unwrap()
            .run(Some(&path), &mut ())
            .unwrap();
        std::fs::read(path).unwrap()
    })
}

/// A valid `.npy` file of a 3 x 2 array, written once (each write is fsynced).
fn valid_npy() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        write_npy(&path, &[3, 2], &[1.0f64, -2.0, 3.5, 4.0, 0.0, 6.0]).unwrap();
        std::fs::read(path).unwrap()
    })
}

const VALID_CSV: &[u8] = b"x,y,z\n1.5,2,-3\n4e-3, 5 ,6\n\"7\",8,9\n";

const VALID_TOML: &str =
    "target = \"gmm:dim=3\"\nmodel = \"s1s2\"\ns2 = \"lowrank:2\"\nform = \"a\"\nvr = true\n\
    sigma = 0.3\nsteps = 100\nbatch = 64\nwidth = 16\ndepth = 2\nlearning_rate = 0.001\nema = 0.99\n";

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn csv_of_arbitrary_or_mutated_bytes_never_panics(
        noise in proptest::collection::vec(any::<u8>(), 0..200),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in 0usize..64,
        gzip in any::<bool>(),
    ) {
        let _case = start_case();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        for bytes in [noise.clone(), mutate(VALID_CSV, &edits, VALID_CSV.len().min(keep + 20))] {
            let bytes = if gzip {
                use std::io::Write;
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&bytes).unwrap();
                mutate(&enc.finish().unwrap(), &edits, usize::MAX)
            } else {
                bytes
            };
            std::fs::write(&path, &bytes).unwrap();
            check_points(&path);
        }
        check_allocations();
    }

    #[test]
    fn npy_of_arbitrary_or_mutated_bytes_never_panics(
        noise in proptest::collection::vec(any::<u8>(), 0..200),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        keep in 0usize..200,
    ) {
        let _case = start_case();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let valid = valid_npy();
        // Edits land in the header (the first 128 bytes) as often as in the data.
        let header_edits: Vec<(usize, u8)> = edits.iter().map(|&(at, b)| (at % 128, b)).collect();
        for bytes in [noise, mutate(valid, &edits, keep), mutate(valid, &header_edits, usize::MAX)] {
            std::fs::write(&path, &bytes).unwrap();
            check_points(&path);
            if let Err(err) = tweedie::data::read_npy(&path) {
                prop_assert_eq!(err.to_string().lines().count(), 1, "{}", err);
            }
        }
        check_allocations();
    }

    #[test]
    fn checkpoints_of_arbitrary_or_mutated_bytes_never_panic(
        noise in proptest::collection::vec(any::<u8>(), 0..300),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        keep in any::<usize>(),
    ) {
        let _case = start_case();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let valid = valid_checkpoint();
        // Half the edits aim at the JSON header (shapes, offsets, the config), where damage is subtle.
        let header_len = 8 + u64::from_le_bytes(valid[..8].try_into().unwrap()) as usize;
        let header_edits: Vec<(usize, u8)> = edits.iter().map(|&(at, b)| (at % header_len, b)).collect();
        let cut = valid.len() - keep % 64;
        for bytes in [noise, mutate(valid, &edits, usize::MAX), mutate(valid, &header_edits, cut)] {
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(c) = Checkpoint::load(&path) {
                prop_assert!(c.model.params().iter().all(|p| p.iter().all(|v| v.is_finite())));
            }
        }
        check_allocations();
    }

    #[test]
    fn toml_configs_of_arbitrary_or_mutated_text_never_panic(
        noise in ".{0,120}",
        edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 1..5),
    ) {
        let _case = start_case();
        let mutated = String::from_utf8(mutate(VALID_TOML.as_bytes(), &edits, usize::MAX)).unwrap();
        for text in [noise, mutated] {
            if let Ok(config) = toml::from_str::<TrainConfig>(&text) {
                let _ = config.validate();
            }
        }
        check_allocations();
    }

    #[test]
    fn target_specs_of_arbitrary_text_never_panic(
        noise in ".{0,60}",
        family in prop::sample::select(vec!["gmm2d", "gmm", "gauss", "csv", "uci", ""]),
        keys in proptest::collection::vec(
            (prop::sample::select(vec!["dim", "components", "cond", "seed", "x", ""]), "[-0-9a-z.e+]{0,22}"),
            0..4,
        ),
    ) {
        let _case = start_case();
        let spec = format!(
            "{family}:{}",
            keys.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
        );
        for text in [noise, spec] {
            // Parsing only: a valid spec may describe a large (but bounded) target.
            if let Ok(parsed) = text.parse::<TargetSpec>() {
                prop_assert_eq!(parsed.to_string().parse::<TargetSpec>().unwrap(), parsed);
            }
        }
        check_allocations();
    }
}
