//! IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed: a 4-byte magic
//! (0x00 0x00 type ndim), one big-endian u32 per dimension, then the data.

use std::io::Read;

use super::{CLASSES, DataError, ImageSet, ImageShape};

const UBYTE: u8 = 0x08;
/// The Fashion-MNIST file names (the `.gz` variants are accepted too).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Undoes gzip when the bytes start with its magic.
pub fn maybe_gunzip(file: &str, bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::invalid(file, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Parses an unsigned-byte IDX array of `ndim` dimensions: returns the dimensions and the data.
fn parse_ubyte<'a>(
    file: &str,
    bytes: &'a [u8],
    ndim: u8,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let header = 4 + 4 * usize::from(ndim);
    if bytes.len() < header {
        return Err(DataError::invalid(
            file,
            format!(
                "truncated: {} bytes, shorter than the {header}-byte IDX header",
                bytes.len()
            ),
        ));
    }
    let expected = [0, 0, UBYTE, ndim];
    if bytes[..4] != expected {
        return Err(DataError::invalid(
            file,
            format!(
                "wrong IDX magic {:02x?}, expected {:02x?} (unsigned bytes, {ndim} dimensions)",
                &bytes[..4],
                expected
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let size: usize = dims.iter().product();
    let data = &bytes[header..];
    if data.len() != size {
        return Err(DataError::invalid(
            file,
            format!(
                "dimensions {dims:?} need {size} data bytes, found {}{}",
                data.len(),
                if data.len() < size {
                    " (truncated file)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok((dims, data))
}

/// Pairs an images file (N × H × W) with a labels file (N) into a one-channel set.
pub fn parse_pair(
    images_file: &str,
    images: &[u8],
    labels_file: &str,
    labels: &[u8],
) -> Result<ImageSet, DataError> {
    let (image_dims, pixels) = parse_ubyte(images_file, images, 3)?;
    let (label_dims, label_bytes) = parse_ubyte(labels_file, labels, 1)?;
    if image_dims[0] != label_dims[0] {
        return Err(DataError::invalid(
            labels_file,
            format!(
                "{} labels for {} images in {images_file}",
                label_dims[0], image_dims[0]
            ),
        ));
    }
    if let Some((index, label)) = label_bytes
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= CLASSES)
    {
        return Err(DataError::invalid(
            labels_file,
            format!("label {index} is {label}, expected 0..=9"),
        ));
    }
    Ok(ImageSet {
        shape: ImageShape {
            channels: 1,
            height: image_dims[1],
            width: image_dims[2],
        },
        images: pixels.to_vec(),
        labels: label_bytes.to_vec(),
    })
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::data::Splits;

    /// `dir/name`, or `dir/name.gz` when only that exists.
    fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
        let raw = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        if raw.is_file() {
            Ok(raw)
        } else if gz.is_file() {
            Ok(gz)
        } else {
            Err(DataError::invalid(
                raw.display().to_string(),
                "missing IDX file (neither it nor its .gz exists)",
            ))
        }
    }

    fn read(dir: &Path, name: &str) -> Result<(String, Vec<u8>), DataError> {
        let path = find(dir, name)?;
        let shown = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|e| DataError::io(&shown, e))?;
        let bytes = maybe_gunzip(&shown, bytes)?;
        Ok((shown, bytes))
    }

    fn load_pair(dir: &Path, images: &str, labels: &str) -> Result<ImageSet, DataError> {
        let (images_file, image_bytes) = read(dir, images)?;
        let (labels_file, label_bytes) = read(dir, labels)?;
        parse_pair(&images_file, &image_bytes, &labels_file, &label_bytes)
    }

    /// Loads Fashion-MNIST (or MNIST) from a directory of IDX files.
    pub fn load(dir: &Path) -> Result<Splits, DataError> {
        Ok(Splits {
            train: load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            test: load_pair(dir, TEST_IMAGES, TEST_LABELS)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn idx(ndim: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, UBYTE, ndim];
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_images_and_labels() {
        let images = idx(3, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let labels = idx(1, &[2], &[7, 0]);
        let set = parse_pair("i", &images, "l", &labels).unwrap();
        assert_eq!(
            set.shape,
            ImageShape {
                channels: 1,
                height: 2,
                width: 3
            }
        );
        assert_eq!(set.image(1), &[7, 8, 9, 10, 11, 12]);
        assert_eq!(set.labels, vec![7, 0]);
    }

    #[test]
    fn bad_files_are_named() {
        let images = idx(3, &[2, 2, 3], &[0; 12]);
        let labels = idx(1, &[2], &[7, 0]);
        let wrong_magic = [&[0, 0, 8, 1][..], &images[4..]].concat();
        let err = parse_pair("imgs", &wrong_magic, "l", &labels)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("imgs:") && err.contains("magic"), "{err}");
        let err = parse_pair("imgs", &images[..20], "l", &labels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = parse_pair("i", &images, "lbl", &idx(1, &[2], &[1, 12]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lbl:") && err.contains("12"), "{err}");
        let err = parse_pair("i", &images, "lbl", &idx(1, &[3], &[1, 1, 1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 labels for 2 images"), "{err}");
        assert!(maybe_gunzip("g", vec![0x1f, 0x8b, 0, 0]).is_err());
    }
}
