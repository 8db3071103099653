//! End-to-end tests of the reliability rules: a failed or killed run leaves an existing output
//! byte-identical, outputs that are inputs or not regular files are refused, a second writer is refused,
//! sizes are checked against memory before allocating, and numbers beyond f32 are errors.

mod common;

use common::{fails_with, ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Trains a small model to `dir/good.safetensors`.
fn good_model(dir: &Path) -> PathBuf {
    let out = dir.join("good.safetensors");
    let o = out.to_str().unwrap();
    ok(&[
        "train", "--target", "gmm2d", "--steps", "20", "--batch", "16", "--width", "8", "--out", o, "--json",
    ]);
    out
}

fn small_run<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--target", "gmm2d", "--batch", "16", "--out", out];
    args.extend_from_slice(extra);
    if !extra.contains(&"--width") {
        args.extend_from_slice(&["--width", "8"]);
    }
    args
}

#[test]
fn a_failed_run_leaves_the_previous_model_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_model(dir.path());
    let g = good.to_str().unwrap();
    let before = std::fs::read(&good).unwrap();
    // Without --force an existing output is refused before anything is trained.
    fails_with(&small_run(g, &["--steps", "5"]), &["good.safetensors exists", "--force"]);
    // Divergence: the loss (or the weights) stop being finite long before the first checkpoint.
    fails_with(
        &small_run(g, &["--force", "--steps", "200", "--learning-rate", "1e30"]),
        &["diverged", "this run wrote no checkpoint", "good.safetensors is unchanged"],
    );
    // A learning rate of 100 overflows Adam's second moment (g^2) within a few steps.
    fails_with(
        &small_run(g, &["--force", "--steps", "200", "--width", "32", "--learning-rate", "100"]),
        &["an Adam moment estimate is inf", "good.safetensors is unchanged"],
    );
    // A size the memory check refuses.
    fails_with(&small_run(g, &["--force", "--width", "1000000000"]), &["--width 1000000000", "memory"]);
    fails_with(&small_run(g, &["--force", "--width", "18446744073709551615"]), &["--width", "memory"]);
    assert!(std::fs::read(&good).unwrap() == before, "a failed run changed the previous model");
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "failed runs leave no lock or temporary file behind");
}

#[cfg(unix)]
#[test]
fn a_killed_run_leaves_the_previous_model_byte_identical_and_its_lock_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_model(dir.path());
    let g = good.to_str().unwrap();
    let before = std::fs::read(&good).unwrap();
    let lock = dir.path().join("good.safetensors.lock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tweedie"))
        .args(small_run(g, &["--force", "--steps", "100000000", "--checkpoint-every", "100000000", "--json"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run holds its lock (it trains from then on), then let it train 0.3 s.
    let start = Instant::now();
    while !lock.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "the run never took its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed");
    assert!(std::fs::read(&good).unwrap() == before, "a killed run changed the previous model");
    assert!(lock.exists(), "SIGTERM skips the lock's removal: the next run must handle the stale lock");
    let summary = ok(&["train", "--resume", "--out", g, "--steps", "25", "--json"]);
    assert!(summary.contains("\"steps\":25"), "{summary}");
    assert!(!lock.exists());
}

#[test]
fn outputs_that_are_inputs_or_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_model(dir.path());
    let g = good.to_str().unwrap();
    let model_bytes = std::fs::read(&good).unwrap();
    let points = dir.path().join("p.csv");
    std::fs::write(&points, "0.1,0.2\n-1,0\n").unwrap();
    let p = points.to_str().unwrap();
    let data = dir.path().join("data.csv");
    let rows: String = (0..40).map(|i| format!("{},{}\n", i % 7, i % 5)).collect();
    std::fs::write(&data, &rows).unwrap();
    let d = data.to_str().unwrap();
    let target = format!("csv:{d}");
    fails_with(
        &["train", "--target", &target, "--steps", "5", "--out", d, "--force"],
        &["same file as --target"],
    );
    assert_eq!(std::fs::read_to_string(&data).unwrap(), rows, "the data file was replaced");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "steps = 5\nwidth = 8\nbatch = 16\n").unwrap();
    let c = config.to_str().unwrap();
    fails_with(&["train", "--config", c, "--out", c, "--force"], &["same file as --config"]);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "steps = 5\nwidth = 8\nbatch = 16\n");
    fails_with(&["score", "--model", g, "--input", p, "--out", g], &["same file as --model"]);
    fails_with(&["score", "--model", g, "--input", p, "--out", p], &["same file as --input"]);
    assert_eq!(std::fs::read(&good).unwrap(), model_bytes, "the model was replaced");
    let sample = [
        "sample",
        "--target",
        "gmm2d",
        "--model",
        g,
        "--sampler",
        "ula",
        "--steps",
        "2",
        "--step-size",
        "0.01",
        "--chains",
        "4",
        "--out",
        g,
    ];
    fails_with(&sample, &["same file as --model"]);
    let twice = dir.path().join("x.png");
    let t = twice.to_str().unwrap();
    let both = [
        "sample",
        "--target",
        "gmm2d",
        "--sampler",
        "ula",
        "--steps",
        "2",
        "--step-size",
        "0.01",
        "--out",
        t,
        "--plot",
        t,
    ];
    fails_with(&both, &["x.png", "named by two outputs"]);
    #[cfg(unix)]
    {
        let link = dir.path().join("link.npy");
        std::os::unix::fs::symlink(&points, &link).unwrap();
        let l = link.to_str().unwrap();
        fails_with(&["score", "--model", g, "--input", p, "--out", l], &["symbolic link"]);
        fails_with(
            &["score", "--model", g, "--input", p, "--out", "/dev/null"],
            &["/dev/null", "special file"],
        );
        assert!(
            !Path::new("/dev/null").metadata().unwrap().file_type().is_file(),
            "/dev/null is still a device"
        );
    }
    let folder = dir.path().to_str().unwrap();
    fails_with(&["score", "--model", g, "--input", p, "--out", folder], &["folder"]);
}

