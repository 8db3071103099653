//! `tweedie export`: the evaluated weights of a checkpoint alone, under their documented names, for
//! code in another language (layout: `docs/checkpoints.md`).

use crate::train::Checkpoint;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `tweedie export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint written by `tweedie train`.
    #[arg(long)]
    model: PathBuf,
    /// The weights-only safetensors file to write (atomically).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `tweedie export`.
pub fn export(args: ExportArgs) -> Result<()> {
    let checkpoint = Checkpoint::load(&args.model)?;
    checkpoint.save_weights(&args.out)?;
    let names = checkpoint.eval_model().num_params();
    println!("wrote {} ({names} evaluated weights of step {})", args.out.display(), checkpoint.step);
    Ok(())
}
