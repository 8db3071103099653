//! U-Net image score models end to end on the shipped 8x8 digits: `train --arch unet`, `eval --json`
//! (PSNR of the Tweedie denoiser), the checkpoint's tensors and its round trip, and the one-line errors
//! of a U-Net where it cannot go.

mod common;

use common::{fails_with, json, ok, train_digits_unet_for};
use tweedie::linalg::Mat;
use tweedie::models::Model;
use tweedie::train::Checkpoint;

/// Trains the small U-Net of these tests (sigma 0.5) into `dir/unet.safetensors`.
fn train_unet(dir: &std::path::Path, steps: &str) -> std::path::PathBuf {
    train_digits_unet_for(dir, "unet.safetensors", steps, &["--sigma", "0.5"]).into()
}

#[test]
fn unet_on_digits_denoises_held_out_images() {
    let dir = tempfile::tempdir().unwrap();
    let out = train_unet(dir.path(), "200");
    let report = json(&ok(&["eval", "--model", out.to_str().unwrap(), "--json"]));
    let (noisy, denoised) =
        (report["psnr_noisy"].as_f64().unwrap(), report["psnr_denoised"].as_f64().unwrap());
    // sigma = 0.5 on [0, 1] pixels: MSE 0.25, 10 log10(4) dB.
    assert!((noisy - 6.0206).abs() < 1e-3, "{report}");
    // The PSNR is of a mean over 297 held-out images x 64 pixels; the squared errors' relative standard
    // error is about 2 / sqrt(19008) ~ 1.5%, 0.06 dB. 3 dB above the noisy input (halving the error) is
    // 50 such errors: a trained denoiser, not noise in the estimate.
    assert!(denoised > noisy + 3.0, "{report}");
    assert!(report.get("test_esm_loss").is_none(), "a U-Net has no exact score-matching pass: {report}");
}

#[test]
fn checkpoint_stores_the_graph_under_s1_names_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = train_unet(dir.path(), "3");
    let checkpoint = Checkpoint::load(&out).unwrap();
    let Model::Image(model) = checkpoint.eval_model() else {
        panic!("a U-Net checkpoint loads as Model::Image")
    };
    assert_eq!(model.image_shape(), (8, 8, 1));
    assert_eq!(model.sigma, 0.5);
    // The network is in the file under `s1.` names (every tensor's name, shape and values are checked
    // by the checkpoint's unit tests).
    let bytes = std::fs::read(&out).unwrap();
    let names = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert!(names.iter().any(|n| n == "s1.stem.weight") && names.iter().any(|n| n == "s1.out.conv.bias"));
    // Saved again and reloaded: the same weights, optimiser state and scores.
    let again = dir.path().join("again.safetensors");
    checkpoint.save(&again).unwrap();
    let reloaded = Checkpoint::load(&again).unwrap();
    assert_eq!(reloaded.model, checkpoint.model);
    assert_eq!(reloaded.adam.state(), checkpoint.adam.state());
    let x = Mat::from_fn(3, 64, |i, j| ((i * 64 + j) % 17) as f32 / 16.0);
    assert_eq!(reloaded.eval_model().score(&x), checkpoint.eval_model().score(&x));
    // Resuming continues the run.
    let summary =
        json(&ok(&["train", "--resume", "--steps", "5", "--json", "--out", again.to_str().unwrap()]));
    assert_eq!(summary["steps"], 5);
}

