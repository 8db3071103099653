//! Checkpoints: named f32/f64 tensors and string metadata in a safetensors file, written atomically.

mod error;
mod tensor_store;

pub use error::CheckpointError;
pub(crate) use tensor_store::TensorStore;
