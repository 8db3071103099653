//! `tweedie sample --model FILE` on U-Net image models end to end on the shipped 8x8 digits: annealed
//! Langevin and annealed Ozaki on a tiny noise-conditional model with a low-rank head (PNG grids, JSON
//! metrics), and the one-line errors of models and data the image samplers cannot take.

mod common;

use common::{fails_with, json, ok, train_digits_unet};
use std::path::Path;

/// Width and height of a PNG, from its header (IHDR: bytes 16..24, big-endian).
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", path.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn both_annealed_samplers_draw_digits_with_finite_metrics_and_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_digits_unet(
        dir.path(),
        "nc.safetensors",
        &["--model", "s1s2", "--s2", "lowrank:2", "--sigmas", "1.0:0.05:4"],
    );
    for sampler in ["annealed-ula", "annealed-ozaki"] {
        let (grid, chains) =
            (dir.path().join(format!("{sampler}.png")), dir.path().join(format!("{sampler}-chains.png")));
        let report = json(&ok(&[
            "sample",
            "--model",
            &model,
            "--sampler",
            sampler,
            "--chains",
            "12",
            "--steps-per-level",
            "2",
            "--step-size",
            "1e-3",
            "--reference",
            "100",
            "--json",
            "--plot",
            grid.to_str().unwrap(),
            "--plot-chains",
            chains.to_str().unwrap(),
        ]));
        // The checkpoint's schedule: 4 levels from 1.0 to 0.05, 2 steps each; h = eps / sigma_L^2.
        assert_eq!((report["levels"].as_u64(), report["steps"].as_u64()), (Some(4), Some(8)), "{report}");
        assert_eq!((report["sigma_max"].as_f64(), report["sigma_min"].as_f64()), (Some(1.0), Some(0.05)));
        assert!(
            (report["step_size_per_unit_variance"].as_f64().unwrap() - 1e-3 / 0.05f64.powi(2)).abs() < 1e-12
        );
        assert_eq!(
            (report["live_chains"].as_u64(), report["target"].as_str()),
            (Some(12), Some("digits:train"))
        );
        // MMD² with an RBF kernel lies in [-2, 2] (unbiased: slightly negative when close); the class TV
        // against 10 uniform classes in [0, 0.9]; the counts are of the 12 samples.
        let mmd2 = report["mmd2"].as_f64().unwrap();
        assert!(mmd2.is_finite() && (-2.0..=2.0).contains(&mmd2), "{report}");
        for key in ["class_tv", "class_tv_reference"] {
            let tv = report[key].as_f64().unwrap();
            assert!((0.0..=0.9 + 1e-12).contains(&tv), "{key}: {report}");
        }
        let counts: Vec<u64> =
            report["class_counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
        assert_eq!((counts.len(), counts.iter().sum::<u64>()), (10, 12), "{report}");
        let (seconds, wall) = (report["seconds"].as_f64().unwrap(), report["wall_seconds"].as_f64().unwrap());
        assert!(seconds > 0.0 && wall >= seconds, "{report}");
        // Ozaki may clip some of the head's eigenvalues; ULA looks at none.
        let clipped = report["clipped_fraction"].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&clipped) && (sampler == "annealed-ozaki" || clipped == 0.0),
            "{report}"
        );
        // Grids of 8x8 images at 2 screen pixels per pixel and 2 between tiles: 12 samples 8 to a row
        // (2 rows); 8 chains (rows) at the start and after each of the 4 levels (5 columns).
        let side = |n: u32| n * 16 + (n + 1) * 2;
        assert_eq!(png_size(&grid), (side(8), side(2)));
        assert_eq!(png_size(&chains), (side(5), side(8)));
    }
}

/// Writes `count` 8x8 RGB PNG files into `dir`.
fn write_rgb_pngs(dir: &Path, count: u8) {
    for k in 0..count {
        let file = std::fs::File::create(dir.join(format!("img{k:02}.png"))).unwrap();
        let mut encoder = png::Encoder::new(file, 8, 8);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let bytes: Vec<u8> = (0..8 * 8 * 3).map(|i| (i as u8).wrapping_mul(k + 1)).collect();
        encoder.write_header().unwrap().write_image_data(&bytes).unwrap();
    }
}

#[test]
fn models_and_data_the_image_samplers_cannot_take_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let single = train_digits_unet(dir.path(), "single.safetensors", &["--sigma", "0.5"]);
    let no_head = train_digits_unet(dir.path(), "nohead.safetensors", &["--sigmas", "1.0:0.1:3"]);
    let sample = |model: &str, sampler: &str, extra: &[&str]| {
        let mut args =
            vec!["sample", "--model", model, "--sampler", sampler, "--step-size", "1e-3", "--chains", "4"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, needles: &[&str]| {
        fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles);
    };
    run(sample(&single, "annealed-ula", &[]), &[&single, "single-sigma", "--sigmas HI:LO:N"]);
    run(
        sample(&no_head, "annealed-ozaki", &[]),
        &[&no_head, "second-order head", "use --sampler annealed-ula"],
    );
    run(sample(&no_head, "ula", &[]), &["--sampler ula", "annealed-ula or annealed-ozaki"]);
    for (flags, named) in [
        (&["--trace", "5"][..], "--trace"),
        (&["--tol", "0.01"][..], "--tol"),
        (&["--lanczos-iters", "8"][..], "--lanczos-iters"),
        (&["--steps", "6", "--steps-per-level", "2"][..], "--steps together with --steps-per-level"),
    ] {
        run(sample(&no_head, "annealed-ula", flags), &[named, "not for an image model", &no_head]);
    }
    let rgb = dir.path().join("rgb");
    std::fs::create_dir(&rgb).unwrap();
    write_rgb_pngs(&rgb, 10);
    let target = format!("images:{}", rgb.display());
    run(
        sample(&no_head, "annealed-ula", &["--target", &target]),
        &[&target, "RGB 8x8 images", "greyscale 8x8"],
    );
}

