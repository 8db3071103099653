//! The `tweedie` command's numbers, not only its shapes: `score` against the library's own evaluation of
//! the same checkpoint for every head, NPY input, JSON reports whose numbers are numbers, the commands
//! the other tests never run (`estimate`, `bench`, `plot-traces`), `--resume` bit for bit, and bad input
//! that must fail with exactly one line.

mod common;

use common::{fails_with, json, ok};
use std::path::{Path, PathBuf};
use tweedie::linalg::Mat;
use tweedie::models::Model;
use tweedie::train::Checkpoint;

/// `value[key]` as a finite number; null, a string or a missing key fail.
#[track_caller]
fn number(value: &serde_json::Value, key: &str) -> f64 {
    match value.get(key).and_then(serde_json::Value::as_f64) {
        Some(v) if v.is_finite() => v,
        _ => panic!("{key} is not a finite number in {value}"),
    }
}

/// Trains a 3-D model for 30 steps with `extra` flags and returns its path.
fn small_model(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["train", "--target", "gmm:dim=3,components=2,seed=5", "--steps", "30"];
    args.extend_from_slice(&["--batch", "32", "--width", "16", "--out", out.to_str().unwrap(), "--json"]);
    args.extend_from_slice(extra);
    assert_eq!(number(&json(&ok(&args)), "steps"), 30.0);
    out
}

/// An NPY file's shape and its f32 data.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let file = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = file.shape().iter().map(|&s| s as usize).collect();
    (shape, file.into_vec::<f32>().unwrap())
}

/// Writes `rows` as a little-endian f64 NPY file (format 1.0, header padded to 64 bytes).
fn write_npy_f64(path: &Path, rows: &[Vec<f64>]) {
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}", rows.len(), rows[0].len());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    rows.iter().flatten().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

const POINTS: [[f64; 3]; 4] = [[0.1, 0.2, 0.3], [-1.0, 0.0, 1.0], [2.5, -0.7, 0.4], [0.0, 0.0, 0.0]];

#[track_caller]
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        // The same f32 computation on the same inputs; allow a few ulps for a different summation order.
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{what}[{k}]: {g} vs {w}");
    }
}

#[test]
fn score_values_equal_the_library_evaluation_of_the_checkpoint_for_every_head() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("p.csv");
    let body: String = POINTS.iter().map(|r| format!("{},{},{}\n", r[0], r[1], r[2])).collect();
    std::fs::write(&csv, format!("a,b,c\n{body}")).unwrap();
    let npy = dir.path().join("p.npy");
    write_npy_f64(&npy, &POINTS.map(|r| r.to_vec()));
    let x = Mat::from_fn(4, 3, |i, j| POINTS[i][j] as f32);
    for (name, head) in [("full", "full"), ("diag", "diag"), ("lowrank", "lowrank:2")] {
        let model_path = small_model(dir.path(), &format!("{name}.safetensors"), &["--s2", head]);
        let m = model_path.to_str().unwrap();
        let Model::Score(model) = Checkpoint::load(&model_path).unwrap().eval_model() else {
            panic!("a score model")
        };
        let out = |file: &str| dir.path().join(format!("{name}_{file}"));
        // Order 1, from CSV and from NPY input: s1 of the evaluated (averaged) weights.
        let want_s1 = model.score(&x);
        for (input, file) in [(&csv, "s1_csv.npy"), (&npy, "s1_npy.npy")] {
            let o = out(file);
            ok(&["score", "--model", m, "--input", input.to_str().unwrap(), "--out", o.to_str().unwrap()]);
            let (shape, s1) = read_npy(&o);
            assert_eq!(shape, [4, 3]);
            assert_close(&s1, want_s1.as_slice(), &format!("{head} s1 from {file}"));
        }
        // Order 2: the head's own layout, which must reassemble into the library's dense S2.
        let o = out("s2.npy");
        ok(&[
            "score",
            "--model",
            m,
            "--input",
            npy.to_str().unwrap(),
            "--order",
            "2",
            "--out",
            o.to_str().unwrap(),
        ]);
        let want = model.hessian_dense(&x).unwrap();
        let (shape, s2) = read_npy(&o);
        let dense: Vec<f32> = match head {
            "full" => {
                assert_eq!(shape, [4, 3, 3]);
                s2
            }
            "diag" => {
                assert_eq!(shape, [4, 3]);
                (0..36).map(|k| if (k % 9) % 4 == 0 { s2[k / 9 * 3 + (k % 9) / 4] } else { 0.0 }).collect()
            }
            _ => {
                assert_eq!(shape, [4, 3, 2]);
                let (d_shape, d) = read_npy(&dir.path().join(format!("{name}_s2.diag.npy")));
                assert_eq!(d_shape, [4, 3]);
                let u = |p: usize, i: usize, k: usize| s2[p * 6 + i * 2 + k];
                (0..36)
                    .map(|k| {
                        let (p, i, j) = (k / 9, (k % 9) / 3, k % 3);
                        u(p, i, 0) * u(p, j, 0)
                            + u(p, i, 1) * u(p, j, 1)
                            + if i == j { d[p * 3 + i] } else { 0.0 }
                    })
                    .collect()
            }
        };
        assert_close(&dense, &want, &format!("{head} s2"));
    }
}

