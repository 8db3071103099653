//! The training loop: draw a batch, take an Adam step, average weights, checkpoint atomically, and stop
//! with an error, saving nothing more, when the loss, the gradient, the weights or the Adam state stop
//! being finite.

use super::config::{ConfigError, TrainConfig};
use super::data_file::DataFile;
use super::model_step::ModelWorkspace;
use super::training_checkpoint::Checkpoint;
use super::training_data::TrainingData;
use super::training_memory::check_memory;
use crate::checkpoint::CheckpointError;
use crate::data::DataDir;
use crate::linalg::Mat;
use crate::memory_budget::MemoryBudget;
use crate::models::Model;
use crate::objectives::{Objective, ObjectiveError};
use crate::optim::{Adam, Ema};
use crate::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

/// What a run leaves at its output when it stops early: the last checkpoint it wrote, or nothing.
fn kept(path: &Option<PathBuf>, last_saved: &Option<u64>) -> String {
    match (path, last_saved) {
        (None, _) => "the run kept no checkpoint".into(),
        (Some(path), Some(step)) => format!("the checkpoint of step {step} is kept at {}", path.display()),
        (Some(path), None) => format!("this run wrote no checkpoint, {} is unchanged", path.display()),
    }
}

/// A training run that cannot continue.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss, the gradient, the weights or the Adam state stopped being finite.
    #[error(
        "{what} is {value} at step {step}: training diverged ({}; lower --learning-rate)",
        kept(path, last_saved)
    )]
    Diverged {
        /// The step that failed (1-based).
        step: u64,
        /// What stopped being finite.
        what: Divergence,
        /// The first non-finite value (the loss, or an element of the gradient, weights or state).
        value: f64,
        /// The step of the last checkpoint this run wrote, if any.
        last_saved: Option<u64>,
        /// The checkpoint path, if the run keeps checkpoints.
        path: Option<PathBuf>,
    },
    /// The data file changed since the checkpoint trained on it was written.
    #[error("{}: the data file changed since {} was written (SHA-256 {found}, expected {stored}); pass --allow-new-data to use it anyway", path.display(), checkpoint.display())]
    DataChanged {
        /// The data file.
        path: PathBuf,
        /// The checkpoint.
        checkpoint: PathBuf,
        /// The hash stored in the checkpoint.
        stored: String,
        /// The hash of the file now.
        found: String,
    },
    /// A size whose memory estimate exceeds the memory available (checked before allocating).
    #[error("{}", crate::memory_budget::refusal(what, *bytes, *available))]
    TooLarge {
        /// The flags and values responsible, as the user wrote them.
        what: String,
        /// The estimate in bytes.
        bytes: f64,
        /// The bytes available.
        available: f64,
    },
    /// `--steps` on resume is below the steps the checkpoint has already done.
    #[error("--steps {steps} is below the {done} steps the checkpoint has done (expected a total of at least {done})")]
    StepsBelowCheckpoint {
        /// The total asked for.
        steps: u64,
        /// The checkpoint's step.
        done: u64,
    },
    /// Fewer than two points (one to train on, one held out), or points with no coordinates.
    #[error("{rows} points of dimension {cols} (expected at least 2 points of dimension at least 1)")]
    TooFewPoints {
        /// Rows given.
        rows: usize,
        /// Columns given.
        cols: usize,
    },
    /// A point with a coordinate that is not finite or beyond the f32 range training can use.
    #[error(
        "point {row}, coordinate {column} is {value} (expected a finite number of magnitude at most 1e16)"
    )]
    BadPoint {
        /// The row (0-based).
        row: usize,
        /// The column (0-based).
        column: usize,
        /// The value.
        value: f64,
    },
    /// A checkpoint of a run on points in memory, resumed without them.
    #[error("this run trained on points given in memory (expected them again: Trainer::resume_with_points)")]
    PointsNotInMemory,
    /// A checkpoint's data dimension differs from its data's.
    #[error("checkpoint is for dimension {checkpoint}, but the data has dimension {data}")]
    DimensionMismatch {
        /// The checkpoint's dimension.
        checkpoint: usize,
        /// The data's.
        data: usize,
    },
}

