//! Result files: append-only JSONL records (one file per seed), checkpoints beside them, and
//! reading them back for plots.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::halt::{self, Point};
use crate::train::{ArmCheckpoint, ArmStatus, Checkpoint, EpochTotals, Record, RunInfo};

/// Appends records to a JSONL file. Lines reach the disk at `sync`, which the runner calls at
/// each epoch end, before writing the checkpoint that refers to them. A running SHA-256 of the
/// file lets the checkpoint pin exactly the records it continues.
pub struct RecordWriter {
    path: PathBuf,
    file: BufWriter<File>,
    len: u64,
    hasher: Sha256,
}

/// How far a result file is synced, and the SHA-256 of that prefix.
pub struct Synced {
    pub len: u64,
    pub sha256: String,
}

impl Synced {
    /// Nothing yet: where a run that starts over continues.
    pub fn nothing() -> Self {
        Synced {
            len: 0,
            sha256: sha256_hex(b""),
        }
    }
}

impl RecordWriter {
    /// A new file; refuses to replace one that exists (results are never overwritten).
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(RecordWriter {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
            len: 0,
            hasher: Sha256::new(),
        })
    }

    /// Reopens a file to continue after `synced.len` bytes, dropping whatever a killed run wrote
    /// later; refuses (touching nothing) unless those bytes still hash to `synced.sha256`.
    pub fn resume(path: &Path, synced: &Synced) -> anyhow::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let actual = file.metadata()?.len();
        if actual < synced.len {
            bail!(
                "{}: {actual} bytes, shorter than the {} its checkpoint recorded; it was changed since, so it is left as it is",
                path.display(),
                synced.len
            );
        }
        let mut hasher = Sha256::new();
        std::io::copy(&mut (&mut file).take(synced.len), &mut hasher)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if super::data::hex(&hasher.clone().finalize()) != synced.sha256 {
            bail!(
                "{}: its first {} bytes are not the records its checkpoint continues (the file was changed); it is left as it is",
                path.display(),
                synced.len
            );
        }
        file.set_len(synced.len)
            .with_context(|| format!("cannot truncate {}", path.display()))?;
        file.sync_all()?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))?;
        Ok(RecordWriter {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
            len: synced.len,
            hasher,
        })
    }

    pub fn write(&mut self, record: &Record) -> anyhow::Result<()> {
        let line = crate::train::export::record_line(record)?;
        if halt::reached(Point::RecordWrite) {
            // Half a line on the disk, as a kill in the middle of a write leaves it.
            let _ = self.file.write_all(&line[..line.len() / 2]);
            let _ = self.file.flush();
            halt::halt();
        }
        self.file
            .write_all(&line)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.len += line.len() as u64;
        self.hasher.update(&line);
        Ok(())
    }

    /// Flushes to the disk; returns the file's length and its SHA-256.
    pub fn sync(&mut self) -> anyhow::Result<Synced> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(Synced {
            len: self.len,
            sha256: super::data::hex(&self.hasher.clone().finalize()),
        })
    }
}

/// The longest line a result file may hold: a `run` header with a large experiment is a few
/// KB; anything longer is not a result record, and reading it whole could exhaust memory.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// Reads a JSONL result file; errors name the file and line.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_records(&path.display().to_string(), BufReader::new(file))
}

/// Parses result records; `name` names the source in errors. The run header's experiment is
/// validated like any other (its name becomes file names when plotting).
pub fn parse_records(name: &str, mut reader: impl BufRead) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {name}"))?;
        if read == 0 {
            break;
        }
        if line.len() as u64 > MAX_LINE_BYTES {
            bail!("{name} line {number}: longer than {MAX_LINE_BYTES} bytes; not a result record");
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_slice(&line) {
            Ok(record) => record,
            // A run killed mid-write leaves half a line at the end; the rest stands.
            Err(_) if !line.ends_with(b"\n") && !records.is_empty() => {
                eprintln!(
                    "note: {name} line {number}: ignoring an incomplete last line (the run was interrupted while writing it)"
                );
                break;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("{name} line {number}: not a result record")));
            }
        };
        if let Record::Run(info) = &record {
            info.experiment
                .validate()
                .map_err(|e| anyhow::anyhow!("{name} line {number}: experiment: {e}"))?;
        }
        records.push(record);
    }
    if !matches!(records.first(), Some(Record::Run(_))) {
        bail!("{name}: does not start with a run header (is it an adaexp result file?)");
    }
    Ok(records)
}

