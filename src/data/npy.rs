//! NumPy `.npy` arrays: read a 1-D or 2-D array of points, write f32/f64 arrays of any shape atomically.

use super::atomic::write_atomic;
use super::error::DataError;
use crate::linalg::{Mat, Real};
use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar};
use std::io::Cursor;
use std::path::Path;

/// Reads a `.npy` array of shape `(N, D)`, or `(N,)` as `N x 1`, into an `N x D` matrix of f64.
///
/// Element types f32, f64, i32, i64 and u8 (either byte order) are converted; C and Fortran order are both
/// accepted. Every value must be finite.
///
/// # Errors
/// [`DataError::BadShape`] for other ranks or a zero-width array, [`DataError::Empty`] for `N = 0`,
/// [`DataError::UnsupportedDtype`], [`DataError::Truncated`] when the data is shorter than the header
/// says, [`DataError::NonFinite`] or [`DataError::TooLarge`] beyond
/// `1e16` (1-based row and column), and [`DataError::Io`] for unreadable files or
/// malformed headers.
///
/// # Example
/// ```
/// use tweedie::data::{read_npy, write_npy};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("x.npy");
/// write_npy(&path, &[2, 2], &[1.0f32, 2.0, 3.0, 4.0]).unwrap();
/// let x = read_npy(&path).unwrap();
/// assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
/// ```
pub fn read_npy(path: &Path) -> Result<Mat<f64>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    check_header_length(&bytes)
        .map_err(|problem| DataError::NpyHeader { path: path.to_path_buf(), problem })?;
    let mut cursor = Cursor::new(bytes.as_slice());
    let header = NpyHeader::from_reader(&mut cursor)
        .map_err(|e| DataError::NpyHeader { path: path.to_path_buf(), problem: one_line(&e.to_string()) })?;
    let data_start = cursor.position() as usize;
    let shape: Vec<usize> =
        header.shape().iter().map(|&s| usize::try_from(s).unwrap_or(usize::MAX)).collect();
    let (n, d) = match shape.as_slice() {
        [n] => (*n, 1),
        [n, d] => (*n, *d),
        _ => return Err(bad_shape(path, &shape, "a 2-D array (N, D) or a 1-D array (N,)")),
    };
    if n == 0 {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    if d == 0 {
        return Err(bad_shape(path, &shape, "at least one column"));
    }
    let unsupported =
        || DataError::UnsupportedDtype { path: path.to_path_buf(), dtype: header.dtype().descr() };
    let DType::Plain(type_str) = header.dtype() else {
        return Err(unsupported());
    };
    let item = type_str.num_bytes().ok_or_else(unsupported)?;
    let expected = n
        .checked_mul(d)
        .and_then(|nd| nd.checked_mul(item))
        .ok_or_else(|| bad_shape(path, &shape, "an array whose size in bytes fits in memory"))?;
    let found = bytes.len() - data_start;
    if found < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            found: found as u64,
            expected: expected as u64,
        });
    }
    let file = NpyFile::with_header(header.clone(), &bytes[data_start..]);
    let io = |e| DataError::io(path, e);
    let values: Vec<f64> = match (type_str.type_char(), item) {
        (TypeChar::Float, 8) => file.into_vec::<f64>().map_err(io)?,
        (TypeChar::Float, 4) => file.into_vec::<f32>().map_err(io)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 4) => file.into_vec::<i32>().map_err(io)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 8) => file.into_vec::<i64>().map_err(io)?.into_iter().map(|v| v as f64).collect(),
        (TypeChar::Uint, 1) => file.into_vec::<u8>().map_err(io)?.into_iter().map(f64::from).collect(),
        _ => return Err(unsupported()),
    };
    let points = match header.order() {
        Order::C => Mat::from_vec(n, d, values),
        Order::Fortran => Mat::from_fn(n, d, |i, j| values[j * n + i]),
    };
    for (k, &v) in points.as_slice().iter().enumerate() {
        if let Some(err) = DataError::out_of_range(v, path, k / d + 1, k % d + 1, &format!("{v:e}")) {
            return Err(err);
        }
    }
    Ok(points)
}

/// `Err` when the header length a file claims runs past its end. The parser allocates the claimed length
/// before reading it, so a damaged length field (a version-2 file's 4-byte length read from a version-1
/// header, for example) would allocate gigabytes for a 12-byte file. The preamble: the magic
/// `\x93NUMPY`, a major and a minor version byte, then the header length, 2 bytes little-endian for
/// version 1 and 4 bytes for versions 2 and 3.
fn check_header_length(bytes: &[u8]) -> Result<(), String> {
    let (preamble, claimed) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        Some(2 | 3) if bytes.len() >= 12 => {
            (12, u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize)
        }
        // Too short or another version: the parser reports it without a large allocation.
        _ => return Ok(()),
    };
    let follow = bytes.len() - preamble;
    if follow < claimed {
        return Err(format!(
            "the header claims {claimed} bytes but only {follow} follow the {preamble}-byte preamble"
        ));
    }
    Ok(())
}

