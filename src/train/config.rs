//! The training configuration: every choice of a run, read from TOML or flags, validated once.

use crate::data::{png_folder_shape, ImageSource, ImageSpec, PixelRange, Subset, UciSpec};
use crate::models::{
    image_shape, DiagonalLink, EnergyModel, EnergyShape, ImageScoreModel, Model, ModelKind, ModelShape,
    NoiseSchedule, ScoreModel, SecondOrderHead, ThirdOrderHead, UNetSettings,
};
use crate::nn::graph::Shape;
use crate::nn::Activation;
use crate::objectives::{D2smForm, Objective, ObjectiveError, ObjectiveName, Projection, DEFAULT_FD_EPS};
use crate::optim::{AdamSettings, LearningRateSchedule};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The D2SM form as named on the command line (`--vr` turns A into A-VR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum FormName {
    /// Form A: `h = s2 + s1 s1^T` onto `(z z^T - I)/sigma^2`, `s1` trained jointly.
    A,
    /// Form B: `s2` onto `(u u^T - I)/sigma^2`, `u = z + sigma s1`, `s1` detached.
    B,
    /// The Gaussian likelihood of the posterior mean's residual under `N(0, sigma^4 s2 + sigma^2 I)`,
    /// `s1` detached (`--arch unet` with a diag or lowrank head).
    Nll,
}

impl FormName {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FormName::A => "a",
            FormName::B => "b",
            FormName::Nll => "nll",
        }
    }
}

/// A bad configuration value: names the field, the value and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field is out of its range.
    #[error("{field} = {value} is invalid (expected {expected})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value, as written.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A bad objective parameter (`projections = 0`, `fd_eps <= 0`).
    #[error(transparent)]
    Objective(#[from] ObjectiveError),
    /// `objective` given for a model with a second-order head (it trains by D2SM).
    #[error(
        "objective = {0} trains --model s1 or --model energy; a model with an s2 head (s1s2) trains by D2SM"
    )]
    ObjectiveNeedsScoreModel(&'static str),
    /// `--vr` with form B or nll (the antithetic control variate is defined for form A only).
    #[error(
        "--vr with --form {0}: the antithetic D2SM-VR is defined for form A (use --form a --vr, or --form {0})"
    )]
    VrNeedsFormA(&'static str),
    /// `--form nll` on a point-cloud model (an image model's full head is refused with the U-Net's
    /// other settings).
    #[error(
        "--form nll fits the diag or lowrank head of an image model (--arch unet --s2 diag|lowrank:R), not an MLP (--arch mlp)"
    )]
    NllNeedsImageHead,
    /// A data-file target without its path.
    #[error("--target {0:?}: a data file target needs a path (expected csv:PATH or npy:PATH)")]
    EmptyDataPath(String),
    /// A bad `uci:` target, or a UCI data set that cannot be loaded.
    #[error(transparent)]
    Uci(#[from] crate::data::DatasetError),
    /// A bad image-set target (`mnist`, `fashion-mnist`, `digits`).
    #[error("{0}")]
    Images(String),
    /// `--arch unet` with settings it cannot train (a non-image target, another model or objective,
    /// sizes the U-Net cannot take).
    #[error("--arch unet: {0}")]
    UNet(String),
    /// `subset` with an analytic target, which has no rows to select.
    #[error("subset = {0} selects rows of a data set (this target is analytic: fresh samples every step)")]
    SubsetNeedsData(Subset),
    /// `subset` with points handed over in memory (select the rows before handing them over).
    #[error("subset = {0} with points given in memory (expected no subset: pass the rows to train on)")]
    SubsetOfMemory(Subset),
    /// `subset` asks for more rows than the training split has.
    #[error("subset = {subset}: the training rows of {target} number {available} (expected a subset of at most that many)")]
    SubsetTooLarge {
        /// The subset asked for.
        subset: Subset,
        /// The target.
        target: String,
        /// Training rows available.
        available: usize,
    },
}

