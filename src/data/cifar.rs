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
/// Records in one official batch file (each training batch and the test batch).
pub const BATCH_RECORDS: u64 = 10_000;
/// Records a subset's `train_batch.bin` can hold: the whole training set.
pub const SUBSET_TRAIN_RECORDS: u64 = 50_000;

/// The most bytes a batch file of this name can hold in the format; reads stop there, so a
/// damaged or hostile file never makes us allocate more.
pub fn max_bytes(name: &str) -> u64 {
    let records = if name == SUBSET_TRAIN_FILE {
        SUBSET_TRAIN_RECORDS
    } else {
        BATCH_RECORDS
    };
    records * RECORD_BYTES as u64
}

/// Reads all of `reader` unless it holds more than `limit` bytes; `file` names it in errors.
pub fn read_capped(file: &str, reader: impl Read, limit: u64) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::invalid(file, format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(file, limit));
    }
    Ok(bytes)
}

pub fn too_large(file: &str, limit: u64) -> DataError {
    DataError::invalid(
        file,
        format!(
            "larger than the {limit} bytes a CIFAR-10 batch of this name can hold ({} records of {RECORD_BYTES} bytes)",
            limit / RECORD_BYTES as u64
        ),
    )
}

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
    Ok(Splits::new(train, test))
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
        // The header's size is only a claim: check it, and never read past the cap anyway.
        let shown = format!("{name}: {path}");
        let limit = max_bytes(file);
        if entry.size() > limit {
            return Err(too_large(&shown, limit));
        }
        let bytes = read_capped(&shown, &mut entry, limit)?;
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
                let shown = file.display().to_string();
                let opened = std::fs::File::open(&file).map_err(|e| DataError::io(&shown, e))?;
                let bytes = read_capped(&shown, opened, max_bytes(name))?;
                files.insert((*name).to_owned(), bytes);
            }
        }
        splits_from_files(&dir.display().to_string(), &files)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fuzz::gz;

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

    fn archive_tar(records_per_member: usize) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for name in TRAIN_FILES.iter().chain([&TEST_FILE]) {
            let bytes: Vec<u8> = (0..records_per_member)
                .flat_map(|i| record(i as u8 % 10, i as u8))
                .collect();
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, format!("{ARCHIVE_DIR}/{name}"), &bytes[..])
                .unwrap();
        }
        tar.into_inner().unwrap()
    }

    #[test]
    fn a_member_claiming_a_huge_size_is_an_error() {
        // A tar header whose size field says 8 GiB, with a few bytes behind it.
        let mut header = tar::Header::new_gnu();
        header
            .set_path(format!("{ARCHIVE_DIR}/data_batch_1.bin"))
            .unwrap();
        header.set_size(8 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend([0u8; 1024]);
        let err = read_archive("a.tar.gz", &gz(&tar)[..])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.tar.gz")
                && err.contains("data_batch_1.bin")
                && err.contains("30730000"),
            "{err}"
        );
    }

    #[test]
    fn archives_read_like_directories() {
        let files = read_archive("a.tar.gz", &gz(&archive_tar(2))[..]).unwrap();
        let splits = splits_from_files("a", &files).unwrap();
        assert_eq!((splits.train.len(), splits.test.len()), (10, 2));
    }

    mod never_panic {
        use proptest::prelude::*;

        use super::*;
        use crate::fuzz::{config, mutated};

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn batch(bytes in mutated([record(3, 1), record(9, 2)].concat())) {
                let _ = parse_batch("x.bin", &bytes);
            }

            #[test]
            fn compressed_archive(bytes in mutated(gz(&archive_tar(1)))) {
                if let Ok(files) = read_archive("a.tar.gz", &bytes[..]) {
                    let _ = splits_from_files("a", &files);
                }
            }

            #[test]
            fn tar_inside_the_gzip(tar in mutated(archive_tar(1))) {
                if let Ok(files) = read_archive("a.tar.gz", &gz(&tar)[..]) {
                    let _ = splits_from_files("a", &files);
                }
            }
        }
    }
}
