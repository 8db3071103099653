//! `tweedie score`: evaluate a trained model at the user's own points and write NPY arrays.

use super::data_dir_arg::DataDirArg;
use super::input_points::load_input;
use crate::data::{claim_output, expect_width, write_npy};
use crate::estimators::score_jacobian;
use crate::linalg::Mat;
use crate::models::{Model, ScoreModel, SecondOrderHead};
use crate::samplers::forward_chunks;
use crate::train::Checkpoint;
use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `tweedie score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// A checkpoint written by `tweedie train`.
    #[arg(long)]
    model: PathBuf,
    /// Points (N x D) as .npy, .csv, .csv.gz, .tsv or .txt, or the images of a data set's split
    /// (mnist:test, fashion-mnist:train, digits:test, ...; pixels scaled to [0, 1] as in training).
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// 1: the score s1 (N x D); 2: the second-order score s2.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    order: u8,
    /// With --order 2: the symmetrised Jacobian of s1 (N x D x D) instead of the learned head.
    #[arg(long)]
    autodiff: bool,
    /// Output .npy file. A low-rank head writes U (N x D x r) here and d (N x D) beside it as
    /// `<stem>.diag.npy`; a diagonal head writes d (N x D).
    #[arg(long)]
    out: PathBuf,
}

/// `<dir>/<stem>.diag.npy` for `<dir>/<stem>.npy`.
fn side_file(out: &Path) -> PathBuf {
    let stem = out.file_stem().map_or_else(|| "out".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.diag.npy"))
}

/// `f` at every row of `points`, `width` numbers per row, run on fixed chunks of rows in parallel over
/// the pool (the bits do not depend on the thread count).
fn per_row(points: &Mat<f64>, width: usize, f: impl Fn(&Mat<f32>) -> Vec<f32> + Sync) -> Vec<f32> {
    let mut out = vec![0.0; points.rows() * width];
    forward_chunks::<f32>(points, width, &mut out, |chunk, o| {
        o.iter_mut().zip(f(chunk)).for_each(|(o, v)| *o = f64::from(v));
    });
    out.into_iter().map(|v| v as f32).collect()
}

/// What a low-rank head's two files hold.
const LOW_RANK_LAYOUT: &str =
    "s2 (low-rank head) = U U^T + diag(d): U is N x D x r, d (in the .diag.npy file) is N x D";

/// Writes a low-rank head's factor `U` (`N x D x r`) to `out` and its diagonal `d` to the side file,
/// which it returns.
fn write_low_rank(
    out: &Path,
    inputs: &[(&str, &Path)],
    (n, dim, rank): (usize, usize, usize),
    u: &[f32],
    d: &[f32],
) -> Result<PathBuf> {
    write_npy(out, &[n, dim, rank], u)?;
    let side = side_file(out);
    let _side_claim = claim_output(&side, inputs)?;
    write_npy(&side, &[n, dim], d)?;
    Ok(side)
}

/// Runs `tweedie score`.
pub fn score(args: ScoreArgs) -> Result<()> {
    let inputs = [("--model", args.model.as_path()), ("--input", args.input.as_path())];
    let _claim = claim_output(&args.out, &inputs)?;
    let checkpoint = Checkpoint::load(&args.model)?;
    let model = checkpoint.eval_model();
    let (points, _) = load_input(&args.input, &args.data_dir, checkpoint.config.pixels)?;
    expect_width(&points, &args.input, checkpoint.dim)?;
    let (n, dim) = (points.rows(), points.cols());
    let x: Mat<f32> = points.cast();
    let mut written = vec![];
    let layout = match (args.order, args.autodiff, &model) {
        (1, false, Model::Image(_)) => {
            write_npy(&args.out, &[n, dim], model.score(&x).as_slice())?;
            "s1: N x D"
        }
        (1, false, _) => {
            write_npy(&args.out, &[n, dim], &per_row(&points, dim, |c| model.score(c).into_vec()))?;
            "s1: N x D"
        }
        (1, true, _) => bail!("--autodiff needs --order 2 (it gives the Jacobian of s1)"),
        (_, true, Model::Image(_)) => {
            bail!(
                "{}: --autodiff on a U-Net image model: not available (expected --order 2 from its s2 head)",
                args.model.display()
            )
        }
        (_, false, Model::Image(image)) => match image.second_order_at(&x, image.sigma) {
            None => bail!(
                "{}: the U-Net has no second-order head (train with --s2 diag or --s2 lowrank:R)",
                args.model.display()
            ),
            Some((_, d)) if image.s2.as_ref().is_some_and(|s2| s2.head == SecondOrderHead::Diagonal) => {
                write_npy(&args.out, &[n, dim], d.as_slice())?;
                "s2 (diagonal head): the diagonal d, N x D"
            }
            Some((u, d)) => {
                written.push(write_low_rank(
                    &args.out,
                    &inputs,
                    (n, dim, u.cols() / dim),
                    u.as_slice(),
                    d.as_slice(),
                )?);
                LOW_RANK_LAYOUT
            }
        },
        (_, _, Model::Energy(_)) => {
            bail!("{}: an energy model gives --order 1 (s1 = -grad E) only", args.model.display())
        }
        (_, true, Model::Score(model)) => {
            write_npy(&args.out, &[n, dim, dim], &score_jacobian(&model.s1, &x, true))?;
            "s2 by autodiff, (J + J^T)/2: N x D x D"
        }
        (_, false, Model::Score(ScoreModel { s2: None, .. })) => {
            bail!(
                "{}: the model has no second-order head (train with --model s1s2, or use --autodiff)",
                args.model.display()
            )
        }
        (_, false, Model::Score(model @ ScoreModel { s2: Some(s2), .. })) => match s2.head {
            SecondOrderHead::Full => {
                let dense =
                    per_row(&points, dim * dim, |c| model.hessian_dense(c).expect("model has a head"));
                write_npy(&args.out, &[n, dim, dim], &dense)?;
                "s2 (full head): N x D x D"
            }
            SecondOrderHead::Diagonal => {
                write_npy(&args.out, &[n, dim], &per_row(&points, dim, |c| s2.net.forward(c).into_vec()))?;
                "s2 (diagonal head): the diagonal d, N x D"
            }
            SecondOrderHead::LowRank { rank } => {
                let raw = per_row(&points, dim * (rank + 1), |c| s2.net.forward(c).into_vec());
                let (mut u, mut d) = (Vec::with_capacity(n * dim * rank), Vec::with_capacity(n * dim));
                for row in raw.chunks_exact(dim * (rank + 1)) {
                    u.extend_from_slice(&row[..dim * rank]);
                    d.extend_from_slice(&row[dim * rank..]);
                }
                written.push(write_low_rank(&args.out, &inputs, (n, dim, rank), &u, &d)?);
                LOW_RANK_LAYOUT
            }
        },
    };
    written.insert(0, args.out.clone());
    println!("{}", serde_json::json!({"written": written, "points": n, "dim": dim, "layout": layout}));
    Ok(())
}