/// The checkpoint's index, stored as `state.json` inside its tar file.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointIndex {
    pub run: RunInfo,
    /// Epochs completed.
    pub epoch: u64,
    /// Batches done in the current epoch: 0 for a checkpoint at an epoch boundary, more for
    /// one a preempted run wrote mid-epoch.
    #[serde(default)]
    pub batch: u64,
    /// Words drawn from the current epoch's augmentation stream (mid-epoch only).
    #[serde(default)]
    pub augment_position: u128,
    /// Length of the JSONL file when the checkpoint was taken, and the SHA-256 of those bytes.
    pub records_len: u64,
    pub records_sha256: String,
    pub arms: Vec<ArmIndex>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ArmIndex {
    pub name: String,
    pub status: ArmStatus,
    pub step: u64,
    #[serde(default)]
    pub totals: EpochTotals,
    /// SHA-256 (hex) of the arm's model and optimizer blobs, checked before they are used.
    pub model_sha256: String,
    pub optimizer_sha256: String,
}

/// The checkpoint's index; its own SHA-256 sits beside it, so that no byte of a checkpoint
/// can change unnoticed.
const INDEX: &str = "state.json";
const INDEX_SHA256: &str = "state.json.sha256";
/// Checkpoint members are read whole; none may claim more than this (VGG-16's model and
/// optimizer state are ~60 MB and ~120 MB).
const MAX_BLOB_BYTES: u64 = 4 << 30;

fn sha256_hex(bytes: &[u8]) -> String {
    super::data::hex(&Sha256::digest(bytes))
}

fn append(builder: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes)
}

/// Writes the checkpoint as a tar file (index, its checksum, burnpack blobs), atomically.
pub fn save_checkpoint(
    path: &Path,
    run: &RunInfo,
    records: &Synced,
    checkpoint: &Checkpoint,
) -> anyhow::Result<()> {
    let temp = super::temp_beside(path)?;
    let mut writer = BufWriter::new(temp);
    write_checkpoint(&mut writer, run, records, checkpoint)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let temp = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The checkpoint as a tar stream.
pub fn write_checkpoint(
    writer: &mut impl Write,
    run: &RunInfo,
    records: &Synced,
    checkpoint: &Checkpoint,
) -> std::io::Result<()> {
    let index = CheckpointIndex {
        run: run.clone(),
        epoch: checkpoint.epoch,
        batch: checkpoint.batch,
        augment_position: checkpoint.augment_position,
        records_len: records.len,
        records_sha256: records.sha256.clone(),
        arms: checkpoint
            .arms
            .iter()
            .map(|a| ArmIndex {
                name: a.name.clone(),
                status: a.status,
                step: a.step,
                totals: a.totals.clone(),
                model_sha256: sha256_hex(&a.model),
                optimizer_sha256: sha256_hex(&a.optimizer),
            })
            .collect(),
    };
    let index = serde_json::to_vec_pretty(&index)?;
    let mut builder = tar::Builder::new(writer);
    append(&mut builder, INDEX, &index)?;
    append(&mut builder, INDEX_SHA256, sha256_hex(&index).as_bytes())?;
    for (i, arm) in checkpoint.arms.iter().enumerate() {
        append(&mut builder, &format!("arm-{i}.model.bpk"), &arm.model)?;
        if halt::reached(Point::CheckpointWrite) {
            builder.get_mut().flush()?;
            halt::halt();
        }
        append(
            &mut builder,
            &format!("arm-{i}.optimizer.bpk"),
            &arm.optimizer,
        )?;
    }
    builder.finish()
}

pub fn load_checkpoint(path: &Path) -> anyhow::Result<(CheckpointIndex, Checkpoint)> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    read_checkpoint(&path.display().to_string(), BufReader::new(file))
}

