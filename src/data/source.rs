//! Where the bytes of one data file come from (a file on disk, or a copy shipped inside the binary),
//! read through one transparent gzip layer, and the sha256 of that content.

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One data file: a path, or bytes compiled into the binary (named by a label for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// A file on disk.
    File(PathBuf),
    /// A gzip-compressed copy inside the binary.
    Shipped {
        /// How messages name it, e.g. `<shipped>/winequality-red.csv`.
        label: PathBuf,
        /// The compressed bytes.
        bytes: &'static [u8],
    },
}

impl DataSource {
    /// The path or label that names this source in messages.
    pub fn label(&self) -> &Path {
        match self {
            DataSource::File(path) => path,
            DataSource::Shipped { label, .. } => label,
        }
    }

    /// The content, decompressed when it is gzip-compressed.
    ///
    /// # Errors
    /// The I/O error of opening the file (callers name [`DataSource::label`] with it).
    pub fn open(&self) -> std::io::Result<Box<dyn BufRead>> {
        match self {
            DataSource::File(path) => decompressed(BufReader::new(File::open(path)?)),
            DataSource::Shipped { bytes, .. } => decompressed(*bytes),
        }
    }
}

/// `reader`, or a gzip decoder over it when it starts with the gzip magic number.
fn decompressed<'a, R: BufRead + 'a>(mut reader: R) -> std::io::Result<Box<dyn BufRead + 'a>> {
    if reader.fill_buf()?.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// The sha256 (lower-case hex) and byte count of the content of `reader`, decompressed when it is
/// gzip-compressed: the checksum the data-set catalogue records.
///
/// # Errors
/// An I/O error, or a gzip stream that does not decompress.
pub fn content_sha256(reader: impl Read) -> std::io::Result<(String, u64)> {
    sha256_hex(decompressed(BufReader::new(reader))?)
}

/// The sha256 (lower-case hex) and byte count of the bytes of `reader`, as they are.
pub(crate) fn sha256_hex(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let hex = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, total))
}
