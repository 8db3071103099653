//! `tweedie eval --uq`: the uncertainty of denoising on an analytic target, where the exact posterior is
//! known: the learned head, the autodiff route (subspace iteration) and the exact posterior's Gaussian.

use crate::models::Model;
use crate::targets::GaussianMixture;
use crate::train::Checkpoint;
use crate::uncertainty::{check_on_mixture, MixtureCheck};
use anyhow::{Context, Result};

/// Runs the check and prints it (one JSON object, or a table).
pub fn eval_uq(
    checkpoint: &Checkpoint,
    model_path: &std::path::Path,
    mixture: &GaussianMixture,
    name: &str,
    settings: MixtureCheck,
    json: bool,
) -> Result<()> {
    let model = checkpoint.eval_model();
    let Model::Score(model) = model else {
        anyhow::bail!(
            "--uq: {} is {} (expected a score network: s1, optionally with an s2 head)",
            model_path.display(),
            model.description()
        );
    };
    let sigma = checkpoint.config.sigma;
    let report =
        check_on_mixture(&model, mixture, sigma, settings).with_context(|| format!("--uq on {name}"))?;
    let mut value = report.to_json();
    value["target"] = name.into();
    value["steps"] = checkpoint.step.into();
    value["head"] = model.s2.as_ref().map_or("none".to_string(), |s| s.head.to_string()).into();
    value["iterations"] = settings.iterations.into();
    if json {
        println!("{value}");
        return Ok(());
    }
    let head = value["head"].as_str().unwrap_or("none");
    println!("{name}: {} test points from q_sigma, sigma = {sigma}, head {head}", settings.points);
    let keys = [
        "post_mean_rel_err",
        "post_cov_rel_err",
        "nll_isotropic",
        "nll_scalar",
        "nll_diag",
        "nll_lowrank",
        "nll_full",
        "mahalanobis_per_dim",
        "coverage_68",
        "coverage_90",
        "coverage_95",
        "rem5",
        "captured_error_energy",
        "network_calls",
        "ms_per_point",
    ];
    println!("| estimate | {} |", keys.join(" | "));
    println!("|---|{}", "---|".repeat(keys.len()));
    for route in ["learned", "autodiff", "exact"] {
        let row = &value[route];
        if row.is_null() {
            continue;
        }
        let cells: Vec<String> = keys
            .iter()
            .map(|k| match (row[*k].as_u64(), row[*k].as_f64()) {
                (Some(count), _) => count.to_string(),
                (None, Some(v)) => format!("{v:.4}"),
                (None, None) => "-".into(),
            })
            .collect();
        println!("| {route} | {} |", cells.join(" | "));
    }
    Ok(())
}
