//! What every end-to-end test of the `tweedie` binary shares: running it, and the success and failure
//! contracts (a failure is exit code 1 with exactly one stderr line naming what was wrong, never a panic).
#![allow(dead_code)] // each test binary uses its own subset

use std::process::{Command, Output};

/// Runs the binary from the system's temporary folder (no test depends on the working directory) with
/// `$TWEEDIE_DATA` pointing at a folder that does not exist (no test depends on the user's data).
pub fn tweedie(args: &[&str]) -> Output {
    let temp = std::env::temp_dir();
    Command::new(env!("CARGO_BIN_EXE_tweedie"))
        .args(args)
        .current_dir(&temp)
        .env("TWEEDIE_DATA", temp.join("tweedie-tests-no-data-here"))
        .output()
        .expect("the binary runs")
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and requires success, returning stdout.
pub fn ok(args: &[&str]) -> String {
    let out = tweedie(args);
    assert!(out.status.success(), "tweedie {args:?} failed: {}", stderr(&out));
    stdout(&out)
}

/// Runs and requires a clean failure: exit code 1, no panic, exactly one stderr line, containing every
/// `needles` entry.
pub fn fails_with(args: &[&str], needles: &[&str]) {
    let out = tweedie(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "tweedie {args:?} should fail with exit code 1: {err}");
    assert!(!err.contains("panicked"), "tweedie {args:?} panicked: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "tweedie {args:?}: expected one error line, got {err:?}");
    assert!(err.starts_with("error: "), "tweedie {args:?}: {err:?}");
    for needle in needles {
        assert!(err.contains(needle), "tweedie {args:?}: error {err:?} lacks {needle:?}");
    }
}

/// One JSON object.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}

/// Trains a small U-Net on the shipped 8x8 digits (channels 8,16, 30 steps of 32) with extra flags into
/// `dir/name`; returns the checkpoint's path.
pub fn train_digits_unet(dir: &std::path::Path, name: &str, flags: &[&str]) -> String {
    train_digits_unet_for(dir, name, "30", flags)
}

/// [`train_digits_unet`] for `steps` steps.
pub fn train_digits_unet_for(dir: &std::path::Path, name: &str, steps: &str, flags: &[&str]) -> String {
    let out = dir.join(name).to_str().unwrap().to_string();
    let mut args = vec![
        "train",
        "--target",
        "digits",
        "--arch",
        "unet",
        "--channels",
        "8,16",
        "--groups",
        "4",
        "--batch",
        "32",
        "--steps",
        steps,
        "--learning-rate",
        "0.003",
        "--json",
        "--out",
    ];
    args.push(&out);
    args.extend_from_slice(flags);
    let summary = json(&ok(&args));
    assert_eq!(summary["dim"], 64, "8x8 digits: {summary}");
    out
}
