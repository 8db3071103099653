//! U-Net image models with second-order heads and noise-conditional training end to end on the shipped
//! 8x8 digits: `train --s2 lowrank:R` / `--sigmas`, `eval --json` (held-out D2SM loss, the learned
//! head's cost against the autodiff Jacobian diagonal, PSNR per sigma, `--png`), `score --order 2`, the
//! head fitted by likelihood (`--form nll`), and the one-line errors of settings a U-Net cannot take.

mod common;

use common::{fails_with, json, ok, train_digits_unet as train};
use tweedie::models::{Model, NoiseSchedule};
use tweedie::train::Checkpoint;

#[test]
fn low_rank_head_trains_evaluates_draws_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "s2.safetensors", &["--s2", "lowrank:3", "--sigma", "0.5"]);
    let png = dir.path().join("grid.png");
    let report =
        json(&ok(&["eval", "--model", &model, "--json", "--held-out", "40", "--png", png.to_str().unwrap()]));
    assert_eq!(report["held_out_points"], 40, "{report}");
    assert!(report["held_out_d2sm_loss"].as_f64().is_some_and(f64::is_finite), "{report}");
    let cost = &report["s2_cost"];
    assert_eq!(cost["autodiff_diag"], "exact: 64 JVPs (unit tangent rows, 64 per pass)", "{report}");
    assert!(cost["learned_ms_per_image"].as_f64().unwrap() > 0.0, "{report}");
    assert!(cost["autodiff_diag_ms_per_image"].as_f64().unwrap() > 0.0, "{report}");
    assert!(cost["learned_vs_autodiff_diag_rel_diff"].as_f64().is_some_and(f64::is_finite), "{report}");
    // Three rows (noisy, denoised, clean) of 8 images, 8x8 pixels at scale 2 with 2-pixel gaps around
    // every tile.
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let (w, h) = (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (8 * 16 + 9 * 2, 3 * 16 + 4 * 2));
    // The head's factors: U is N x 64 x 3, its diagonal in the side file.
    let points = dir.path().join("points.csv");
    std::fs::write(&points, [vec!["0.5"; 64].join(","), vec!["0.1"; 64].join(",")].join("\n") + "\n")
        .unwrap();
    let out = dir.path().join("s2.npy");
    let written = json(&ok(&[
        "score",
        "--model",
        &model,
        "--order",
        "2",
        "--input",
        points.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(
        written["layout"].as_str().unwrap().split(':').next(),
        Some("s2 (low-rank head) = U U^T + diag(d)")
    );
    assert!(dir.path().join("s2.diag.npy").exists());
    let Model::Image(image) = Checkpoint::load(std::path::Path::new(&model)).unwrap().eval_model() else {
        panic!("an image model")
    };
    assert_eq!(image.second_order_head().map(|h| h.to_string()), Some("lowrank:3".into()));
}

#[test]
fn noise_conditional_model_records_its_schedule_and_is_evaluated_per_sigma() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "nc.safetensors", &["--sigmas", "1.0:0.1:5"]);
    let Model::Image(image) = Checkpoint::load(std::path::Path::new(&model)).unwrap().eval_model() else {
        panic!("an image model")
    };
    assert_eq!(image.schedule, Some(NoiseSchedule { hi: 1.0, lo: 0.1, levels: 5 }));
    let report = json(&ok(&["eval", "--model", &model, "--json", "--held-out", "40"]));
    let levels: Vec<(f64, f64)> = report["per_sigma"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["sigma"].as_f64().unwrap(), l["psnr_noisy"].as_f64().unwrap()))
        .collect();
    // Largest, middle (k = 2 of 0..4: sqrt(0.1)) and smallest level; noisy PSNR -20 log10(sigma).
    let want = [1.0, 0.1f64.sqrt(), 0.1];
    assert_eq!(levels.len(), 3, "{report}");
    for ((sigma, noisy), want) in levels.iter().zip(want) {
        assert!((sigma - want).abs() < 1e-12 && (noisy + 20.0 * want.log10()).abs() < 1e-9, "{report}");
    }
}

#[test]
fn settings_an_image_head_or_schedule_cannot_take_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("x.safetensors");
    let o = o.to_str().unwrap();
    let base = ["train", "--target", "digits", "--arch", "unet", "--out", o];
    let with = |extra: Vec<&'static str>| {
        let mut args = base.to_vec();
        args.extend(extra);
        args
    };
    fails_with(&with(vec!["--s2", "full"]), &["--s2 full given", "--s2 diag or --s2 lowrank:R"]);
    fails_with(&with(vec!["--s2", "lowrank:65"]), &["--s2 lowrank:65", "from 1 to the 64 image values"]);
    fails_with(
        &with(vec!["--model", "s1s2", "--s2", "lowrank:3", "--form", "nll", "--head-pcs", "4"]),
        &["head_pcs = 4 is invalid", "at most the head's rank R"],
    );
    fails_with(
        &with(vec!["--model", "s1s2", "--s2", "lowrank:3", "--head-pcs", "2"]),
        &["head_pcs = 2 is invalid", "0 unless --form nll --s2 lowrank:R"],
    );
    fails_with(&with(vec!["--sigmas", "0.1:1.0:4"]), &["--sigmas `0.1:1.0:4`", "HI <= LO"]);
    fails_with(&with(vec!["--sigmas", "1.0:0.1:1"]), &["--sigmas `1.0:0.1:1`", "N < 2"]);
    fails_with(
        &with(vec!["--sigmas", "1.0:0.1:4", "--sigma", "0.5"]),
        &["--sigmas 1:0.1:4 with --sigma", "drop --sigma"],
    );
    fails_with(
        &["train", "--target", "digits", "--sigmas", "1.0:0.1:4", "--out", o],
        &["--sigmas applies to --arch unet"],
    );
    fails_with(
        &["train", "--target", "digits", "--s2", "diag", "--form", "nll", "--out", o],
        &["--form nll fits the diag or lowrank head of an image model", "not an MLP"],
    );
}

