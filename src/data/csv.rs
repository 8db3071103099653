//! Numeric text tables (CSV, TSV, whitespace-separated, optionally gzipped) read into a matrix of points.

use super::error::{quoted, DataError};
use super::source::DataSource;
use crate::linalg::Mat;
use std::io::BufRead;
use std::path::Path;

/// Which columns of a table to keep, by 0-based index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Columns {
    /// Every column, in file order.
    #[default]
    All,
    /// Only these columns, in the order given (repeats allowed).
    Keep(Vec<usize>),
}

/// Options of [`read_csv`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Columns to keep. Only kept columns must be numeric: a dropped column may hold labels.
    pub columns: Columns,
}

/// Field separator, detected from a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Separator {
    Semicolon,
    Comma,
    Whitespace,
}

impl Separator {
    /// Semicolon if the line has one, else comma if it has one, else runs of spaces and tabs.
    fn detect(line: &str) -> Self {
        if line.contains(';') {
            Self::Semicolon
        } else if line.contains(',') {
            Self::Comma
        } else {
            Self::Whitespace
        }
    }

    fn split(self, line: &str) -> Vec<&str> {
        match self {
            Self::Semicolon => line.split(';').map(str::trim).collect(),
            Self::Comma => line.split(',').map(str::trim).collect(),
            Self::Whitespace => line.split_whitespace().collect(),
        }
    }
}

/// Reads a numeric table into an `N x D` matrix, one row per data line.
///
/// - Separators: semicolon, comma, or spaces/tabs, detected from the first data line.
/// - One header line is skipped when none of its kept fields is a number; a first line with some numbers
///   is data, so a bad field there is an error rather than a silently dropped row.
/// - Blank lines and lines starting with `#` (as `numpy.savetxt` writes headers) are skipped.
/// - Gzip-compressed files (`.csv.gz`) are detected from their magic bytes and decompressed on the fly.
/// - Fields may be wrapped in double quotes.
///
/// # Errors
/// [`DataError::Empty`] without data rows, [`DataError::Ragged`] when a row's field count differs from the
/// first data row's, [`DataError::Parse`] for a field that is not a number, [`DataError::NonFinite`] for
/// NaN or infinity, [`DataError::TooLarge`] beyond [`MAX_ABS_VALUE`](super::MAX_ABS_VALUE), [`DataError::ColumnOutOfRange`] for a selection beyond the row width, and
/// [`DataError::Io`] when the file cannot be read or decompressed.
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Mat<f64>, DataError> {
    read_csv_from(&DataSource::File(path.to_path_buf()), options)
}

/// [`read_csv`] from a file or a copy shipped in the binary; errors name [`DataSource::label`].
///
/// # Errors
/// As [`read_csv`].
pub fn read_csv_from(source: &DataSource, options: &CsvOptions) -> Result<Mat<f64>, DataError> {
    let path = source.label();
    parse_table(source.open().map_err(|e| DataError::io(path, e))?, path, options)
}

/// Parses a table from any reader; `path` only names the source in errors.
fn parse_table(reader: impl BufRead, path: &Path, options: &CsvOptions) -> Result<Mat<f64>, DataError> {
    let mut first_line_seen = false;
    let mut layout: Option<(Separator, usize, Vec<usize>)> = None;
    let mut data = Vec::new();
    let mut rows = 0usize;
    for (k, line) in reader.lines().enumerate() {
        let line_no = k + 1;
        let line = line.map_err(|e| DataError::io(path, e))?;
        let text = line.trim_start_matches('\u{feff}').trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if !first_line_seen {
            first_line_seen = true;
            let fields = Separator::detect(text).split(text);
            let kept = kept_columns(&options.columns, fields.len(), path)?;
            if !kept.is_empty() && kept.iter().all(|&j| parse_field(fields[j]).is_err()) {
                continue; // a header line: no kept field is a number
            }
        }
        let (separator, width, kept) = match layout.take() {
            Some(l) => l,
            None => {
                let separator = Separator::detect(text);
                let width = separator.split(text).len();
                (separator, width, kept_columns(&options.columns, width, path)?)
            }
        };
        let fields = separator.split(text);
        if fields.len() != width {
            return Err(DataError::Ragged {
                path: path.to_path_buf(),
                row: line_no,
                found: fields.len(),
                expected: width,
            });
        }
        for &j in &kept {
            data.push(parse_checked(fields[j], path, line_no, j + 1)?);
        }
        rows += 1;
        layout = Some((separator, width, kept));
    }
    let Some((_, _, kept)) = layout else {
        return Err(DataError::Empty { path: path.to_path_buf() });
    };
    if kept.is_empty() {
        return Err(DataError::BadShape {
            path: path.to_path_buf(),
            shape: vec![rows, 0],
            expected: "at least one selected column".into(),
        });
    }
    Ok(Mat::from_vec(rows, kept.len(), data))
}

