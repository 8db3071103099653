//! `tweedie train`: fit a score model (and optionally a second-order head) by denoising, or a score
//! network or energy model by any first-order objective.

use super::data_dir_arg::DataDirArg;
use super::progress::ProgressObserver;
use crate::data::{claim_output, PixelRange, Subset};
use crate::models::{HeadLayout, ModelKind, NoiseSchedule, SecondOrderHead, ThirdOrderHead, UNetSettings};
use crate::nn::Activation;
use crate::objectives::ObjectiveName;
use crate::objectives::Projection;
use crate::optim::LearningRateSchedule;
use crate::targets::TargetError;
use crate::train::{Checkpoint, FormName, TargetSource, TrainConfig, Trainer};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// The network family of `--arch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Arch {
    /// MLPs of `--width` x `--depth`.
    Mlp,
    /// A U-Net over the images of an image target.
    Unet,
}

/// Arguments of `tweedie train`. Flags override the values of `--config`.
#[derive(Args, Debug)]
#[command(after_help = super::target_help::train_help())]
pub struct TrainArgs {
    /// TOML file with any of the settings below (see examples/).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data: gmm2d | gmm:dim=D,components=K,seed=S | gauss:dim=D,cond=C,seed=S | csv:PATH | npy:PATH |
    /// uci:redwine|whitewine|parkinsons[=PATH] (preprocessed, whitened, test split held out) |
    /// mnist|fashion-mnist|digits[:train|test][=DIR] (pixels in [0, 1], the other split held out)
    /// [default: gmm2d].
    #[arg(long)]
    target: Option<String>,
    /// Train on part of a data set: N (the first N rows) or random:N (N rows drawn with --seed).
    #[arg(long)]
    subset: Option<Subset>,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Model: s1 (score network), s1s2 (score network and second-order head, trained by D2SM), s1s2s3
    /// (and a third-order head trained by sliced D3SM) or energy (E(x) = MLP(x) + base_precision ||x||^2 /
    /// 2, score -grad E) [default: s1s2].
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// Energy models: precision of the base term base_precision ||x||^2 / 2 (>= 0; > 0 keeps Z finite)
    /// [default: 1].
    #[arg(long, allow_negative_numbers = true)]
    base_precision: Option<f64>,
    /// Second-order head: full | diag | lowrank:R [default: full].
    #[arg(long)]
    s2: Option<SecondOrderHead>,
    /// Third-order head of --model s1s2s3: cp:R (a network of x~ giving the factors of
    /// sum_r a_r u_r⊗u_r⊗u_r + diagonal) or directional (a network of (x~, v) giving s3[v,v,v])
    /// [default: cp:4].
    #[arg(long)]
    s3: Option<ThirdOrderHead>,
    /// D2SM form: a (s2 + s1 s1^T, joint), b (posterior-centred, s1 detached), or nll (image models: the
    /// Gaussian likelihood of the denoising residual under sigma^4 s2 + sigma^2 I, s1 detached) [default: b].
    #[arg(long, value_enum)]
    form: Option<FormName>,
    /// With --form nll and --s2 lowrank:R: also train the factor's first K columns to span the denoising
    /// residual's top K principal directions (minus the residual energy fraction they capture) [default: 0].
    #[arg(long, value_name = "K")]
    head_pcs: Option<usize>,
    /// Variance reduction: DSM-VR for s1; antithetic D2SM-VR with form a.
    #[arg(long)]
    vr: bool,
    /// Objective of --model s1 or energy: dsm | dsm-vr | ssm | ssm-vr | esm | fd-ssm, each on x + sigma z
    /// [default: dsm, or dsm-vr with --vr].
    #[arg(long, value_enum)]
    objective: Option<ObjectiveName>,
    /// Sliced score matching: projections per point M >= 1 [default: 1].
    #[arg(long)]
    projections: Option<usize>,
    /// Sliced score matching: distribution of the projections [default: rademacher].
    #[arg(long, value_enum)]
    projection: Option<Projection>,
    /// FD-SSM: finite-difference step eps > 0 [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    fd_eps: Option<f64>,
    /// Noise level sigma in [1e-4, 1e4] [default: 0.3].
    #[arg(long, allow_negative_numbers = true)]
    sigma: Option<f64>,
    /// A noise-conditional U-Net over the geometric schedule HI:LO:N (sigma_k = HI (LO/HI)^(k/(N-1)),
    /// drawn per row; losses weighted sigma^2 for s1, sigma^4 for s2), instead of --sigma.
    #[arg(long)]
    sigmas: Option<NoiseSchedule>,
    /// Image targets: pixels in [0, 1] (unit) or [-1, 1] (symmetric, the second-order DSM paper's
    /// CIFAR-10 setting), recorded in the checkpoint and applied by sample, eval and denoise [default:
    /// unit].
    #[arg(long, value_enum)]
    pixels: Option<PixelRange>,
    /// Total training steps [default: 10000].
    #[arg(long)]
    steps: Option<u64>,
    /// Minibatch size [default: 512].
    #[arg(long)]
    batch: Option<usize>,
    /// Network: mlp (--width x --depth) or unet (image targets; a U-Net learning s1 by DSM at --sigma,
    /// --model s1, or with --s2 diag / lowrank:R also s2 by D2SM, --model s1s2) [default: mlp].
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// U-Net channels per resolution level, finest first [default: 32,64].
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<usize>>,
    /// U-Net residual blocks per level and path [default: 1].
    #[arg(long)]
    blocks: Option<usize>,
    /// U-Net groups of every group norm (divides every channel count) [default: 8].
    #[arg(long)]
    groups: Option<usize>,
    /// U-Net second-order head: separate (a second U-Net) or shared (extra output maps of the s1 U-Net)
    /// [default: separate].
    #[arg(long, value_enum)]
    s2_layout: Option<HeadLayout>,
    /// Hidden width [default: 128].
    #[arg(long)]
    width: Option<usize>,
    /// Hidden layers [default: 2].
    #[arg(long)]
    depth: Option<usize>,
    /// Hidden activation [default: softplus; tanh for energy models (a bounded network: Gaussian tails)].
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Adam learning rate [default: 0.001].
    #[arg(long, allow_negative_numbers = true)]
    learning_rate: Option<f64>,
    /// Learning-rate schedule: constant, or cosine decay to 0 at the last step [default: constant].
    #[arg(long, value_enum)]
    lr_schedule: Option<LearningRateSchedule>,
    /// Decoupled weight decay (AdamW); 0 gives Adam [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Weight w of the first-order term (w L1vr / sigma^2 + L2); default 1, 10 for low-rank heads.
    #[arg(long, allow_negative_numbers = true)]
    first_order_weight: Option<f64>,
    /// Consistency coupling lambda >= 0 of --model s1s2: adds lambda mean ||S2 v - J_s1 v||^2 with
    /// Rademacher v, training both networks [default: 0 = off].
    #[arg(long, allow_negative_numbers = true)]
    couple: Option<f64>,
    /// EMA decay of the weights used for evaluation, 0 = off [default: 0.999].
    #[arg(long, allow_negative_numbers = true)]
    ema: Option<f64>,
    /// Random seed [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Steps between checkpoints [default: 1000].
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Checkpoint file (safetensors), written atomically at each checkpoint, never before the first; an
    /// existing file is refused unless --resume or --force.
    #[arg(long, default_value = "model.safetensors")]
    out: PathBuf,
    /// Continue the run saved in --out (bit-for-bit); --steps may raise the total.
    #[arg(long)]
    resume: bool,
    /// Start a new run although --out exists: the old file stays until this run's first checkpoint
    /// (--checkpoint-every steps, or the end) replaces it.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// With --resume: continue although the data file changed since the checkpoint was written (its
    /// content hash differs).
    #[arg(long, requires = "resume")]
    allow_new_data: bool,
    /// Print one JSON summary line and no progress bar.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    /// The configuration: the file's (or the defaults), overridden by flags.
    fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read config", path.display()))?;
                toml::from_str(&text).map_err(|e| super::config_error::one_line(path, &text, &e))?
            }
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = self.$field.clone() { c.$field = v; })* };
        }
        set!(
            target,
            model,
            base_precision,
            s2,
            form,
            head_pcs,
            sigma,
            steps,
            batch,
            width,
            depth,
            learning_rate,
            lr_schedule,
            weight_decay,
            ema,
            couple,
            seed,
            checkpoint_every,
            projections,
            projection,
            fd_eps
        );
        if self.activation.is_some() {
            c.activation = self.activation;
        }
        if self.s3.is_some() {
            c.s3 = self.s3;
        }
        if self.subset.is_some() {
            c.subset = self.subset;
        }
        if self.first_order_weight.is_some() {
            c.first_order_weight = self.first_order_weight;
        }
        c.vr |= self.vr;
        if self.objective.is_some() {
            c.objective = self.objective;
        }
        self.set_unet(&mut c)?;
        if let Some(pixels) = self.pixels {
            c.pixels = pixels;
        }
        if let Some(schedule) = self.sigmas {
            if self.sigma.is_some() {
                bail!("--sigmas {schedule} with --sigma: a noise-conditional model takes its levels from --sigmas alone (drop --sigma)");
            }
            if c.unet.is_none() {
                bail!("--sigmas applies to --arch unet (this run trains --arch mlp)");
            }
            c.sigma = schedule.hi;
            c.sigmas = Some(schedule);
        }
        let only_for = |given: bool, flag: &str, kinds: &[ModelKind]| {
            if given && !kinds.contains(&c.model) {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                bail!(
                    "{flag} applies to --model {} (this run trains --model {})",
                    names.join(" or "),
                    c.model
                );
            }
            Ok(())
        };
        let with_s2 = &[ModelKind::S1s2, ModelKind::S1s2s3];
        only_for(self.s2.is_some(), "--s2", with_s2)?;
        only_for(self.s3.is_some(), "--s3", &[ModelKind::S1s2s3])?;
        only_for(self.form.is_some(), "--form", with_s2)?;
        only_for(self.couple.is_some(), "--couple", with_s2)?;
        only_for(self.base_precision.is_some(), "--base-precision", &[ModelKind::Energy])?;
        Ok(c)
    }

    /// Applies `--arch` (a U-Net trains `--model s1` unless `--model` says otherwise) and the U-Net sizes,
    /// which need a U-Net.
    fn set_unet(&self, c: &mut TrainConfig) -> Result<()> {
        match self.arch {
            Some(Arch::Unet) => {
                c.unet.get_or_insert_with(UNetSettings::default);
                if self.model.is_none() {
                    c.model = if self.s2.is_some() { ModelKind::S1s2 } else { ModelKind::S1 };
                }
            }
            Some(Arch::Mlp) => c.unet = None,
            None => {}
        }
        let given = [
            ("--channels", self.channels.is_some()),
            ("--blocks", self.blocks.is_some()),
            ("--groups", self.groups.is_some()),
            ("--s2-layout", self.s2_layout.is_some()),
        ];
        let Some(unet) = &mut c.unet else {
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                bail!("{flag} applies to --arch unet (this run trains --arch mlp)");
            }
            return Ok(());
        };
        if let Some(channels) = &self.channels {
            unet.channels.clone_from(channels);
        }
        unet.blocks = self.blocks.unwrap_or(unet.blocks);
        unet.groups = self.groups.unwrap_or(unet.groups);
        unet.s2_layout = self.s2_layout.unwrap_or(unet.s2_layout);
        Ok(())
    }

    fn changes_config(&self) -> bool {
        self.config.is_some()
            || self.target.is_some()
            || self.subset.is_some()
            || self.model.is_some()
            || self.base_precision.is_some()
            || self.s2.is_some()
            || self.s3.is_some()
            || self.form.is_some()
            || self.head_pcs.is_some()
            || self.couple.is_some()
            || self.vr
            || self.objective.is_some()
            || self.projections.is_some()
            || self.projection.is_some()
            || self.fd_eps.is_some()
            || self.sigma.is_some()
            || self.sigmas.is_some()
            || self.pixels.is_some()
            || self.batch.is_some()
            || self.arch.is_some()
            || self.channels.is_some()
            || self.blocks.is_some()
            || self.groups.is_some()
            || self.s2_layout.is_some()
            || self.width.is_some()
            || self.depth.is_some()
            || self.activation.is_some()
            || self.learning_rate.is_some()
            || self.lr_schedule.is_some()
            || self.weight_decay.is_some()
            || self.first_order_weight.is_some()
            || self.ema.is_some()
            || self.seed.is_some()
            || self.checkpoint_every.is_some()
    }
}

