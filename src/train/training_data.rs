//! Where training points come from: an analytic target (fresh samples every step), a data file, a UCI
//! set or an image set (minibatches drawn from a training split, with a held-out split for evaluation).

use super::config::{ConfigError, TargetSource, TrainConfig};
use super::trainer::TrainError;
use crate::data::{load_image_spec, load_points, DataDir, DataError, Split, UciData, MAX_ABS_VALUE};
use crate::linalg::Mat;
use crate::targets::{GaussianMixture, NamedTarget};
use crate::Error;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
                let points = load_points(&path)?;
                if points.rows() < 2 {
                    let found = points.rows();
                    return Err(DataError::TooFewRows { path, found, expected: 2 }.into());
                }
                Self::split(path.display().to_string(), points, seed)
            }
            TargetSource::Memory => return Err(TrainError::PointsNotInMemory.into()),
            TargetSource::Uci(spec) => {
                // The validation split is left out: training never sees it and evaluation uses the test
                // split.
                let data = UciData::load(&spec, seed, data_dir)?;
                Self::Samples {
                    label: spec.to_string(),
                    train: data.train,
                    held_out: data.test,
                    log_det: data.whitening.log_det,
                }
            }
            TargetSource::Images(spec) => {
                let other = match spec.split {
                    Split::Train => Split::Test,
                    Split::Test => Split::Train,
                };
                let load = |split| -> Result<Mat<f64>, Error> {
                    let mut pixels = load_image_spec(&spec, split, data_dir)?.pixels;
                    config.pixels.apply(&mut pixels);
                    Ok(pixels)
                };
                Self::Samples {
                    label: spec.to_string(),
                    train: load(spec.split)?,
                    held_out: load(other)?,
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

    /// Points handed over in memory, checked (at least two rows and one column, every value finite and
    /// at most [`MAX_ABS_VALUE`] in magnitude, as for a data file) and split as a data file is.
    pub(crate) fn from_memory(points: Mat<f64>, seed: u64) -> Result<Self, TrainError> {
        if points.rows() < 2 || points.cols() == 0 {
            return Err(TrainError::TooFewPoints { rows: points.rows(), cols: points.cols() });
        }
        let bad = points.as_slice().iter().position(|v| !v.is_finite() || v.abs() > MAX_ABS_VALUE);
        if let Some(k) = bad {
            let (row, column, value) = (k / points.cols(), k % points.cols(), points.as_slice()[k]);
            return Err(TrainError::BadPoint { row, column, value });
        }
        Ok(Self::split("points in memory".into(), points, seed))
    }

    /// Splits at least two points into training and held-out rows (a tenth, at least one) by a seeded
    /// shuffle.
    fn split(label: String, points: Mat<f64>, seed: u64) -> Self {
        let mut order: Vec<usize> = (0..points.rows()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_da7a));
        let held = (points.rows() / 10).max(1);
        let gather = |rows: &[usize]| Mat::from_fn(rows.len(), points.cols(), |i, j| points.at(rows[i], j));
        Self::Samples { label, held_out: gather(&order[..held]), train: gather(&order[held..]), log_det: 0.0 }
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
    fn image_pixels_are_scaled_to_the_configured_range() {
        let empty = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(empty.path());
        let range = |pixels| {
            let config = TrainConfig { target: "digits".into(), pixels, ..TrainConfig::default() };
            let TrainingData::Samples { train, held_out, .. } =
                TrainingData::load(&config, &data_dir).unwrap()
            else {
                panic!("expected samples")
            };
            let all = train.as_slice().iter().chain(held_out.as_slice());
            (
                all.clone().copied().fold(f64::MAX, f64::min),
                all.copied().fold(f64::MIN, f64::max),
                train.at(0, 2),
            )
        };
        // The first digit's pixel 2 is 5/16 in [0, 1], 2 (5/16) - 1 in [-1, 1].
        assert_eq!(range(crate::data::PixelRange::Unit), (0.0, 1.0, 5.0 / 16.0));
        assert_eq!(range(crate::data::PixelRange::Symmetric), (-1.0, 1.0, 2.0 * 5.0 / 16.0 - 1.0));
    }

    #[test]
    fn data_files_split_into_disjoint_train_and_held_out_rows() {
        let points = Mat::from_fn(25, 2, |i, j| (i * 2 + j) as f64);
        let data = TrainingData::from_memory(points, 3).unwrap();
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
        let one = TrainingData::from_memory(Mat::zeros(1, 2), 3);
        assert!(matches!(one, Err(TrainError::TooFewPoints { rows: 1, cols: 2 })));
        let mut bad = Mat::zeros(4, 3);
        bad.set(2, 1, f64::NAN);
        let err = TrainingData::from_memory(bad.clone(), 3).unwrap_err();
        assert!(matches!(err, TrainError::BadPoint { row: 2, column: 1, .. }), "{err}");
        bad.set(2, 1, 2e16);
        assert!(matches!(TrainingData::from_memory(bad, 3), Err(TrainError::BadPoint { row: 2, .. })));
    }
}
