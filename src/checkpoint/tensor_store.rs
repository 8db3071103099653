//! `TensorStore`: the in-memory image of a safetensors checkpoint (tensors by name, plus metadata).

use super::error::CheckpointError;
use crate::data::write_atomic;
use crate::linalg::Real;
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The name given in errors to a store that was built in memory rather than loaded.
const IN_MEMORY: &str = "<unsaved checkpoint>";

/// One tensor: its element type, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
struct StoredTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Named tensors and string metadata, saved as a safetensors file (loadable with Python's
/// `safetensors.numpy.load_file` or `safetensors.torch.load_file`).
///
/// Tensors are kept sorted by name: safetensors lays data out in its own order and does not preserve the
/// header's key order, so name order is the one order that survives a save/load round trip. Integers that
/// must round-trip exactly (step counters, RNG word positions) go in metadata as decimal strings via
/// [`TensorStore::set_u64`] / [`TensorStore::get_u64`].
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStore {
    path: PathBuf,
    tensors: BTreeMap<String, StoredTensor>,
    metadata: BTreeMap<String, String>,
}

impl Default for TensorStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TensorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { path: PathBuf::from(IN_MEMORY), tensors: BTreeMap::new(), metadata: BTreeMap::new() }
    }

    /// Adds (or replaces) tensor `name` with row-major `data` of the given `shape`.
    ///
    /// Panics if `data.len()` differs from the product of `shape` (a programmer error).
    #[track_caller]
    pub fn insert<F: Real>(&mut self, name: impl Into<String>, shape: &[usize], data: &[F]) {
        let count: usize = shape.iter().product();
        assert_eq!(count, data.len(), "TensorStore::insert: shape {shape:?} needs {count} values");
        let mut bytes = Vec::with_capacity(std::mem::size_of_val(data));
        F::write_le(data, &mut bytes);
        self.tensors.insert(name.into(), StoredTensor { dtype: F::DTYPE, shape: shape.to_vec(), bytes });
    }

    /// Tensor `name` as `F`, checking its element type, that its shape is `expected_shape` and that every
    /// element is finite.
    ///
    /// # Errors
    /// [`CheckpointError::MissingTensor`], [`CheckpointError::DtypeMismatch`],
    /// [`CheckpointError::ShapeMismatch`] or [`CheckpointError::NonFinite`], each naming the file this
    /// store was loaded from.
    pub fn get<F: Real>(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<F>, CheckpointError> {
        let tensor = self.tensors.get(name).ok_or_else(|| CheckpointError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        if tensor.dtype != F::DTYPE {
            return Err(CheckpointError::DtypeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                found: dtype_name(tensor.dtype),
                expected: dtype_name(F::DTYPE),
            });
        }
        if tensor.shape != expected_shape {
            return Err(CheckpointError::ShapeMismatch {
                path: self.path.clone(),
                name: name.to_string(),
                found: tensor.shape.clone(),
                expected: expected_shape.to_vec(),
            });
        }
        let values = F::read_le(&tensor.bytes);
        match first_non_finite(&values) {
            Some((index, value)) => Err(CheckpointError::NonFinite {
                path: self.path.clone(),
                name: name.to_string(),
                index,
                value,
            }),
            None => Ok(values),
        }
    }

    /// Refuses to write a store with a NaN or infinite f32/f64 element, naming the tensor.
    fn check_finite(&self, path: &Path) -> Result<(), CheckpointError> {
        for (name, t) in &self.tensors {
            let found = match t.dtype {
                Dtype::F32 => first_non_finite(&read_le::<f32>(&t.bytes)),
                Dtype::F64 => first_non_finite(&read_le::<f64>(&t.bytes)),
                _ => None,
            };
            if let Some((index, value)) = found {
                let (path, name) = (path.to_path_buf(), name.clone());
                return Err(CheckpointError::NonFinite { path, name, index, value });
            }
        }
        Ok(())
    }

    /// [`TensorStore::get`] for f32.
    pub fn get_f32(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        self.get(name, expected_shape)
    }

    /// [`TensorStore::get`] for f64.
    pub fn get_f64(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f64>, CheckpointError> {
        self.get(name, expected_shape)
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Tensor names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True without tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Sets metadata entry `key` to `value`.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// Metadata entry `key`.
    ///
    /// # Errors
    /// [`CheckpointError::MissingMetadata`].
    pub fn metadata(&self, key: &str) -> Result<&str, CheckpointError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::MissingMetadata { path: self.path.clone(), key: key.to_string() })
    }

    /// All metadata entries, sorted by key.
    pub fn metadata_entries(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Stores an integer exactly, as a decimal string in metadata.
    pub fn set_u64(&mut self, key: impl Into<String>, value: u64) {
        self.set_metadata(key, value.to_string());
    }

    /// Reads an integer stored with [`TensorStore::set_u64`].
    ///
    /// # Errors
    /// [`CheckpointError::MissingMetadata`], or [`CheckpointError::BadMetadata`] if the entry is not a
    /// decimal integer in `0..=u64::MAX`.
    pub fn get_u64(&self, key: &str) -> Result<u64, CheckpointError> {
        let text = self.metadata(key)?;
        text.parse().map_err(|_| CheckpointError::BadMetadata {
            path: self.path.clone(),
            key: key.to_string(),
            value: text.to_string(),
            expected: "a decimal integer in 0..=18446744073709551615".into(),
        })
    }

    /// The file this store was loaded from or last saved to (a placeholder for a store built in memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The safetensors encoding of the store.
    ///
    /// # Errors
    /// [`CheckpointError::Encode`] (not expected for stores built through [`TensorStore::insert`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let encode = |source| CheckpointError::Encode { path: self.path.clone(), source };
        let views = self
            .tensors
            .iter()
            .map(|(name, t)| Ok((name.as_str(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes)?)))
            .collect::<Result<Vec<_>, SafeTensorError>>()
            .map_err(encode)?;
        let metadata: Option<HashMap<String, String>> = if self.metadata.is_empty() {
            None
        } else {
            Some(self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        let bytes = safetensors::serialize(views, &metadata).map_err(encode)?;
        Ok(with_sorted_header(bytes))
    }

    /// Decodes a safetensors image; `path` names the source in errors and later lookups.
    ///
    /// # Errors
    /// [`CheckpointError::Truncated`] when the length does not match the header, otherwise
    /// [`CheckpointError::Format`] for any invalid header or tensor description.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let invalid = |source| match source {
            SafeTensorError::HeaderTooSmall
            | SafeTensorError::InvalidHeaderLength
            | SafeTensorError::MetadataIncompleteBuffer => {
                CheckpointError::Truncated { path: path.to_path_buf(), size: bytes.len() as u64 }
            }
            source => CheckpointError::Format { path: path.to_path_buf(), source },
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
        let parsed = SafeTensors::deserialize(bytes).map_err(invalid)?;
        let tensors = parsed
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let t = StoredTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                };
                (name, t)
            })
            .collect();
        let metadata = header.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Self { path: path.to_path_buf(), tensors, metadata })
    }

    /// Writes the store to `path` atomically: a crash or a failed write leaves any previous file intact.
    ///
    /// # Errors
    /// [`CheckpointError::NonFinite`] for a NaN or infinite f32/f64 element (nothing is written), and
    /// [`CheckpointError::Io`] when the file cannot be written (for example a missing folder).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        self.check_finite(path)?;
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })
    }

    /// Reads a checkpoint written by [`TensorStore::save`] (or by Python's safetensors).
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`], [`CheckpointError::Io`], [`CheckpointError::Truncated`] or
    /// [`CheckpointError::Format`].
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => CheckpointError::NotFound { path: path.to_path_buf() },
            _ => CheckpointError::Io { path: path.to_path_buf(), source },
        })?;
        Self::from_bytes(&bytes, path)
    }
}

/// The encoding with its JSON header's keys sorted: safetensors writes the metadata from a hash map, in
/// an order that differs from run to run, so without this identical runs would write different bytes.
/// The header is padded with spaces to a multiple of 8 bytes, as safetensors does.
fn with_sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes of header length")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors writes a JSON header");
    // serde_json's maps are ordered by key.
    let mut text = serde_json::to_vec(&header).expect("a JSON value serialises");
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Little-endian values of `F`.
fn read_le<F: Real>(bytes: &[u8]) -> Vec<F> {
    F::read_le(bytes)
}

/// The index and value of the first NaN or infinite element, if any.
fn first_non_finite<F: Real>(values: &[F]) -> Option<(usize, f64)> {
    let index = values.iter().position(|v| !v.is_finite())?;
    Some((index, values[index].to_f64().unwrap_or(f64::NAN)))
}

/// A dtype as users write it: `f32`, `bf16`, ...
fn dtype_name(dtype: Dtype) -> String {
    format!("{dtype:?}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_store() -> TensorStore {
        let mut s = TensorStore::new();
        // Values chosen to exercise every bit pattern class: subnormals, signed zero, extremes.
        let w32 = [1.5f32, -0.0, f32::MIN_POSITIVE / 3.0, f32::MAX, 1e-7, -3.25];
        let w64 = [std::f64::consts::PI, -0.0, 5e-324, f64::MAX, 1.0 / 3.0, -2.0, 7.0, 1e300];
        s.insert("net.w", &[2, 3], &w32);
        s.insert("adam.m", &[2, 2, 2], &w64);
        s.insert("scalar", &[], &[42.0f64]);
        s.set_metadata("config", "{\"width\":128}");
        s.set_u64("rng_word_pos", u64::MAX - 1);
        s
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let store = sample_store();
        store.save(&path).unwrap();
        let back = TensorStore::load(&path).unwrap();
        assert_eq!(back.path(), path.as_path());
        let a = store.get_f32("net.w", &[2, 3]).unwrap();
        let b = back.get_f32("net.w", &[2, 3]).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let a = store.get_f64("adam.m", &[2, 2, 2]).unwrap();
        let b = back.get_f64("adam.m", &[2, 2, 2]).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(back.get_f64("scalar", &[]).unwrap(), vec![42.0]);
        assert_eq!(back.get_u64("rng_word_pos").unwrap(), u64::MAX - 1);
        assert_eq!(back.metadata("config").unwrap(), "{\"width\":128}");
        assert_eq!(back.names().collect::<Vec<_>>(), vec!["adam.m", "net.w", "scalar"]);
        // Same content, only the source path differs.
        assert_eq!(TensorStore { path: PathBuf::from(IN_MEMORY), ..back }, store);
    }

    #[test]
    fn every_truncation_is_a_truncation_error() {
        let bytes = sample_store().to_bytes().unwrap();
        for cut in [0, 5, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = TensorStore::from_bytes(&bytes[..cut], Path::new("c.safetensors")).unwrap_err();
            assert!(
                matches!(err, CheckpointError::Truncated { size, .. } if size == cut as u64),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn garbage_header_is_a_format_error() {
        let mut bytes = 11u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"not json!!!");
        let err = TensorStore::from_bytes(&bytes, Path::new("c.safetensors")).unwrap_err();
        assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
        assert!(err.to_string().starts_with("c.safetensors: invalid safetensors file"), "{err}");
    }

    #[test]
    fn lookups_report_missing_names_shapes_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        sample_store().save(&path).unwrap();
        let s = TensorStore::load(&path).unwrap();
        let err = s.get_f32("net.w", &[3, 2]).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::ShapeMismatch { name, found, expected, .. }
                if name == "net.w" && found == &[2, 3] && expected == &[3, 2]),
            "{err}"
        );
        assert!(err.to_string().contains("c.safetensors"), "{err}");
        let err = s.get_f64("net.w", &[2, 3]).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::DtypeMismatch { found, expected, .. } if found == "f32" && expected == "f64")
        );
        let err = s.get_f32("net.b", &[3]).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::MissingTensor { path: p, name } if name == "net.b" && p == &path)
        );
        let err = s.metadata("step").unwrap_err();
        assert!(matches!(&err, CheckpointError::MissingMetadata { key, .. } if key == "step"));
        let err = s.get_u64("config").unwrap_err();
        assert!(matches!(&err, CheckpointError::BadMetadata { key, .. } if key == "config"));
    }

    #[test]
    fn non_finite_weights_are_refused_on_save_and_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut store = sample_store();
        store.insert("ema.shadow", &[3], &[0.5f32, f32::INFINITY, 1.0]);
        let err = store.save(&path).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::NonFinite { name, index: 1, .. } if name == "ema.shadow"),
            "{err}"
        );
        assert!(!path.exists(), "nothing is written");
        // A file with NaN weights written by another tool: readable, but the tensor is refused.
        let bytes = store.to_bytes().unwrap();
        let loaded = TensorStore::from_bytes(&bytes, &path).unwrap();
        let err = loaded.get_f32("ema.shadow", &[3]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("{}: tensor \"ema.shadow\" holds inf at index 1", path.display())));
        let mut nan = sample_store();
        nan.insert("adam.m", &[1], &[f64::NAN]);
        assert!(matches!(nan.save(&path).unwrap_err(), CheckpointError::NonFinite { .. }));
    }

    #[test]
    fn equal_stores_encode_to_equal_bytes_with_sorted_keys() {
        let mut a = sample_store();
        for k in 0..20 {
            a.set_u64(format!("key{k}"), k);
        }
        let first = a.to_bytes().unwrap();
        // The metadata passes through a hash map on every encoding: many encodings, one byte string.
        for _ in 0..20 {
            assert!(a.clone().to_bytes().unwrap() == first, "two encodings of one store differ");
        }
        let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&first[8..8 + n]).unwrap();
        let (k2, k10) = (header.find("\"key2\"").unwrap(), header.find("\"key10\"").unwrap());
        assert!(k10 < k2, "keys sorted: {header}");
        assert_eq!(TensorStore::from_bytes(&first, Path::new("c.safetensors")).unwrap().metadata, a.metadata);
    }

    #[test]
    fn missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.safetensors");
        assert!(
            matches!(TensorStore::load(&path).unwrap_err(), CheckpointError::NotFound { path: p } if p == path)
        );
    }

    #[test]
    fn failed_saves_leave_the_previous_checkpoint_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let old = sample_store();
        old.save(&path).unwrap();
        let mut new = sample_store();
        new.insert("net.w", &[1], &[0.0f32]);
        // The folder of the target is missing: error naming the target, nothing written anywhere.
        let bad = dir.path().join("missing").join("c.safetensors");
        assert!(matches!(new.save(&bad).unwrap_err(), CheckpointError::Io { path: p, .. } if p == bad));
        // The target is a folder: the rename fails after the temporary was written, and is cleaned up.
        let folder = dir.path().join("as_folder");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("keep"), b"k").unwrap();
        assert!(new.save(&folder).is_err());
        assert_eq!(std::fs::read(folder.join("keep")).unwrap(), b"k");
        let mut names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec!["as_folder", "c.safetensors"]);
        let back = TensorStore::load(&path).unwrap();
        assert_eq!(back.get_f32("net.w", &[2, 3]).unwrap(), old.get_f32("net.w", &[2, 3]).unwrap());
    }

    #[test]
    fn files_from_other_writers_load_with_their_dtypes() {
        // A bf16 tensor as Python might write it: loadable, listed, but not readable as f32.
        let data = [0u8; 8];
        let view = TensorView::new(Dtype::BF16, vec![4], &data).unwrap();
        let bytes = safetensors::serialize([("emb", view)], &None).unwrap();
        let s = TensorStore::from_bytes(&bytes, Path::new("py.safetensors")).unwrap();
        assert_eq!(s.shape("emb"), Some(&[4usize][..]));
        let err = s.get_f32("emb", &[4]).unwrap_err();
        assert!(matches!(&err, CheckpointError::DtypeMismatch { found, .. } if found == "bf16"), "{err}");
        // Re-encoding keeps the foreign tensor byte for byte.
        let again = TensorStore::from_bytes(&s.to_bytes().unwrap(), Path::new("py.safetensors")).unwrap();
        assert_eq!(again, s);
    }
}
