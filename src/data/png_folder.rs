//! A folder of the user's own images (`--target images:DIR`): every `*.png` file directly inside, in
//! file-name order, all of one size and one kind (grey or RGB; palette and low bit depths expanded, 16
//! bits reduced to 8, an alpha channel ignored), as channels-last rows scaled to `[0, 1]`. The last tenth
//! of the files (at least one) is the test split, the rest the training split; images have no class
//! (label 0).

use super::dataset_error::DatasetError;
use super::image_set::{ImageSet, Split};
use crate::linalg::Mat;
use png::{ColorType, Decoder, Transformations};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// One decoded image: `(height, width, channels)` and its values in `[0, 1]`, channels-last.
struct Decoded {
    shape: (usize, usize, usize),
    values: Vec<f64>,
}

fn describe((h, w, c): (usize, usize, usize)) -> String {
    format!("{h}x{w} {}", if c == 1 { "grey" } else { "RGB" })
}

fn not_png(path: &Path, problem: String) -> DatasetError {
    DatasetError::BadContent {
        path: path.into(),
        problem,
        expected: "a PNG image (grey or RGB, any bit depth)".into(),
    }
}

/// The PNG reader of `path`, its header read, set to expand to 8-bit grey or RGB (with alpha).
fn open(path: &Path) -> Result<png::Reader<BufReader<File>>, DatasetError> {
    let file = File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut decoder = Decoder::new(BufReader::new(file));
    decoder.set_transformations(Transformations::normalize_to_color8());
    decoder.read_info().map_err(|e| not_png(path, e.to_string()))
}

/// Values per pixel stored after expansion, and kept (alpha dropped).
fn channels(path: &Path, color: ColorType) -> Result<(usize, usize), DatasetError> {
    match color {
        ColorType::Grayscale => Ok((1, 1)),
        ColorType::GrayscaleAlpha => Ok((2, 1)),
        ColorType::Rgb => Ok((3, 3)),
        ColorType::Rgba => Ok((4, 3)),
        ColorType::Indexed => Err(not_png(path, "an unexpanded palette".into())),
    }
}

/// `(height, width, channels)` from the header alone.
fn shape(path: &Path) -> Result<(usize, usize, usize), DatasetError> {
    let reader = open(path)?;
    let (_, kept) = channels(path, reader.output_color_type().0)?;
    let info = reader.info();
    Ok((info.height as usize, info.width as usize, kept))
}

fn decode(path: &Path) -> Result<Decoded, DatasetError> {
    let bad = |problem: String| not_png(path, problem);
    let mut reader = open(path)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(|e| bad(e.to_string()))?;
    let (stored, kept) = channels(path, frame.color_type)?;
    let (h, w) = (frame.height as usize, frame.width as usize);
    let values = buf[..frame.buffer_size()]
        .chunks_exact(stored)
        .flat_map(|px| px[..kept].iter().map(|&v| f64::from(v) / 255.0))
        .collect();
    Ok(Decoded { shape: (h, w, kept), values })
}

