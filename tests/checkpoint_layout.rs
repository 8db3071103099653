//! The checkpoint as a user of another language reads it: a forward pass written here from the
//! documented tensor names alone (`s1.{l}.weight` of shape `inputs x outputs`, `y = x W + b`, softplus
//! between layers; `s2.{l}...` with the head layouts of `docs/checkpoints.md`), with nothing but the
//! safetensors crate, must give what `tweedie score --order 1|2` gives, for every head, with the
//! weight average on (so storing the raw training weights under those names would fail).

use safetensors::SafeTensors;
use std::path::Path;
use std::process::Command;

fn ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tweedie"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "tweedie {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A little-endian f32 NPY file (format version 1) as its values.
fn read_npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]);
    assert!(header.contains("'<f4'"), "{header}");
    bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Tensor `name` as (shape, f32 values).
fn tensor(file: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = file.tensor(name).unwrap_or_else(|_| panic!("tensor {name} missing"));
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
    let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    (view.shape().to_vec(), values)
}

/// The network stored under `prefix` applied to one point, in f64: `h <- softplus(h W + b)` between
/// layers, no activation after the last.
fn forward(file: &SafeTensors, prefix: &str, x: &[f64]) -> Vec<f64> {
    let layers = (0..).take_while(|l| file.tensor(&format!("{prefix}.{l}.weight")).is_ok()).count();
    assert!(layers >= 2, "{prefix}: {layers} layers");
    let mut h = x.to_vec();
    for l in 0..layers {
        let (shape, w) = tensor(file, &format!("{prefix}.{l}.weight"));
        let (_, b) = tensor(file, &format!("{prefix}.{l}.bias"));
        assert_eq!(shape[0], h.len(), "{prefix}.{l}.weight is inputs x outputs");
        let mut y: Vec<f64> = b.iter().map(|&v| v as f64).collect();
        for (i, hi) in h.iter().enumerate() {
            for (j, yj) in y.iter_mut().enumerate() {
                *yj += hi * w[i * shape[1] + j] as f64;
            }
        }
        if l + 1 < layers {
            y.iter_mut().for_each(|v| *v = v.max(0.0) + (-v.abs()).exp().ln_1p());
        }
        h = y;
    }
    h
}

fn assert_close(ours: &[f64], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (a, &b) in ours.iter().zip(theirs) {
        assert!(
            (a - b as f64).abs() <= 1e-4 * (1.0 + a.abs()),
            "{what}: forward pass {a} vs tweedie score {b}"
        );
    }
}

#[test]
fn a_forward_pass_from_the_documented_tensors_gives_what_tweedie_score_gives() {
    let dir = tempfile::tempdir().unwrap();
    let points = dir.path().join("p.csv");
    let x = [[0.3, -1.2, 0.5], [-0.7, 0.1, 2.0]];
    std::fs::write(&points, x.iter().map(|r| format!("{},{},{}\n", r[0], r[1], r[2])).collect::<String>())
        .unwrap();
    let dim = 3;
    for head in ["full", "diag", "lowrank:2"] {
        let model = dir.path().join(format!("{}.safetensors", head.replace(':', "")));
        let m = model.to_str().unwrap();
        ok(&[
            "train",
            "--target",
            "gmm:dim=3,components=2,seed=5",
            "--s2",
            head,
            "--steps",
            "40",
            "--batch",
            "32",
            "--width",
            "16",
            "--ema",
            "0.9",
            "--out",
            m,
            "--json",
        ]);
        let bytes = std::fs::read(&model).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert!(file.tensor("train.s1.0.weight").is_ok(), "raw weights are kept for resuming");
        assert_ne!(
            tensor(&file, "train.s1.0.weight").1,
            tensor(&file, "s1.0.weight").1,
            "EMA differs from raw"
        );
        let (s1_out, s2_out) = (dir.path().join("s1.npy"), dir.path().join("s2.npy"));
        let p = points.to_str().unwrap();
        ok(&["score", "--model", m, "--input", p, "--order", "1", "--out", s1_out.to_str().unwrap()]);
        ok(&["score", "--model", m, "--input", p, "--order", "2", "--out", s2_out.to_str().unwrap()]);
        let (s1, s2) = (read_npy_f32(&s1_out), read_npy_f32(&s2_out));
        for (k, xk) in x.iter().enumerate() {
            assert_close(&forward(&file, "s1", xk), &s1[k * dim..(k + 1) * dim], &format!("{head} s1"));
            let raw = forward(&file, "s2", xk);
            match head {
                "full" => {
                    // Upper triangle, row-major (i <= j), of the symmetric D x D matrix.
                    let mut dense = vec![0.0; dim * dim];
                    let mut r = 0;
                    for i in 0..dim {
                        for j in i..dim {
                            (dense[i * dim + j], dense[j * dim + i]) = (raw[r], raw[r]);
                            r += 1;
                        }
                    }
                    assert_close(&dense, &s2[k * dim * dim..(k + 1) * dim * dim], "full s2");
                }
                "diag" => assert_close(&raw, &s2[k * dim..(k + 1) * dim], "diagonal s2"),
                _ => {
                    // U (D x r, row-major) first, then the diagonal d.
                    let rank = 2;
                    let diag = read_npy_f32(&dir.path().join("s2.diag.npy"));
                    assert_close(&raw[..dim * rank], &s2[k * dim * rank..(k + 1) * dim * rank], "low-rank U");
                    assert_close(&raw[dim * rank..], &diag[k * dim..(k + 1) * dim], "low-rank d");
                }
            }
        }
        // The export holds the same evaluated tensors and nothing for resuming.
        let export = dir.path().join("w.safetensors");
        ok(&["export", "--model", m, "--out", export.to_str().unwrap()]);
        let exported_bytes = std::fs::read(&export).unwrap();
        let exported = SafeTensors::deserialize(&exported_bytes).unwrap();
        let mut names: Vec<String> = exported.names().into_iter().cloned().collect();
        names.sort();
        assert!(names.iter().all(|n| n.starts_with("s1.") || n.starts_with("s2.")), "{names:?}");
        for name in &names {
            assert_eq!(tensor(&exported, name), tensor(&file, name), "{name}");
        }
    }
}
