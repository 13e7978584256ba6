//! Result files: append-only JSONL records (one file per seed), checkpoints beside them, and
//! reading them back for plots.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::train::{ArmCheckpoint, ArmStatus, Checkpoint, Record, RunInfo};

/// Appends records to a JSONL file. Lines reach the disk at `sync`, which the runner calls at
/// each epoch end, before writing the checkpoint that refers to them.
pub struct RecordWriter {
    path: PathBuf,
    file: BufWriter<File>,
    len: u64,
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
        })
    }

    /// Reopens a file to continue after `len` bytes, dropping whatever a killed run wrote later.
    pub fn resume(path: &Path, len: u64) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let actual = file.metadata()?.len();
        if actual < len {
            bail!(
                "{}: {actual} bytes, shorter than the {len} its checkpoint recorded",
                path.display()
            );
        }
        file.set_len(len)
            .with_context(|| format!("cannot truncate {}", path.display()))?;
        let mut file = BufWriter::new(file);
        file.get_mut().sync_all()?;
        use std::io::Seek;
        file.get_mut().seek(std::io::SeekFrom::End(0))?;
        Ok(RecordWriter {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    pub fn write(&mut self, record: &Record) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.len += line.len() as u64;
        Ok(())
    }

    /// Flushes to the disk; returns the file's length.
    pub fn sync(&mut self) -> anyhow::Result<u64> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(self.len)
    }
}

/// Reads a JSONL result file; errors name the file and line.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<Record>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a result record", path.display(), i + 1))?;
        records.push(record);
    }
    if !matches!(records.first(), Some(Record::Run(_))) {
        bail!(
            "{}: does not start with a run header (is it an adaexp result file?)",
            path.display()
        );
    }
    Ok(records)
}

/// The checkpoint's index, stored as `state.json` inside its tar file.
#[derive(Serialize, Deserialize)]
pub struct CheckpointIndex {
    pub run: RunInfo,
    /// Epochs completed.
    pub epoch: u64,
    /// Length of the JSONL file when the checkpoint was taken.
    pub records_len: u64,
    pub arms: Vec<ArmIndex>,
}

#[derive(Serialize, Deserialize)]
pub struct ArmIndex {
    pub name: String,
    pub status: ArmStatus,
    pub step: u64,
}

fn append(builder: &mut tar::Builder<impl Write>, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes)
}

/// Writes the checkpoint as a tar file (index + burnpack blobs), atomically.
pub fn save_checkpoint(
    path: &Path,
    run: &RunInfo,
    records_len: u64,
    checkpoint: &Checkpoint,
) -> anyhow::Result<()> {
    let temp = super::temp_beside(path)?;
    let index = CheckpointIndex {
        run: run.clone(),
        epoch: checkpoint.epoch,
        records_len,
        arms: checkpoint
            .arms
            .iter()
            .map(|a| ArmIndex {
                name: a.name.clone(),
                status: a.status,
                step: a.step,
            })
            .collect(),
    };
    let mut builder = tar::Builder::new(BufWriter::new(temp));
    let written: std::io::Result<()> = (|| {
        append(
            &mut builder,
            "state.json",
            &serde_json::to_vec_pretty(&index)?,
        )?;
        for (i, arm) in checkpoint.arms.iter().enumerate() {
            append(&mut builder, &format!("arm-{i}.model.bpk"), &arm.model)?;
            append(
                &mut builder,
                &format!("arm-{i}.optimizer.bpk"),
                &arm.optimizer,
            )?;
        }
        Ok(())
    })();
    written.with_context(|| format!("cannot write {}", path.display()))?;
    let temp = builder
        .into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn load_checkpoint(path: &Path) -> anyhow::Result<(CheckpointIndex, Checkpoint)> {
    let bad = |what: String| anyhow::anyhow!("{}: {what}", path.display());
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut index: Option<CheckpointIndex> = None;
    let mut blobs = std::collections::HashMap::new();
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("not a checkpoint: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("not a checkpoint: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("truncated: {e}")))?;
        if name == "state.json" {
            index =
                Some(serde_json::from_slice(&bytes).map_err(|e| bad(format!("state.json: {e}")))?);
        } else {
            blobs.insert(name, bytes);
        }
    }
    let index = index.ok_or_else(|| bad("no state.json inside".into()))?;
    let arms = index
        .arms
        .iter()
        .enumerate()
        .map(|(i, arm)| {
            let mut take = |kind: &str| {
                blobs
                    .remove(&format!("arm-{i}.{kind}.bpk"))
                    .ok_or_else(|| bad(format!("arm-{i}.{kind}.bpk is missing")))
            };
            Ok(ArmCheckpoint {
                name: arm.name.clone(),
                status: arm.status,
                step: arm.step,
                model: take("model")?,
                optimizer: take("optimizer")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checkpoint = Checkpoint {
        epoch: index.epoch,
        arms,
    };
    Ok((index, checkpoint))
}

/// The JSONL files under each path (a file itself, or the `*.jsonl` in a directory), sorted.
pub fn result_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect();
            if found.is_empty() {
                bail!(
                    "{}: no .jsonl result files in this directory",
                    path.display()
                );
            }
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}