/// The `*.png` files directly in `folder`, sorted by name.
fn png_files(folder: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let entries = std::fs::read_dir(folder).map_err(|e| DatasetError::io(folder, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    Ok(files)
}

/// `(height, width, channels)` of the images of `folder`, from the header of its first PNG file.
///
/// # Errors
/// [`DatasetError::BadContent`] for a folder without PNG files or an undecodable first file;
/// [`DatasetError::Io`] for an unreadable folder.
pub(crate) fn png_folder_shape(folder: &Path) -> Result<(usize, usize, usize), DatasetError> {
    let files = png_files(folder)?;
    let first = files.first().ok_or_else(|| DatasetError::BadContent {
        path: folder.into(),
        problem: "no PNG files".into(),
        expected: "a folder of at least 2 same-size PNG files (`--target images:DIR`)".into(),
    })?;
    shape(first)
}

/// Loads one split of the PNG files of `folder`.
///
/// # Errors
/// [`DatasetError::BadContent`] for fewer than two PNG files, an undecodable file, or a file whose size
/// or kind differs from the first file's (naming both); [`DatasetError::Io`] for an unreadable folder.
pub(crate) fn load_png_folder(folder: &Path, split: Split) -> Result<ImageSet, DatasetError> {
    let files = png_files(folder)?;
    if files.len() < 2 {
        return Err(DatasetError::BadContent {
            path: folder.into(),
            problem: format!("{} PNG files", files.len()),
            expected: "a folder of at least 2 same-size PNG files (`--target images:DIR`)".into(),
        });
    }
    let test = (files.len() / 10).max(1);
    let chosen = match split {
        Split::Train => &files[..files.len() - test],
        Split::Test => &files[files.len() - test..],
    };
    let first = shape(&files[0])?;
    let mismatch = |path: &Path, found| DatasetError::BadContent {
        path: path.into(),
        problem: format!("a {} image", describe(found)),
        expected: format!(
            "{} like {} (every image of the folder alike)",
            describe(first),
            files[0].display()
        ),
    };
    for path in &files[1..] {
        let found = shape(path)?;
        if found != first {
            return Err(mismatch(path, found));
        }
    }
    let mut values = Vec::new();
    for path in chosen {
        let image = decode(path)?;
        if image.shape != first {
            return Err(mismatch(path, image.shape));
        }
        values.extend(image.values);
    }
    let (height, width, channels) = first;
    let pixels = Mat::from_vec(chosen.len(), height * width * channels, values);
    Ok(ImageSet { height, width, channels, pixels, labels: vec![0; chosen.len()] })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes an 8-bit PNG of `(h, w)` with `color` from `bytes` (channels interleaved).
    fn write_png(path: &Path, (h, w): (u32, u32), color: ColorType, bytes: &[u8]) {
        let mut encoder = png::Encoder::new(File::create(path).unwrap(), w, h);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header().unwrap().write_image_data(bytes).unwrap();
    }

    #[test]
    fn rgb_folders_load_channels_last_and_split_off_the_last_tenth() {
        let dir = tempfile::tempdir().unwrap();
        for k in 0..12u8 {
            // Pixel (r, c) = (10 k + r, 2 c, 255 - k); RGBA files drop their alpha.
            let px: Vec<u8> =
                (0..2u8).flat_map(|r| (0..3u8).flat_map(move |c| [10 * k + r, 2 * c, 255 - k, 7])).collect();
            write_png(&dir.path().join(format!("img{k:02}.png")), (2, 3), ColorType::Rgba, &px);
        }
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let train = load_png_folder(dir.path(), Split::Train).unwrap();
        let test = load_png_folder(dir.path(), Split::Test).unwrap();
        assert_eq!((train.pixels.rows(), test.pixels.rows()), (11, 1));
        assert_eq!((train.height, train.width, train.channels, train.pixels.cols()), (2, 3, 3, 18));
        // Test image k = 11, pixel (1, 2): column (1 * 3 + 2) * 3 + channel.
        let at = |ch: usize| test.pixels.at(0, (3 + 2) * 3 + ch) * 255.0;
        assert_eq!([at(0), at(1), at(2)], [111.0, 4.0, 244.0]);
    }

    #[test]
    fn mixed_sizes_or_kinds_name_the_odd_file() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), (2, 2), ColorType::Grayscale, &[0, 1, 2, 3]);
        write_png(&dir.path().join("b.png"), (2, 2), ColorType::Grayscale, &[4, 5, 6, 7]);
        write_png(&dir.path().join("c.png"), (2, 2), ColorType::Rgb, &[9; 12]);
        // c.png lies in the test split; loading the training split checks it too.
        let msg = load_png_folder(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(msg.contains("c.png") && msg.contains("2x2 RGB") && msg.contains("2x2 grey like"), "{msg}");
        std::fs::remove_file(dir.path().join("c.png")).unwrap();
        write_png(&dir.path().join("c.png"), (3, 2), ColorType::Grayscale, &[9; 6]);
        let msg = load_png_folder(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(msg.contains("c.png") && msg.contains("3x2 grey") && msg.contains("2x2 grey like"), "{msg}");
        let empty = tempfile::tempdir().unwrap();
        let msg = load_png_folder(empty.path(), Split::Train).unwrap_err().to_string();
        assert!(msg.contains("0 PNG files"), "{msg}");
    }
}
