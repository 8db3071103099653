//! Training is bit for bit reproducible for a given thread count, and equal to rounding across thread
//! counts (its batch is split into one shard per thread), for MLP score networks and U-Net image models.
//! (The score sources, KSD and log Z are checked for bitwise equality across thread counts in the
//! samplers' unit tests.)

/// A mixture, batch 512 and width 256: the hidden layers' products (512 x 256 x 256) are large enough
/// to split.
const MIXTURE: &[&str] =
    &["--target", "gmm:dim=3,components=2,seed=5", "--steps", "12", "--batch", "512", "--width", "256"];

/// A noise-conditional U-Net on the shipped 8x8 digits: its shards take their images' drawn levels.
const DIGITS_UNET: &[&str] = &[
    "--target",
    "digits",
    "--arch",
    "unet",
    "--channels",
    "8,16",
    "--groups",
    "4",
    "--batch",
    "32",
    "--steps",
    "4",
    "--sigmas",
    "1:0.1:4",
];

/// `tweedie train --threads N` of `run` with a fixed seed into `dir/name`; returns the checkpoint's path.
fn train_on(run: &[&str], threads: &str, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tweedie"))
        .arg("train")
        .args(run)
        .args(["--seed", "11", "--json", "--threads", threads, "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&status.stdout).expect("one JSON line");
    assert_eq!(summary["threads"].to_string(), threads, "the summary records the pool");
    out
}

/// Every trained and optimiser value of a checkpoint, as bits.
fn checkpoint_bits(path: &std::path::Path) -> Vec<u32> {
    let c = tweedie::train::Checkpoint::load(path).expect("the checkpoint loads");
    let (m, v, _) = c.adam.state();
    c.model.params().into_iter().chain([m, v]).flatten().map(|x| x.to_bits()).collect()
}

/// The largest difference between two checkpoints' trained weights, relative to the largest weight.
fn weight_gap(a: &std::path::Path, b: &std::path::Path) -> f64 {
    let weights =
        |p: &std::path::Path| tweedie::train::Checkpoint::load(p).expect("loads").model.params().concat();
    let (a, b) = (weights(a), weights(b));
    let scale = a.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    a.iter().zip(&b).map(|(x, y)| f64::from((x - y).abs() / scale)).fold(0.0, f64::max)
}

#[test]
fn training_is_bitwise_reproducible_for_a_thread_count_and_equal_to_rounding_across_counts() {
    // On two threads each step runs as two shards whose gradients are summed, on one thread as one
    // batch: the f32 sums round differently (documented: not bit for bit), and Adam carries the
    // difference on. A few steps at learning rate 1e-3 move a weight by at most ~1e-2; a gradient
    // difference of a few f32 ulps changes an update by far less than that, so the weights agree to
    // 1e-5 of the largest one (measured: 3.0e-8 for the mixture, 4.8e-8 for the U-Net).
    for (what, run) in [("mixture", MIXTURE), ("digits U-Net", DIGITS_UNET)] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            train_on(run, "2", dir.path(), "a.safetensors"),
            train_on(run, "2", dir.path(), "b.safetensors"),
        );
        let same = std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap();
        assert!(same, "{what}: same seed and 2 threads: same file");
        let one = train_on(run, "1", dir.path(), "one.safetensors");
        assert_ne!(
            checkpoint_bits(&one),
            checkpoint_bits(&a),
            "{what}: 1 and 2 threads documented to differ"
        );
        let gap = weight_gap(&one, &a);
        assert!(gap <= 1e-5, "{what}: 1 and 2 threads: weights differ by {gap:e} of the largest");
    }
}
