//! End-to-end tests of the `tweedie` command: training, evaluation, scoring, and the bad-input contract
//! (one error line naming the file/value/expectation, nonzero exit, no panic, nothing overwritten).

mod common;

use common::{fails_with, json, ok};
use std::path::{Path, PathBuf};

fn small_model(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("m.safetensors");
    let mut args =
        vec!["train", "--target", "gmm:dim=3,components=2,seed=5", "--steps", "30", "--batch", "32"];
    args.extend_from_slice(&["--width", "16", "--out", out.to_str().unwrap(), "--json"]);
    args.extend_from_slice(extra);
    let summary = json(&ok(&args));
    assert_eq!(summary["steps"], 30);
    out
}

/// Reads the shape from an NPY header.
fn npy_shape(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..128]);
    let inside = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    inside.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect()
}

#[test]
fn train_eval_and_score_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path(), &["--s2", "lowrank:2", "--form", "a", "--vr"]);
    let report = json(&ok(&["eval", "--model", model.to_str().unwrap(), "--points", "200", "--json"]));
    for key in ["s1_rel_err", "s2_rel_err", "s2_autodiff_rel_err", "s2_learned_ms", "s2_autodiff_ms"] {
        assert!(report[key].as_f64().is_some_and(f64::is_finite), "{key} missing in {report}");
    }
    assert_eq!(report["s2_kind"], "lowrank:2");
    // The ensemble of the head and the autodiff Jacobian: a weight in [0, 1] and its error.
    let w = report["s2_ensemble_weight"].as_f64().unwrap_or(f64::NAN);
    assert!((0.0..=1.0).contains(&w), "s2_ensemble_weight {w} in {report}");
    assert!(report["s2_ensemble_rel_err"].as_f64().is_some_and(f64::is_finite), "{report}");
    let points = dir.path().join("p.csv");
    std::fs::write(&points, "x,y,z\n0.1,0.2,0.3\n-1,0,1\n").unwrap();
    let (p, m) = (points.to_str().unwrap(), model.to_str().unwrap());
    let s1 = dir.path().join("s1.npy");
    ok(&["score", "--model", m, "--input", p, "--order", "1", "--out", s1.to_str().unwrap()]);
    assert_eq!(npy_shape(&s1), vec![2, 3]);
    let s2 = dir.path().join("s2.npy");
    let said =
        json(&ok(&["score", "--model", m, "--input", p, "--order", "2", "--out", s2.to_str().unwrap()]));
    assert_eq!(npy_shape(&s2), vec![2, 3, 2], "U factors");
    assert_eq!(npy_shape(&dir.path().join("s2.diag.npy")), vec![2, 3], "diagonal part");
    assert!(said["layout"].as_str().unwrap().contains("U U^T + diag(d)"));
    let jac = dir.path().join("jac.npy");
    ok(&["score", "--model", m, "--input", p, "--order", "2", "--autodiff", "--out", jac.to_str().unwrap()]);
    assert_eq!(npy_shape(&jac), vec![2, 3, 3]);
}

#[test]
fn resume_continues_to_the_new_total() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path(), &[]);
    let m = model.to_str().unwrap();
    let summary = json(&ok(&["train", "--resume", "--out", m, "--steps", "40", "--json"]));
    assert_eq!(summary["steps"], 40);
    fails_with(&["train", "--resume", "--out", m, "--sigma", "0.5"], &["--resume", "only --steps"]);
}

#[test]
fn data_file_targets_train_and_report_held_out_losses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    let rows: String =
        (0..60).map(|i| format!("{},{}\n", (i as f64 * 0.37).sin(), (i as f64 * 0.11).cos())).collect();
    std::fs::write(&data, rows).unwrap();
    let target = format!("csv:{}", data.display());
    let out = dir.path().join("m.safetensors");
    let o = out.to_str().unwrap();
    ok(&[
        "train", "--target", &target, "--model", "s1", "--steps", "20", "--width", "8", "--out", o, "--json",
    ]);
    let report = json(&ok(&["eval", "--model", o, "--json"]));
    assert_eq!(report["held_out_points"], 6);
    assert!(report["held_out_dsm_loss"].as_f64().is_some_and(f64::is_finite));
}