#[test]
fn a_unet_where_it_cannot_go_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("x.safetensors");
    let o = o.to_str().unwrap();
    fails_with(
        &["train", "--target", "gmm2d", "--arch", "unet", "--out", o],
        &["--arch unet", "gmm2d", "not an image set"],
    );
    fails_with(
        &["train", "--target", "digits", "--arch", "unet", "--channels", "4,6", "--groups", "4", "--out", o],
        &["--arch unet", "channels `4,6`", "6 is not divisible by 4 groups"],
    );
    fails_with(
        &[
            "train",
            "--target",
            "digits",
            "--arch",
            "unet",
            "--channels",
            "4,4,4,4,4",
            "--groups",
            "4",
            "--out",
            o,
        ],
        &["--arch unet", "8x8 image cannot be halved 4 times"],
    );
    fails_with(
        &["train", "--target", "digits", "--arch", "unet", "--model", "s1s2", "--out", o],
        &["--arch unet", "--s2 full given", "--s2 diag or --s2 lowrank:R"],
    );
    fails_with(
        &["train", "--target", "digits", "--channels", "8,16", "--out", o],
        &["--channels applies to --arch unet"],
    );
    let unet = train_unet(dir.path(), "2");
    let unet = unet.to_str().unwrap();
    let points = dir.path().join("points.csv");
    std::fs::write(&points, vec!["0.5"; 64].join(",") + "\n").unwrap();
    let points = points.to_str().unwrap();
    fails_with(
        &["denoise", "--model", unet, "--input", points, "--out", o],
        &[unet, "no second-order head", "--autodiff"],
    );
    fails_with(
        &["score", "--model", unet, "--order", "2", "--input", points, "--out", o],
        &[unet, "no second-order head", "--s2 diag"],
    );
}

#[test]
fn denoise_on_a_data_set_draws_noisy_images_and_runs_the_autodiff_route() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_unet(dir.path(), "20");
    let (m, out) = (model.to_str().unwrap(), dir.path().join("uq"));
    let report = json(&ok(&[
        "denoise",
        "--model",
        m,
        "--input",
        "digits:test",
        "--images",
        "12",
        "--autodiff",
        "--pcs",
        "2",
        "--iterations",
        "3",
        "--probes",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]));
    // 1 + K N subspace-iteration calls and 4 Hutchinson probes.
    assert_eq!(
        (report["points"].as_u64(), report["network_calls"].as_u64()),
        (Some(12), Some(1 + 2 * 3 + 4))
    );
    for key in ["nll_isotropic", "nll_diag", "mahalanobis_per_dim", "coverage_90", "rem5", "mse_per_dim"] {
        assert!(report["metrics"][key].as_f64().is_some_and(f64::is_finite), "{key}: {report}");
    }
    // The noisy copies are written, and the means are Tweedie's formula on them: x~ + sigma^2 s1(x~).
    let noisy_path = out.join("noisy.npy");
    let noisy = tweedie::data::read_npy(&noisy_path).unwrap();
    assert_eq!((noisy.rows(), noisy.cols()), (12, 64));
    let s1_path = dir.path().join("s1.npy");
    ok(&["score", "--model", m, "--input", noisy_path.to_str().unwrap(), "--out", s1_path.to_str().unwrap()]);
    let (s1, mean) =
        (tweedie::data::read_npy(&s1_path).unwrap(), tweedie::data::read_npy(&out.join("mean.npy")).unwrap());
    for i in 0..12 {
        for j in 0..64 {
            let want = noisy.at(i, j) + 0.25 * s1.at(i, j);
            assert!((mean.at(i, j) - want).abs() < 1e-4, "mean ({i}, {j}): {} vs {want}", mean.at(i, j));
        }
    }
    fails_with(
        &[
            "denoise",
            "--model",
            m,
            "--input",
            "digits:test",
            "--clean",
            noisy_path.to_str().unwrap(),
            "--autodiff",
            "--out",
            out.to_str().unwrap(),
        ],
        &["already the clean points"],
    );
    fails_with(
        &[
            "denoise",
            "--model",
            m,
            "--input",
            noisy_path.to_str().unwrap(),
            "--images",
            "3",
            "--autodiff",
            "--out",
            out.to_str().unwrap(),
        ],
        &["--images 3: only with a data set"],
    );
    fails_with(
        &["denoise", "--model", m, "--input", "digits:test", "--out", out.to_str().unwrap()],
        &["no second-order head", "--autodiff"],
    );
}
