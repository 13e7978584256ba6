//! Appending records to a result file, and knowing how much of it is on the disk.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::sha256_hex;
use crate::cli::data::hex;
use crate::cli::halt::{self, Point};
use crate::train::Record;

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
        if hex(&hasher.clone().finalize()) != synced.sha256 {
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
            sha256: hex(&self.hasher.clone().finalize()),
        })
    }
}