/// The quantity that stopped being finite in a diverging step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// The minibatch loss.
    Loss,
    /// The gradient of the loss.
    Gradient,
    /// The weights after the update.
    Weights,
    /// Adam's moment estimates after the update.
    AdamState,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Divergence::Loss => "the loss",
            Divergence::Gradient => "the gradient",
            Divergence::Weights => "a weight",
            Divergence::AdamState => "an Adam moment estimate",
        })
    }
}

/// The first non-finite value of `slices`, if any.
fn first_non_finite<'a>(slices: impl IntoIterator<Item = &'a [f32]>) -> Option<f64> {
    slices.into_iter().flat_map(|s| s.iter()).find(|v| !v.is_finite()).map(|&v| f64::from(v))
}

/// Why one training step failed.
#[derive(Debug)]
pub(crate) enum StepFailure {
    /// A quantity stopped being finite (which, and its first non-finite value).
    Diverged(Divergence, f64),
    /// The objective cannot train the model.
    Objective(ObjectiveError),
}

impl From<ObjectiveError> for StepFailure {
    fn from(e: ObjectiveError) -> Self {
        Self::Objective(e)
    }
}

/// What a step reports to observers.
#[derive(Clone, Copy, Debug)]
pub struct TrainStep {
    /// Steps completed, this one included.
    pub step: u64,
    /// The minibatch loss.
    pub loss: f64,
}

/// Receives progress from [`Trainer::run`]; every method defaults to doing nothing.
pub trait TrainObserver {
    /// After every step.
    fn on_step(&mut self, _info: &TrainStep) {}
    /// After every checkpoint written.
    fn on_checkpoint(&mut self, _step: u64, _path: &Path) {}
}

impl TrainObserver for () {}

/// A training run in progress.
pub struct Trainer {
    state: Checkpoint,
    objective: Objective,
    data: TrainingData,
    ws: ModelWorkspace<f32>,
    z: Mat<f32>,
}

impl Trainer {
    /// Starts a run: validates the configuration, loads the data (named data sets from `data_dir`),
    /// initialises the model from the seed.
    pub fn new(config: TrainConfig, data_dir: &DataDir) -> Result<Self, Error> {
        config.validate()?;
        let data = TrainingData::load(&config, data_dir)?;
        Self::start(config, data)
    }

    /// Starts a run on points held in memory (`N x D`, one point per row): a tenth of the rows (at least
    /// one) is held out by a seeded shuffle, as for a data file. `config.target` is replaced by
    /// `"memory"`; a checkpoint of this run resumes with
    /// [`Trainer::resume_with_points`].
    ///
    /// # Errors
    /// A bad configuration, fewer than two points, a value that is not finite or beyond `1e16`
    /// ([`TrainError`]), or a model too large for this machine's memory.
    pub fn from_points(mut config: TrainConfig, points: Mat<f64>) -> Result<Self, Error> {
        config.target = super::IN_MEMORY_TARGET.into();
        config.validate()?;
        let data = TrainingData::from_memory(points, config.seed)?;
        Self::start(config, data)
    }

    fn start(config: TrainConfig, data: TrainingData) -> Result<Self, Error> {
        check_memory(&config, config.objective()?, data.dim(), &MemoryBudget::of_this_machine())?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let model = config.init_model(data.dim(), &mut rng)?;
        let settings = config.adam();
        let adam = Adam::new(settings, model.num_params());
        let ema = (config.ema > 0.0).then(|| Ema::new(config.ema, &model.params()));
        let data_file = DataFile::of(&config)?;
        let state = Checkpoint { dim: data.dim(), config, step: 0, model, adam, ema, rng, data_file };
        Self::from_parts(state, data)
    }