#[test]
fn energy_models_train_evaluate_score_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.safetensors");
    let o = out.to_str().unwrap();
    let common =
        ["--model", "energy", "--steps", "40", "--batch", "64", "--width", "16", "--out", o, "--json"];
    ok(&[&["train", "--target", "gmm2d", "--objective", "ssm-vr"], &common[..]].concat());
    let report = json(&ok(&["eval", "--model", o, "--points", "300", "--json"]));
    assert!(report["s1_rel_err"].as_f64().is_some_and(f64::is_finite), "{report}");
    assert!(report["s2_autodiff_rel_err"].is_null() && report["s2_rel_err"].is_null(), "{report}");
    let points = dir.path().join("p.csv");
    std::fs::write(&points, "0.1,0.2\n-1,0\n").unwrap();
    let (p, s1) = (points.to_str().unwrap(), dir.path().join("s1.npy"));
    ok(&["score", "--model", o, "--input", p, "--order", "1", "--out", s1.to_str().unwrap()]);
    assert_eq!(npy_shape(&s1), vec![2, 2]);
    fails_with(&["score", "--model", o, "--input", p, "--order", "2", "--out", "never.npy"], &["--order 1"]);
    let mala = ["sample", "--model", o, "--target", "gmm2d", "--sampler", "mala", "--chains", "8"];
    let sampled =
        json(&ok(
            &[&mala[..], &["--steps", "5", "--step-size", "0.05", "--reference", "50", "--json"]].concat()
        ));
    assert_eq!(sampled["sampler"], "mala");
    // On a data file: held-out losses, the exact score-matching loss and the test log-likelihood.
    let data = dir.path().join("d.csv");
    let rows: String =
        (0..80).map(|i| format!("{},{}\n", (i as f64 * 0.37).sin(), (i as f64 * 0.11).cos())).collect();
    std::fs::write(&data, rows).unwrap();
    let target = format!("csv:{}", data.display());
    ok(&[&["train", "--target", &target, "--objective", "fd-ssm", "--force"], &common[..]].concat());
    let report = json(&ok(&["eval", "--model", o, "--log-z-tolerance", "0.02", "--json"]));
    for key in
        ["held_out_loss", "held_out_dsm_loss", "test_esm_loss", "test_loglik", "log_z", "log_z_std_err"]
    {
        assert!(report[key].as_f64().is_some_and(f64::is_finite), "{key} missing in {report}");
    }
    assert!(report["log_z_std_err"].as_f64().unwrap() <= 0.02, "{report}");
    assert_eq!(report["model"], "energy");
}

#[test]
fn uci_targets_train_energy_models_and_report_test_log_likelihood() {
    // The shipped copy, from a working directory with nothing in it and an empty data directory.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("no-data");
    let wine = "uci:redwine";
    let out = dir.path().join("e.safetensors");
    let o = out.to_str().unwrap();
    let summary = json(&ok(&[
        "train",
        "--target",
        wine,
        "--model",
        "energy",
        "--objective",
        "ssm",
        "--steps",
        "30",
        "--width",
        "16",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--out",
        o,
        "--json",
    ]));
    assert_eq!(summary["dim"], 11, "red wine has 11 columns after dropping quality");
    let report = json(&ok(&["eval", "--model", o, "--log-z-tolerance", "0.02", "--json"]));
    assert_eq!(report["held_out_points"], 159, "the test split: min(1000, N / 10) of 1599 rows");
    for key in ["test_loglik", "test_loglik_data_units", "test_esm_loss", "log_z"] {
        assert!(report[key].as_f64().is_some_and(f64::is_finite), "{key} missing in {report}");
    }
    fails_with(&["train", "--target", "uci:beer", "--out", o], &["uci:beer", "uci:redwine"]);
    fails_with(
        &["train", "--target", "uci:redwine=/nonexistent/wine.csv", "--out", o],
        &["/nonexistent/wine.csv (given explicitly)", "not found", "tweedie data fetch uci-redwine"],
    );
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "a;b\n1;2\n").unwrap();
    let wrong = format!("uci:parkinsons={}", other.display());
    fails_with(&["train", "--target", &wrong, "--out", o], &["other.csv", "columns"]);
}

