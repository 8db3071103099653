//! The error type of checkpoint files: every variant names the file and what was expected.

use safetensors::SafeTensorError;
use std::path::PathBuf;

/// A failure to save, load or read from a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint file does not exist.
    #[error("{}: no such checkpoint file (expected a .safetensors file written by tweedie or Python)", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The operating system refused to read or write the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is shorter (or longer) than its header declares: typically an interrupted copy.
    #[error("{}: file of {size} bytes does not match the length its header declares (expected a complete safetensors file; truncated?)", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The file's size in bytes.
        size: u64,
    },
    /// The file is not a valid safetensors container.
    #[error("{}: invalid safetensors file: {source} (expected an 8-byte length, a JSON header and tensor data)", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the safetensors parser found.
        source: SafeTensorError,
    },
    /// The tensors could not be encoded for saving.
    #[error("{}: cannot encode tensors: {source}", path.display())]
    Encode {
        /// The file being saved.
        path: PathBuf,
        /// What the safetensors encoder reported.
        source: SafeTensorError,
    },
    /// A tensor the model needs is absent.
    #[error("{}: no tensor named {name:?} (expected it in a checkpoint of this model)", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has another shape than the model expects (a checkpoint of another architecture).
    #[error("{}: tensor {name:?} has shape {found:?} (expected {expected:?})", path.display())]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the model needs.
        expected: Vec<usize>,
    },
    /// A tensor has another element type than requested.
    #[error("{}: tensor {name:?} has element type {found} (expected {expected})", path.display())]
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Element type in the file.
        found: String,
        /// Element type requested.
        expected: String,
    },
    /// A tensor holds NaN or infinity: the run that wrote it diverged. Refused on load and on save.
    #[error("{}: tensor {name:?} holds {value} at index {index} (expected finite numbers; the run that wrote it diverged)", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The flat index of the first non-finite element.
        index: usize,
        /// That element.
        value: f64,
    },
    /// A metadata entry is absent.
    #[error("{}: no metadata entry {key:?} (expected it in a checkpoint written by tweedie)", path.display())]
    MissingMetadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
    },
    /// A metadata entry cannot be read as the requested type.
    #[error("{}: metadata entry {key:?} = {value:?} (expected {expected})", path.display())]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// The stored text.
        value: String,
        /// What was expected, in words.
        expected: String,
    },
}
