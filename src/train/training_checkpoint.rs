//! A training run's complete state in one safetensors file. The weights every command evaluates (the
//! EMA of the weights when averaging is on) are stored under the documented names `s1.{layer}.weight` /
//! `.bias`, `s2.{layer}...`, `s3.{layer}...` or `energy.{layer}...` (weight `inputs x outputs`, `y = x W + b`), so that a
//! forward pass written from those tensors alone gives what `tweedie score` gives (the layout of every
//! head: `docs/checkpoints.md`). The raw training weights, needed to resume bit for bit, are stored under
//! `train.` + the same names when they differ; then the Adam moments, the RNG position, the step and the
//! configuration. Saving is atomic; loading checks every shape against the configuration.

use super::config::{TargetSource, TrainConfig};
use super::data_file::DataFile;
use super::training_memory::network_sizes;
use crate::checkpoint::{CheckpointError, TensorStore};
use crate::data::quoted;
use crate::memory_budget::NetworkSize;
use crate::models::{EnergyModel, Model, ScoreModel, SecondOrderNet, ThirdOrderNet};
use crate::nn::graph::Graph;
use crate::nn::Mlp;
use crate::optim::{Adam, Ema};
use crate::Error;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// The format tag written into every checkpoint.
pub const FORMAT: &str = "tweedie-checkpoint/2";

/// The format tag of a weights-only export ([`Checkpoint::save_weights`]).
pub const WEIGHTS_FORMAT: &str = "tweedie-weights/1";

/// The earlier format: the trained weights under the documented names, their EMA as one flat vector.
const FORMAT_V1: &str = "tweedie-checkpoint/1";

/// The prefix of the raw training weights when they differ from the evaluated ones.
const TRAINING_PREFIX: &str = "train.";

/// Everything needed to evaluate a model or resume its training bit for bit.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The run's configuration.
    pub config: TrainConfig,
    /// Data dimension.
    pub dim: usize,
    /// Steps completed.
    pub step: u64,
    /// The trained weights.
    pub model: Model<f32>,
    /// Optimiser state.
    pub adam: Adam<f32>,
    /// Weight average, if enabled.
    pub ema: Option<Ema<f32>>,
    /// The data/noise generator, positioned after the last completed step.
    pub rng: ChaCha8Rng,
    /// The data file trained on (`csv:`/`npy:` targets) and its content hash.
    pub data_file: Option<DataFile>,
}

fn put_mlp(store: &mut TensorStore, prefix: &str, mlp: &Mlp<f32>) {
    for (name, shape, values) in mlp.named_tensors() {
        store.insert(format!("{prefix}.{name}"), shape, values);
    }
}

fn get_mlp(store: &TensorStore, prefix: &str, template: &Mlp<f32>) -> Result<Mlp<f32>, CheckpointError> {
    let mut mlp = template.clone();
    mlp.read_tensors(|name, shape| store.get_f32(&format!("{prefix}.{name}"), shape))?;
    Ok(mlp)
}

/// Stores a graph's tensors as `prefix.` + their paths.
fn put_graph(store: &mut TensorStore, prefix: &str, net: &Graph<f32>) {
    for t in net.tensors() {
        store.insert(format!("{prefix}.{}", t.name), &t.shape, &net.params()[t.offset..t.offset + t.len()]);
    }
}

/// Reads a graph's tensors from `prefix.` + their paths into `net` (shaped by its template).
fn get_graph(store: &TensorStore, prefix: &str, net: &mut Graph<f32>) -> Result<(), CheckpointError> {
    for t in net.tensors().to_vec() {
        let values = store.get_f32(&format!("{prefix}.{}", t.name), &t.shape)?;
        net.params_mut()[t.offset..t.offset + t.len()].copy_from_slice(&values);
    }
    Ok(())
}

/// Stores every network of `model` under `prefix` + its documented names.
pub(crate) fn put_model(store: &mut TensorStore, prefix: &str, model: &Model<f32>) {
    match model {
        Model::Score(model) => {
            put_mlp(store, &format!("{prefix}s1"), &model.s1);
            if let Some(s2) = &model.s2 {
                put_mlp(store, &format!("{prefix}s2"), &s2.net);
            }
            if let Some(s3) = &model.s3 {
                put_mlp(store, &format!("{prefix}s3"), &s3.net);
            }
        }
        Model::Energy(model) => put_mlp(store, &format!("{prefix}energy"), &model.net),
        Model::Image(model) => {
            put_graph(store, &format!("{prefix}s1"), &model.net);
            if let Some(net) = model.s2_net() {
                put_graph(store, &format!("{prefix}s2"), net);
            }
        }
    }
}