    /// Resumes from a checkpoint; `steps` (if given) replaces the configured total.
    pub fn resume(mut checkpoint: Checkpoint, steps: Option<u64>, data_dir: &DataDir) -> Result<Self, Error> {
        if let Some(steps) = steps {
            if steps < checkpoint.step {
                return Err(TrainError::StepsBelowCheckpoint { steps, done: checkpoint.step }.into());
            }
            checkpoint.config.steps = steps;
        }
        checkpoint.config.validate()?;
        let data = TrainingData::load(&checkpoint.config, data_dir)?;
        Self::continue_on(checkpoint, data)
    }

    /// Resumes a run of [`Trainer::from_points`] on the same points; `steps` as for [`Trainer::resume`].
    ///
    /// # Errors
    /// As [`Trainer::resume`], and [`TrainError::DimensionMismatch`] for points of another dimension.
    pub fn resume_with_points(
        mut checkpoint: Checkpoint,
        steps: Option<u64>,
        points: Mat<f64>,
    ) -> Result<Self, Error> {
        if let Some(steps) = steps {
            if steps < checkpoint.step {
                return Err(TrainError::StepsBelowCheckpoint { steps, done: checkpoint.step }.into());
            }
            checkpoint.config.steps = steps;
        }
        checkpoint.config.validate()?;
        let data = TrainingData::from_memory(points, checkpoint.config.seed)?;
        Self::continue_on(checkpoint, data)
    }

    fn continue_on(mut checkpoint: Checkpoint, data: TrainingData) -> Result<Self, Error> {
        if data.dim() != checkpoint.dim {
            return Err(TrainError::DimensionMismatch { checkpoint: checkpoint.dim, data: data.dim() }.into());
        }
        // The file read now (the caller decides whether a changed one is acceptable: DataFile::verify).
        checkpoint.data_file = DataFile::of(&checkpoint.config)?;
        Self::from_parts(checkpoint, data)
    }

    fn from_parts(state: Checkpoint, data: TrainingData) -> Result<Self, Error> {
        let objective = state.config.objective()?;
        objective.check_model(state.model.kind()).map_err(ConfigError::from)?;
        let ws = ModelWorkspace::new(&state.model);
        Ok(Self { state, objective, data, ws, z: Mat::default() })
    }

    /// The current state (model, optimiser, RNG, step).
    pub fn state(&self) -> &Checkpoint {
        &self.state
    }

    /// The training data.
    pub(crate) fn data(&self) -> &TrainingData {
        &self.data
    }

    /// The analytic target the points are drawn from, when training on one (`gmm`, `gauss`, ...): the
    /// ground truth to evaluate the learned scores against.
    pub fn target(&self) -> Option<&crate::targets::GaussianMixture> {
        self.data.mixture()
    }

    /// The model as evaluated: the moving average of the weights when `ema > 0`, else the weights.
    pub fn model(&self) -> Model<f32> {
        self.state.eval_model()
    }

