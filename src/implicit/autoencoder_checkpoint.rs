//! Checkpoints of the autoencoders (`tweedie vae`, `tweedie wae`): the encoder and decoder weights under
//! `encoder.{layer}.weight` / `.bias` and `decoder.{layer}...` (weight `inputs x outputs`), with the
//! model kind, shapes and training facts as metadata, in a format of their own so that a score-model
//! command refuses them (and `tweedie eval --ais` refuses score models).

use super::bernoulli_decoder::BernoulliDecoder;
use super::entropy_estimator::EntropyEstimator;
use super::vae::{EncoderKind, Vae};
use super::wae::Wae;
use crate::checkpoint::{CheckpointError, TensorStore};
use crate::nn::Mlp;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// The format tag of autoencoder checkpoints.
pub const AUTOENCODER_FORMAT: &str = "tweedie-autoencoder/1";

/// A trained autoencoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Autoencoder {
    /// A VAE with a Bernoulli decoder.
    Vae(Vae),
    /// A WAE with a sigmoid decoder.
    Wae(Wae),
}

impl Autoencoder {
    /// `vae-gaussian`, `vae-implicit` or `wae`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Autoencoder::Vae(v) if v.kind == EncoderKind::Gaussian => "vae-gaussian",
            Autoencoder::Vae(_) => "vae-implicit",
            Autoencoder::Wae(_) => "wae",
        }
    }

    /// The decoder network: latent codes to pixel logits (Bernoulli logits of a VAE, pre-sigmoid outputs
    /// of a WAE). Its input size is the latent size.
    pub fn decoder(&self) -> &Mlp<f64> {
        self.networks()[1]
    }

    fn networks(&self) -> [&Mlp<f64>; 2] {
        match self {
            Autoencoder::Vae(v) => [&v.encoder, &v.decoder.net],
            Autoencoder::Wae(w) => [&w.encoder, &w.decoder],
        }
    }

    fn networks_mut(&mut self) -> [&mut Mlp<f64>; 2] {
        match self {
            Autoencoder::Vae(v) => [&mut v.encoder, &mut v.decoder.net],
            Autoencoder::Wae(w) => [&mut w.encoder, &mut w.decoder],
        }
    }
}

/// An autoencoder with what its training run reports.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoencoderCheckpoint {
    /// The model.
    pub model: Autoencoder,
    /// The entropy estimator it was trained with (`ssm-vr` is recorded for the Gaussian VAE, which uses
    /// none).
    pub entropy: EntropyEstimator,
    /// The data set it was trained on (`mnist`, `digits`).
    pub target: String,
    /// Training steps taken.
    pub steps: u64,
    /// Wall-clock seconds per training step.
    pub seconds_per_step: f64,
}

const NETWORKS: [&str; 2] = ["encoder", "decoder"];

impl AutoencoderCheckpoint {
    /// Writes the checkpoint (atomically).
    ///
    /// # Errors
    /// [`CheckpointError`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut store = TensorStore::new();
        store.set_metadata("format", AUTOENCODER_FORMAT);
        store.set_metadata("kind", self.model.kind_name());
        store.set_metadata("entropy", self.entropy.name());
        store.set_metadata("target", self.target.clone());
        store.set_u64("steps", self.steps);
        store.set_metadata("seconds_per_step", self.seconds_per_step.to_string());
        let [encoder, decoder] = self.model.networks();
        store.set_u64("data_dim", decoder.outputs() as u64);
        store.set_u64("latent", decoder.inputs() as u64);
        store.set_u64("hidden", encoder.sizes()[1] as u64);
        for (name, net) in NETWORKS.iter().zip([encoder, decoder]) {
            for (tensor, shape, values) in net.named_tensors() {
                store.insert(format!("{name}.{tensor}"), shape, values);
            }
        }
        store.save(path)
    }

    /// Reads a checkpoint, checking its format and every tensor's shape.
    ///
    /// # Errors
    /// [`CheckpointError`]: another format (a score-model checkpoint), a missing entry, a bad shape.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let store = TensorStore::load(path)?;
        let bad = |key: &str, value: &str, expected: &str| CheckpointError::BadMetadata {
            path: path.to_path_buf(),
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        };
        let format = store.metadata("format")?;
        if format != AUTOENCODER_FORMAT {
            let expected =
                "tweedie-autoencoder/1, a checkpoint of tweedie vae or tweedie wae (this is not one)";
            return Err(bad("format", format, expected));
        }
        let entropy_text = store.metadata("entropy")?;
        let entropy =
            entropy_text.parse().map_err(|_| bad("entropy", entropy_text, "ssm-vr, stein or ssge"))?;
        let seconds_text = store.metadata("seconds_per_step")?;
        let seconds_per_step =
            seconds_text.parse().map_err(|_| bad("seconds_per_step", seconds_text, "a number"))?;
        let size = |key: &str| store.get_u64(key).map(|v| v as usize);
        let (data_dim, latent, hidden) = (size("data_dim")?, size("latent")?, size("hidden")?);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let kind = store.metadata("kind")?;
        let mut model = match kind {
            "vae-gaussian" => {
                Autoencoder::Vae(Vae::init(EncoderKind::Gaussian, data_dim, latent, hidden, &mut rng))
            }
            "vae-implicit" => {
                Autoencoder::Vae(Vae::init(EncoderKind::Implicit, data_dim, latent, hidden, &mut rng))
            }
            "wae" => Autoencoder::Wae(Wae::init(data_dim, latent, hidden, &mut rng)),
            other => return Err(bad("kind", other, "vae-gaussian, vae-implicit or wae")),
        };
        for (name, net) in NETWORKS.iter().zip(model.networks_mut()) {
            net.read_tensors(|tensor, shape| store.get_f64(&format!("{name}.{tensor}"), shape))?;
        }
        let target = store.metadata("target")?.to_string();
        Ok(Self { model, entropy, target, steps: store.get_u64("steps")?, seconds_per_step })
    }
}

/// The decoder of a VAE checkpoint as a [`BernoulliDecoder`] (for AIS), `None` for a WAE.
pub fn bernoulli_decoder(model: &Autoencoder) -> Option<&BernoulliDecoder> {
    match model {
        Autoencoder::Vae(v) => Some(&v.decoder),
        Autoencoder::Wae(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind_and_refuses_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ae.safetensors");
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for model in [
            Autoencoder::Vae(Vae::init(EncoderKind::Gaussian, 6, 2, 3, &mut rng)),
            Autoencoder::Vae(Vae::init(EncoderKind::Implicit, 6, 2, 3, &mut rng)),
            Autoencoder::Wae(Wae::init(6, 2, 3, &mut rng)),
        ] {
            let checkpoint = AutoencoderCheckpoint {
                model,
                entropy: EntropyEstimator::Ssge,
                target: "digits".into(),
                steps: 7,
                seconds_per_step: 0.25,
            };
            checkpoint.save(&path).unwrap();
            assert_eq!(AutoencoderCheckpoint::load(&path).unwrap(), checkpoint);
        }
        let mut other = TensorStore::new();
        other.set_metadata("format", "tweedie-checkpoint/2");
        other.save(&path).unwrap();
        let err = AutoencoderCheckpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("tweedie-autoencoder/1") && !err.contains('\n'), "{err}");
    }
}