#[test]
fn a_head_fitted_by_likelihood_reports_its_objective() {
    // The likelihood alone, and with the first 2 factor columns trained as principal directions (the
    // checkpoint's config carries --head-pcs to eval).
    let dir = tempfile::tempdir().unwrap();
    for (name, pcs) in [("nll.safetensors", None), ("nll-pcs.safetensors", Some("2"))] {
        let mut flags = vec!["--s2", "lowrank:3", "--form", "nll", "--sigma", "0.5"];
        flags.extend(pcs.iter().flat_map(|k| ["--head-pcs", k]));
        let model = train(dir.path(), name, &flags);
        let report = json(&ok(&["eval", "--model", &model, "--json", "--held-out", "20"]));
        assert_eq!(report["head_objective"], "nll", "{report}");
        assert_eq!(report["head_pcs"].as_u64(), pcs.map(|k| k.parse().unwrap()), "{report}");
        // The head's term is an NLL in nats per pixel (less a fraction in [0, 1]): of order one, not a
        // D2SM loss of order D^2.
        let nll = report["held_out_d2sm_loss"].as_f64().unwrap();
        assert!(nll.is_finite() && nll.abs() < 10.0, "{report}");
    }
}

#[test]
fn denoise_reads_the_low_rank_covariance_of_an_image_head() {
    // Form B, and the likelihood fit whose diagonal map is read through its log link.
    for form in ["b", "nll"] {
        denoise_reads_the_covariance_of(form);
    }
}

fn denoise_reads_the_covariance_of(form: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), "s2.safetensors", &["--s2", "lowrank:3", "--sigma", "0.5", "--form", form]);
    let (out, png) = (dir.path().join("uq"), dir.path().join("uq.png"));
    let report = json(&ok(&[
        "denoise",
        "--model",
        &model,
        "--input",
        "digits:test",
        "--images",
        "10",
        "--pcs",
        "2",
        "--samples",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--json",
    ]));
    // The picture: rows of clean, noisy, mean, std and the 2 principal directions of 8 images, 8x8 pixels
    // at scale 2 with 2-pixel gaps.
    let bytes = std::fs::read(&png).unwrap();
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((&bytes[1..4], size(16), size(20)), (&b"PNG"[..], 8 * 16 + 9 * 2, 6 * 16 + 7 * 2));
    // The learned route: one pass of s1 and one of the head.
    assert_eq!(
        (report["route"].as_str(), report["network_calls"].as_u64()),
        (Some("learned"), Some(2)),
        "{report}"
    );
    for key in ["nll_lowrank", "nll_diag", "nll_isotropic", "mahalanobis_per_dim", "coverage_90", "rem5"] {
        assert!(report["metrics"][key].as_f64().is_some_and(f64::is_finite), "{key}: {report}");
    }
    // The written variances are sigma^4 (U U^T + diag d) + sigma^2 on the diagonal, with U and d from the
    // model itself (f32 network; the variances are of order 0.25).
    let noisy = tweedie::data::read_npy(&out.join("noisy.npy")).unwrap();
    let Model::Image(image) = Checkpoint::load(std::path::Path::new(&model)).unwrap().eval_model() else {
        panic!("an image model");
    };
    let (u, d) = image.second_order_at(&noisy.cast(), 0.5).expect("a low-rank head");
    let std = tweedie::data::read_npy(&out.join("std.npy")).unwrap();
    for i in 0..10 {
        for j in 0..64 {
            let uu: f64 = (0..3).map(|r| f64::from(u.at(i, j * 3 + r)).powi(2)).sum();
            let variance = 0.0625 * (uu + f64::from(d.at(i, j))) + 0.25;
            let (got, want) = (std.at(i, j), variance.sqrt());
            assert!((got - want).abs() <= 1e-4 * want, "{form}: std ({i}, {j}): {got} vs {want}");
            // The likelihood's diagonal part sigma^4 d + sigma^2 = sigma^2 exp(m) is positive at every
            // pixel, so its covariance is positive definite (form B's may be negative anywhere).
            if form == "nll" {
                assert!(0.0625 * f64::from(d.at(i, j)) + 0.25 > 0.0, "({i}, {j}): d = {}", d.at(i, j));
            }
        }
    }
}