#[test]
fn a_second_writer_of_the_same_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let o = out.to_str().unwrap();
    // This test process plays the first writer: it holds the lock (`OUT.lock` with its process id, as
    // docs/reliability.md describes) while the binary tries to write.
    let lock = dir.path().join("m.safetensors.lock");
    std::fs::write(&lock, std::process::id().to_string()).unwrap();
    fails_with(&small_run(o, &["--steps", "5"]), &["m.safetensors", "another process", "lock"]);
    assert!(!out.exists());
    std::fs::remove_file(&lock).unwrap();
    ok(&small_run(o, &["--steps", "5", "--json"]));
    assert!(out.exists());
}

#[test]
fn absurd_sizes_are_refused_by_the_memory_check_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("m.safetensors");
    let o = o.to_str().unwrap();
    for (flags, needles) in [
        (&["train", "--depth", "100000000", "--out", o][..], &["--depth 100000000", "memory"][..]),
        (&["train", "--batch", "1000000000000", "--out", o], &["--batch 1000000000000", "memory"]),
        (
            &[
                "train",
                "--model",
                "s1",
                "--objective",
                "ssm",
                "--projections",
                "18446744073709551615",
                "--out",
                o,
            ],
            &["--projections 18446744073709551615", "memory"],
        ),
        (
            &["estimate", "--estimator", "stein", "--target", "gmm2d", "--samples", "1000000"],
            &["--samples 1000000"],
        ),
        (
            &[
                "sample",
                "--target",
                "gmm2d",
                "--sampler",
                "ula",
                "--steps",
                "5",
                "--step-size",
                "0.1",
                "--chains",
                "1000000000",
            ],
            &["--chains 1000000000", "memory"],
        ),
        (
            &[
                "sample",
                "--target",
                "gmm2d",
                "--sampler",
                "ula",
                "--steps",
                "5",
                "--step-size",
                "0.1",
                "--threads",
                "10000",
            ],
            &["--threads 10000", "1..=1024"],
        ),
        (&["bench", "--workloads", "dsm_step", "--dims", "100000000"], &["--dims 100000000", "memory"]),
        (&["bench", "--reps", "0"], &["--reps 0"]),
    ] {
        fails_with(flags, needles);
    }
    assert!(!Path::new(o).exists());
    // A 20000-column data file trained with a full second-order head: 2 10^8 outputs per point.
    let wide = dir.path().join("wide.csv");
    let row = vec!["0.5"; 20_000].join(",");
    std::fs::write(&wide, format!("{row}\n{row}\n{row}\n")).unwrap();
    let target = format!("csv:{}", wide.display());
    fails_with(&["train", "--target", &target, "--s2", "full", "--out", o], &["20000-dimensional", "memory"]);
    let model = good_model(dir.path());
    let m = model.to_str().unwrap();
    fails_with(&["eval", "--model", m, "--points", "1000000000000"], &["--points 1000000000000", "memory"]);
}

