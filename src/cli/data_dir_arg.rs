//! `--data-dir`: the one flag every command that reads a named data set takes (`docs/data.md`).

use crate::data::DataDir;
use clap::Args;
use std::path::PathBuf;

/// The data directory flag, flattened into each command's arguments.
#[derive(Args, Debug)]
pub struct DataDirArg {
    /// Data directory for named data sets (mnist, digits, uci, ...) [default: $TWEEDIE_DATA, else the
    /// platform cache directory, e.g. ~/.cache/tweedie].
    #[arg(long = "data-dir", global = true)]
    data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// The flag's folder, else the environment's, else the cache directory.
    pub fn resolve(&self) -> DataDir {
        DataDir::resolve(self.data_dir.as_deref())
    }
}
