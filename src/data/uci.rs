//! The UCI density-estimation datasets (Red Wine, White Wine, Parkinsons Telemonitoring) with the
//! preprocessing of the SSM / deep-kernel-exponential-family experiments: drop the targets (and, for
//! Parkinsons, the identifier columns and one of every pair of columns with `|correlation| > 0.98`),
//! dequantise, shuffle with a seed, split, and whiten by PCA fitted on the training split.

use super::csv::{read_csv_from, Columns, CsvOptions};
use super::dataset::Dataset;
use super::dataset_error::DatasetError;
use super::error::DataError;
use super::locate::{locate_dataset, DataDir};
use super::source::DataSource;
use crate::linalg::Mat;
use nalgebra::{DMatrix, SymmetricEigen};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::io::BufRead;
use std::path::PathBuf;
use std::str::FromStr;

/// The correlation above which one column of a pair is dropped (Parkinsons).
pub const CORRELATION_THRESHOLD: f64 = 0.98;

/// A UCI dataset of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UciDataset {
    /// Wine Quality, red (1599 rows, 11 inputs + quality).
    RedWine,
    /// Wine Quality, white (4898 rows, 11 inputs + quality).
    WhiteWine,
    /// Parkinsons Telemonitoring (5875 rows, 22 columns).
    Parkinsons,
}

const WINE_COLUMNS: [&str; 12] = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
    "quality",
];

const PARKINSONS_COLUMNS: [&str; 22] = [
    "subject#",
    "age",
    "sex",
    "test_time",
    "motor_UPDRS",
    "total_UPDRS",
    "Jitter(%)",
    "Jitter(Abs)",
    "Jitter:RAP",
    "Jitter:PPQ5",
    "Jitter:DDP",
    "Shimmer",
    "Shimmer(dB)",
    "Shimmer:APQ3",
    "Shimmer:APQ5",
    "Shimmer:APQ11",
    "Shimmer:DDA",
    "NHR",
    "HNR",
    "RPDE",
    "DFA",
    "PPE",
];

impl UciDataset {
    /// Every dataset, in a fixed order.
    pub const ALL: [UciDataset; 3] = [UciDataset::RedWine, UciDataset::WhiteWine, UciDataset::Parkinsons];

    /// The name after `uci:`.
    pub fn name(self) -> &'static str {
        match self {
            UciDataset::RedWine => "redwine",
            UciDataset::WhiteWine => "whitewine",
            UciDataset::Parkinsons => "parkinsons",
        }
    }

    /// The entry of the data-set catalogue that holds its file.
    pub fn dataset(self) -> Dataset {
        match self {
            UciDataset::RedWine => Dataset::UciRedWine,
            UciDataset::WhiteWine => Dataset::UciWhiteWine,
            UciDataset::Parkinsons => Dataset::UciParkinsons,
        }
    }

    /// The header the file must have.
    pub fn expected_columns(self) -> &'static [&'static str] {
        match self {
            UciDataset::RedWine | UciDataset::WhiteWine => &WINE_COLUMNS,
            UciDataset::Parkinsons => &PARKINSONS_COLUMNS,
        }
    }

    /// The columns dropped before any statistics: the regression targets (`quality`; `motor_UPDRS`,
    /// `total_UPDRS`) and, for Parkinsons, the subject identifier and demographics (`subject#`, `age`,
    /// `sex`), which are constant per subject, as in the DKEF code.
    pub fn dropped_columns(self) -> &'static [&'static str] {
        match self {
            UciDataset::RedWine | UciDataset::WhiteWine => &["quality"],
            UciDataset::Parkinsons => &["subject#", "age", "sex", "motor_UPDRS", "total_UPDRS"],
        }
    }
}

impl fmt::Display for UciDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed `uci:NAME[=PATH]` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UciSpec {
    /// The dataset.
    pub dataset: UciDataset,
    /// The file given explicitly; `None` finds the data set through the data directory, as every named data set is found.
    pub path: Option<PathBuf>,
}

impl fmt::Display for UciSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "uci:{}={}", self.dataset, p.display()),
            None => write!(f, "uci:{}", self.dataset),
        }
    }
}

impl FromStr for UciSpec {
    type Err = DatasetError;

