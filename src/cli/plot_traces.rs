//! `tweedie plot-traces`: MMD² against step for several `tweedie sample --json` runs on one plot.

use super::sample_plots::{mmd_traces, save};
use crate::data::claim_output;
use crate::metrics::Trace;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use std::path::PathBuf;

/// Arguments of `tweedie plot-traces`.
#[derive(Args, Debug)]
pub struct PlotTracesArgs {
    /// Files of `tweedie sample --json` reports, one JSON object per line (`-` reads standard input).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Plot title.
    #[arg(long, default_value = "MMD^2 against step")]
    title: String,
}

/// One series from one report: its label (`sampler h=...`) and MMD² trace.
fn series(report: &Value) -> Option<(String, Trace)> {
    let name = format!("{} h={}", report["sampler"].as_str()?, report["step_size"].as_f64()?);
    let mut trace = Trace::default();
    for point in report["trace"].as_array()? {
        let step = point.get(0)?.as_u64()? as usize;
        trace.push(step, point.get(1).and_then(Value::as_f64).unwrap_or(f64::NAN));
    }
    Some((name, trace))
}

/// Reads the reports and draws their traces.
pub fn plot_traces(args: PlotTracesArgs) -> Result<()> {
    let inputs: Vec<(&str, &std::path::Path)> = args.inputs.iter().map(|p| ("input", p.as_path())).collect();
    let _claim = claim_output(&args.out, &inputs)?;
    let mut all = Vec::new();
    for path in &args.inputs {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        };
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let report: Value = serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not a JSON object", path.display(), i + 1))?;
            match series(&report) {
                Some(s) => all.push(s),
                None => bail!(
                    "{} line {}: not a `tweedie sample --json` report (needs sampler, step_size, trace)",
                    path.display(),
                    i + 1
                ),
            }
        }
    }
    if all.is_empty() {
        bail!("no reports in {:?}", args.inputs);
    }
    save(&mmd_traces(&args.title, &all).render(), &args.out)
}
