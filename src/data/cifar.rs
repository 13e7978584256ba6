//! CIFAR-10 binary format: each record is 1 label byte then 3072 pixel bytes (the R, G and B
//! planes of a 32×32 image). Five training batches and one test batch, in a directory or in the
//! official `cifar-10-binary.tar.gz` under `cifar-10-batches-bin/`.

use std::collections::HashMap;
use std::io::Read;

use super::{CLASSES, DataError, ImageSet, ImageShape, Splits};

pub const RECORD_BYTES: usize = 1 + 3072;
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";
/// A subset's training images in one file (`adaexp data subset`), beside `test_batch.bin`.
pub const SUBSET_TRAIN_FILE: &str = "train_batch.bin";
/// The folder the official archive keeps its batches in.
pub const ARCHIVE_DIR: &str = "cifar-10-batches-bin";

/// Parses one batch file; `file` names it in errors.
pub fn parse_batch(file: &str, bytes: &[u8]) -> Result<ImageSet, DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_BYTES) {
        return Err(DataError::invalid(
            file,
            format!(
                "size {} bytes is not a positive multiple of {RECORD_BYTES} (1 label byte + 3072 pixel bytes per record)",
                bytes.len()
            ),
        ));
    }
    let records = bytes.len() / RECORD_BYTES;
    let mut set = ImageSet::empty(ImageShape::CIFAR);
    set.images.reserve(records * (RECORD_BYTES - 1));
    set.labels.reserve(records);
    for (index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if usize::from(label) >= CLASSES {
            return Err(DataError::invalid(
                file,
                format!("record {index} has label {label}, expected 0..=9"),
            ));
        }
        set.labels.push(label);
        set.images.extend_from_slice(&record[1..]);
    }
    Ok(set)
}

/// Serialises a set back into the binary format (for the page's subset).
pub fn to_bytes(set: &ImageSet) -> Vec<u8> {
    debug_assert_eq!(set.shape, ImageShape::CIFAR);
    let mut out = Vec::with_capacity(set.len() * RECORD_BYTES);
    for (i, &label) in set.labels.iter().enumerate() {
        out.push(label);
        out.extend_from_slice(set.image(i));
    }
    out
}

/// Assembles the splits from named batch files (names as in the archive, without folder): the
/// five official training batches, or one subset `train_batch.bin`, and `test_batch.bin`.
/// `source` names where they came from in errors about missing files.
pub fn splits_from_files(
    source: &str,
    files: &HashMap<String, Vec<u8>>,
) -> Result<Splits, DataError> {
    let get = |name: &str| {
        files.get(name).ok_or_else(|| {
            DataError::invalid(format!("{source}/{name}"), "missing CIFAR-10 batch file")
        })
    };
    let train = match files.get(SUBSET_TRAIN_FILE) {
        Some(bytes) => parse_batch(SUBSET_TRAIN_FILE, bytes)?,
        None => {
            let mut train = ImageSet::empty(ImageShape::CIFAR);
            for name in TRAIN_FILES {
                train.extend(&parse_batch(name, get(name)?)?);
            }
            train
        }
    };
    let test = parse_batch(TEST_FILE, get(TEST_FILE)?)?;
    Ok(Splits { train, test })
}

/// Reads the batch files out of the official `.tar.gz` (any reader: a file, or bytes in the page).
/// Only regular files named like the official members are read; everything else is skipped.
pub fn read_archive(name: &str, reader: impl Read) -> Result<HashMap<String, Vec<u8>>, DataError> {
    let fail = |e: std::io::Error| {
        DataError::invalid(name, format!("not a readable .tar.gz archive: {e}"))
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut files = HashMap::new();
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(fail)?.to_string_lossy().into_owned();
        let Some(file) = member_name(&path) else {
            continue;
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(fail)?;
        files.insert(file.to_owned(), bytes);
    }
    Ok(files)
}

/// `cifar-10-batches-bin/data_batch_1.bin` → `data_batch_1.bin`; `None` for anything else.
pub fn member_name(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("./").unwrap_or(path);
    let file = rest.strip_prefix(ARCHIVE_DIR)?.strip_prefix('/')?;
    TRAIN_FILES
        .iter()
        .chain(std::iter::once(&TEST_FILE))
        .find(|expected| **expected == file)
        .copied()
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    /// Loads CIFAR-10 from a directory of batch files (or one holding `cifar-10-batches-bin/`),
    /// or from the official archive.
    pub fn load(path: &Path) -> Result<Splits, DataError> {
        let shown = path.display().to_string();
        if path.is_file() {
            let file = std::fs::File::open(path).map_err(|e| DataError::io(&shown, e))?;
            let files = read_archive(&shown, std::io::BufReader::new(file))?;
            return splits_from_files(&shown, &files);
        }
        let dir = if path.join(ARCHIVE_DIR).is_dir() {
            path.join(ARCHIVE_DIR)
        } else {
            path.to_path_buf()
        };
        if !dir.is_dir() {
            return Err(DataError::invalid(
                &shown,
                "no such directory or archive (run `adaexp data fetch cifar10`)",
            ));
        }
        let mut files = HashMap::new();
        let names = TRAIN_FILES.iter().chain([&TEST_FILE, &SUBSET_TRAIN_FILE]);
        for name in names {
            let file = dir.join(name);
            if file.is_file() {
                let bytes = std::fs::read(&file)
                    .map_err(|e| DataError::io(file.display().to_string(), e))?;
                files.insert((*name).to_owned(), bytes);
            }
        }
        splits_from_files(&dir.display().to_string(), &files)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record whose pixels encode (index, channel) so reordering would show.
    pub(crate) fn record(label: u8, seed: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| seed.wrapping_add((i / 1024) as u8 * 50)));
        r
    }

    #[test]
    fn parses_records_in_order() {
        let bytes: Vec<u8> = [record(3, 1), record(9, 2)].concat();
        let set = parse_batch("x.bin", &bytes).unwrap();
        assert_eq!(set.labels, vec![3, 9]);
        assert_eq!(set.image(1)[0], 2);
        assert_eq!(set.image(1)[1024], 52); // the G plane
        assert_eq!(to_bytes(&set), bytes);
    }

    #[test]
    fn rejects_bad_sizes_and_labels() {
        let err = parse_batch("data_batch_1.bin", &[0; 3072])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("3073"),
            "{err}"
        );
        let err = parse_batch("test_batch.bin", &record(10, 0))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test_batch.bin") && err.contains("label 10"),
            "{err}"
        );
        assert!(parse_batch("e.bin", &[]).is_err());
    }

    #[test]
    fn member_names_are_exact() {
        assert_eq!(
            member_name("cifar-10-batches-bin/test_batch.bin"),
            Some("test_batch.bin")
        );
        assert_eq!(
            member_name("./cifar-10-batches-bin/data_batch_5.bin"),
            Some("data_batch_5.bin")
        );
        assert_eq!(member_name("cifar-10-batches-bin/../../etc/passwd"), None);
        assert_eq!(member_name("cifar-10-batches-bin/batches.meta.txt"), None);
        assert_eq!(member_name("data_batch_1.bin"), None);
    }
}