/// A multi-line parser message as one line: its first line and, if different, its last (which says what
/// was expected), each trimmed.
fn one_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    match lines.next_back() {
        Some(last) => format!("{first} {}", last.trim_start_matches("= ")),
        None => first.to_string(),
    }
}

fn bad_shape(path: &Path, shape: &[usize], expected: &str) -> DataError {
    DataError::BadShape { path: path.to_path_buf(), shape: shape.to_vec(), expected: expected.to_string() }
}

/// Writes `data` (row-major, C order) as a `.npy` array of the given shape, atomically (see
/// `write_atomic`, docs/reliability.md).
///
/// Any rank is allowed: `&[n, d, d]` stores `n` Hessians, `&[]` a scalar. The element type is `<f4` for
/// f32 and `<f8` for f64, readable by `numpy.load`.
///
/// Panics if `data.len()` differs from the product of `shape` (a programmer error).
#[track_caller]
pub fn write_npy<F: Real>(path: &Path, shape: &[usize], data: &[F]) -> Result<(), DataError> {
    let count: usize = shape.iter().product();
    assert_eq!(count, data.len(), "write_npy: shape {shape:?} needs {count} values, got {}", data.len());
    let mut bytes = npy_header(descr::<F>(), shape);
    F::write_le(data, &mut bytes);
    write_atomic(path, &bytes).map_err(|e| DataError::io(path, e))
}

/// The NumPy type string of `F`.
fn descr<F: Real>() -> &'static str {
    if std::mem::size_of::<F>() == 4 {
        "<f4"
    } else {
        "<f8"
    }
}