/// Reads a model shaped like `template` from `prefix` + its documented names.
fn get_model(
    store: &TensorStore,
    prefix: &str,
    template: &Model<f32>,
) -> Result<Model<f32>, CheckpointError> {
    Ok(match template {
        Model::Score(template) => {
            let s1 = get_mlp(store, &format!("{prefix}s1"), &template.s1)?;
            let s2 = match &template.s2 {
                Some(t) => Some(SecondOrderNet {
                    head: t.head,
                    net: get_mlp(store, &format!("{prefix}s2"), &t.net)?,
                }),
                None => None,
            };
            let s3 = match &template.s3 {
                Some(t) => {
                    Some(ThirdOrderNet { head: t.head, net: get_mlp(store, &format!("{prefix}s3"), &t.net)? })
                }
                None => None,
            };
            Model::Score(ScoreModel { s1, s2, s3 })
        }
        Model::Energy(template) => Model::Energy(EnergyModel {
            net: get_mlp(store, &format!("{prefix}energy"), &template.net)?,
            base_precision: template.base_precision,
        }),
        Model::Image(template) => {
            let mut model = template.clone();
            get_graph(store, &format!("{prefix}s1"), &mut model.net)?;
            if let Some(net) = model.s2.as_mut().and_then(|s2| s2.net.as_mut()) {
                get_graph(store, &format!("{prefix}s2"), net)?;
            }
            Model::Image(model)
        }
    })
}

impl Checkpoint {
    /// The model to evaluate: the EMA weights when averaging is on, else the trained weights.
    pub fn eval_model(&self) -> Model<f32> {
        let mut model = self.model.clone();
        if let Some(ema) = &self.ema {
            model.set_params(ema.shadow());
        }
        model
    }

