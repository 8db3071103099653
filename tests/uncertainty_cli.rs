//! End-to-end tests of the uncertainty commands: `tweedie eval --uq` on an analytic target and
//! `tweedie denoise` on files, with their one-line errors for bad input.

mod common;

use common::{fails_with, json, ok};
use std::path::Path;

/// Trains a tiny model on a 3-D mixture at sigma 0.3 (`extra` picks the head) and returns its path.
fn train(dir: &Path, name: &str, extra: &[&str]) -> String {
    let out = dir.join(name);
    let out = out.to_str().unwrap().to_string();
    let mut args =
        vec!["train", "--target", "gmm:dim=3,components=2,seed=5", "--steps", "60", "--batch", "32"];
    args.extend_from_slice(&["--width", "16", "--out", &out, "--json"]);
    args.extend_from_slice(extra);
    ok(&args);
    out
}

/// Writes `n` rows of `D = 3` deterministic points as CSV (`shift` offsets them).
fn write_points(path: &Path, n: usize, dim: usize, shift: f64) {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            (0..dim)
                .map(|j| format!("{:.6}", ((i * 7 + j * 3) as f64 * 0.37).sin() + shift))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    std::fs::write(path, rows.join("\n") + "\n").unwrap();
}

/// The shape in an NPY file's header.
fn npy_shape(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
    let inside = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).unwrap();
    inside.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect()
}

#[test]
fn eval_uq_measures_the_learned_head_the_autodiff_route_and_the_exact_posterior() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "m.safetensors", &["--s2", "lowrank:2"]);
    let report =
        json(&ok(&["eval", "--model", &model, "--uq", "--points", "200", "--iterations", "3", "--json"]));
    // The exact route is the reference itself; the learned head costs two passes and subspace
    // iteration 1 + K N = 1 + 3 * 3 (K = min(5, D)).
    assert_eq!(report["exact"]["post_mean_rel_err"], 0.0);
    assert_eq!(report["exact"]["post_cov_rel_err"], 0.0);
    assert_eq!(report["learned"]["network_calls"], 2);
    assert_eq!(report["autodiff"]["network_calls"], 10);
    for route in ["learned", "autodiff"] {
        for key in [
            "post_mean_rel_err",
            "post_cov_rel_err",
            "nll_isotropic",
            "nll_scalar",
            "nll_diag",
            "mahalanobis_per_dim",
            "rem5",
        ] {
            assert!(report[route][key].as_f64().is_some_and(f64::is_finite), "{route} {key}: {report}");
        }
        for key in ["coverage_68", "coverage_90", "coverage_95"] {
            assert!(report[route][key].as_f64().is_some_and(|c| (0.0..=1.0).contains(&c)), "{route} {key}");
        }
    }
    assert!(
        report["learned"]["nll_lowrank"].is_number() && report["autodiff"]["nll_full"].is_number(),
        "{report}"
    );
    // Both routes share the mean x~ + sigma^2 s1 of the same network.
    assert_eq!(report["learned"]["post_mean_rel_err"], report["autodiff"]["post_mean_rel_err"]);
}