/// The noise levels training accepts. Training computes in f32 (about 7 significant digits): below
/// 1e-4 the noise `sigma z` added to data of unit scale is lost to rounding and `1/sigma^2` scales the
/// loss beyond 1e8; above 1e4 the noise swamps any data, so nothing is learned.
pub const SIGMA_RANGE: (f64, f64) = (1e-4, 1e4);
const SIGMA_EXPECTED: &str =
    "a number in [1e-4, 1e4]: smaller noise is lost to f32 rounding, larger noise swamps the data";

/// Everything a training run needs. Defaults are the paper's settings for synthetic data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The data: a named target (`gmm2d`, `gmm:dim=D,components=K,seed=S`, `gauss:dim=D,cond=C,seed=S`),
    /// a data file (`csv:PATH`, `npy:PATH`), a UCI set (`uci:redwine|whitewine|parkinsons[=PATH]`) or an
    /// image set (`mnist|fashion-mnist|digits[:train|test][=PATH]`, pixels scaled to `[0, 1]`). Named
    /// sets are recorded by name and found through the data directory.
    pub target: String,
    /// Train on these rows of a data set only (`N` first, or `random:N` seeded by `seed`).
    pub subset: Option<Subset>,
    /// Which networks to train.
    pub model: ModelKind,
    /// Energy models: the precision `lambda >= 0` of the fixed base term `lambda ||x||^2 / 2` that keeps
    /// `Z` finite.
    pub base_precision: f64,
    /// The second-order head (with `model = "s1s2"` or `"s1s2s3"`).
    pub s2: SecondOrderHead,
    /// The third-order head (with `model = "s1s2s3"`; default [`ThirdOrderHead::DEFAULT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<ThirdOrderHead>,
    /// The D2SM form.
    pub form: FormName,
    /// With `form = "nll"` and a low-rank head: the number `K` of leading factor columns also trained to
    /// span the residual's top principal directions (0, the default, turns the term off).
    #[serde(skip_serializing_if = "is_zero_count")]
    pub head_pcs: usize,
    /// Variance reduction: DSM-VR for `s1`, the antithetic D2SM-VR for form A.
    pub vr: bool,
    /// The objective of a score network alone or an energy model (default: DSM, or DSM-VR with `vr`).
    pub objective: Option<ObjectiveName>,
    /// Sliced score matching: directions per point `M >= 1`.
    pub projections: usize,
    /// Sliced score matching: the distribution of the directions.
    pub projection: Projection,
    /// FD-SSM: the finite-difference step `eps > 0`.
    pub fd_eps: f64,
    /// Noise level `sigma`, in `[1e-4, 1e4]`.
    pub sigma: f64,
    /// A noise-conditional U-Net's geometric schedule (`--sigmas HI:LO:N`), which replaces `sigma`.
    pub sigmas: Option<NoiseSchedule>,
    /// Image targets: the range pixels are scaled to (`--pixels`; `[0, 1]` by default).
    #[serde(skip_serializing_if = "PixelRange::is_unit")]
    pub pixels: PixelRange,
    /// Training steps.
    pub steps: u64,
    /// Minibatch size.
    pub batch: usize,
    /// A U-Net over images instead of MLPs (`--arch unet`), with these sizes.
    pub unet: Option<UNetSettings>,
    /// Hidden width of each network.
    pub width: usize,
    /// Hidden layers of each network.
    pub depth: usize,
    /// Hidden activation (default: softplus; tanh for energy models, whose network then stays bounded, so
    /// the base term sets the tails and the model cannot put mass far from the data, where score matching
    /// has no signal).
    pub activation: Option<Activation>,
    /// Adam learning rate (the base rate of the schedule).
    pub learning_rate: f64,
    /// How the learning rate changes over the run (cosine: from `learning_rate` to 0 at `steps`; raising
    /// `steps` on resume stretches the rest of the schedule).
    pub lr_schedule: LearningRateSchedule,
    /// Decoupled weight decay (AdamW); 0 gives Adam.
    pub weight_decay: f64,
    /// Weight `w` of the first-order term in joint training (`w L1vr / sigma^2 + L2`); default 1, or 10
    /// for a low-rank head (docs/math.md §4.4).
    pub first_order_weight: Option<f64>,
    /// Weight `lambda >= 0` of the consistency coupling `lambda mean ||S2(x~) v - J_s1(x~) v||^2` of
    /// D2SM (docs/math.md §4.5); 0 (the default) turns it off.
    #[serde(skip_serializing_if = "is_zero")]
    pub couple: f64,
    /// Decay of the exponential moving average of weights used for evaluation (default 0.999; it lowers
    /// the s1 and s2 errors of every estimator alike); 0 disables it.
    pub ema: f64,
    /// Seed of every random draw (initialisation, data, noise).
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            target: "gmm2d".into(),
            subset: None,
            model: ModelKind::S1s2,
            base_precision: 1.0,
            s2: SecondOrderHead::Full,
            s3: None,
            form: FormName::B,
            head_pcs: 0,
            vr: false,
            objective: None,
            projections: 1,
            projection: Projection::Rademacher,
            fd_eps: DEFAULT_FD_EPS,
            sigma: 0.3,
            steps: 10_000,
            batch: 512,
            unet: None,
            sigmas: None,
            pixels: PixelRange::Unit,
            width: 128,
            depth: 2,
            activation: None,
            learning_rate: 1e-3,
            lr_schedule: LearningRateSchedule::Constant,
            weight_decay: 0.0,
            first_order_weight: None,
            couple: 0.0,
            ema: 0.999,
            seed: 0,
            checkpoint_every: 1000,
        }
    }
}

