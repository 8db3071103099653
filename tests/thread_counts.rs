//! Training is bit for bit reproducible for a given thread count, and equal to rounding across thread
//! counts (its batch is split into one shard per thread). (The score sources, KSD and log Z are checked
//! for bitwise equality across thread counts in the samplers' unit tests.)

/// `tweedie train --threads N` with a fixed seed into `dir/name`; returns the checkpoint's path. Batch
/// 512 and width 256 make the hidden layers' products (512 x 256 x 256) large enough to split.
fn train_on(threads: &str, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tweedie"))
        .args(["train", "--target", "gmm:dim=3,components=2,seed=5", "--steps", "12", "--batch", "512"])
        .args(["--width", "256", "--seed", "11", "--json", "--threads", threads, "--out"])
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
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (train_on("2", dir.path(), "a.safetensors"), train_on("2", dir.path(), "b.safetensors"));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed and 2 threads: same file");
    // On two threads each step runs as two shards of 256 points whose gradients are summed, on one
    // thread as one batch of 512: the f32 sums round differently (documented: not bit for bit), and
    // Adam carries the difference on. 12 steps at learning rate 1e-3 move a weight by at most ~1e-2;
    // a gradient difference of a few f32 ulps changes an update by far less than that, so the weights
    // agree to 1e-5 of the largest one (measured: 5.9e-8).
    let one = train_on("1", dir.path(), "one.safetensors");
    assert_ne!(
        checkpoint_bits(&one),
        checkpoint_bits(&a),
        "1 and 2 threads: documented to differ in the last bits"
    );
    let gap = weight_gap(&one, &a);
    assert!(gap <= 1e-5, "1 and 2 threads: weights differ by {gap:e} of the largest");
}
