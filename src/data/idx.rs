//! IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed: a 4-byte magic
//! (0x00 0x00 type ndim), one big-endian u32 per dimension, then the data.

use std::io::{BufRead, Read};

use super::{CLASSES, DataError, ImageSet, ImageShape};

const UBYTE: u8 = 0x08;
/// The Fashion-MNIST file names (the `.gz` variants are accepted too).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The most data bytes an IDX array may declare (1 GiB; Fashion-MNIST's training images are
/// 47 MB): a header is only a claim, and a hostile one must not make us allocate exabytes.
pub const MAX_DATA_BYTES: usize = 1 << 30;

/// Reads one unsigned-byte IDX array of `ndim` dimensions, raw or gzip-compressed (detected by
/// its magic), never reading past what the header declares: returns the dimensions and the data.
pub fn read_ubyte(
    file: &str,
    mut reader: impl BufRead,
    ndim: u8,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let gzip = reader
        .fill_buf()
        .map_err(|e| DataError::io(file, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::bufread::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let read_error = |e: std::io::Error| {
        if gzip {
            DataError::invalid(file, format!("corrupt gzip data: {e}"))
        } else {
            DataError::io(file, e)
        }
    };
    let header = 4 + 4 * usize::from(ndim);
    let mut head = vec![0; header];
    let got = read_up_to(&mut reader, &mut head).map_err(read_error)?;
    if got < header {
        return Err(DataError::invalid(
            file,
            format!("truncated: {got} bytes, shorter than the {header}-byte IDX header"),
        ));
    }
    let expected = [0, 0, UBYTE, ndim];
    if head[..4] != expected {
        return Err(DataError::invalid(
            file,
            format!(
                "wrong IDX magic {:02x?}, expected {:02x?} (unsigned bytes, {ndim} dimensions)",
                &head[..4],
                expected
            ),
        ));
    }
    let dims: Vec<usize> = head[4..]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let size = dims
        .iter()
        .try_fold(1usize, |product, &d| product.checked_mul(d))
        .filter(|&size| size <= MAX_DATA_BYTES)
        .ok_or_else(|| {
            DataError::invalid(
                file,
                format!(
                    "dimensions {dims:?} declare more than the {MAX_DATA_BYTES} data bytes an IDX file may hold here"
                ),
            )
        })?;
    let mut data = Vec::new();
    reader
        .take(size as u64 + 1)
        .read_to_end(&mut data)
        .map_err(read_error)?;
    if data.len() != size {
        return Err(DataError::invalid(
            file,
            if data.len() < size {
                format!(
                    "dimensions {dims:?} need {size} data bytes, found {} (truncated file)",
                    data.len()
                )
            } else {
                format!("dimensions {dims:?} need {size} data bytes, but the file holds more")
            },
        ));
    }
    Ok((dims, data))
}

/// Fills `buf` as far as the reader goes; returns how many bytes it got.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Pairs an images file (N × H × W) with a labels file (N) into a one-channel set; each reader
/// may be raw or gzip.
pub fn parse_pair(
    images_file: &str,
    images: impl BufRead,
    labels_file: &str,
    labels: impl BufRead,
) -> Result<ImageSet, DataError> {
    let (image_dims, pixels) = read_ubyte(images_file, images, 3)?;
    if image_dims[1] == 0 || image_dims[2] == 0 {
        return Err(DataError::invalid(
            images_file,
            format!(
                "images of {}×{} pixels; they must be at least 1×1",
                image_dims[1], image_dims[2]
            ),
        ));
    }
    let (label_dims, label_bytes) = read_ubyte(labels_file, labels, 1)?;
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
        images: pixels,
        labels: label_bytes,
    })
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fs::File;
    use std::io::BufReader;
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

    fn open(dir: &Path, name: &str) -> Result<(String, BufReader<File>), DataError> {
        let path = find(dir, name)?;
        let shown = path.display().to_string();
        let file = File::open(&path).map_err(|e| DataError::io(&shown, e))?;
        Ok((shown, BufReader::new(file)))
    }

    fn load_pair(dir: &Path, images: &str, labels: &str) -> Result<ImageSet, DataError> {
        let (images_file, image_reader) = open(dir, images)?;
        let (labels_file, label_reader) = open(dir, labels)?;
        parse_pair(&images_file, image_reader, &labels_file, label_reader)
    }

    /// Loads Fashion-MNIST (or MNIST) from a directory of IDX files.
    pub fn load(dir: &Path) -> Result<Splits, DataError> {
        let splits = Splits::new(
            load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            load_pair(dir, TEST_IMAGES, TEST_LABELS)?,
        );
        splits.check_shapes().map_err(|message| {
            DataError::invalid(dir.join(TEST_IMAGES).display().to_string(), message)
        })?;
        Ok(splits)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fuzz::gz;

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
        let set = parse_pair("i", &images[..], "l", &labels[..]).unwrap();
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
        let err = parse_pair("imgs", &wrong_magic[..], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("imgs:") && err.contains("magic"), "{err}");
        let err = parse_pair("imgs", &images[..20], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = parse_pair("i", &images[..], "lbl", &idx(1, &[2], &[1, 12])[..])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lbl:") && err.contains("12"), "{err}");
        let err = parse_pair("i", &images[..], "lbl", &idx(1, &[3], &[1, 1, 1])[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 labels for 2 images"), "{err}");
        let err = parse_pair("g", &[0x1f, 0x8b, 0, 0][..], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("g:") && err.contains("gzip"), "{err}");
    }

    #[test]
    fn gzip_files_parse_like_raw_ones() {
        let images = idx(3, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let labels = idx(1, &[2], &[7, 0]);
        let raw = parse_pair("i", &images[..], "l", &labels[..]).unwrap();
        let zipped = parse_pair("i", &gz(&images)[..], "l", &gz(&labels)[..]).unwrap();
        assert_eq!(raw, zipped);
    }

    #[test]
    fn hostile_headers_are_errors_not_allocations() {
        let labels = idx(1, &[2], &[7, 0]);
        // 2^32−1 cubed wraps a u64 product; each factor alone is a valid u32.
        let huge = idx(3, &[u32::MAX, u32::MAX, u32::MAX], &[0; 16]);
        let err = parse_pair("big", &huge[..], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("big:") && err.contains("declare more than"),
            "{err}"
        );
        // Within u64 but past the cap.
        let large = idx(3, &[60_000, 2048, 2048], &[0; 16]);
        let err = parse_pair("big", &large[..], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("1073741824"), "{err}");
        let empty_images = idx(3, &[2, 0, 0], &[]);
        let err = parse_pair("zero", &empty_images[..], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("0×0") && err.contains("at least 1×1"), "{err}");
    }

    #[test]
    fn inflating_stops_at_what_the_header_declares() {
        // Declares 2×2×3 bytes, then 8 MiB of zeros (a few KiB compressed): the reader must stop
        // after 13 bytes instead of inflating everything.
        let mut bomb = idx(3, &[2, 2, 3], &[0; 12]);
        bomb.extend(std::iter::repeat_n(0u8, 8 << 20));
        let compressed = gz(&bomb);
        assert!(compressed.len() < 64 << 10);
        let labels = idx(1, &[2], &[7, 0]);
        let err = parse_pair("bomb.gz", &compressed[..], "l", &labels[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds more"), "{err}");
    }

    mod never_panic {
        use proptest::prelude::*;

        use super::*;
        use crate::fuzz::{config, mutated};

        fn valid_pair() -> (Vec<u8>, Vec<u8>) {
            let images = idx(3, &[3, 2, 2], &[9; 12]);
            let labels = idx(1, &[3], &[1, 2, 3]);
            (images, labels)
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn raw_idx(images in mutated(valid_pair().0), labels in mutated(valid_pair().1)) {
                let _ = parse_pair("i", &images[..], "l", &labels[..]);
            }

            #[test]
            fn gzip_idx(images in mutated(gz(&valid_pair().0)), labels in mutated(gz(&valid_pair().1))) {
                let _ = parse_pair("i", &images[..], "l", &labels[..]);
            }
        }
    }
}