#[test]
fn bad_input_gives_one_line_errors_and_overwrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path(), &[]);
    let m = model.to_str().unwrap();
    let before = std::fs::read(&model).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let nan = write("nan.csv", "1,2,3\n4,NaN,6\n");
    let ragged = write("ragged.csv", "1,2,3\n4,5\n");
    let empty = write("empty.csv", "");
    let narrow = write("narrow.csv", "1,2\n3,4\n");
    let out = dir.path().join("never.npy");
    let o = out.to_str().unwrap();
    fails_with(
        &["score", "--model", m, "--input", &nan, "--out", o],
        &["nan.csv", "NaN", "expected a finite number"],
    );
    fails_with(
        &["score", "--model", m, "--input", &ragged, "--out", o],
        &["ragged.csv", "row 2", "expected 3"],
    );
    fails_with(&["score", "--model", m, "--input", &empty, "--out", o], &["empty.csv"]);
    fails_with(
        &["score", "--model", m, "--input", &narrow, "--out", o],
        &["narrow.csv", "2 columns", "expected 3"],
    );
    assert!(!out.exists(), "a failed score must not write its output");
    let csv_nan = format!("csv:{nan}");
    let bad_training: [(&[&str], &[&str]); 9] = [
        (&["--model", "s1", "--objective", "ssm", "--projections", "0"], &["--projections 0", "M >= 1"]),
        (&["--objective", "ssm-vr"], &["ssm-vr", "--model s1"]),
        (&["--sigma", "0"], &["sigma = 0", "[1e-4, 1e4]"]),
        (&["--sigma", "-0.5"], &["sigma = -0.5"]),
        (&["--target", "banana"], &["banana"]),
        (&["--target", "gmm:dim=0"], &["dim"]),
        (&["--target", &csv_nan], &["nan.csv", "NaN"]),
        (&["--s2", "lowrank:0"], &["lowrank:0"]),
        (&["--form", "c"], &["'c'"]),
    ];
    for (extra, needles) in bad_training {
        let mut args = vec!["train", "--steps", "5", "--out", m];
        args.extend_from_slice(extra);
        fails_with(&args, needles);
    }
    assert_eq!(std::fs::read(&model).unwrap(), before, "failed runs must not touch the checkpoint");
    // Checkpoints: truncated, not a checkpoint, missing.
    let truncated = dir.path().join("t.safetensors");
    std::fs::write(&truncated, &before[..before.len() / 2]).unwrap();
    fails_with(&["eval", "--model", truncated.to_str().unwrap()], &["t.safetensors", "truncated"]);
    let junk = write("junk.safetensors", "not a checkpoint at all");
    fails_with(&["eval", "--model", &junk], &["junk.safetensors"]);
    fails_with(&["eval", "--model", "/nonexistent/m.safetensors"], &["m.safetensors", "no such"]);
    // A model evaluated on a target of another dimension.
    fails_with(&["eval", "--model", m, "--target", "gmm2d"], &["dimension 2", "3"]);
}

