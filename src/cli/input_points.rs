//! `--input` of `tweedie score` and `tweedie denoise`: a points file, or (when no such file exists and the
//! text names one) the images of a data set's split, such as `mnist:test`.

use super::data_dir_arg::DataDirArg;
use crate::data::{load_image_spec, load_points, ImageSpec, PixelRange};
use crate::linalg::Mat;
use anyhow::Result;
use std::path::Path;

/// Where the points of `--input` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A points file (NPY, CSV, ...).
    File,
    /// The images of a data set's split, pixels scaled as the model was trained ([`PixelRange`]).
    DataSet,
}

/// The points of `--input` and where they came from; a data set's images scaled to `pixels`.
pub fn load_input(input: &Path, data_dir: &DataDirArg, pixels: PixelRange) -> Result<(Mat<f64>, InputKind)> {
    let text = input.to_string_lossy();
    if input.exists() || !ImageSpec::matches(&text) {
        return Ok((load_points(input)?, InputKind::File));
    }
    let spec: ImageSpec = text.parse().map_err(anyhow::Error::msg)?;
    let mut images = load_image_spec(&spec, spec.split, &data_dir.resolve())?.pixels;
    pixels.apply(&mut images);
    Ok((images, InputKind::DataSet))
}