#[test]
fn denoise_writes_means_that_are_tweedies_formula_and_the_requested_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "m.safetensors", &["--s2", "full"]);
    let (noisy, clean) = (dir.path().join("noisy.csv"), dir.path().join("clean.csv"));
    write_points(&noisy, 24, 3, 0.1);
    write_points(&clean, 24, 3, 0.0);
    let out = dir.path().join("out");
    let (n, c, o) = (noisy.to_str().unwrap(), clean.to_str().unwrap(), out.to_str().unwrap());
    let report = json(&ok(&[
        "denoise",
        "--model",
        &model,
        "--input",
        n,
        "--clean",
        c,
        "--pcs",
        "2",
        "--samples",
        "5",
        "--out",
        o,
        "--json",
    ]));
    assert!(report["ms_per_point"].as_f64().is_some_and(|t| t >= 0.0), "{report}");
    assert_eq!(npy_shape(&out.join("mean.npy")), vec![24, 3]);
    assert_eq!(npy_shape(&out.join("std.npy")), vec![24, 3]);
    assert_eq!(npy_shape(&out.join("pcs.npy")), vec![24, 2, 3]);
    assert_eq!(npy_shape(&out.join("pc_variances.npy")), vec![24, 2]);
    assert_eq!(npy_shape(&out.join("samples.npy")), vec![24, 5, 3]);
    for key in ["nll_full", "nll_diag", "nll_isotropic", "mahalanobis_per_dim", "coverage_90", "rem5"] {
        assert!(report["metrics"][key].as_f64().is_some_and(f64::is_finite), "{key}: {report}");
    }
    // mean = x~ + sigma^2 s1(x~) with s1 from `tweedie score` (f32 network, sigma = 0.3).
    let s1_path = dir.path().join("s1.npy");
    ok(&["score", "--model", &model, "--input", n, "--out", s1_path.to_str().unwrap()]);
    let s1 = tweedie::data::read_npy(&s1_path).unwrap();
    let x = tweedie::data::load_points(&noisy).unwrap();
    let mean = tweedie::data::read_npy(&out.join("mean.npy")).unwrap();
    for i in 0..24 {
        for j in 0..3 {
            let want = x.at(i, j) + 0.09 * s1.at(i, j);
            assert!((mean.at(i, j) - want).abs() < 1e-5, "mean ({i}, {j}): {} vs {want}", mean.at(i, j));
        }
    }
    // The autodiff route writes the same files but samples, and counts 1 + K N + D network calls.
    let out2 = dir.path().join("out2");
    let report = json(&ok(&[
        "denoise",
        "--model",
        &model,
        "--input",
        n,
        "--autodiff",
        "--pcs",
        "2",
        "--iterations",
        "4",
        "--out",
        out2.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(report["network_calls"], 1 + 2 * 4 + 3);
    assert_eq!(npy_shape(&out2.join("pcs.npy")), vec![24, 2, 3]);
    assert!(!out2.join("samples.npy").exists());
}

#[test]
fn bad_uncertainty_requests_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s1_only = train(dir.path(), "s1.safetensors", &["--model", "s1"]);
    let low = train(dir.path(), "low.safetensors", &["--s2", "lowrank:1"]);
    let (noisy, wide) = (dir.path().join("noisy.csv"), dir.path().join("wide.csv"));
    write_points(&noisy, 6, 3, 0.0);
    write_points(&wide, 6, 4, 0.0);
    let out = dir.path().join("out");
    let (n, w, o) = (noisy.to_str().unwrap(), wide.to_str().unwrap(), out.to_str().unwrap());
    fails_with(
        &["denoise", "--model", &s1_only, "--input", n, "--out", o],
        &["no second-order head", "--autodiff"],
    );
    fails_with(&["denoise", "--model", &low, "--input", w, "--out", o], &["wide.csv", "4", "3"]);
    fails_with(
        &["denoise", "--model", &low, "--input", n, "--clean", w, "--out", o],
        &["--clean", "6 x 4", "6 x 3"],
    );
    fails_with(
        &["denoise", "--model", &low, "--input", n, "--pcs", "2", "--out", o],
        &["--pcs 2", "rank of the low-rank head"],
    );
    fails_with(
        &["denoise", "--model", &low, "--input", n, "--autodiff", "--pcs", "4", "--out", o],
        &["--pcs 4", "at most 3"],
    );
    fails_with(&["denoise", "--model", &low, "--input", n, "--sigma", "0", "--out", o], &["--sigma 0"]);
    fails_with(
        &["denoise", "--model", &low, "--input", n, "--png", "x.png", "--out", o],
        &["--png x.png", "draws images", "point-cloud"],
    );
    let target = format!("csv:{n}");
    fails_with(&["eval", "--model", &low, "--target", &target, "--uq"], &["--uq", "analytic targets"]);
}