#[test]
fn a_unet_trains_on_a_folder_of_rgb_pngs_and_samples_colour_images() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = dir.path().join("rgb");
    std::fs::create_dir(&rgb).unwrap();
    write_rgb_pngs(&rgb, 20);
    let (target, model) = (format!("images:{}", rgb.display()), dir.path().join("rgb.safetensors"));
    let model = model.to_str().unwrap();
    // The image shape (8x8, 3 channels) is read from the folder's first file at configuration time.
    let summary = json(&ok(&[
        "train",
        "--target",
        &target,
        "--arch",
        "unet",
        "--channels",
        "8,16",
        "--groups",
        "4",
        "--sigmas",
        "1.0:0.1:3",
        "--batch",
        "8",
        "--steps",
        "3",
        "--json",
        "--out",
        model,
    ]));
    assert_eq!(summary["dim"], 8 * 8 * 3, "{summary}");
    let grid = dir.path().join("grid.png");
    let report = json(&ok(&[
        "sample",
        "--model",
        model,
        "--sampler",
        "annealed-ula",
        "--chains",
        "4",
        "--steps-per-level",
        "1",
        "--step-size",
        "1e-3",
        "--reference",
        "2",
        "--json",
        "--plot",
        grid.to_str().unwrap(),
    ]));
    assert_eq!((report["dim"].as_u64(), report["live_chains"].as_u64()), (Some(192), Some(4)), "{report}");
    // Unlabelled images are one class: the class balance is trivially 0.
    assert_eq!(report["class_tv"].as_f64(), Some(0.0), "{report}");
    // The grid is drawn in colour: some screen pixel has red != green.
    let mut reader =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&grid).unwrap())).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    assert!(buf[..frame.buffer_size()].chunks_exact(3).any(|p| p[0] != p[1]), "a grey grid");
}

#[test]
fn symmetric_pixels_are_recorded_in_the_checkpoint_and_read_back_by_sample() {
    let dir = tempfile::tempdir().unwrap();
    let model =
        train_digits_unet(dir.path(), "sym.safetensors", &["--pixels", "symmetric", "--sigmas", "1.0:0.1:3"]);
    let bytes = std::fs::read(&model).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let scaling = header.metadata().as_ref().and_then(|m| m.get("data.scaling")).unwrap();
    assert!(scaling.contains("[-1, 1]"), "{scaling}");
    let config = tweedie::train::Checkpoint::load(Path::new(&model)).unwrap().config;
    assert_eq!(config.pixels, tweedie::data::PixelRange::Symmetric);
    // Chains start at the mean training image (--init-std 0) and barely move (eps = 1e-9): the corner
    // pixel, 0 in every digit, is -1 in [-1, 1]; the denoising step moves it by sigma_L^2 s1 = 0.01 s1.
    let out = dir.path().join("samples.npy");
    let report = json(&ok(&[
        "sample",
        "--model",
        &model,
        "--sampler",
        "annealed-ula",
        "--chains",
        "4",
        "--steps-per-level",
        "1",
        "--step-size",
        "1e-9",
        "--init-std",
        "0",
        "--reference",
        "20",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(report["pixels"].as_str(), Some("symmetric"), "{report}");
    let samples = tweedie::data::read_npy(&out).unwrap();
    assert!((0..4).all(|i| (samples.at(i, 0) + 1.0).abs() < 0.2), "{:?}", samples.row(0));
    fails_with(
        &[
            "train",
            "--target",
            "gmm2d",
            "--pixels",
            "symmetric",
            "--steps",
            "1",
            "--out",
            dir.path().join("g").to_str().unwrap(),
        ],
        &["pixels", "symmetric", "image set"],
    );
}

#[test]
fn dense_curvature_runs_the_exact_ozaki_step_close_to_the_thin_factor() {
    let dir = tempfile::tempdir().unwrap();
    let model = train_digits_unet(
        dir.path(),
        "lr.safetensors",
        &["--model", "s1s2", "--s2", "lowrank:2", "--sigmas", "1.0:0.1:3"],
    );
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec![
            "sample",
            "--model",
            &model,
            "--sampler",
            "annealed-ozaki",
            "--chains",
            "6",
            "--steps-per-level",
            "1",
            "--step-size",
            "1e-3",
            "--reference",
            "20",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let report = json(&ok(&args));
        (report["ozaki_solver"].as_str().unwrap().to_string(), tweedie::data::read_npy(out).unwrap())
    };
    let (thin_name, thin) = run(&[], &dir.path().join("thin.npy"));
    let (dense_name, dense) = run(&["--dense-curvature"], &dir.path().join("dense.npy"));
    assert_eq!((thin_name.as_str(), dense_name.as_str()), ("thin factor", "dense eigen"));
    // Same start and noise: the two solvers differ only where range(U) is not invariant under diag(d),
    // so the samples differ, but by far less than they spread.
    let diff: f64 = thin.as_slice().iter().zip(dense.as_slice()).map(|(a, b)| (a - b).powi(2)).sum();
    let spread: f64 = dense.as_slice().iter().map(|v| (v - 0.5).powi(2)).sum();
    assert!(diff > 0.0 && diff < 0.1 * spread, "diff {diff} spread {spread}");
    fails_with(
        &[
            "sample",
            "--target",
            "gmm2d",
            "--sampler",
            "ozaki",
            "--steps",
            "2",
            "--step-size",
            "0.1",
            "--dense-curvature",
        ],
        &["--dense-curvature", "image models"],
    );
}