/// The column indices to keep for rows of `width` fields.
fn kept_columns(columns: &Columns, width: usize, path: &Path) -> Result<Vec<usize>, DataError> {
    let check = |index: usize| {
        if index < width {
            Ok(index)
        } else {
            Err(DataError::ColumnOutOfRange { path: path.to_path_buf(), index, width })
        }
    };
    match columns {
        Columns::All => Ok((0..width).collect()),
        Columns::Keep(list) => list.iter().map(|&j| check(j)).collect(),
    }
}

/// Parses one field, accepting surrounding double quotes.
fn parse_field(field: &str) -> Result<f64, std::num::ParseFloatError> {
    let field = field.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(field);
    field.trim().parse::<f64>()
}

/// Parses one field and requires a finite value of magnitude at most
/// [`MAX_ABS_VALUE`](super::MAX_ABS_VALUE).
fn parse_checked(field: &str, path: &Path, row: usize, column: usize) -> Result<f64, DataError> {
    match parse_field(field) {
        Ok(v) => match DataError::out_of_range(v, path, row, column, field) {
            Some(err) => Err(err),
            None => Ok(v),
        },
        Err(_) => Err(DataError::Parse { path: path.to_path_buf(), row, column, text: quoted(field) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(text: &str) -> Result<Mat<f64>, DataError> {
        parse_table(text.as_bytes(), Path::new("points.csv"), &CsvOptions::default())
    }

    fn parse_with(text: &str, columns: Columns) -> Result<Mat<f64>, DataError> {
        parse_table(text.as_bytes(), Path::new("points.csv"), &CsvOptions { columns })
    }

    #[test]
    fn every_separator_gives_the_same_matrix() {
        let want = [1.0, -2.5, 3e-3, 4.0, 5.0, 6.25];
        for text in [
            "1,-2.5,3e-3\n4,5,6.25\n",
            "1;-2.5;3e-3\n4;5;6.25\n",
            "1 -2.5   3e-3\n4\t5 6.25\n",
            "1, -2.5, 3e-3\r\n4 ,5 , 6.25\r\n",
        ] {
            let x = parse(text).unwrap();
            assert_eq!((x.rows(), x.cols()), (2, 3), "{text:?}");
            assert_eq!(x.as_slice(), &want, "{text:?}");
        }
    }

    #[test]
    fn header_blank_lines_comments_and_quotes_are_handled() {
        let x = parse("\u{feff}\"x\",\"y\"\n\n# a comment\n\"1\",2\n\n3,4\n").unwrap();
        assert_eq!((x.rows(), x.cols()), (2, 2));
        assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn first_numeric_line_is_data_not_header() {
        let x = parse("0.5 0.25\n").unwrap();
        assert_eq!(x.as_slice(), &[0.5, 0.25]);
    }

    #[test]
    fn nan_is_rejected_with_its_position() {
        let err = parse("x,y,z\n1,2,3\n4,5,NaN\n").unwrap_err();
        assert!(
            matches!(&err, DataError::NonFinite { row: 3, column: 3, value, .. } if value == "NaN"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "points.csv: row 3, column 3: value NaN is not finite (expected a finite number)"
        );
        assert!(matches!(parse("1,inf\n").unwrap_err(), DataError::NonFinite { row: 1, column: 2, .. }));
    }

    #[test]
    fn a_first_row_with_a_number_is_data_so_its_bad_field_is_an_error() {
        let err = parse("0.1,abc\n1,2\n").unwrap_err();
        assert!(matches!(&err, DataError::Parse { row: 1, column: 2, text, .. } if text == "abc"), "{err:?}");
        assert_eq!(parse("x,y\n1,2\n").unwrap().as_slice(), &[1.0, 2.0], "a row without numbers is a header");
    }

    #[test]
    fn values_beyond_what_f32_arithmetic_holds_are_errors_naming_the_cell() {
        for cell in ["1e39", "3e38", "-2e16"] {
            let err = parse(&format!("1,2\n3,{cell}\n")).unwrap_err();
            assert!(
                matches!(&err, DataError::TooLarge { row: 2, column: 2, value, .. } if value == cell),
                "{err:?}"
            );
            assert!(err
                .to_string()
                .starts_with(&format!("points.csv: row 2, column 2: value {cell} is too large")));
        }
        assert_eq!(parse("1e16,-1e16\n").unwrap().as_slice(), &[1e16, -1e16]);
    }

    #[test]
    fn errors_quote_at_most_80_characters_of_a_field() {
        let long = "x".repeat(10_000);
        let err = parse(&format!("1,2\n3,{long}\n")).unwrap_err().to_string();
        assert!(err.contains(&format!("\"{}...\"", "x".repeat(80))), "{err}");
        assert!(err.len() < 200, "{} characters", err.len());
        let wide = "é".repeat(100);
        assert!(parse(&format!("1,2\n3,{wide}\n")).unwrap_err().to_string().contains(&"é".repeat(80)));
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let err = parse("1,2,3\n4,5\n").unwrap_err();
        assert!(matches!(err, DataError::Ragged { row: 2, found: 2, expected: 3, .. }), "{err:?}");
    }

    #[test]
    fn non_numbers_after_the_header_are_parse_errors() {
        let err = parse("a,b\n1,2\n3,NA\n").unwrap_err();
        assert!(matches!(&err, DataError::Parse { row: 3, column: 2, text, .. } if text == "NA"), "{err:?}");
        // A trailing separator leaves an empty field: an error, not a silent zero.
        assert!(matches!(parse("1,2,3\n1,2,\n").unwrap_err(), DataError::Parse { row: 2, column: 3, .. }));
    }

    #[test]
    fn empty_and_header_only_files_are_empty() {
        for text in ["", "\n\n  \n", "x,y\n", "# only a comment\n"] {
            assert!(matches!(parse(text).unwrap_err(), DataError::Empty { .. }), "{text:?}");
        }
    }

    #[test]
    fn columns_not_kept_may_hold_labels() {
        let text = "id,a,b,class\n7,1.5,2,cat\n8,3,4.5,dog\n";
        let x = parse_with(text, Columns::Keep(vec![1, 2])).unwrap();
        assert_eq!((x.rows(), x.cols()), (2, 2));
        assert_eq!(x.as_slice(), &[1.5, 2.0, 3.0, 4.5]);
        let y = parse_with(text, Columns::Keep(vec![2, 1])).unwrap();
        assert_eq!(y.as_slice(), &[2.0, 1.5, 4.5, 3.0]);
    }

    #[test]
    fn out_of_range_selection_is_an_error() {
        let err = parse_with("1,2\n", Columns::Keep(vec![2])).unwrap_err();
        assert!(matches!(err, DataError::ColumnOutOfRange { index: 2, width: 2, .. }), "{err:?}");
    }

    #[test]
    fn gzipped_file_reads_like_plain() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("p.csv");
        let gz = dir.path().join("p.csv.gz");
        let text = "a;b\n1;2\n3;4\n";
        std::fs::write(&plain, text).unwrap();
        let mut enc =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let a = read_csv(&plain, &CsvOptions::default()).unwrap();
        let b = read_csv(&gz, &CsvOptions::default()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn corrupt_gzip_and_missing_file_are_io_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("bad.csv.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]).unwrap();
        let err = read_csv(&gz, &CsvOptions::default()).unwrap_err();
        assert!(matches!(&err, DataError::Io { path, .. } if path == &gz), "{err:?}");
        let missing = dir.path().join("none.csv");
        let err = read_csv(&missing, &CsvOptions::default()).unwrap_err();
        assert!(err.to_string().contains("none.csv"), "{err}");
    }

    #[test]
    fn read_csv_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iris.csv");
        std::fs::write(&path, "a,b,label\n1,2,setosa\n3,4,virginica\n").unwrap();
        let opts = CsvOptions { columns: Columns::Keep(vec![0, 1]) };
        let x = read_csv(&path, &opts).unwrap();
        assert_eq!((x.rows(), x.cols()), (2, 2));
        assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    }
}
