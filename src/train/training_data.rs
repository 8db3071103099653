//! Where training points come from: an analytic target (fresh samples every step), a data file, a UCI
//! set or an image set (minibatches drawn from a training split, with a held-out split for evaluation).

use super::config::{ConfigError, TargetSource, TrainConfig};
use crate::data::{load_image_set, load_points, load_uci, locate_dataset, DataDir, DataError, Split};
use crate::linalg::Mat;
use crate::targets::{GaussianMixture, NamedTarget};
use crate::Error;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Training points.
#[derive(Clone, Debug)]
pub enum TrainingData {
    /// An analytic target with ground truth.
    Analytic {
        /// Its canonical name.
        name: String,
        /// The distribution.
        mixture: GaussianMixture,
    },
    /// Points from a file, split into training and held-out rows.
    Samples {
        /// Where they come from: the file, or the `uci:` target.
        label: String,
        /// Training rows.
        train: Mat<f64>,
        /// Held-out rows: a tenth of a data file (at least one row), or a UCI set's test split.
        held_out: Mat<f64>,
        /// `log |det|` of the map from data units to these coordinates (a UCI set's whitening; 0 for a
        /// data file): add it to a log-density of the rows to get one in data units.
        log_det: f64,
    },
}

impl TrainingData {
    /// Loads the data of `config`'s target, finding named data sets through `data_dir`; the seed fixes
    /// the held-out split of a data file, a UCI set's preprocessing and a random subset.
    pub fn load(config: &TrainConfig, data_dir: &DataDir) -> Result<Self, Error> {
        let seed = config.seed;
        let data = match config.target_source()? {
            TargetSource::Named(spec) => {
                let target = NamedTarget::parse(&spec)?;
                return Ok(Self::Analytic { name: target.name(), mixture: target.into_mixture() });
            }
            TargetSource::Csv(path) | TargetSource::Npy(path) => {
                Self::from_points(&path, load_points(&path)?, seed)?
            }
            TargetSource::Uci(spec) => {
                // The validation split is left out: training never sees it and evaluation uses the test
                // split.
                let data = load_uci(&spec, seed, data_dir)?;
                Self::Samples {
                    label: spec.to_string(),
                    train: data.train,
                    held_out: data.test,
                    log_det: data.whitening.log_det,
                }
            }
            TargetSource::Images(spec) => {
                let located = locate_dataset(spec.dataset, spec.path.as_deref(), data_dir)?;
                let other = match spec.split {
                    Split::Train => Split::Test,
                    Split::Test => Split::Train,
                };
                Self::Samples {
                    label: spec.to_string(),
                    train: load_image_set(&located, spec.split)?.pixels,
                    held_out: load_image_set(&located, other)?.pixels,
                    log_det: 0.0,
                }
            }
        };
        match (config.subset, data) {
            (Some(subset), Self::Samples { label, train, held_out, log_det }) => {
                let available = train.rows();
                let train = subset.select(&train, seed).ok_or(ConfigError::SubsetTooLarge {
                    subset,
                    target: label.clone(),
                    available,
                })?;
                Ok(Self::Samples { label, train, held_out, log_det })
            }
            (_, data) => Ok(data),
        }
    }

    /// Splits points into training and held-out rows by a seeded shuffle.
    fn from_points(path: &Path, points: Mat<f64>, seed: u64) -> Result<Self, Error> {
        if points.rows() < 2 {
            return Err(DataError::TooFewRows {
                path: path.to_path_buf(),
                found: points.rows(),
                expected: 2,
            }
            .into());
        }
        let mut order: Vec<usize> = (0..points.rows()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_da7a));
        let held = (points.rows() / 10).max(1);
        let gather = |rows: &[usize]| Mat::from_fn(rows.len(), points.cols(), |i, j| points.at(rows[i], j));
        Ok(Self::Samples {
            label: path.display().to_string(),
            held_out: gather(&order[..held]),
            train: gather(&order[held..]),
            log_det: 0.0,
        })
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        match self {
            Self::Analytic { mixture, .. } => mixture.dim(),
            Self::Samples { train, .. } => train.cols(),
        }
    }

    /// The analytic distribution, if any.
    pub fn mixture(&self) -> Option<&GaussianMixture> {
        match self {
            Self::Analytic { mixture, .. } => Some(mixture),
            Self::Samples { .. } => None,
        }
    }

    /// Draws a minibatch of `n` clean points (fresh samples, or training rows drawn with replacement).
    pub fn draw<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Mat<f32> {
        match self {
            Self::Analytic { mixture, .. } => mixture.sample(n, rng).cast(),
            Self::Samples { train, .. } => {
                let rows: Vec<usize> = (0..n).map(|_| rng.random_range(0..train.rows())).collect();
                Mat::from_fn(n, train.cols(), |i, j| train.at(rows[i], j) as f32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_split_into_disjoint_train_and_held_out_rows() {
        let points = Mat::from_fn(25, 2, |i, j| (i * 2 + j) as f64);
        let data = TrainingData::from_points(Path::new("p.csv"), points, 3).unwrap();
        let TrainingData::Samples { train, held_out, .. } = &data else { panic!("expected samples") };
        assert_eq!((train.rows(), held_out.rows()), (23, 2));
        let mut firsts: Vec<f64> = train.row_iter().chain(held_out.row_iter()).map(|r| r[0]).collect();
        firsts.sort_by(f64::total_cmp);
        assert_eq!(firsts, (0..25).map(|i| (2 * i) as f64).collect::<Vec<_>>(), "a partition of the rows");
        let batch = data.draw(100, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(
            batch.row_iter().all(|r| train.row_iter().any(|t| t[0] as f32 == r[0])),
            "draws come from train"
        );
        let one = TrainingData::from_points(Path::new("p.csv"), Mat::zeros(1, 2), 3);
        assert!(matches!(one, Err(Error::Data(DataError::TooFewRows { found: 1, .. }))));
    }
}
