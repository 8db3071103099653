//! End-to-end tests of `tweedie vae`, `tweedie wae` and `tweedie eval --ais` on the shipped 8 x 8 digits.

mod common;

use common::{fails_with, json, ok};
use std::path::{Path, PathBuf};

/// Trains a small VAE or WAE on digits (latent 2, 32 hidden units) and returns its checkpoint.
fn train(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.safetensors"));
    let mut all = args.to_vec();
    all.extend_from_slice(&["--target", "digits", "--latent", "2", "--hidden", "32", "--batch", "32"]);
    all.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let summary = json(&ok(&all));
    assert!(summary["seconds_per_step"].as_f64().unwrap() > 0.0, "{summary}");
    out
}

fn ais(model: &Path) -> serde_json::Value {
    let m = model.to_str().unwrap();
    let args = ["eval", "--model", m, "--ais", "--chains", "4", "--intermediate", "30", "--images", "40"];
    json(&ok(&[&args[..], &["--leapfrog-steps", "5", "--json"]].concat()))
}

#[test]
fn every_entropy_estimator_trains_a_vae_whose_ais_likelihood_improves_on_the_untrained_one() {
    let dir = tempfile::tempdir().unwrap();
    let untrained = ais(&train(dir.path(), "untrained", &["vae", "--encoder", "gaussian", "--steps", "0"]));
    let before = untrained["ais_nll"].as_f64().unwrap();
    for (name, extra) in [
        ("gaussian", vec!["--encoder", "gaussian"]),
        ("ssm-vr", vec!["--encoder", "implicit", "--entropy", "ssm-vr"]),
        ("stein", vec!["--encoder", "implicit", "--entropy", "stein"]),
        ("ssge", vec!["--encoder", "implicit", "--entropy", "ssge"]),
    ] {
        let args = [&["vae", "--steps", "300", "--particles", "4"][..], &extra].concat();
        let report = ais(&train(dir.path(), name, &args));
        let (nll, se) = (report["ais_nll"].as_f64().unwrap(), report["ais_nll_std_err"].as_f64().unwrap());
        assert_eq!(report["images"], 40);
        assert!(report["recon_error"].as_f64().unwrap().is_finite(), "{report}");
        // The untrained decoder gives every pixel probability ~1/2 (about 64 ln 2 = 44 nats); training must
        // gain well over the standard errors of both estimates (a few tenths of a nat to one nat).
        let margin = 3.0 * (se + untrained["ais_nll_std_err"].as_f64().unwrap());
        assert!(nll + margin < before, "{name}: AIS NLL {nll} ± {se} not below the untrained {before}");
    }
}

#[test]
fn wae_reports_reconstruction_and_the_latent_mmd() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "wae", &["wae", "--entropy", "stein", "--steps", "100"]);
    let report = json(&ok(&["eval", "--model", model.to_str().unwrap(), "--images", "50", "--json"]));
    assert_eq!(report["model"], "wae");
    assert!(report["recon_error"].as_f64().unwrap() > 0.0 && report["latent_mmd2"].is_number(), "{report}");
    fails_with(
        &["eval", "--model", model.to_str().unwrap(), "--ais"],
        &["--ais", "expected a VAE checkpoint"],
    );
}

#[test]
fn bad_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.safetensors");
    let o = out.to_str().unwrap();
    fails_with(
        &["vae", "--target", "digits", "--entropy", "stein", "--particles", "1", "--out", o],
        &["--particles 1", "stein"],
    );
    fails_with(&["wae", "--target", "digits", "--latent", "0", "--out", o], &["--latent 0"]);
    fails_with(&["vae", "--target", "digits", "--entropy", "kde", "--out", o], &["--entropy", "kde"]);
    // An autoencoder given to a score-model command, and a score model given to eval --ais.
    let vae = train(dir.path(), "vae", &["vae", "--steps", "1", "--particles", "2"]);
    let input = dir.path().join("points.csv");
    std::fs::write(&input, "0.1,0.2\n").unwrap();
    let score_out = dir.path().join("s.npy");
    fails_with(
        &[
            "score",
            "--model",
            vae.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            score_out.to_str().unwrap(),
        ],
        &["tweedie-autoencoder/1", "score-model checkpoint"],
    );
    let score_model = dir.path().join("m.safetensors");
    let m = score_model.to_str().unwrap();
    ok(&["train", "--target", "gmm:dim=2,components=2,seed=1", "--steps", "5", "--width", "8", "--out", m]);
    fails_with(&["eval", "--model", m, "--ais"], &["tweedie-autoencoder/1", "tweedie vae"]);
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24, big-endian), after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn eval_png_writes_a_grid_of_prior_samples_and_reconstructions() {
    let dir = tempfile::tempdir().unwrap();
    // 10 columns of 8 x 8 digits drawn 2x with 2-pixel gaps: 10 * 16 + 11 * 2 = 182 wide; 6 rows of
    // samples, one of test images and one of reconstructions: 8 * 16 + 9 * 2 = 146 high.
    for (name, args) in [
        ("vae", vec!["vae", "--steps", "5", "--particles", "2"]),
        ("wae", vec!["wae", "--entropy", "ssge", "--steps", "5"]),
    ] {
        let model = train(dir.path(), name, &args);
        let png = dir.path().join(format!("{name}.png"));
        let m = model.to_str().unwrap();
        let report =
            json(&ok(&["eval", "--model", m, "--images", "12", "--png", png.to_str().unwrap(), "--json"]));
        assert_eq!(report["model"].as_str().unwrap()[..3], name[..], "{report}");
        assert_eq!(png_size(&png), (182, 146), "{name}");
    }
    let bad = dir.path().join("no-such-dir").join("grid.png");
    let model = dir.path().join("wae.safetensors");
    fails_with(
        &["eval", "--model", model.to_str().unwrap(), "--png", bad.to_str().unwrap()],
        &["--png", "no-such-dir"],
    );
}

#[test]
fn per_image_ais_values_average_to_the_reported_nll() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "vae", &["vae", "--steps", "20", "--particles", "2"]);
    let m = model.to_str().unwrap();
    let args = ["eval", "--model", m, "--ais", "--chains", "2", "--intermediate", "10", "--images", "7"];
    let report = json(&ok(&[&args[..], &["--per-image", "--json"]].concat()));
    let values: Vec<f64> =
        report["ais_nll_per_image"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(values.len(), 7, "{report}");
    let mean = values.iter().sum::<f64>() / 7.0;
    // The same f64 numbers summed in the same order: equal to rounding.
    assert!((mean - report["ais_nll"].as_f64().unwrap()).abs() < 1e-9, "{report}");
    fails_with(&["eval", "--model", m, "--per-image"], &["--per-image", "--ais"]);
}