/// The magic string, version and header dictionary, padded with spaces so the data starts at a multiple of
/// 64 bytes (format versions 1.0 and, for very long headers, 2.0).
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Version 1.0 stores the header length in a u16; the newline and up to 63 padding bytes count too.
    let v1 = dict.len() + 64 <= u16::MAX as usize;
    let preamble = if v1 { 10 } else { 12 };
    let pad = (64 - (preamble + dict.len() + 1) % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(preamble + header_len);
    out.extend_from_slice(b"\x93NUMPY");
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use npyz::WriterBuilder;

    /// Writes an array with npyz's own writer, so reading is checked against an independent encoder.
    fn write_with_npyz<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], order: Order, data: &[T]) {
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::<T>::new()
            .default_dtype()
            .shape(shape)
            .order(order)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn reads_every_supported_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let want = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        write_with_npyz(&p, &[3, 2], Order::C, &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(read_npy(&p).unwrap().as_slice(), &want);
        write_with_npyz(&p, &[3, 2], Order::C, &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(read_npy(&p).unwrap().as_slice(), &want);
        write_with_npyz(&p, &[3, 2], Order::C, &[1i32, 2, 3, 4, 5, 6]);
        assert_eq!(read_npy(&p).unwrap().as_slice(), &want);
        write_with_npyz(&p, &[3, 2], Order::C, &[1i64, 2, 3, 4, 5, 6]);
        assert_eq!(read_npy(&p).unwrap().as_slice(), &want);
        write_with_npyz(&p, &[3, 2], Order::C, &[1u8, 2, 3, 4, 5, 6]);
        assert_eq!(read_npy(&p).unwrap().as_slice(), &want);
        write_with_npyz(&p, &[3, 2], Order::C, &[1u16, 2, 3, 4, 5, 6]);
        assert!(
            matches!(read_npy(&p).unwrap_err(), DataError::UnsupportedDtype { dtype, .. } if dtype.contains("u2"))
        );
    }

    #[test]
    fn fortran_order_is_transposed_into_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        // Column-major storage of [[1, 2], [3, 4], [5, 6]].
        write_with_npyz(&p, &[3, 2], Order::Fortran, &[1.0f64, 3.0, 5.0, 2.0, 4.0, 6.0]);
        let x = read_npy(&p).unwrap();
        assert_eq!((x.rows(), x.cols()), (3, 2));
        assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn one_dimensional_array_is_a_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        write_npy(&p, &[3], &[0.5f64, -1.0, 2.0]).unwrap();
        let x = read_npy(&p).unwrap();
        assert_eq!((x.rows(), x.cols()), (3, 1));
        assert_eq!(x.as_slice(), &[0.5, -1.0, 2.0]);
    }

    #[test]
    fn bad_shapes_empty_and_nan_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.npy");
        write_npy(&p, &[2, 2, 2], &[0.0f64; 8]).unwrap();
        assert!(
            matches!(read_npy(&p).unwrap_err(), DataError::BadShape { shape, .. } if shape == vec![2, 2, 2])
        );
        write_npy::<f64>(&p, &[0, 3], &[]).unwrap();
        assert!(matches!(read_npy(&p).unwrap_err(), DataError::Empty { .. }));
        write_npy(&p, &[2, 2], &[1.0f32, 2.0, f32::NAN, 4.0]).unwrap();
        let err = read_npy(&p).unwrap_err();
        assert!(
            matches!(&err, DataError::NonFinite { row: 2, column: 1, value, .. } if value == "NaN"),
            "{err:?}"
        );
        assert!(err.to_string().contains("b.npy: row 2, column 1: value NaN is not finite"), "{err}");
    }

    #[test]
    fn values_beyond_what_f32_arithmetic_holds_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.npy");
        write_npy(&p, &[2, 2], &[1.0f64, 2.0, 3.0, 1e39]).unwrap();
        let err = read_npy(&p).unwrap_err();
        assert!(
            matches!(&err, DataError::TooLarge { row: 2, column: 2, value, .. } if value == "1e39"),
            "{err:?}"
        );
        write_npy(&p, &[1, 2], &[3e38f32, 0.0]).unwrap();
        assert!(matches!(read_npy(&p).unwrap_err(), DataError::TooLarge { row: 1, column: 1, .. }));
    }

    #[test]
    fn truncated_data_and_garbage_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        write_npy(&p, &[4, 2], &[1.0f64; 8]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        assert!(matches!(read_npy(&p).unwrap_err(), DataError::Truncated { found: 59, expected: 64, .. }));
        std::fs::write(&p, b"not an npy file at all").unwrap();
        assert!(matches!(read_npy(&p).unwrap_err(), DataError::NpyHeader { .. }));
        std::fs::write(&p, &bytes[..20]).unwrap();
        assert!(matches!(read_npy(&p).unwrap_err(), DataError::NpyHeader { .. }));
    }

    #[test]
    fn a_header_length_past_the_end_of_the_file_is_refused_before_it_is_allocated() {
        // Version byte 1 -> 2 on a 12-byte prefix: the 4-byte length then reads the 2-byte length and
        // the header's first two characters, about 662 MB (found by tests/fuzz_loaders.rs).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        write_npy(&p, &[3, 2], &[1.0f64; 6]).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[6] = 2;
        bytes.truncate(12);
        std::fs::write(&p, &bytes).unwrap();
        let err = read_npy(&p).unwrap_err().to_string();
        assert!(err.contains("the header claims 662372470 bytes but only 0 follow"), "{err}");
        assert!(err.starts_with(&p.display().to_string()), "{err}");
    }

    #[test]
    fn a_damaged_header_is_a_one_line_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.npy");
        write_npy(&p, &[3, 2], &[1.0f64; 6]).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[27] = 0; // inside 'fortran_order': the dictionary no longer parses
        std::fs::write(&p, &bytes).unwrap();
        let err = read_npy(&p).unwrap_err();
        assert!(matches!(err, DataError::NpyHeader { .. }), "{err:?}");
        let text = err.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with(&format!("{}: invalid .npy header: ", p.display())), "{text}");
    }

    #[test]
    fn written_header_is_64_byte_aligned_and_npyz_reads_any_rank() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.npy");
        let data: Vec<f64> = (0..2 * 3 * 3).map(|k| k as f64 * 0.25 - 1.0).collect();
        write_npy(&p, &[2, 3, 3], &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(bytes.len(), 10 + header_len + data.len() * 8);
        let file = NpyFile::new(bytes.as_slice()).unwrap();
        assert_eq!(file.shape(), &[2, 3, 3]);
        assert_eq!(file.order(), Order::C);
        assert_eq!(file.into_vec::<f64>().unwrap(), data);

        let data32: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        write_npy(&p, &[], &data32[..1]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let file = NpyFile::new(bytes.as_slice()).unwrap();
        assert!(file.shape().is_empty());
        assert_eq!(file.into_vec::<f32>().unwrap(), vec![-1.0f32]);
    }

    #[test]
    fn f32_and_f64_round_trip_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.npy");
        let data: Vec<f64> = (0..12).map(|k| (k as f64).sin() * 1e-300f64.powf(k as f64 / 24.0)).collect();
        write_npy(&p, &[4, 3], &data).unwrap();
        let back = read_npy(&p).unwrap();
        assert!(back.as_slice().iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()));
        let data32: Vec<f32> = data.iter().map(|&v| v as f32).collect();
        write_npy(&p, &[4, 3], &data32).unwrap();
        let back = read_npy(&p).unwrap();
        assert!(back.as_slice().iter().zip(&data32).all(|(a, b)| *a == f64::from(*b)));
    }
}