    /// One step: draws a batch and noise, computes the loss and gradient, and updates the model.
    /// Returns the loss, or what stopped being finite and its value: a non-finite loss or gradient leaves
    /// the state untouched; non-finite weights or Adam moments after the update leave it unusable (it
    /// must not be saved).
    pub(crate) fn step(&mut self) -> Result<f64, StepFailure> {
        let s = &mut self.state;
        let x = self.data.draw(s.config.batch, &mut s.rng);
        let objective = self.objective;
        self.z.resize(objective.noise_rows(x.rows()), x.cols());
        self.z.as_mut_slice().iter_mut().for_each(|v| *v = StandardNormal.sample(&mut s.rng));
        self.ws.draw_noise_levels(&s.model, x.rows(), &mut s.rng);
        let sigma = s.config.sigma as f32;
        let loss = self.ws.loss_and_gradient(&s.model, objective, sigma, &x, &self.z)? as f64;
        if !loss.is_finite() {
            return Err(StepFailure::Diverged(Divergence::Loss, loss));
        }
        if let Some(v) = first_non_finite(self.ws.grad()) {
            return Err(StepFailure::Diverged(Divergence::Gradient, v));
        }
        s.adam.set_learning_rate(s.config.learning_rate_at(s.step));
        s.adam.step(s.model.params_mut(), self.ws.grad());
        if let Some(v) = first_non_finite(s.model.params()) {
            return Err(StepFailure::Diverged(Divergence::Weights, v));
        }
        let (m, v, _) = s.adam.state();
        if let Some(value) = first_non_finite([m, v]) {
            return Err(StepFailure::Diverged(Divergence::AdamState, value));
        }
        if let Some(ema) = &mut s.ema {
            ema.update(&s.model.params());
        }
        s.step += 1;
        Ok(loss)
    }

    /// Trains until the configured number of steps. With `checkpoint = Some(out)` the state is written to
    /// `out` every `checkpoint_every` steps and at the end; nothing is written before the first of these,
    /// so a run that fails or is killed early leaves whatever was at `out` as it was; each write is
    /// atomic. With `None` nothing is written.
    pub fn run(&mut self, checkpoint: Option<&Path>, observer: &mut dyn TrainObserver) -> Result<(), Error> {
        let mut last_saved = None;
        while self.state.step < self.state.config.steps {
            let loss = match self.step() {
                Ok(loss) => loss,
                Err(StepFailure::Objective(e)) => return Err(ConfigError::Objective(e).into()),
                Err(StepFailure::Diverged(what, value)) => {
                    let step = self.state.step + 1;
                    let path = checkpoint.map(Path::to_path_buf);
                    return Err(TrainError::Diverged { step, what, value, last_saved, path }.into());
                }
            };
            observer.on_step(&TrainStep { step: self.state.step, loss });
            let due = self.state.step.is_multiple_of(self.state.config.checkpoint_every);
            if let (Some(out), true) = (checkpoint, due || self.state.step == self.state.config.steps) {
                self.save(out)?;
                last_saved = Some(self.state.step);
                observer.on_checkpoint(self.state.step, out);
            }
        }
        Ok(())
    }

    /// Writes the current state to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        self.state.save(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ModelKind, SecondOrderHead};
    use crate::train::config::FormName;

    fn small(steps: u64) -> TrainConfig {
        TrainConfig {
            target: "gmm:dim=3,components=2,seed=4".into(),
            model: ModelKind::S1s2,
            s2: SecondOrderHead::LowRank { rank: 2 },
            form: FormName::A,
            vr: true,
            steps,
            batch: 16,
            width: 8,
            ema: 0.9,
            checkpoint_every: 7,
            ..Default::default()
        }
    }

    /// An energy model trained by SSM-VR on the same target.
    fn small_energy(steps: u64) -> TrainConfig {
        TrainConfig {
            model: ModelKind::Energy,
            objective: Some(crate::objectives::ObjectiveName::SsmVr),
            base_precision: 0.5,
            ..small(steps)
        }
    }

    #[test]
    fn resume_continues_bit_for_bit() {
        for config in [small as fn(u64) -> TrainConfig, small_energy] {
            let dir = tempfile::tempdir().unwrap();
            let (straight, split) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
            Trainer::new(config(20), &DataDir::new("unused")).unwrap().run(Some(&straight), &mut ()).unwrap();
            Trainer::new(config(9), &DataDir::new("unused")).unwrap().run(Some(&split), &mut ()).unwrap();
            let halfway = Checkpoint::load(&split).unwrap();
            assert_eq!(halfway.step, 9);
            Trainer::resume(halfway, Some(20), &DataDir::new("unused"))
                .unwrap()
                .run(Some(&split), &mut ())
                .unwrap();
            let (a, b) = (Checkpoint::load(&straight).unwrap(), Checkpoint::load(&split).unwrap());
            assert_eq!(a.step, 20);
            assert_eq!(a.model.kind(), config(1).model);
            assert_eq!(a.model, b.model, "weights differ after resuming");
            assert_eq!(a.adam, b.adam, "optimiser state differs after resuming");
            assert_eq!(a.ema, b.ema, "weight average differs after resuming");
            assert_eq!(a.rng, b.rng, "RNG position differs after resuming");
        }
    }

