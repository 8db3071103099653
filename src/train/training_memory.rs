//! The memory a training configuration needs, estimated from its sizes before anything is allocated
//! (see [`crate::memory_budget`]).

use super::config::TrainConfig;
use super::TrainError;
use crate::memory_budget::{training_bytes, MemoryBudget, NetworkSize};
use crate::models::{ModelKind, SecondOrderHead};
use crate::objectives::{Objective, ScoreMatching};

/// Refuses a configuration whose training would need more memory than `budget` (see
/// [`training_bytes`]), naming the sizes: the networks' width and depth, the batch, the data dimension.
pub(crate) fn check_memory(
    config: &TrainConfig,
    objective: Objective,
    dim: usize,
    budget: &MemoryBudget,
) -> Result<(), TrainError> {
    let d = dim as f64;
    let networks = network_sizes(config, dim);
    // Objective::noise_rows in f64: `projections` may be as large as a usize holds.
    let rows_per_point = match objective {
        Objective::ScoreMatching(ScoreMatching::Ssm { projections, .. }) => 1.0 + projections as f64,
        Objective::ScoreMatching(ScoreMatching::FdSsm { .. }) => 2.0,
        _ => 1.0,
    };
    let rows = config.batch as f64 * rows_per_point;
    // Exact score matching pushes D tangents per row; the other objectives at most two.
    let tangents = if objective == Objective::ScoreMatching(ScoreMatching::Esm) { d + 1.0 } else { 2.0 };
    let what = || {
        let projections = match objective {
            Objective::ScoreMatching(ScoreMatching::Ssm { projections, .. }) => {
                format!(" --projections {projections}")
            }
            _ => String::new(),
        };
        format!(
            "--width {} --depth {} --batch {}{projections} on {dim}-dimensional data",
            config.width, config.depth, config.batch
        )
    };
    budget.check(what, training_bytes(&networks, rows, tangents)).map_err(|e| TrainError::TooLarge {
        what: e.what,
        bytes: e.bytes,
        available: e.available,
    })
}

/// The sizes of the networks a configuration trains on `dim`-dimensional data (no overflow: f64).
///
/// A U-Net counts as one network of no hidden layers whose weights are [`crate::models::UNetSettings::min_weights`]
/// (a lower bound: checkpoint loading compares it with the weights a file holds).
pub(crate) fn network_sizes(config: &TrainConfig, dim: usize) -> Vec<NetworkSize> {
    if let Some(unet) = &config.unet {
        return vec![NetworkSize { inputs: unet.min_weights() - 1.0, width: 0.0, depth: 0.0, outputs: 1.0 }];
    }
    let (d, width, depth) = (dim as f64, config.width as f64, config.depth as f64);
    let net = |outputs: f64| NetworkSize { inputs: d, width, depth, outputs };
    match config.model {
        ModelKind::S1 => vec![net(d)],
        ModelKind::S1s2 => vec![net(d), net(head_outputs(config.s2, d))],
        ModelKind::S1s2s3 => {
            let head = config.third_order_head();
            let third = NetworkSize {
                inputs: head.inputs(dim) as f64,
                width,
                depth,
                outputs: head.outputs(dim) as f64,
            };
            vec![net(d), net(head_outputs(config.s2, d)), third]
        }
        ModelKind::Energy => vec![net(1.0)],
    }
}

/// The raw outputs of a second-order head for dimension `d` ([`SecondOrderHead::outputs`], in f64).
fn head_outputs(head: SecondOrderHead, d: f64) -> f64 {
    match head {
        SecondOrderHead::Full => d * (d + 1.0) / 2.0,
        SecondOrderHead::Diagonal => d,
        SecondOrderHead::LowRank { rank } => d * rank as f64 + d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_configurations_pass_and_absurd_ones_name_their_sizes() {
        // The defaults (a full head) on 784-dimensional data such as MNIST must fit a small machine.
        let budget = MemoryBudget::new(8.0 * (1u64 << 30) as f64);
        let mnist = TrainConfig::default();
        assert!(
            check_memory(&mnist, mnist.objective().unwrap(), 784, &budget).is_ok(),
            "{:?}",
            check_memory(&mnist, mnist.objective().unwrap(), 784, &budget)
        );
        let wide = TrainConfig { width: 1 << 20, ..TrainConfig::default() };
        let err = check_memory(&wide, wide.objective().unwrap(), 2, &budget).unwrap_err().to_string();
        assert!(
            err.starts_with("--width 1048576 --depth 2 --batch 512 on 2-dimensional data needs about "),
            "{err}"
        );
    }
}