#[test]
fn reports_hold_numbers_and_the_other_commands_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path(), "m.safetensors", &["--s2", "diag"]);
    let report = json(&ok(&["eval", "--model", model.to_str().unwrap(), "--points", "200", "--json"]));
    for key in ["s1_rel_err", "s2_rel_err", "s2_autodiff_rel_err", "s2_autodiff_diag_rel_err"] {
        assert!(number(&report, key) > 0.0, "{key} in {report}");
    }
    for key in ["s2_learned_ms", "s2_autodiff_ms"] {
        assert!(number(&report, key) >= 0.0);
    }
    assert_eq!(
        (report["s2_kind"].as_str(), report["s2_error_scope"].as_str()),
        (Some("diag"), Some("diagonal"))
    );
    // No ensemble for a diagonal head (it has no off-diagonal entries to blend).
    assert!(report["s2_ensemble_weight"].is_null() && report["s2_ensemble_rel_err"].is_null(), "{report}");
    // The kernel estimators: the error of the Stein estimator against the exact score is below 1 (an
    // estimate of zero has error exactly 1) on 300 samples of a 2-D Gaussian.
    for estimator in ["stein", "ssge"] {
        let r = json(&ok(&[
            "estimate",
            "--estimator",
            estimator,
            "--target",
            "gauss:dim=2,cond=2",
            "--samples",
            "300",
            "--json",
        ]));
        let err = number(&r, "s1_rel_err");
        assert!(err > 0.0 && err < 1.0, "{estimator}: {r}");
        assert!(number(&r, "bandwidth") > 0.0 && number(&r, "seconds") >= 0.0);
    }
    // bench: one JSON line per workload and dimension.
    let lines = ok(&["bench", "--workloads", "dsm_step,hessian_learned", "--dims", "2", "--reps", "1"]);
    let rows: Vec<serde_json::Value> = lines.lines().map(json).collect();
    assert_eq!(rows.len(), 2, "{lines}");
    for (row, workload) in rows.iter().zip(["dsm_step", "hessian_learned"]) {
        assert_eq!((row["workload"].as_str(), number(row, "dim")), (Some(workload), 2.0));
        assert!(number(row, "median_ms") > 0.0);
    }
    // sample --json lines, then plot-traces draws them.
    let mut traces = String::new();
    for sampler in ["ula", "mala"] {
        let r = ok(&[
            "sample",
            "--target",
            "gmm2d",
            "--sampler",
            sampler,
            "--steps",
            "20",
            "--step-size",
            "0.05",
            "--chains",
            "16",
            "--reference",
            "40",
            "--json",
        ]);
        let v = json(&r);
        for key in ["mmd2", "ksd", "mode_tv", "ess_min", "iat_max", "acceptance_rate", "seconds", "diverged"]
        {
            number(&v, key);
        }
        traces += &r;
    }
    let runs = dir.path().join("runs.jsonl");
    std::fs::write(&runs, traces).unwrap();
    let png = dir.path().join("t.png");
    ok(&["plot-traces", "--out", png.to_str().unwrap(), runs.to_str().unwrap()]);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[test]
fn resume_through_the_command_continues_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, split) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    let train = |out: &Path, steps: &str| {
        ok(&[
            "train",
            "--target",
            "gmm:dim=2,components=2,seed=3",
            "--s2",
            "lowrank:1",
            "--steps",
            steps,
            "--batch",
            "16",
            "--width",
            "8",
            "--checkpoint-every",
            "7",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    train(&straight, "25");
    train(&split, "11");
    ok(&["train", "--resume", "--out", split.to_str().unwrap(), "--steps", "25", "--json"]);
    let (a, b) = (Checkpoint::load(&straight).unwrap(), Checkpoint::load(&split).unwrap());
    assert_eq!((a.step, b.step), (25, 25));
    assert_eq!(a.model, b.model, "weights");
    assert_eq!(a.adam, b.adam, "optimiser state");
    assert_eq!(a.ema, b.ema, "weight average");
    assert_eq!(a.rng, b.rng, "RNG position");
}

#[test]
fn bad_input_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_str().unwrap().to_string()
    };
    let out = dir.path().join("never.safetensors");
    let o = out.to_str().unwrap();
    // TOML: a value of the wrong type, a syntax error (toml's own message has two lines), an unknown key.
    let wrong_type = write("type.toml", "steps = \"many\"\n");
    fails_with(&["train", "--config", &wrong_type, "--out", o], &["type.toml", "line 1", "u64"]);
    let syntax = write("syntax.toml", "steps = 5\nwidth = [\n");
    fails_with(&["train", "--config", &syntax, "--out", o], &["syntax.toml", "line 3", "expected"]);
    let unknown = write("unknown.toml", "sigmaa = 0.5\n");
    fails_with(&["train", "--config", &unknown, "--out", o], &["unknown.toml", "sigmaa"]);
    fails_with(&["train", "--sigma", "nan", "--steps", "5", "--out", o], &["sigma = NaN", "[1e-4, 1e4]"]);
    // Usage errors are one line too (clap's own are several).
    fails_with(&["train", "--bogus"], &["--bogus", "--help"]);
    fails_with(&["train", "--form", "c", "--out", o], &["'c'", "a, b"]);
    assert!(!out.exists(), "failed runs write nothing");
    // s2 asked of a model without a head.
    let s1_only = small_model(dir.path(), "s1.safetensors", &["--model", "s1"]);
    let points = write("p.csv", "0.1,0.2,0.3\n");
    fails_with(
        &["score", "--model", s1_only.to_str().unwrap(), "--input", &points, "--order", "2", "--out", o],
        &["s1.safetensors", "no second-order head"],
    );
}
