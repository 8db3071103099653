//! The training loop: draw a batch, take an Adam step, average weights, checkpoint atomically, and stop
//! with the last good checkpoint kept if the loss stops being finite.

use super::config::TrainConfig;
use super::model_step::ModelWorkspace;
use super::training_checkpoint::Checkpoint;
use super::training_data::TrainingData;
use crate::checkpoint::CheckpointError;
use crate::linalg::Mat;
use crate::optim::{Adam, Ema};
use crate::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

/// A training run that cannot continue.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("loss is {loss} at step {step}: training diverged (the last good checkpoint, from step {last_saved}, is kept at {}; lower --learning-rate or raise --sigma)", path.display())]
    NonFiniteLoss {
        /// The step whose loss is not finite.
        step: u64,
        /// The loss.
        loss: f64,
        /// The step of the checkpoint on disk.
        last_saved: u64,
        /// Where it is.
        path: PathBuf,
    },
    /// A checkpoint's data dimension differs from its data's.
    #[error("checkpoint is for dimension {checkpoint}, but the data has dimension {data}")]
    DimensionMismatch {
        /// The checkpoint's dimension.
        checkpoint: usize,
        /// The data's.
        data: usize,
    },
}

/// What a step reports to observers.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    /// Steps completed, this one included.
    pub step: u64,
    /// The minibatch loss.
    pub loss: f64,
}

/// Receives progress from [`Trainer::run`]; every method defaults to doing nothing.
pub trait TrainObserver {
    /// After every step.
    fn on_step(&mut self, _info: &StepInfo) {}
    /// After every checkpoint written.
    fn on_checkpoint(&mut self, _step: u64, _path: &Path) {}
}

impl TrainObserver for () {}

/// A training run in progress.
pub struct Trainer {
    state: Checkpoint,
    data: TrainingData,
    ws: ModelWorkspace<f32>,
    z: Mat<f32>,
}

impl Trainer {
    /// Starts a run: validates the configuration, loads the data, initialises the model from the seed.
    pub fn new(config: TrainConfig) -> Result<Self, Error> {
        config.validate()?;
        let data = TrainingData::load(&config.target_source()?, config.seed)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let model = config.init_model(data.dim(), &mut rng);
        let settings = config.adam();
        let adam = Adam::new(settings, model.num_params());
        let ema = (config.ema > 0.0).then(|| Ema::new(config.ema, &model.params()));
        let state = Checkpoint { dim: data.dim(), config, step: 0, model, adam, ema, rng };
        Ok(Self::from_parts(state, data))
    }

    /// Resumes from a checkpoint; `steps` (if given) replaces the configured total.
    pub fn resume(mut checkpoint: Checkpoint, steps: Option<u64>) -> Result<Self, Error> {
        if let Some(steps) = steps {
            checkpoint.config.steps = steps;
        }
        checkpoint.config.validate()?;
        let data = TrainingData::load(&checkpoint.config.target_source()?, checkpoint.config.seed)?;
        if data.dim() != checkpoint.dim {
            return Err(TrainError::DimensionMismatch { checkpoint: checkpoint.dim, data: data.dim() }.into());
        }
        Ok(Self::from_parts(checkpoint, data))
    }

    fn from_parts(state: Checkpoint, data: TrainingData) -> Self {
        let ws = ModelWorkspace::new(&state.model);
        Self { state, data, ws, z: Mat::default() }
    }

    /// The current state (model, optimiser, RNG, step).
    pub fn state(&self) -> &Checkpoint {
        &self.state
    }

    /// The training data.
    pub fn data(&self) -> &TrainingData {
        &self.data
    }

    /// One step: draws a batch and noise, computes the loss, and (if it is finite) updates the model.
    /// Returns the loss; a non-finite loss leaves the model untouched.
    pub fn step(&mut self) -> f64 {
        let s = &mut self.state;
        let x = self.data.draw(s.config.batch, &mut s.rng);
        let objective = s.config.objective();
        self.z.resize(objective.noise_rows(x.rows()), x.cols());
        self.z.as_mut_slice().iter_mut().for_each(|v| *v = StandardNormal.sample(&mut s.rng));
        let sigma = s.config.sigma as f32;
        let loss = self.ws.loss_and_gradient(&s.model, objective, sigma, &x, &self.z) as f64;
        if loss.is_finite() {
            s.adam.set_learning_rate(s.config.learning_rate_at(s.step));
            s.adam.step(s.model.params_mut(), self.ws.grad());
            if let Some(ema) = &mut s.ema {
                ema.update(&s.model.params());
            }
            s.step += 1;
        }
        loss
    }