    /// Parses `uci:redwine`, `uci:whitewine`, `uci:parkinsons`, each optionally `=PATH`.
    fn from_str(s: &str) -> Result<Self, DatasetError> {
        let rest =
            s.trim().strip_prefix("uci:").ok_or_else(|| DatasetError::UnknownUci { spec: s.to_string() })?;
        let (name, path) = match rest.split_once('=') {
            Some((name, path)) if !path.trim().is_empty() => (name, Some(PathBuf::from(path.trim()))),
            Some((name, _)) => (name, None),
            None => (rest, None),
        };
        let dataset = UciDataset::ALL
            .into_iter()
            .find(|d| d.name() == name.trim().to_ascii_lowercase())
            .ok_or_else(|| DatasetError::UnknownUci { spec: s.to_string() })?;
        Ok(Self { dataset, path })
    }
}

/// The PCA whitening map `x -> (x - mean) W`, `W = V diag(lambda)^{-1/2}` from the training covariance.
#[derive(Clone, Debug, PartialEq)]
pub struct Whitening {
    /// The training mean.
    pub mean: Vec<f64>,
    /// `W` (`D x D`, row-major).
    pub matrix: Mat<f64>,
    /// `log |det W|`: add it to a log-density in whitened coordinates to get one in data units.
    pub log_det: f64,
}

impl Whitening {
    /// Fits the map to `x` (population covariance).
    fn fit(x: &Mat<f64>) -> Self {
        let (n, d) = (x.rows(), x.cols());
        let mean: Vec<f64> = (0..d).map(|j| (0..n).map(|i| x.at(i, j)).sum::<f64>() / n as f64).collect();
        let centred = Mat::from_fn(n, d, |i, j| x.at(i, j) - mean[j]);
        let mut cov = Mat::zeros(d, d);
        cov.gemm_into(1.0 / n as f64, &centred, true, &centred, false, 0.0);
        let eigen = SymmetricEigen::new(DMatrix::from_fn(d, d, |i, j| cov.at(i, j)));
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let matrix =
            Mat::from_fn(d, d, |r, c| eigen.eigenvectors[(r, order[c])] / eigen.eigenvalues[order[c]].sqrt());
        let log_det = -0.5 * order.iter().map(|&j| eigen.eigenvalues[j].ln()).sum::<f64>();
        Self { mean, matrix, log_det }
    }

    /// Applies the map to every row of `x`.
    pub fn apply(&self, x: &Mat<f64>) -> Mat<f64> {
        let centred = Mat::from_fn(x.rows(), x.cols(), |i, j| x.at(i, j) - self.mean[j]);
        Mat::matmul(&centred, &self.matrix, false)
    }
}

/// A preprocessed UCI dataset.
#[derive(Clone, Debug)]
pub struct UciData {
    /// The dataset.
    pub dataset: UciDataset,
    /// Training points, whitened.
    pub train: Mat<f64>,
    /// Validation points, whitened with the training map.
    pub validation: Mat<f64>,
    /// Test points, whitened with the training map.
    pub test: Mat<f64>,
    /// Names of the kept columns, in order.
    pub columns: Vec<String>,
    /// Columns dropped for correlation (Parkinsons).
    pub correlated: Vec<String>,
    /// The whitening map fitted on the training split.
    pub whitening: Whitening,
}

/// The header of a UCI file: its first line split on `;` or `,`, quotes removed.
fn read_header(source: &DataSource) -> Result<Vec<String>, DataError> {
    let io = |e| DataError::io(source.label(), e);
    let mut line = String::new();
    source.open().map_err(io)?.read_line(&mut line).map_err(io)?;
    let separator = if line.contains(';') { ';' } else { ',' };
    Ok(line.trim().split(separator).map(|f| f.trim().trim_matches('"').to_string()).collect())
}

