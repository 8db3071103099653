//! `tweedie data list|fetch|verify`: the named data sets, where they are found, downloading them into
//! the data directory with a progress bar, and checking their checksums.

use super::data_dir_arg::DataDirArg;
use crate::data::{
    fetch_dataset, locate_dataset, verify_dataset, DataDir, Dataset, FetchProgress, Found, LocatedDataset,
};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Arguments of `tweedie data`.
#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// The data sets: size, source, licence, where each is found and whether it verifies.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Download data sets into the data directory, verifying the sha256 of every file.
    Fetch {
        /// Data sets to download (see `tweedie data list`).
        #[arg(required = true)]
        names: Vec<Dataset>,
        /// Download from this base URL instead (files are fetched from URL/FILE).
        #[arg(long)]
        from: Option<String>,
        /// Download again even if a verified copy is in the data directory.
        #[arg(long)]
        force: bool,
    },
    /// Check the sha256 of every file of the named data sets (default: every set found).
    Verify {
        /// Data sets to check.
        names: Vec<Dataset>,
    },
}

/// Runs `tweedie data`.
pub fn data(args: DataArgs) -> Result<()> {
    let dir = args.data_dir.resolve();
    match args.command {
        DataCommand::List { json } => list(&dir, json),
        DataCommand::Fetch { names, from, force } => fetch(&dir, &names, from.as_deref(), force),
        DataCommand::Verify { names } => verify(&dir, &names),
    }
}

/// Where a set was found, in words.
fn found_in(located: &LocatedDataset) -> String {
    match &located.found {
        Found::Explicit(path) | Found::DataDir(path) => path.display().to_string(),
        Found::Shipped => "shipped in the binary".into(),
    }
}

/// True when every file verifies.
fn verifies(located: &LocatedDataset) -> bool {
    verify_dataset(located).iter().all(|f| f.outcome.is_ok())
}

fn list(dir: &DataDir, json: bool) -> Result<()> {
    if !json {
        println!("data directory: {}", dir.path().display());
        println!("| name | size | licence | source | found | verified |");
        println!("|---|---|---|---|---|---|");
    }
    for dataset in Dataset::ALL {
        let located = locate_dataset(dataset, None, dir).ok();
        let found = located.as_ref().map_or_else(|| "not found".to_string(), found_in);
        let verified = located.as_ref().map(verifies);
        let megabytes = dataset.content_bytes() as f64 / 1e6;
        if json {
            let value = serde_json::json!({
                "name": dataset.name(), "description": dataset.description(),
                "content_bytes": dataset.content_bytes(), "licence": dataset.licence(),
                "sources": dataset.sources(), "found": located.as_ref().map(found_in),
                "verified": verified, "files": dataset.files().iter().map(|f| f.name).collect::<Vec<_>>(),
            });
            println!("{value}");
        } else {
            let verified = verified.map_or("-", |ok| if ok { "yes" } else { "NO" });
            println!(
                "| {} | {megabytes:.1} MB | {} | {} | {found} | {verified} |",
                dataset.name(),
                dataset.licence(),
                dataset.sources()[0]
            );
        }
    }
    Ok(())
}

/// A download bar on stderr when it is a terminal.
struct DownloadBar {
    bar: Option<ProgressBar>,
}

impl FetchProgress for DownloadBar {
    fn start(&mut self, url: &str, total: Option<u64>) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                .expect("a valid template"),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn fetch(dir: &DataDir, names: &[Dataset], from: Option<&str>, force: bool) -> Result<()> {
    for &dataset in names {
        if !force {
            if let Ok(located @ LocatedDataset { found: Found::DataDir(_), .. }) =
                locate_dataset(dataset, None, dir)
            {
                if verifies(&located) {
                    println!(
                        "{dataset}: verified copy already in {} (--force to download again)",
                        found_in(&located)
                    );
                    continue;
                }
            }
        }
        let folder = fetch_dataset(dataset, dir, from, &mut DownloadBar { bar: None })?;
        println!(
            "{dataset}: {} files downloaded and verified into {}",
            dataset.files().len(),
            folder.display()
        );
    }
    Ok(())
}

fn verify(dir: &DataDir, names: &[Dataset]) -> Result<()> {
    let explicit = !names.is_empty();
    let names = if explicit { names.to_vec() } else { Dataset::ALL.to_vec() };
    let mut failures = 0;
    for dataset in names {
        let located = match locate_dataset(dataset, None, dir) {
            Ok(located) => located,
            Err(e) if explicit => return Err(e.into()),
            Err(_) => continue,
        };
        for status in verify_dataset(&located) {
            match status.outcome {
                Ok(()) => println!("ok   {dataset}: {}", status.source.label().display()),
                Err(e) => {
                    failures += 1;
                    println!("FAIL {dataset}: {e}");
                }
            }
        }
    }
    if failures > 0 {
        bail!("{failures} file(s) failed verification (fetch them again with `tweedie data fetch NAME --force`)");
    }
    Ok(())
}