    /// Trains until the configured number of steps, checkpointing to `out` at the start of a fresh run
    /// (so a good checkpoint always exists), every `checkpoint_every` steps and at the end.
    pub fn run(&mut self, out: &Path, observer: &mut dyn TrainObserver) -> Result<(), Error> {
        if self.state.step == 0 {
            self.save(out)?;
        }
        let mut last_saved = self.state.step;
        while self.state.step < self.state.config.steps {
            let loss = self.step();
            if !loss.is_finite() {
                let step = self.state.step + 1;
                return Err(
                    TrainError::NonFiniteLoss { step, loss, last_saved, path: out.to_path_buf() }.into()
                );
            }
            observer.on_step(&StepInfo { step: self.state.step, loss });
            let due = self.state.step.is_multiple_of(self.state.config.checkpoint_every);
            if due || self.state.step == self.state.config.steps {
                self.save(out)?;
                last_saved = self.state.step;
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
            objective: Some(crate::train::ObjectiveName::SsmVr),
            base_precision: 0.5,
            ..small(steps)
        }
    }

    #[test]
    fn resume_continues_bit_for_bit() {
        for config in [small as fn(u64) -> TrainConfig, small_energy] {
            let dir = tempfile::tempdir().unwrap();
            let (straight, split) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
            Trainer::new(config(20)).unwrap().run(&straight, &mut ()).unwrap();
            Trainer::new(config(9)).unwrap().run(&split, &mut ()).unwrap();
            let halfway = Checkpoint::load(&split).unwrap();
            assert_eq!(halfway.step, 9);
            Trainer::resume(halfway, Some(20)).unwrap().run(&split, &mut ()).unwrap();
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
    fn a_cosine_schedule_resumes_bit_for_bit_and_ends_at_zero() {
        let config = TrainConfig { lr_schedule: crate::optim::LearningRateSchedule::Cosine, ..small(20) };
        assert_eq!((config.learning_rate_at(0), config.learning_rate_at(20)), (config.learning_rate, 0.0));
        let dir = tempfile::tempdir().unwrap();
        let (straight, split) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
        Trainer::new(config.clone()).unwrap().run(&straight, &mut ()).unwrap();
        let mut first = Trainer::new(config).unwrap();
        (0..9).for_each(|_| assert!(first.step().is_finite()));
        first.save(&split).unwrap();
        Trainer::resume(Checkpoint::load(&split).unwrap(), None).unwrap().run(&split, &mut ()).unwrap();
        let (a, b) = (Checkpoint::load(&straight).unwrap(), Checkpoint::load(&split).unwrap());
        assert_eq!((a.step, b.step), (20, 20));
        assert_eq!(a.model, b.model, "weights differ after resuming a cosine schedule");
        assert_eq!(a.adam, b.adam);
    }

    #[test]
    fn diverging_run_stops_naming_the_step_and_keeps_the_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        let config = TrainConfig { learning_rate: 1e30, ..small(200) };
        let err = Trainer::new(config).unwrap().run(&out, &mut ()).unwrap_err();
        let Error::Train(TrainError::NonFiniteLoss { step, last_saved, .. }) = err else { panic!("{err}") };
        assert!(step > last_saved, "diverged at {step}, saved {last_saved}");
        let kept = Checkpoint::load(&out).unwrap();
        assert_eq!(kept.step, last_saved);
        assert!(kept.model.params().iter().all(|p| p.iter().all(|v| v.is_finite())));
    }

    #[test]
    fn divergence_after_a_periodic_checkpoint_keeps_that_checkpoint_and_says_so() {
        // A sane run to step 6, then resumed with an absurd learning rate: step 7's update (from the
        // finite loss at the step-6 weights) is taken and written by the periodic checkpoint (every 7),
        // and the loss at step 8, on weights of order 1e30, overflows.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.safetensors");
        Trainer::new(small(6)).unwrap().run(&out, &mut ()).unwrap();
        let mut at_six = Checkpoint::load(&out).unwrap();
        assert_eq!(at_six.step, 6);
        at_six.config.learning_rate = 1e30;
        let mut reference = Trainer::resume(at_six.clone(), Some(200)).unwrap();
        assert!(reference.step().is_finite());
        let err = Trainer::resume(at_six, Some(200)).unwrap().run(&out, &mut ()).unwrap_err();
        let Error::Train(TrainError::NonFiniteLoss { step, loss, last_saved, .. }) = &err else {
            panic!("{err}")
        };
        assert_eq!((*step, *last_saved), (8, 7));
        assert_eq!(
            err.to_string(),
            format!(
                "loss is {loss} at step 8: training diverged (the last good checkpoint, from step 7, is kept at {}; \
                 lower --learning-rate or raise --sigma)",
                out.display()
            )
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
        Trainer::new(small(7)).unwrap().run(&out, &mut ()).unwrap();
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

    use crate::checkpoint::TensorStore;
}