#[test]
fn inputs_that_would_make_numbers_silently_wrong_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = good_model(dir.path());
    let m = model.to_str().unwrap();
    let out = dir.path().join("s.npy");
    let o = out.to_str().unwrap();
    for (cell, shown) in [("1e39", "1e39"), ("3e38", "3e38")] {
        let points = dir.path().join("big.csv");
        std::fs::write(&points, format!("0.1,0.2\n{cell},0\n")).unwrap();
        let p = points.to_str().unwrap();
        fails_with(
            &["score", "--model", m, "--input", p, "--out", o],
            &["big.csv", "row 2, column 1", shown],
        );
        let target = format!("csv:{p}");
        fails_with(&["train", "--target", &target, "--out", o], &["big.csv", "row 2, column 1", shown]);
    }
    let header = dir.path().join("h.csv");
    std::fs::write(&header, "0.1,abc\n1,2\n").unwrap();
    let h = header.to_str().unwrap();
    fails_with(&["score", "--model", m, "--input", h, "--out", o], &["h.csv", "row 1, column 2", "abc"]);
    assert!(!out.exists());
    for sigma in ["1e308", "1e30", "1e-45", "1e-320"] {
        fails_with(&["train", "--sigma", sigma, "--out", o], &["sigma = ", "[1e-4, 1e4]"]);
    }
    fails_with(
        &[
            "sample",
            "--target",
            "gauss:dim=2,cond=1e17",
            "--sampler",
            "ula",
            "--steps",
            "5",
            "--step-size",
            "0.01",
        ],
        &["cond", "1e17", "[1, 1e12]"],
    );
    fails_with(&["train", "--resume", "--out", m, "--steps", "3"], &["--steps 3", "20 steps"]);
}

#[test]
fn non_finite_weights_are_refused_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let model = good_model(dir.path());
    // The same file with a NaN among the evaluated (averaged) weights every reader uses, written with
    // the safetensors crate (tweedie itself refuses to save non-finite weights).
    let bytes = std::fs::read(&model).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec(), view.data().to_vec()))
        .collect();
    let weight = tensors.iter_mut().find(|t| t.0 == "s1.0.weight").unwrap();
    weight.3[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
    let views = tensors.iter().map(|(name, dtype, shape, data)| {
        (name.clone(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap())
    });
    let bad = dir.path().join("nan.safetensors");
    std::fs::write(&bad, safetensors::serialize(views, header.metadata()).unwrap()).unwrap();
    let (b, points, out) = (bad.to_str().unwrap(), dir.path().join("p.csv"), dir.path().join("s.npy"));
    std::fs::write(&points, "0.1,0.2\n").unwrap();
    let needles = ["nan.safetensors", "\"s1.0.weight\"", "NaN at index 3"];
    fails_with(&["eval", "--model", b], &needles);
    let (p, o) = (points.to_str().unwrap(), out.to_str().unwrap());
    fails_with(&["score", "--model", b, "--input", p, "--out", o], &needles);
    fails_with(&["train", "--resume", "--out", b, "--steps", "40"], &needles);
    assert!(!out.exists());
}

/// Runs in `cwd` and returns (success, stderr).
fn run_in(cwd: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tweedie")).args(args).current_dir(cwd).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_changed_data_file_is_an_error_and_relative_paths_follow_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let rows: String = (0..40).map(|i| format!("{},{}\n", (i as f64 * 0.3).sin(), i % 3)).collect();
    std::fs::write(dir.path().join("data.csv"), &rows).unwrap();
    let train = ["train", "--target", "csv:data.csv", "--model", "s1", "--steps", "10", "--width", "8"];
    let (ok, err) = run_in(dir.path(), &[&train[..], &["--out", "runs/m.safetensors"]].concat());
    assert!(ok, "{err}");
    // From the checkpoint's own folder the relative data path still resolves (to ../data.csv).
    let (ok, err) = run_in(&runs, &["eval", "--model", "m.safetensors", "--json"]);
    assert!(ok, "{err}");
    std::fs::write(dir.path().join("data.csv"), rows.replace("0\n", "2\n")).unwrap();
    for args in [
        &["eval", "--model", "m.safetensors"][..],
        &["train", "--resume", "--out", "m.safetensors", "--steps", "20"],
    ] {
        let (ok, err) = run_in(&runs, args);
        assert!(
            !ok && err.contains("data.csv: the data file changed since m.safetensors"),
            "{args:?}: {err}"
        );
        assert!(err.contains("--allow-new-data") && !err.contains("panicked"), "{err}");
        let (ok, err) = run_in(&runs, &[args, &["--allow-new-data"]].concat());
        assert!(ok, "{args:?} --allow-new-data: {err}");
    }
    // The resumed run recorded the new file: it verifies again without the flag.
    let (ok, err) = run_in(&runs, &["eval", "--model", "m.safetensors"]);
    assert!(ok, "{err}");
}

#[test]
fn identical_runs_write_identical_bytes_and_unknown_targets_list_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    for out in [&a, &b] {
        ok(&small_run(out.to_str().unwrap(), &["--steps", "5", "--json"]));
    }
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "identical runs wrote different bytes");
    let o = dir.path().join("c.safetensors");
    fails_with(
        &["train", "--target", "banana", "--out", o.to_str().unwrap()],
        &["banana", "gmm2d", "gmm:dim=D", "gauss:dim=D", "csv:PATH", "npy:PATH", "uci:"],
    );
}