/// Reads a checkpoint and checks every checksum in it before anything is used; `name` names
/// it in errors, which also name the arm and the blob.
pub fn read_checkpoint(
    name: &str,
    reader: impl Read,
) -> anyhow::Result<(CheckpointIndex, Checkpoint)> {
    let bad = |what: String| anyhow::anyhow!("{name}: {what}");
    let mut archive = tar::Archive::new(reader);
    let mut members = std::collections::HashMap::new();
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("not a checkpoint: {e}")))?
    {
        let entry = entry.map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        let member = entry
            .path()
            .map_err(|e| bad(format!("not a checkpoint: {e}")))?
            .to_string_lossy()
            .into_owned();
        if entry.size() > MAX_BLOB_BYTES {
            bail!(
                "{name}: {member} claims {} bytes; not a checkpoint",
                entry.size()
            );
        }
        let mut bytes = Vec::new();
        entry
            .take(MAX_BLOB_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{member} is truncated: {e}")))?;
        members.insert(member, bytes);
    }
    let mut take = |member: &str| {
        members
            .remove(member)
            .ok_or_else(|| bad(format!("{member} is missing (not a complete checkpoint)")))
    };
    let index_bytes = take(INDEX)?;
    let expected = take(INDEX_SHA256)?;
    if sha256_hex(&index_bytes).as_bytes() != expected.trim_ascii() {
        bail!("{name}: {INDEX} does not match its checksum (the checkpoint is damaged)");
    }
    let index: CheckpointIndex =
        serde_json::from_slice(&index_bytes).map_err(|e| bad(format!("{INDEX}: {e}")))?;
    let arms = index
        .arms
        .iter()
        .enumerate()
        .map(|(i, arm)| {
            let mut blob = |kind: &str, sha256: &str| {
                let member = format!("arm-{i}.{kind}.bpk");
                let bytes = take(&member)?;
                if sha256_hex(&bytes) != sha256 {
                    bail!(
                        "{name}: arm '{}': {member} ({kind}) does not match its checksum (the checkpoint is damaged)",
                        arm.name
                    );
                }
                Ok(bytes)
            };
            Ok(ArmCheckpoint {
                name: arm.name.clone(),
                status: arm.status,
                step: arm.step,
                totals: arm.totals.clone(),
                model: blob("model", &arm.model_sha256)?,
                optimizer: blob("optimizer", &arm.optimizer_sha256)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checkpoint = Checkpoint {
        epoch: index.epoch,
        batch: index.batch,
        augment_position: index.augment_position,
        arms,
    };
    Ok((index, checkpoint))
}

/// The `*.jsonl` files in a directory, sorted.
pub fn jsonl_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    found.sort();
    Ok(found)
}

/// The run header of a result file: `None` when the file has no complete first line yet (a run
/// killed while writing it); an error when the first line is not a run header.
pub fn read_header(path: &Path) -> anyhow::Result<Option<RunInfo>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(MAX_LINE_BYTES + 1)
        .read_until(b'\n', &mut line)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !line.ends_with(b"\n") && (line.len() as u64) <= MAX_LINE_BYTES {
        return Ok(None);
    }
    match serde_json::from_slice(&line) {
        Ok(Record::Run(info)) => Ok(Some(info)),
        _ => bail!(
            "{}: does not start with a run header (is it an adaexp result file?)",
            path.display()
        ),
    }
}

/// The JSONL files under each path (a file itself, or the `*.jsonl` in a directory), sorted.
pub fn result_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = jsonl_in(path)?;
            if found.is_empty() {
                bail!(
                    "{}: no .jsonl result files in this directory",
                    path.display()
                );
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cli::experiment::{PRESETS, parse};
    use crate::fuzz::{config, mutated};
    use crate::train::{ArmStatus, StepRecord};

    fn run_info() -> RunInfo {
        RunInfo {
            experiment: parse("quick", PRESETS[0].1).unwrap(),
            seed: 0,
            backend: "cpu".into(),
            steps_per_epoch: 4,
            train_images: 100,
            test_images: 30,
            val_images: 0,
            processor: None,
            arms: None,
        }
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            epoch: 2,
            batch: 3,
            // Past u64: the position is a 68-bit count.
            augment_position: (1u128 << 66) + 12345,
            arms: (0..2)
                .map(|i| ArmCheckpoint {
                    name: format!("arm {i}"),
                    status: ArmStatus::Running,
                    step: 8,
                    totals: EpochTotals {
                        loss_sum: 0.1 + f64::from(i),
                        correct: 17.0,
                        seen: 24,
                        busy_seconds: 0.25,
                    },
                    model: vec![i as u8 + 1; 300],
                    optimizer: vec![i as u8 + 7; 200],
                })
                .collect(),
        }
    }

    fn checkpoint_bytes() -> Vec<u8> {
        let synced = Synced {
            len: 123,
            sha256: "ab".repeat(32),
        };
        let mut bytes = Vec::new();
        write_checkpoint(&mut bytes, &run_info(), &synced, &checkpoint()).unwrap();
        bytes
    }

    /// Where a member's data starts in the tar bytes.
    fn offset_of(bytes: &[u8], member: &str) -> usize {
        let mut archive = tar::Archive::new(bytes);
        let entry = archive
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().to_str() == Some(member))
            .unwrap();
        entry.raw_file_position() as usize
    }

    #[test]
    fn a_checkpoint_reads_back_whole() {
        let (index, read) = read_checkpoint("c", &checkpoint_bytes()[..]).unwrap();
        assert_eq!((index.epoch, index.records_len), (2, 123));
        let expected = checkpoint();
        assert_eq!(
            (read.batch, read.augment_position),
            (3, (1u128 << 66) + 12345)
        );
        for (a, b) in read.arms.iter().zip(&expected.arms) {
            assert_eq!(a.totals, b.totals);
        }
        for (a, b) in read.arms.iter().zip(&expected.arms) {
            assert_eq!(
                (&a.name, &a.model, &a.optimizer),
                (&b.name, &b.model, &b.optimizer)
            );
        }
    }

    #[test]
    fn a_damaged_blob_is_named_with_its_arm() {
        for (member, arm, kind) in [
            ("arm-0.model.bpk", "arm 0", "model"),
            ("arm-1.optimizer.bpk", "arm 1", "optimizer"),
        ] {
            let mut bytes = checkpoint_bytes();
            let at = offset_of(&bytes, member) + 17;
            bytes[at] ^= 0x40;
            let err = read_checkpoint("c", &bytes[..]).unwrap_err().to_string();
            assert!(
                err.contains(&format!("arm '{arm}'")) && err.contains(member) && err.contains(kind),
                "{err}"
            );
        }
        // The index itself: a changed step count would resume at the wrong place.
        let mut bytes = checkpoint_bytes();
        let at = offset_of(&bytes, INDEX);
        let text = String::from_utf8_lossy(&bytes[at..]).into_owned();
        let digit = at + text.find("\"epoch\": 2").unwrap() + 9;
        bytes[digit] = b'3';
        let err = read_checkpoint("c", &bytes[..]).unwrap_err().to_string();
        assert!(
            err.contains("state.json does not match its checksum"),
            "{err}"
        );
    }

    fn records_bytes() -> Vec<u8> {
        let mut out = serde_json::to_vec(&Record::Run(run_info())).unwrap();
        out.push(b'\n');
        for step in 1..=3 {
            out.extend(
                serde_json::to_vec(&Record::Step(StepRecord {
                    arm: "SGDM".into(),
                    step,
                    epoch: 1,
                    loss: 2.3,
                    p: None,
                    lr: 0.05,
                    update_rms: Some(0.01),
                }))
                .unwrap(),
            );
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn the_pages_export_reads_back_as_a_result_file() {
        let records = parse_records("r", &records_bytes()[..]).unwrap();
        let text = crate::train::export::result_file(&run_info(), &records[1..]).unwrap();
        assert_eq!(text.as_bytes(), &records_bytes()[..]);
        assert_eq!(parse_records("export", text.as_bytes()).unwrap(), records);
    }

    #[test]
    fn an_interrupted_last_line_is_dropped_and_others_are_errors() {
        let mut bytes = records_bytes();
        let full = parse_records("r", &bytes[..]).unwrap().len();
        bytes.truncate(bytes.len() - 10);
        assert_eq!(parse_records("r", &bytes[..]).unwrap().len(), full - 1);
        // The same damage in the middle is an error naming the line.
        let mut bytes = records_bytes();
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 5;
        bytes[second] = b'#';
        let err = format!("{:#}", parse_records("r", &bytes[..]).unwrap_err());
        assert!(err.starts_with("r line 2"), "{err}");
    }

    #[test]
    fn a_result_file_with_a_hostile_name_is_refused() {
        let text = String::from_utf8(records_bytes()).unwrap().replacen(
            "\"name\":\"quick\"",
            "\"name\":\"../../x\"",
            1,
        );
        let err = format!("{:#}", parse_records("r", text.as_bytes()).unwrap_err());
        assert!(err.contains("r line 1: experiment: name"), "{err}");
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn checkpoints_never_panic(bytes in mutated(checkpoint_bytes())) {
            let _ = read_checkpoint("c", &bytes[..]);
        }

        #[test]
        fn result_files_never_panic(bytes in mutated(records_bytes())) {
            let _ = parse_records("r", &bytes[..]);
        }
    }
}