#[test]
fn demo_help_and_version_work() {
    assert!(ok(&["--help"]).contains("demo"));
    assert!(ok(&["train", "--help"]).contains("--s2"));
    assert!(ok(&["--version"]).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn sample_reports_metrics_and_runs_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let target = "gmm:dim=3,components=2,seed=5";
    let with_s2 = small_model(dir.path(), &["--model", "s1s2", "--s2", "lowrank:1"]);
    let (npy, png) = (dir.path().join("x.npy"), dir.path().join("p.png"));
    let args =
        ["sample", "--target", target, "--model", with_s2.to_str().unwrap(), "--sampler", "ozaki-lowrank"];
    let r = json(&ok(&[
        &args[..],
        &["--steps", "20", "--step-size", "0.05", "--chains", "20", "--reference", "50", "--json"],
        &["--out", npy.to_str().unwrap(), "--plot", png.to_str().unwrap()],
    ]
    .concat()));
    assert_eq!(
        (r["reference"].as_str(), r["source"].as_str(), r["steps"].as_u64()),
        (Some("q_sigma"), Some("model"), Some(20))
    );
    for key in ["mmd2", "ksd", "mode_tv", "ess_min", "iat_max", "clipped_fraction", "seconds", "diverged"] {
        assert!(r.get(key).is_some(), "missing {key}");
    }
    assert_eq!(npy_shape(&npy), vec![r["live_chains"].as_u64().unwrap() as usize, 3]);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    // Capabilities the model lacks, and a model for another space.
    let s1_only = dir.path().join("s1");
    std::fs::create_dir(&s1_only).unwrap();
    let s1_only = small_model(&s1_only, &["--model", "s1"]);
    let run = |model: &Path, target: &str, sampler: &str| {
        vec!["sample", "--target", target, "--model", model.to_str().unwrap(), "--sampler", sampler]
            .into_iter()
            .map(String::from)
            .chain(["--steps", "5", "--step-size", "0.1"].map(String::from))
            .collect::<Vec<_>>()
    };
    for (args, needle) in [
        (run(&s1_only, target, "ozaki"), "no second-order (s2) head"),
        (run(&with_s2, target, "mala"), "MALA needs log p"),
        (run(&with_s2, target, "annealed-ozaki"), "noise-conditional"),
        (run(&with_s2, "gmm2d", "ula"), "dimension mismatch"),
    ] {
        fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[needle]);
    }
    fails_with(
        &["sample", "--target", target, "--sampler", "ula", "--steps", "5", "--step-size", "0"],
        &["step size"],
    );
    fails_with(
        &["sample", "--target", target, "--sampler", "ula", "--steps", "0", "--step-size", "1"],
        &["steps"],
    );
}

#[test]
fn ozaki_beats_ula_on_an_ill_conditioned_gaussian() {
    // gauss:dim=16,cond=100 (precisions in [1, 100]): ULA needs h < 2/100 and relaxes at rate h along
    // the slowest direction; Ozaki is exact at any h.
    let run = |sampler: &str, h: &str| {
        json(&ok(&[
            "sample",
            "--target",
            "gauss:dim=16,cond=100",
            "--sampler",
            sampler,
            "--step-size",
            h,
            "--steps",
            "400",
            "--chains",
            "200",
            "--reference",
            "400",
            "--trace",
            "4",
            "--tol",
            "0.01",
            "--json",
        ]))
    };
    let ula = run("ula", "0.01");
    let unstable = run("ula", "0.05");
    let ozaki = run("ozaki", "1");
    assert_eq!(ula["diverged"], 0);
    assert_eq!(unstable["diverged"], 200, "ULA at h = 0.05 diverges: {}", unstable["diverged_first_step"]);
    let level = ula["mmd2_stationary"].as_f64().unwrap();
    let ula_steps = ula["steps_to_tol"].as_u64().unwrap();
    let ozaki_steps = ozaki["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[1].as_f64().is_some_and(|v| v <= level + 0.01))
        .map(|p| p[0].as_u64().unwrap())
        .unwrap();
    assert!(3 * ozaki_steps <= ula_steps, "Ozaki reaches ULA's level at {ozaki_steps}, ULA at {ula_steps}");
    assert!(ozaki["mmd2_stationary"].as_f64().unwrap() <= level + 0.01);
}