    #[test]
    fn resuming_below_the_checkpoints_step_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        Trainer::new(small(9), &DataDir::new("unused")).unwrap().run(Some(&out), &mut ()).unwrap();
        let err =
            Trainer::resume(Checkpoint::load(&out).unwrap(), Some(5), &DataDir::new("unused")).err().unwrap();
        assert!(matches!(err, Error::Train(TrainError::StepsBelowCheckpoint { steps: 5, done: 9 })), "{err}");
        assert!(
            Trainer::resume(Checkpoint::load(&out).unwrap(), Some(9), &DataDir::new("unused")).is_ok(),
            "equal: nothing to do"
        );
    }

    #[test]
    fn a_cosine_schedule_resumes_bit_for_bit_and_ends_at_zero() {
        let config = TrainConfig { lr_schedule: crate::optim::LearningRateSchedule::Cosine, ..small(20) };
        assert_eq!((config.learning_rate_at(0), config.learning_rate_at(20)), (config.learning_rate, 0.0));
        let dir = tempfile::tempdir().unwrap();
        let (straight, split) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
        Trainer::new(config.clone(), &DataDir::new("unused")).unwrap().run(Some(&straight), &mut ()).unwrap();
        let mut first = Trainer::new(config, &DataDir::new("unused")).unwrap();
        (0..9).for_each(|_| assert!(first.step().is_ok()));
        first.save(&split).unwrap();
        Trainer::resume(Checkpoint::load(&split).unwrap(), None, &DataDir::new("unused"))
            .unwrap()
            .run(Some(&split), &mut ())
            .unwrap();
        let (a, b) = (Checkpoint::load(&straight).unwrap(), Checkpoint::load(&split).unwrap());
        assert_eq!((a.step, b.step), (20, 20));
        assert_eq!(a.model, b.model, "weights differ after resuming a cosine schedule");
        assert_eq!(a.adam, b.adam);
    }

    #[test]
    fn diverging_run_stops_naming_the_step_and_leaves_the_output_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        std::fs::write(&out, b"a previous model").unwrap();
        let config = TrainConfig { learning_rate: 1e30, ..small(200) };
        let err =
            Trainer::new(config, &DataDir::new("unused")).unwrap().run(Some(&out), &mut ()).unwrap_err();
        let Error::Train(TrainError::Diverged { step, last_saved, .. }) = &err else { panic!("{err}") };
        assert!(*step <= 7 && last_saved.is_none(), "diverged at {step}, saved {last_saved:?}");
        assert!(err.to_string().contains("this run wrote no checkpoint"), "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), b"a previous model");
    }

    #[test]
    fn a_divergence_after_a_checkpoint_keeps_that_checkpoint() {
        // A learning rate of 100 overflows Adam's state or the weights after a few steps while the loss
        // stays finite for a while: the run must stop there, not save non-finite numbers.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        let config = TrainConfig { learning_rate: 100.0, checkpoint_every: 1, ..small(400) };
        let err =
            Trainer::new(config, &DataDir::new("unused")).unwrap().run(Some(&out), &mut ()).unwrap_err();
        let Error::Train(TrainError::Diverged { step, last_saved: Some(saved), .. }) = &err else {
            panic!("{err}")
        };
        assert_eq!(*saved + 1, *step, "{err}");
        let kept = Checkpoint::load(&out).unwrap();
        assert_eq!(kept.step, *saved);
        assert!(kept.model.params().iter().all(|p| p.iter().all(|v| v.is_finite())));
        let (m, v, _) = kept.adam.state();
        assert!(m.iter().chain(v).all(|x| x.is_finite()));
    }

    #[test]
    fn divergence_after_a_periodic_checkpoint_keeps_that_checkpoint_and_says_so() {
        // A sane run to step 6, then resumed with an absurd learning rate: step 7's update (from the
        // finite loss at the step-6 weights) is taken and written by the periodic checkpoint (every 7),
        // and the loss at step 8, on weights of order 1e30, overflows.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        let data_dir = DataDir::new("unused");
        Trainer::new(small(6), &data_dir).unwrap().run(Some(&out), &mut ()).unwrap();
        let mut at_six = Checkpoint::load(&out).unwrap();
        assert_eq!(at_six.step, 6);
        at_six.config.learning_rate = 1e30;
        let mut reference = Trainer::resume(at_six.clone(), Some(200), &data_dir).unwrap();
        assert!(reference.step().is_ok_and(f64::is_finite));
        let err =
            Trainer::resume(at_six, Some(200), &data_dir).unwrap().run(Some(&out), &mut ()).unwrap_err();
        let Error::Train(TrainError::Diverged { step, last_saved, .. }) = &err else { panic!("{err}") };
        assert_eq!((*step, *last_saved), (8, Some(7)));
        let message = err.to_string();
        assert!(message.contains("at step 8: training diverged"), "{message}");
        assert!(
            message.contains(&format!("the checkpoint of step 7 is kept at {}", out.display())),
            "{message}"
        );
        let kept = Checkpoint::load(&out).unwrap();
        assert_eq!(kept.step, 7);
        assert_eq!(kept.model, reference.state().model, "the kept checkpoint is not the step-7 state");
        assert!(kept.model.params().iter().all(|p| p.iter().all(|v| v.is_finite())));
    }

    #[test]
    fn loading_rejects_a_checkpoint_of_another_shape_and_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        Trainer::new(small(7), &DataDir::new("unused")).unwrap().run(Some(&out), &mut ()).unwrap();
        // Rewrite the stored config to claim a wider network than the tensors have.
        let mut store = TensorStore::load(&out).unwrap();
        let config = TrainConfig { width: 9, ..small(7) };
        store.set_metadata("config", toml::to_string(&config).unwrap());
        let other = dir.path().join("other.safetensors");
        store.save(&other).unwrap();
        let err = Checkpoint::load(&other).unwrap_err();
        assert!(matches!(err, Error::Checkpoint(CheckpointError::ShapeMismatch { .. })), "{err}");
        let bytes = std::fs::read(&out).unwrap();
        std::fs::write(&other, &bytes[..bytes.len() - 10]).unwrap();
        let err = Checkpoint::load(&other).unwrap_err();
        assert!(matches!(err, Error::Checkpoint(CheckpointError::Truncated { .. })), "{err}");
    }

    #[test]
    fn a_config_asking_for_more_weights_than_the_file_holds_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        Trainer::new(small(7), &DataDir::new("unused")).unwrap().run(Some(&out), &mut ()).unwrap();
        let mut store = TensorStore::load(&out).unwrap();
        // Without the check, building the model of this config would try to allocate 10^18 weights.
        let huge = TrainConfig { width: 1_000_000_000, ..small(7) };
        store.set_metadata("config", toml::to_string(&huge).unwrap());
        store.save(&out).unwrap();
        let err = Checkpoint::load(&out).unwrap_err();
        assert!(
            matches!(&err, Error::Checkpoint(CheckpointError::BadMetadata { key, .. }) if key == "config")
        );
        assert!(err.to_string().contains("the file holds"), "{err}");
    }

    use crate::checkpoint::TensorStore;
}
