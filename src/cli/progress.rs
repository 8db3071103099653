//! A progress bar for training on a terminal; silent when piped or under `--json`.

use crate::train::{TrainObserver, TrainStep};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// Shows step, loss and rate on stderr.
pub struct ProgressObserver {
    bar: Option<ProgressBar>,
    loss: f64,
}

impl ProgressObserver {
    /// A bar for `total` steps starting at `done`, shown only if `visible` and stderr is a terminal.
    pub fn new(total: u64, done: u64, visible: bool) -> Self {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total).with_position(done);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {msg}  {per_sec}  eta {eta}")
                    .expect("a valid template"),
            );
            bar
        });
        Self { bar, loss: f64::NAN }
    }

    /// The last loss seen.
    pub fn last_loss(&self) -> f64 {
        self.loss
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl TrainObserver for ProgressObserver {
    fn on_step(&mut self, info: &TrainStep) {
        self.loss = info.loss;
        if let Some(bar) = &self.bar {
            bar.set_position(info.step);
            if info.step.is_multiple_of(50) {
                bar.set_message(format!("loss {:.4}", info.loss));
            }
        }
    }

    fn on_checkpoint(&mut self, step: u64, path: &Path) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {:.4}, saved step {step} to {}", self.loss, path.display()));
        }
    }
}