/// Pearson correlation of two columns.
fn correlation(x: &Mat<f64>, a: usize, b: usize) -> f64 {
    let n = x.rows() as f64;
    let mean = |j: usize| x.row_iter().map(|r| r[j]).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for r in x.row_iter() {
        let (da, db) = (r[a] - ma, r[b] - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    sab / (saa * sbb).sqrt()
}

/// Greedy correlation filter (DKEF `clean_data`): while some column has `|corr| > threshold` with
/// another, drop the first such column. Returns the indices kept.
pub fn drop_correlated(x: &Mat<f64>, threshold: f64) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..x.cols()).collect();
    loop {
        let first =
            kept.iter().position(|&a| kept.iter().any(|&b| b != a && correlation(x, a, b).abs() > threshold));
        match first {
            Some(k) => {
                kept.remove(k);
            }
            None => return kept,
        }
    }
}

/// The median gap between consecutive distinct values of column `j`.
fn median_gap(x: &Mat<f64>, j: usize) -> f64 {
    let mut values: Vec<f64> = x.row_iter().map(|r| r[j]).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let mut gaps: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return 0.0;
    }
    let mid = gaps.len() / 2;
    *gaps.select_nth_unstable_by(mid, f64::total_cmp).1
}

impl UciData {
    /// Loads and preprocesses a UCI dataset.
    ///
    /// # Definition
    /// 1. Check the header; drop the set's non-feature columns; for Parkinsons, drop columns greedily
    ///    while any pair has `|corr| > 0.98`.
    /// 2. Shuffle the rows with `ChaCha8Rng::seed_from_u64(seed)`.
    /// 3. Dequantise: add `U(-g_j, g_j)` noise to column `j`, `g_j` its median gap between distinct values
    ///    (as the DKEF code does), from the same RNG.
    /// 4. Split: test = the first `min(1000, N/10)` rows, validation the next `min(1000, N/10)`, training
    ///    the rest.
    /// 5. Whiten every split with the PCA map of the training split, so no test statistic
    ///    leaks into the model (the DKEF code whitens before splitting).
    ///
    /// # Errors
    /// [`DatasetError::NotFound`] naming every place looked in, [`DatasetError::WrongColumns`] for another
    /// header, [`DatasetError::ConstantColumn`], [`DatasetError::TooFewRows`], and [`DatasetError::Data`]
    /// for unreadable data.
    pub fn load(spec: &UciSpec, seed: u64, data_dir: &DataDir) -> Result<UciData, DatasetError> {
        let dataset = spec.dataset;
        let located = locate_dataset(dataset.dataset(), spec.path.as_deref(), data_dir)?;
        let source = &located.files[0];
        let path = source.label().to_path_buf();
        let header = read_header(source)?;
        let expected = dataset.expected_columns();
        if header.len() != expected.len() || header.iter().zip(expected).any(|(a, b)| a != b) {
            return Err(DatasetError::WrongColumns {
                dataset,
                path,
                found: header.join(", "),
                expected: expected.join(", "),
            });
        }
        let dropped = dataset.dropped_columns();
        let keep: Vec<usize> = (0..expected.len()).filter(|&j| !dropped.contains(&expected[j])).collect();
        let mut names: Vec<String> = keep.iter().map(|&j| expected[j].to_string()).collect();
        let mut x = read_csv_from(source, &CsvOptions { columns: Columns::Keep(keep) })?;
        let mut correlated = Vec::new();
        if dataset == UciDataset::Parkinsons {
            let kept = drop_correlated(&x, CORRELATION_THRESHOLD);
            correlated = (0..names.len()).filter(|j| !kept.contains(j)).map(|j| names[j].clone()).collect();
            x = Mat::from_fn(x.rows(), kept.len(), |i, c| x.at(i, kept[c]));
            names = kept.iter().map(|&j| names[j].clone()).collect();
        }
        let (n, d) = (x.rows(), x.cols());
        if n < 30 {
            return Err(DatasetError::TooFewRows { path, rows: n });
        }
        let gaps: Vec<f64> = (0..d).map(|j| median_gap(&x, j)).collect();
        if let Some(j) = gaps.iter().position(|g| g.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)) {
            return Err(DatasetError::ConstantColumn { path, column: names[j].clone() });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let shuffled = Mat::from_fn(n, d, |i, j| x.at(order[i], j) + gaps[j] * rng.random_range(-1.0..1.0));
        let held_out = (n / 10).min(1000);
        let test = shuffled.slice_rows(0, held_out);
        let validation = shuffled.slice_rows(held_out, 2 * held_out);
        let train = shuffled.slice_rows(2 * held_out, n);
        let whitening = Whitening::fit(&train);
        Ok(UciData {
            dataset,
            train: whitening.apply(&train),
            validation: whitening.apply(&validation),
            test: whitening.apply(&test),
            columns: names,
            correlated,
            whitening,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wine(dir: &std::path::Path, rows: usize, header: &str) -> PathBuf {
        let path = dir.join("wine.csv");
        let mut text = format!("{header}\n");
        for i in 0..rows {
            let v: Vec<String> = (0..12)
                .map(|j| format!("{}", ((i * (j + 3)) % 17) as f64 * 0.5 + (i % 5) as f64 * j as f64))
                .collect();
            text.push_str(&v.join(";"));
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn wine_header() -> String {
        WINE_COLUMNS.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(";")
    }

    #[test]
    fn specs_parse_and_bad_ones_are_errors() {
        let spec: UciSpec = "uci:redwine".parse().unwrap();
        assert_eq!((spec.dataset, spec.path), (UciDataset::RedWine, None));
        let spec: UciSpec = "uci:parkinsons=/tmp/p.data".parse().unwrap();
        assert_eq!(spec.path, Some(PathBuf::from("/tmp/p.data")));
        assert_eq!(spec.to_string(), "uci:parkinsons=/tmp/p.data");
        assert!(matches!("uci:rosewine".parse::<UciSpec>(), Err(DatasetError::UnknownUci { .. })));
        let missing = UciSpec { dataset: UciDataset::WhiteWine, path: Some("/nonexistent/white.csv".into()) };
        let err = UciData::load(&missing, 0, &DataDir::new("/nonexistent")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/white.csv") && !err.to_string().contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn synthetic_wine_is_split_and_whitened_on_the_training_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_wine(dir.path(), 200, &wine_header());
        let spec = UciSpec { dataset: UciDataset::RedWine, path: Some(path.clone()) };
        let dirs = DataDir::new(dir.path());
        let data = UciData::load(&spec, 3, &dirs).unwrap();
        assert_eq!(
            (data.test.rows(), data.validation.rows(), data.train.rows(), data.train.cols()),
            (20, 20, 160, 11)
        );
        assert_eq!(data.columns.len(), 11);
        assert!(!data.columns.contains(&"quality".to_string()));
        // Training split: zero mean, identity covariance.
        let n = data.train.rows() as f64;
        let mut cov = Mat::zeros(11, 11);
        cov.gemm_into(1.0 / n, &data.train, true, &data.train, false, 0.0);
        for i in 0..11 {
            let mean: f64 = data.train.row_iter().map(|r| r[i]).sum::<f64>() / n;
            assert!(mean.abs() < 1e-9, "mean {mean}");
            for j in 0..11 {
                assert!(
                    (cov.at(i, j) - if i == j { 1.0 } else { 0.0 }).abs() < 1e-8,
                    "cov[{i}][{j}] = {}",
                    cov.at(i, j)
                );
            }
        }
        // Same seed, same data; another seed, another shuffle.
        assert_eq!(UciData::load(&spec, 3, &dirs).unwrap().test, data.test);
        assert_ne!(UciData::load(&spec, 4, &dirs).unwrap().test, data.test);
        // A different header is a one-line error naming the file.
        let bad = write_wine(dir.path(), 50, &wine_header().replace("alcohol", "ethanol"));
        let err = UciData::load(&UciSpec { dataset: UciDataset::WhiteWine, path: Some(bad) }, 0, &dirs)
            .unwrap_err();
        assert!(
            matches!(err, DatasetError::WrongColumns { .. }) && err.to_string().contains("ethanol"),
            "{err}"
        );
    }

    #[test]
    fn greedy_correlation_filter_drops_the_first_of_each_correlated_pair() {
        // Columns 0 and 2 are nearly identical; 1 is independent.
        let x = Mat::from_fn(50, 3, |i, j| match j {
            0 => i as f64,
            1 => ((i * 7) % 11) as f64,
            _ => i as f64 + if i % 2 == 0 { 0.01 } else { -0.01 },
        });
        assert_eq!(drop_correlated(&x, 0.98), vec![1, 2]);
    }

    #[test]
    fn shipped_files_load_with_the_documented_shapes() {
        // An empty data directory: the copies inside the binary are used.
        let empty = tempfile::tempdir().unwrap();
        for (dataset, dim, test) in [
            (UciDataset::RedWine, 11, 159),
            (UciDataset::WhiteWine, 11, 489),
            (UciDataset::Parkinsons, 0, 587),
        ] {
            let spec = UciSpec { dataset, path: None };
            let data = UciData::load(&spec, 1, &DataDir::new(empty.path())).unwrap();
            assert_eq!(data.test.rows(), test);
            if dim > 0 {
                assert_eq!(data.train.cols(), dim);
            } else {
                assert!(
                    data.train.cols() < 17 && !data.correlated.is_empty(),
                    "{:?} dropped {:?}",
                    data.columns,
                    data.correlated
                );
            }
            assert!(data.train.is_finite() && data.test.is_finite());
        }
    }

    #[test]
    fn parkinsons_drops_correlated_columns_and_dequantises_by_the_median_gap() {
        // A Parkinsons file written here (300 rows): Jitter(Abs) = 2 Jitter(%) +- 0.001 and
        // Shimmer(dB) = 3 Shimmer + 1 are the only pairs with |corr| > 0.98 (the others stay below
        // 0.35), so the greedy filter drops the first of each; HNR takes the values 0..4, with median
        // gap 1, and 100 on every 7th row, which dequantisation must spread uniformly over [99, 101].
        let n = 300;
        let value = |i: usize, j: usize| -> f64 {
            let generic = |j: usize| ((i * (2 * j + 3) * 7919) % 1000) as f64 / 10.0;
            match PARKINSONS_COLUMNS[j] {
                "Jitter(Abs)" => generic(6) * 2.0 + if i % 2 == 1 { 0.001 } else { -0.001 },
                "Shimmer(dB)" => generic(11) * 3.0 + 1.0,
                "HNR" => {
                    if i.is_multiple_of(7) {
                        100.0
                    } else {
                        (i % 5) as f64
                    }
                }
                _ => generic(j),
            }
        };
        let mut text = PARKINSONS_COLUMNS.join(",") + "\n";
        for i in 0..n {
            text += &(0..22).map(|j| value(i, j).to_string()).collect::<Vec<_>>().join(",");
            text.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parkinsons.data");
        std::fs::write(&path, text).unwrap();
        let spec = UciSpec { dataset: UciDataset::Parkinsons, path: Some(path) };
        let data = UciData::load(&spec, 1, &DataDir::new(dir.path())).unwrap();
        assert_eq!(data.correlated, ["Jitter(%)", "Shimmer"]);
        assert_eq!(data.columns.len(), 22 - 5 - 2);
        assert_eq!((data.test.rows(), data.validation.rows(), data.train.rows()), (30, 30, 240));
        // Undo the whitening (x = z W^-1 + mean) and look at the HNR values near 100.
        let d = data.columns.len();
        let w = DMatrix::from_fn(d, d, |i, j| data.whitening.matrix.at(i, j));
        let w_inv = w.try_inverse().unwrap();
        let hnr = data.columns.iter().position(|c| c == "HNR").unwrap();
        let mut noise = Vec::new();
        for split in [&data.train, &data.validation, &data.test] {
            for z in split.row_iter() {
                let v = data.whitening.mean[hnr] + (0..d).map(|k| z[k] * w_inv[(k, hnr)]).sum::<f64>();
                if v > 50.0 {
                    noise.push(v - 100.0);
                }
            }
        }
        assert_eq!(noise.len(), n.div_ceil(7));
        assert!(noise.iter().all(|u| u.abs() <= 1.0 + 1e-9), "{noise:?}");
        // u ~ U(-1, 1): E u^2 = 1/3, Var u^2 = 1/5 - 1/9 = 4/45; five standard errors of the mean.
        let mean_sq = noise.iter().map(|u| u * u).sum::<f64>() / noise.len() as f64;
        let se = (4.0 / 45.0 / noise.len() as f64).sqrt();
        assert!((mean_sq - 1.0 / 3.0).abs() < 5.0 * se, "mean u^2 = {mean_sq}, expected 1/3 +- {se}");
    }
}