    /// Writes the checkpoint atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut store = TensorStore::new();
        put_model(&mut store, "", &self.eval_model());
        if self.ema.is_some() {
            put_model(&mut store, TRAINING_PREFIX, &self.model);
        }
        let (m, v, t) = self.adam.state();
        store.insert("adam.m", &[m.len()], m);
        store.insert("adam.v", &[v.len()], v);
        store.set_u64("adam.t", t);
        store.set_metadata("format", FORMAT);
        store.set_metadata("config", toml::to_string(&self.config).expect("a config always serialises"));
        store.set_u64("dim", self.dim as u64);
        store.set_u64("step", self.step);
        store.set_metadata(
            "rng.seed",
            self.rng.get_seed().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        );
        store.set_u64("rng.stream", self.rng.get_stream());
        store.set_metadata("rng.word_pos", self.rng.get_word_pos().to_string());
        store.set_metadata("sigma", self.config.sigma.to_string());
        store.set_metadata("target", self.config.target.clone());
        // The size of the pool the run trains on (`--threads`): a record for timings; the weights do
        // not depend on it (tests/thread_counts.rs).
        store.set_u64("threads", rayon::current_num_threads() as u64);
        if let Ok(TargetSource::Images(_)) = self.config.target_source() {
            store.set_metadata("data.scaling", self.config.pixels.description());
        }
        if let Some(file) = &self.data_file {
            file.store(&mut store, path);
        }
        store.save(path)
    }

    /// Writes only the evaluated weights under their documented names (no optimiser state, no raw
    /// weights), with the configuration, dimension, head and activation as metadata: the file to hand to
    /// code in another language. Atomic like [`Checkpoint::save`].
    pub fn save_weights(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut store = TensorStore::new();
        let model = self.eval_model();
        put_model(&mut store, "", &model);
        store.set_metadata("format", WEIGHTS_FORMAT);
        store.set_metadata("config", toml::to_string(&self.config).expect("a config always serialises"));
        store.set_u64("dim", self.dim as u64);
        store.set_u64("step", self.step);
        store.set_metadata("sigma", self.config.sigma.to_string());
        store.set_metadata("target", self.config.target.clone());
        store.set_metadata("activation", format!("{:?}", self.config.hidden_activation()).to_lowercase());
        if let Model::Score(ScoreModel { s2: Some(s2), .. }) = &model {
            store.set_metadata("s2.head", s2.head.to_string());
        }
        if let Model::Score(ScoreModel { s3: Some(s3), .. }) = &model {
            store.set_metadata("s3.head", s3.head.to_string());
        }
        store.save(path)
    }

    /// Reads a checkpoint, checking its format, configuration and every tensor's shape.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let store = TensorStore::load(path)?;
        let bad = |key: &str, value: &str, expected: &'static str| CheckpointError::BadMetadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        };
        let format = store.metadata("format")?;
        if format != FORMAT && format != FORMAT_V1 {
            let expected = match format {
                WEIGHTS_FORMAT => "a training checkpoint: this is a weights-only export, give the file `tweedie train` wrote",
                crate::implicit::AUTOENCODER_FORMAT => "a score-model checkpoint: this is an autoencoder of tweedie vae / wae (evaluate it with tweedie eval --ais)",
                _ => "tweedie-checkpoint/2 (or /1)",
            };
            return Err(bad("format", format, expected).into());
        }
        let text = store.metadata("config")?;
        // The entry's problem, named by the TOML key or the field, after the file and the entry.
        let bad_config = |problem: String| CheckpointError::BadMetadata {
            path: path.to_path_buf(),
            key: "config".into(),
            value: quoted(text),
            expected: format!("a valid tweedie config; {problem}"),
        };
        let config: TrainConfig = toml::from_str(text).map_err(|e| bad_config(e.message().to_string()))?;
        config.validate().map_err(|e| bad_config(e.to_string()))?;
        let dim_text = store.metadata("dim")?;
        let dim = dim_text
            .parse::<usize>()
            .ok()
            .filter(|d| *d > 0)
            .ok_or_else(|| bad("dim", dim_text, "a dimension >= 1"))?;
        // The configuration sizes the model built below: it must not ask for more weights than the file
        // holds, or a damaged config (a width of 10^9) would allocate before any shape is compared.
        let stored: f64 =
            store.names().filter_map(|n| store.shape(n)).map(|s| s.iter().product::<usize>() as f64).sum();
        let needed: f64 = network_sizes(&config, dim).iter().map(NetworkSize::params).sum();
        if needed > stored {
            let problem = format!("its networks need {needed:e} weights, the file holds {stored:e} numbers");
            return Err(bad_config(problem).into());
        }
        // Shapes come from the configuration; the stored tensors must match them exactly.
        let template = config
            .init_model(dim, &mut ChaCha8Rng::seed_from_u64(0))
            .map_err(|e| bad_config(e.to_string()))?;
        let n = template.num_params();
        let step = store.get_u64("step")?;
        let documented = get_model(&store, "", &template)?;
        // The average is updated once per completed step.
        let (model, ema) = match (config.ema > 0.0, format == FORMAT_V1) {
            (false, _) => (documented, None),
            (true, true) => {
                (documented, Some(Ema::from_shadow(config.ema, store.get_f32("ema.shadow", &[n])?, step)))
            }
            (true, false) => {
                let shadow: Vec<f32> = documented.params().concat();
                (
                    get_model(&store, TRAINING_PREFIX, &template)?,
                    Some(Ema::from_shadow(config.ema, shadow, step)),
                )
            }
        };
        let settings = config.adam();
        let adam = Adam::from_state(
            settings,
            store.get_f32("adam.m", &[n])?,
            store.get_f32("adam.v", &[n])?,
            store.get_u64("adam.t")?,
        );
        let seed_hex = store.metadata("rng.seed")?;
        let seed: Vec<u8> = (0..seed_hex.len() / 2)
            .map(|k| u8::from_str_radix(seed_hex.get(2 * k..2 * k + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad("rng.seed", seed_hex, "64 hexadecimal digits"))?;
        let seed: [u8; 32] =
            seed.try_into().map_err(|_| bad("rng.seed", seed_hex, "64 hexadecimal digits"))?;
        let word_pos_text = store.metadata("rng.word_pos")?;
        let word_pos: u128 =
            word_pos_text.parse().map_err(|_| bad("rng.word_pos", word_pos_text, "an integer"))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(store.get_u64("rng.stream")?);
        rng.set_word_pos(word_pos);
        let data_file = DataFile::load(&store, path)?;
        let mut config = config;
        if let Some(file) = &data_file {
            file.retarget(&mut config);
        }
        Ok(Self { config, dim, step, model, adam, ema, rng, data_file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{HeadLayout, ImageScoreModel, SecondOrderHead};
    use crate::nn::graph::Shape;
    use crate::testing::tiny_unet;

    /// Every tensor of both U-Nets of an image model is stored under `s1.` / `s2.` + its graph path, with
    /// its shape and values, and reads back into the same model.
    #[test]
    fn image_model_tensors_are_stored_under_their_paths_and_read_back() {
        let unet = tiny_unet(Shape::new(8, 8, 1));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let head = SecondOrderHead::LowRank { rank: 2 };
        let model =
            ImageScoreModel::<f32>::init_with_head(&unet, 0.5, head, HeadLayout::Separate, &mut rng).unwrap();
        let mut store = TensorStore::new();
        put_model(&mut store, "", &Model::Image(model.clone()));
        let s2 = model.s2_net().unwrap();
        for (prefix, net) in [("s1", &model.net), ("s2", s2)] {
            for t in net.tensors() {
                let name = format!("{prefix}.{}", t.name);
                let values = store.get_f32(&name, &t.shape).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(values, net.params()[t.offset..t.offset + t.len()], "{name}");
            }
        }
        assert!(
            store.names().any(|n| n == "s1.stem.weight") && store.names().any(|n| n == "s2.out.conv.bias")
        );
        let mut template = model.clone();
        template.params_mut().into_iter().flatten().for_each(|w| *w = 0.0);
        let read = get_model(&store, "", &Model::Image(template)).unwrap();
        assert_eq!(read, Model::Image(model));
    }
}
