//! Training does not depend on the number of threads: the same seed on 2 threads gives the same file, and
//! the same weights as on 1 thread. (The score sources, KSD and log Z are checked the same way in the
//! samplers' unit tests.)

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

#[test]
fn training_is_bitwise_reproducible_on_two_threads_and_equal_to_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (train_on("2", dir.path(), "a.safetensors"), train_on("2", dir.path(), "b.safetensors"));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed and 2 threads: same file");
    let one = train_on("1", dir.path(), "one.safetensors");
    assert_eq!(checkpoint_bits(&one), checkpoint_bits(&a), "1 and 2 threads: same weights");
}