/// The data file a configuration reads, if any: the path of a `csv:`, `npy:` or `uci:NAME=PATH` target.
fn data_file(config: &TrainConfig) -> Option<PathBuf> {
    match config.target_source().ok()? {
        TargetSource::Csv(path) | TargetSource::Npy(path) => Some(path),
        TargetSource::Uci(spec) => spec.path,
        _ => None,
    }
}

/// Every form `--target` takes, for the error of an unknown one (the target parser alone knows only the
/// analytic ones).
const TARGET_FORMS: &str =
    "gmm2d, gmm:dim=D[,components=K][,seed=S], gauss:dim=D[,cond=C][,seed=S], csv:PATH, \
    npy:PATH, uci:redwine|whitewine|parkinsons[=PATH], mnist|fashion-mnist|digits[:train|test][=DIR]";

/// An unknown target's error, listing the data-file forms too.
fn with_every_target_form(err: crate::Error) -> anyhow::Error {
    match err {
        crate::Error::Target(TargetError::UnknownTarget { spec }) => {
            anyhow::anyhow!("unknown target `{spec}`; expected one of: {TARGET_FORMS}")
        }
        err => err.into(),
    }
}

/// Runs `tweedie train`.
pub fn train(args: TrainArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve();
    let mut trainer = if args.resume {
        if args.changes_config() {
            bail!(
                "--resume continues the saved configuration of {}; only --steps may change",
                args.out.display()
            );
        }
        let checkpoint = Checkpoint::load(&args.out)?;
        if let (Some(file), false) = (&checkpoint.data_file, args.allow_new_data) {
            file.verify(&args.out)?;
        }
        Trainer::resume(checkpoint, args.steps, &data_dir)?
    } else {
        Trainer::new(args.config()?, &data_dir).map_err(with_every_target_form)?
    };
    let data = data_file(&trainer.state().config);
    let inputs: Vec<(&str, &std::path::Path)> =
        [("--config", args.config.as_deref()), ("--target", data.as_deref())]
            .into_iter()
            .filter_map(|(flag, path)| Some((flag, path?)))
            .collect();
    let _claim = claim_output(&args.out, &inputs)?;
    if !args.resume && !args.force && args.out.exists() {
        bail!(
            "--out {} exists (expected a new file: --resume continues its run, --force starts a new one that \
             replaces it at its first checkpoint)",
            args.out.display()
        );
    }
    let (total, done) = (trainer.state().config.steps, trainer.state().step);
    let mut progress = ProgressObserver::new(total, done, !args.json);
    let start = Instant::now();
    let result = trainer.run(Some(&args.out), &mut progress);
    progress.finish();
    result?;
    let seconds = start.elapsed().as_secs_f64();
    let state = trainer.state();
    let summary = serde_json::json!({
        "out": args.out, "steps": state.step, "loss": progress.last_loss(), "seconds": seconds,
        "steps_per_second": (state.step - done) as f64 / seconds.max(1e-9), "dim": state.dim,
        "target": state.config.target, "params": state.model.num_params(), "threads": rayon::current_num_threads(),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "trained {} steps in {:.1} s ({:.0} steps/s), final loss {:.4}; saved {}",
            state.step - done,
            seconds,
            (state.step - done) as f64 / seconds.max(1e-9),
            progress.last_loss(),
            args.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: TrainArgs,
    }

    #[test]
    fn help_defaults_match_the_config_defaults() {
        let args = Wrapper::parse_from(["t"]).args;
        let c = args.config().unwrap();
        assert_eq!(c, TrainConfig::default(), "no flags give the defaults");
        let help = <Wrapper as clap::CommandFactory>::command().render_long_help().to_string();
        for shown in [
            format!("[default: {}]", c.target),
            format!("[default: {}]", c.s2),
            format!("[default: {}]", c.model),
            format!("[default: {}]", c.base_precision),
            format!("[default: {}]", c.sigma),
            format!("[default: {}]", c.steps),
            format!("[default: {}]", c.batch),
            format!("[default: {}]", c.width),
            format!("[default: {}]", c.learning_rate),
            format!("[default: {}]", c.ema),
            format!("[default: {}]", c.checkpoint_every),
        ] {
            assert!(help.contains(&shown), "help lacks {shown}");
        }
    }

    #[test]
    fn every_flag_reaches_the_config() {
        let args = Wrapper::parse_from([
            "t",
            "--target",
            "gmm:dim=3",
            "--subset",
            "random:5",
            "--model",
            "s1s2",
            "--s2",
            "diag",
            "--form",
            "a",
            "--vr",
            "--objective",
            "ssm",
            "--projections",
            "3",
            "--projection",
            "sphere",
            "--fd-eps",
            "0.2",
            "--sigma",
            "0.7",
            "--steps",
            "9",
            "--batch",
            "7",
            "--width",
            "5",
            "--depth",
            "3",
            "--activation",
            "tanh",
            "--learning-rate",
            "0.01",
            "--lr-schedule",
            "cosine",
            "--weight-decay",
            "0.1",
            "--first-order-weight",
            "2",
            "--ema",
            "0.5",
            "--seed",
            "4",
            "--checkpoint-every",
            "3",
            "--couple",
            "0.25",
            "--head-pcs",
            "2",
        ])
        .args;
        let c = args.config().unwrap();
        let want = TrainConfig {
            target: "gmm:dim=3".into(),
            subset: Some(Subset::Random(5)),
            model: ModelKind::S1s2,
            base_precision: 1.0,
            s2: SecondOrderHead::Diagonal,
            s3: None,
            form: FormName::A,
            head_pcs: 2,
            vr: true,
            objective: Some(ObjectiveName::Ssm),
            projections: 3,
            projection: Projection::Sphere,
            fd_eps: 0.2,
            sigma: 0.7,
            steps: 9,
            batch: 7,
            unet: None,
            sigmas: None,
            pixels: PixelRange::Unit,
            width: 5,
            depth: 3,
            activation: Some(Activation::Tanh),
            learning_rate: 0.01,
            lr_schedule: LearningRateSchedule::Cosine,
            weight_decay: 0.1,
            first_order_weight: Some(2.0),
            couple: 0.25,
            ema: 0.5,
            seed: 4,
            checkpoint_every: 3,
        };
        assert_eq!(c, want, "a flag did not reach the configuration");
        let third = Wrapper::parse_from(["t", "--model", "s1s2s3", "--s3", "directional"]).args;
        assert_eq!(third.config().unwrap().s3, Some(ThirdOrderHead::Directional));
    }

    #[test]
    fn unet_flags_reach_the_config_and_need_arch_unet() {
        let parse = |flags: &[&str]| Wrapper::parse_from(["t"].iter().chain(flags)).args.config();
        let c = parse(&["--arch", "unet", "--channels", "8,16", "--blocks", "2", "--groups", "4"]).unwrap();
        assert_eq!(
            c.unet,
            Some(UNetSettings { channels: vec![8, 16], blocks: 2, groups: 4, ..UNetSettings::default() })
        );
        assert_eq!(c.model, ModelKind::S1, "a U-Net trains s1 unless --model says otherwise");
        let c = parse(&["--arch", "unet", "--model", "s1s2"]).unwrap();
        assert_eq!((c.model, c.unet), (ModelKind::S1s2, Some(UNetSettings::default())));
        assert_eq!(parse(&["--arch", "mlp"]).unwrap(), TrainConfig::default());
        for flag in ["--channels", "--blocks", "--groups"] {
            let err = parse(&[flag, "4"]).unwrap_err().to_string();
            assert_eq!(err, format!("{flag} applies to --arch unet (this run trains --arch mlp)"));
        }
        let energy = Wrapper::parse_from(["t", "--model", "energy", "--base-precision", "0.5"]).args;
        assert_eq!(energy.config().unwrap().base_precision, 0.5);
        for (flags, needle) in [
            (&["--model", "energy", "--s2", "diag"][..], "--s2 applies to --model s1s2"),
            (&["--model", "s1", "--form", "a"][..], "--form applies to --model s1s2"),
            (&["--s3", "cp:2"][..], "--s3 applies to --model s1s2s3 (this run trains --model s1s2)"),
            (
                &["--base-precision", "2"][..],
                "--base-precision applies to --model energy (this run trains --model s1s2)",
            ),
        ] {
            let args = Wrapper::parse_from(std::iter::once("t").chain(flags.iter().copied())).args;
            let err = args.config().unwrap_err().to_string();
            assert!(err.contains(needle), "{flags:?}: {err}");
        }
    }
}
