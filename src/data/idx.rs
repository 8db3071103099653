//! The IDX format of MNIST and Fashion-MNIST: a 4-byte magic number (`0, 0, type, ndims`), `ndims`
//! big-endian `u32` dimensions, then the elements in row-major order. Only unsigned bytes (type `0x08`)
//! are used by these sets; the file may be gzip-compressed.

use super::dataset_error::DatasetError;
use super::source::DataSource;
use std::io::Read;

/// The element type code of unsigned bytes.
const UNSIGNED_BYTE: u8 = 0x08;

/// Largest array accepted (bytes): far above MNIST's 47 MB, far below what a lying header could ask for.
pub const MAX_IDX_BYTES: u64 = 1 << 32;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX array of unsigned bytes with `dims` dimensions from `source`.
///
/// # Errors
/// [`DatasetError::BadContent`] naming the file for a bad magic number, another element type or number of
/// dimensions (e.g. a label file given where images are expected), an announced size over
/// [`MAX_IDX_BYTES`], or data shorter or longer than announced; [`DatasetError::Io`] for a file that
/// cannot be read or a gzip stream that does not decompress.
pub fn read_idx(source: &DataSource, dims: usize) -> Result<IdxArray, DatasetError> {
    let path = source.label();
    let bad =
        |problem: String, expected: String| DatasetError::BadContent { path: path.into(), problem, expected };
    let io = |e| DatasetError::io(path, e);
    let mut reader = source.open().map_err(io)?;
    let mut magic = [0u8; 4];
    read_prefix(&mut reader, &mut magic).map_err(io)?;
    if magic[..2] != [0, 0] {
        return Err(bad(
            format!("magic number {:02x}{:02x}{:02x}{:02x}", magic[0], magic[1], magic[2], magic[3]),
            "an IDX file starting with 00 00".into(),
        ));
    }
    if magic[2] != UNSIGNED_BYTE || magic[3] as usize != dims {
        let what = if dims == 1 { "labels" } else { "images" };
        return Err(bad(
            format!("element type 0x{:02x} with {} dimensions", magic[2], magic[3]),
            format!("unsigned bytes (0x08) with {dims} dimensions, an IDX file of {what}"),
        ));
    }
    let mut header = vec![0u8; 4 * dims];
    read_prefix(&mut reader, &mut header).map_err(io)?;
    let shape: Vec<usize> =
        header.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let announced = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).unwrap_or(u64::MAX);
    if announced > MAX_IDX_BYTES {
        return Err(bad(
            format!("shape {shape:?} announces {announced} bytes"),
            format!("at most {MAX_IDX_BYTES}"),
        ));
    }
    let mut data = Vec::with_capacity(announced.min(1 << 26) as usize);
    reader.take(announced + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 != announced {
        let found = if data.len() as u64 > announced { "more".to_string() } else { data.len().to_string() };
        return Err(bad(
            format!("{found} data bytes after the header of shape {shape:?}"),
            format!("exactly {announced}"),
        ));
    }
    Ok(IdxArray { shape, data })
}

/// Fills `buf` from the start of the content; a short file is an `UnexpectedEof` error.
fn read_prefix(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<()> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            std::io::Error::new(e.kind(), "file ends inside the IDX header (expected a complete header)")
        }
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = magic.to_vec();
        dims.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
        bytes.extend_from_slice(data);
        bytes
    }

    fn read(bytes: &[u8], gz: bool, dims: usize) -> Result<IdxArray, DatasetError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.idx");
        if gz {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(bytes).unwrap();
            std::fs::write(&path, enc.finish().unwrap()).unwrap();
        } else {
            std::fs::write(&path, bytes).unwrap();
        }
        read_idx(&DataSource::File(path), dims)
    }

    #[test]
    fn images_read_plain_and_gzipped() {
        let bytes = idx([0, 0, 8, 3], &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        for gz in [false, true] {
            let a = read(&bytes, gz, 3).unwrap();
            assert_eq!(a.shape, [2, 2, 3]);
            assert_eq!(a.data, (1..=12).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn bad_files_are_one_line_errors_naming_the_problem() {
        let cases: [(Vec<u8>, usize, &str); 6] = [
            (idx([1, 0, 8, 1], &[1], &[0]), 1, "magic number 01000801"),
            (idx([0, 0, 8, 1], &[3], &[1, 2, 3]), 3, "an IDX file of images"),
            (idx([0, 0, 8, 3], &[1, 1, 1], &[1]), 1, "an IDX file of labels"),
            (idx([0, 0, 8, 1], &[4], &[1, 2, 3]), 1, "3 data bytes"),
            (idx([0, 0, 8, 1], &[2], &[1, 2, 3]), 1, "more data bytes"),
            (idx([0, 0, 8, 3], &[65536, 65536, 2], &[]), 3, "announces 8589934592 bytes"),
        ];
        for (bytes, dims, needle) in cases {
            let msg = read(&bytes, false, dims).unwrap_err().to_string();
            assert!(msg.contains(needle) && msg.contains("f.idx") && !msg.contains('\n'), "{msg}");
        }
        let short = read(&[0, 0, 8], false, 1).unwrap_err().to_string();
        assert!(short.contains("inside the IDX header"), "{short}");
        let mut not_gzip = vec![0x1f, 0x8b];
        not_gzip.extend_from_slice(b"this is not deflate data");
        let msg = read(&not_gzip, false, 1).unwrap_err().to_string();
        assert!(msg.contains("f.idx"), "{msg}");
    }

    #[test]
    fn read_idx_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.idx1-ubyte");
        std::fs::write(&path, [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]).unwrap();
        let labels = read_idx(&DataSource::File(path), 1).unwrap();
        assert_eq!((labels.shape, labels.data), (vec![3], vec![7, 2, 1]));
    }
}