/// Where the training points come from.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetSource {
    /// A named analytic target.
    Named(String),
    /// A CSV file of points.
    Csv(PathBuf),
    /// An NPY file of points.
    Npy(PathBuf),
    /// A UCI set, preprocessed and split as in the sliced-score-matching experiments.
    Uci(UciSpec),
    /// An image set, each image a point with pixels in `[0, 1]`.
    Images(ImageSpec),
    /// Points handed over in memory ([`Trainer::from_points`](super::Trainer::from_points)); the
    /// target is written [`IN_MEMORY_TARGET`].
    Memory,
}

/// The `target` of a run on points handed over in memory: nothing to load from a name or a file.
pub const IN_MEMORY_TARGET: &str = "memory";

/// True for a zero weight (a zero coupling is left out of written configurations).
fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_count(value: &usize) -> bool {
    *value == 0
}

impl TrainConfig {
    /// Checks every field; returns the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: String, expected| Err(ConfigError::OutOfRange { field, value, expected });
        if !(SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&self.sigma) {
            let far = self.sigma.abs() >= 1e6 || (self.sigma != 0.0 && self.sigma.abs() < 1e-4);
            let value = if far { format!("{:e}", self.sigma) } else { self.sigma.to_string() };
            return bad("sigma", value, SIGMA_EXPECTED);
        }
        if let Some(schedule) = self.sigmas {
            let in_range = |v: f64| (SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&v);
            if !(in_range(schedule.hi) && in_range(schedule.lo)) {
                return bad("sigmas", schedule.to_string(), "levels in [1e-4, 1e4]");
            }
            if self.unet.is_none() {
                return bad(
                    "sigmas",
                    schedule.to_string(),
                    "no schedule unless --arch unet (a noise-conditional U-Net)",
                );
            }
        }
        if self.steps == 0 {
            return bad("steps", "0".into(), "at least 1");
        }
        if self.batch == 0 {
            return bad("batch", "0".into(), "at least 1");
        }
        if self.width == 0 {
            return bad("width", "0".into(), "at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", self.learning_rate.to_string(), "a finite number > 0");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", self.weight_decay.to_string(), "a finite number >= 0");
        }
        if !(0.0..1.0).contains(&self.ema) {
            return bad("ema", self.ema.to_string(), "a decay in [0, 1)");
        }
        if let Some(w) = self.first_order_weight {
            if !(w >= 0.0 && w.is_finite()) {
                return bad("first_order_weight", w.to_string(), "a finite number >= 0");
            }
        }
        if !(self.base_precision >= 0.0 && self.base_precision.is_finite()) {
            return bad("base_precision", self.base_precision.to_string(), "a finite number >= 0");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "0".into(), "at least 1");
        }
        let with_s2 = matches!(self.model, ModelKind::S1s2 | ModelKind::S1s2s3);
        if self.couple != 0.0 && !with_s2 {
            return bad(
                "couple",
                self.couple.to_string(),
                "0 unless --model s1s2 or s1s2s3 (it couples s2 to s1)",
            );
        }
        if let (Some(head), false) = (self.s3, self.model == ModelKind::S1s2s3) {
            return bad("s3", head.to_string(), "no third-order head unless --model s1s2s3");
        }
        self.objective()?.validate()?;
        if with_s2 && self.vr && self.form != FormName::A {
            return Err(ConfigError::VrNeedsFormA(self.form.as_str()));
        }
        if with_s2 && self.form == FormName::Nll && self.unet.is_none() {
            return Err(ConfigError::NllNeedsImageHead);
        }
        if self.head_pcs > 0 {
            let rank = match (with_s2, self.form, self.s2) {
                (true, FormName::Nll, SecondOrderHead::LowRank { rank }) => rank,
                _ => return bad(
                    "head_pcs",
                    self.head_pcs.to_string(),
                    "0 unless --form nll --s2 lowrank:R (it trains the low-rank factor's leading columns)",
                ),
            };
            if self.head_pcs > rank {
                return bad(
                    "head_pcs",
                    self.head_pcs.to_string(),
                    "at most the head's rank R of --s2 lowrank:R",
                );
            }
        }
        if let Some(name) = self.objective {
            if with_s2 {
                return Err(ConfigError::ObjectiveNeedsScoreModel(name.as_str()));
            }
            Objective::first_order(name, self.projections, self.projection, self.fd_eps)?;
        }
        let source = self.target_source()?;
        if !self.pixels.is_unit() && !matches!(source, TargetSource::Images(_)) {
            return bad("pixels", "symmetric".into(), "unit (the default) unless the target is an image set");
        }
        if self.unet.is_some() {
            self.image_shape()?;
        }
        match (self.subset, source) {
            (Some(subset), TargetSource::Named(_)) => Err(ConfigError::SubsetNeedsData(subset)),
            (Some(subset), TargetSource::Memory) => Err(ConfigError::SubsetOfMemory(subset)),
            _ => Ok(()),
        }
    }

    /// The target, split into its kind and argument.
    pub(crate) fn target_source(&self) -> Result<TargetSource, ConfigError> {
        let path = |p: &str| {
            if p.is_empty() {
                Err(ConfigError::EmptyDataPath(self.target.clone()))
            } else {
                Ok(PathBuf::from(p))
            }
        };
        Ok(match self.target.split_once(':') {
            Some(("csv", p)) => TargetSource::Csv(path(p)?),
            Some(("npy", p)) => TargetSource::Npy(path(p)?),
            Some(("uci", _)) => TargetSource::Uci(self.target.parse()?),
            _ if self.target == IN_MEMORY_TARGET => TargetSource::Memory,
            _ if ImageSpec::matches(&self.target) => {
                TargetSource::Images(self.target.parse().map_err(ConfigError::Images)?)
            }
            _ => TargetSource::Named(self.target.clone()),
        })
    }

    /// The objective these settings select.
    ///
    /// # Errors
    /// [`ConfigError::Objective`] for bad SSM / FD-SSM parameters.
    pub(crate) fn objective(&self) -> Result<Objective, ConfigError> {
        if let (ModelKind::S1 | ModelKind::Energy, Some(name)) = (self.model, self.objective) {
            return Ok(Objective::first_order(name, self.projections, self.projection, self.fd_eps)?);
        }
        Ok(match (self.model, self.vr, self.form) {
            (ModelKind::S1 | ModelKind::Energy, false, _) => Objective::Dsm,
            (ModelKind::S1 | ModelKind::Energy, true, _) => Objective::DsmVr,
            (ModelKind::S1s2 | ModelKind::S1s2s3, vr, form) => {
                let form = match (form, vr) {
                    (FormName::A, false) => D2smForm::A,
                    (FormName::A, true) => D2smForm::AVr,
                    (FormName::B, _) => D2smForm::B,
                    (FormName::Nll, _) => D2smForm::Likelihood { pcs: self.head_pcs },
                };
                let weight = self.first_order_weight.unwrap_or(match self.s2 {
                    SecondOrderHead::LowRank { .. } => 10.0,
                    _ => 1.0,
                });
                let third_order = self.model == ModelKind::S1s2s3;
                Objective::SecondOrder { form, weight, couple: self.couple, third_order }
            }
        })
    }

    /// The image shape of a `--arch unet` run, after checking that the U-Net can train it: an image
    /// target, an `s1` model trained by DSM, sizes the U-Net takes.
    fn image_shape(&self) -> Result<Shape, ConfigError> {
        let fail = |msg: String| Err(ConfigError::UNet(msg));
        let shape = match self.target_source()? {
            TargetSource::Images(ImageSpec { source: ImageSource::PngFolder(folder), .. }) => {
                let (height, width, channels) = png_folder_shape(&folder)
                    .map_err(|e| ConfigError::UNet(format!("target `{}`: {e}", self.target)))?;
                Some(Shape::new(height, width, channels))
            }
            TargetSource::Images(spec) => spec.dataset().and_then(image_shape),
            _ => None,
        };
        let Some(shape) = shape else {
            return fail(format!(
                "target `{}` is not an image set (expected mnist, fashion-mnist, cifar10, digits or images:DIR)",
                self.target
            ));
        };
        if self.model == ModelKind::Energy {
            return fail("--model energy given, expected --model s1 or s1s2 (a U-Net learns scores)".into());
        }
        if self.vr || self.objective.is_some_and(|o| o != ObjectiveName::Dsm) {
            return fail("the U-Net trains by DSM (expected no --objective other than dsm, no --vr)".into());
        }
        if self.model == ModelKind::S1s2 {
            match self.s2 {
                SecondOrderHead::Full => {
                    return fail("--s2 full given, a U-Net carries --s2 diag or --s2 lowrank:R".into())
                }
                SecondOrderHead::LowRank { rank } if rank == 0 || rank > shape.len() => {
                    let pixels = shape.len();
                    return fail(format!(
                        "--s2 lowrank:{rank} given, expected a rank from 1 to the {pixels} image values"
                    ));
                }
                _ => {}
            }
            if self.couple != 0.0 {
                return fail(format!(
                    "--couple {} given, the U-Net trains without coupling (expected 0)",
                    self.couple
                ));
            }
        }
        let unet = self.unet.clone().unwrap_or_default().unet(shape, self.unet_activation());
        unet.validate().map_err(|e| ConfigError::UNet(e.to_string()))?;
        Ok(shape)
    }

    /// The U-Net's activation: the configured one, else SiLU.
    fn unet_activation(&self) -> Activation {
        self.activation.unwrap_or(Activation::Silu)
    }

    /// The third-order head of `--model s1s2s3`: the configured one, else [`ThirdOrderHead::DEFAULT`].
    pub fn third_order_head(&self) -> ThirdOrderHead {
        self.s3.unwrap_or(ThirdOrderHead::DEFAULT)
    }

    /// The learning rate of step `t` (0-based) under the schedule.
    pub fn learning_rate_at(&self, t: u64) -> f64 {
        self.learning_rate * self.lr_schedule.factor(t, self.steps)
    }

    /// The optimiser settings.
    pub fn adam(&self) -> AdamSettings {
        AdamSettings {
            learning_rate: self.learning_rate,
            weight_decay: self.weight_decay,
            ..AdamSettings::default()
        }
    }

    /// The hidden activation: the configured one, else tanh for an energy model and softplus otherwise.
    pub fn hidden_activation(&self) -> Activation {
        self.activation.unwrap_or(match self.model {
            ModelKind::Energy => Activation::Tanh,
            ModelKind::S1 | ModelKind::S1s2 | ModelKind::S1s2s3 => Activation::Softplus,
        })
    }

    /// A freshly initialised model of the configured kind and architecture for data of dimension `dim`.
    ///
    /// # Errors
    /// [`ConfigError::UNet`] for U-Net settings it cannot train, or images of another dimension.
    pub fn init_model<R: Rng + ?Sized>(&self, dim: usize, rng: &mut R) -> Result<Model<f32>, ConfigError> {
        let (width, depth, activation) = (self.width, self.depth, self.hidden_activation());
        if let Some(settings) = &self.unet {
            let shape = self.image_shape()?;
            if shape.len() != dim {
                let msg = format!("{}x{} images given {dim} values per point", shape.height, shape.width);
                return Err(ConfigError::UNet(msg));
            }
            let unet = settings.unet(shape, self.unet_activation());
            let mut model = match self.model {
                ModelKind::S1s2 => {
                    ImageScoreModel::init_with_head(&unet, self.sigma, self.s2, settings.s2_layout, rng)
                }
                _ => ImageScoreModel::init(&unet, self.sigma, rng),
            }
            .map_err(|e| ConfigError::UNet(e.to_string()))?;
            if let Some(schedule) = self.sigmas {
                model = model.noise_conditional(schedule);
            }
            if self.form == FormName::Nll {
                model = model.with_diagonal_link(DiagonalLink::Log);
            }
            return Ok(Model::Image(model));
        }
        Ok(match self.model {
            ModelKind::Energy => {
                let base_precision = self.base_precision;
                let shape = EnergyShape { dim, width, depth, activation, base_precision };
                Model::Energy(EnergyModel::init(&shape, rng))
            }
            kind => {
                let head = (kind != ModelKind::S1).then_some(self.s2);
                let model = ScoreModel::init(&ModelShape { dim, width, depth, activation, head }, rng);
                Model::Score(match kind {
                    ModelKind::S1s2s3 => model.with_third_order(self.third_order_head(), rng),
                    _ => model,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn toml_round_trip_and_validation() {
        let config = TrainConfig {
            s2: SecondOrderHead::LowRank { rank: 4 },
            vr: true,
            form: FormName::A,
            ..Default::default()
        };
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("s2 = \"lowrank:4\""), "{text}");
        assert_eq!(toml::from_str::<TrainConfig>(&text).unwrap(), config);
        assert_eq!(
            config.objective().unwrap(),
            Objective::SecondOrder { form: D2smForm::AVr, weight: 10.0, couple: 0.0, third_order: false }
        );
        assert!(!text.contains("couple"), "a zero coupling is not written: {text}");
        let coupled = TrainConfig { couple: 0.5, ..Default::default() };
        assert!(toml::to_string(&coupled).unwrap().contains("couple = 0.5"));
        assert!(matches!(coupled.objective(), Ok(Objective::SecondOrder { couple: 0.5, .. })));
        for couple in [-1.0, f64::NAN] {
            let err = TrainConfig { couple, ..Default::default() }.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("--couple {couple} (expected")), "{err}");
        }
        let s1_coupled = TrainConfig { model: ModelKind::S1, couple: 1.0, ..Default::default() };
        assert!(matches!(s1_coupled.validate(), Err(ConfigError::OutOfRange { field: "couple", .. })));
        assert!(toml::from_str::<TrainConfig>("sigmaa = 1.0").is_err(), "unknown fields are rejected");
        let bad = TrainConfig { sigma: -0.1, ..Default::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::OutOfRange { field: "sigma", .. })));
        let nan = TrainConfig { sigma: f64::NAN, ..Default::default() };
        assert!(nan.validate().is_err());
        // 1e-320 is 0 in f32, 1e-45 a subnormal, 1e30 and 1e308 swamp any data.
        for sigma in [1e-320, 1e-45, 5e-5, 2e4, 1e30, 1e308] {
            let err = TrainConfig { sigma, ..Default::default() }.validate().unwrap_err().to_string();
            assert!(err.contains("expected a number in [1e-4, 1e4]"), "{sigma}: {err}");
        }
        for sigma in [1e-4, 0.3, 1e4] {
            assert!(TrainConfig { sigma, ..Default::default() }.validate().is_ok(), "{sigma}");
        }
        let ssm = TrainConfig {
            model: ModelKind::S1,
            objective: Some(ObjectiveName::SsmVr),
            projections: 2,
            ..Default::default()
        };
        let want = Objective::ScoreMatching(crate::objectives::ScoreMatching::Ssm {
            projections: 2,
            projection: Projection::Rademacher,
            variance_reduced: true,
        });
        assert_eq!(ssm.objective().unwrap(), want);
        let text = toml::to_string(&ssm).unwrap();
        assert!(text.contains("objective = \"ssm-vr\""), "{text}");
        let zero = TrainConfig { projections: 0, ..ssm.clone() };
        assert!(matches!(zero.validate(), Err(ConfigError::Objective(ObjectiveError::ZeroProjections))));
        let with_head = TrainConfig { model: ModelKind::S1s2, ..ssm };
        assert!(matches!(with_head.validate(), Err(ConfigError::ObjectiveNeedsScoreModel("ssm-vr"))));
        let vr_b = TrainConfig { vr: true, form: FormName::B, ..Default::default() };
        assert!(matches!(vr_b.validate(), Err(ConfigError::VrNeedsFormA("b"))));
        let vr_nll = TrainConfig { vr: true, form: FormName::Nll, ..Default::default() };
        assert!(matches!(vr_nll.validate(), Err(ConfigError::VrNeedsFormA("nll"))));
        // The likelihood fit needs an image model's diag or low-rank head.
        let mlp_nll = TrainConfig { form: FormName::Nll, ..Default::default() };
        assert!(
            matches!(mlp_nll.validate(), Err(ConfigError::NllNeedsImageHead)),
            "{:?}",
            mlp_nll.validate()
        );
        // --head-pcs K trains K of a low-rank likelihood head's columns: at most R, and nothing else.
        let pcs = |form, s2, head_pcs| TrainConfig {
            model: ModelKind::S1s2,
            form,
            s2,
            head_pcs,
            ..Default::default()
        };
        let nll_rank4 = pcs(FormName::Nll, SecondOrderHead::LowRank { rank: 4 }, 3);
        let likelihood = |pcs| Objective::SecondOrder {
            form: D2smForm::Likelihood { pcs },
            weight: 10.0,
            couple: 0.0,
            third_order: false,
        };
        assert_eq!(nll_rank4.objective().unwrap(), likelihood(3));
        for (config, expected) in [
            (pcs(FormName::Nll, SecondOrderHead::LowRank { rank: 4 }, 5), "at most the head's rank"),
            (pcs(FormName::B, SecondOrderHead::LowRank { rank: 4 }, 2), "0 unless --form nll --s2 lowrank:R"),
            (pcs(FormName::Nll, SecondOrderHead::Diagonal, 1), "0 unless --form nll --s2 lowrank:R"),
        ] {
            let image =
                TrainConfig { unet: Some(UNetSettings::default()), target: "digits".into(), ..config };
            let err = image.validate().unwrap_err();
            assert!(
                matches!(&err, ConfigError::OutOfRange { field: "head_pcs", expected: e, .. } if e.starts_with(expected)),
                "{err}"
            );
        }
        let energy = TrainConfig { model: ModelKind::Energy, vr: true, ..Default::default() };
        assert_eq!(energy.objective().unwrap(), Objective::DsmVr);
        assert_eq!(energy.hidden_activation(), Activation::Tanh, "energy networks default to tanh");
        assert_eq!(TrainConfig::default().hidden_activation(), Activation::Softplus);
        let silu = TrainConfig { activation: Some(Activation::Silu), ..energy.clone() };
        assert_eq!(silu.hidden_activation(), Activation::Silu);
        assert!(energy.validate().is_ok());
        let flat = TrainConfig { base_precision: -1.0, ..energy };
        assert!(matches!(flat.validate(), Err(ConfigError::OutOfRange { field: "base_precision", .. })));
        let uci = TrainConfig { target: "uci:redwine".into(), ..Default::default() };
        assert!(matches!(uci.target_source(), Ok(TargetSource::Uci(UciSpec { path: None, .. }))));
        let unknown = TrainConfig { target: "uci:beer".into(), ..Default::default() };
        assert!(matches!(unknown.validate(), Err(ConfigError::Uci(_))), "{:?}", unknown.validate());
        let csv = TrainConfig { target: "csv:data/x.csv".into(), ..Default::default() };
        assert!(matches!(csv.target_source(), Ok(TargetSource::Csv(p)) if p == Path::new("data/x.csv")));
        assert!(TrainConfig { target: "npy:".into(), ..Default::default() }.validate().is_err());
    }
}
