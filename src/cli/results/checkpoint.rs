//! Checkpoints: a tar file beside the results, an index (`state.json`) with its checksum, and
//! each arm's model and optimizer state as burnpack blobs, every byte checked before use.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Synced, sha256_hex};
use crate::cli::halt::{self, Point};
use crate::train::{ArmCheckpoint, ArmState, Checkpoint, RunInfo};

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
    /// Where the arm stands, as the session's checkpoint has it.
    #[serde(flatten)]
    pub state: ArmState,
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
    let temp = crate::cli::temp_beside(path)?;
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
                state: a.state.clone(),
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
                        arm.state.name
                    );
                }
                Ok(bytes)
            };
            Ok(ArmCheckpoint {
                state: arm.state.clone(),
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cli::experiment::{PRESETS, parse};
    use crate::fuzz::{config, mutated};
    use crate::train::{ArmStatus, EpochTotals};

    fn run_info() -> RunInfo {
        RunInfo::example(parse("quick", PRESETS[0].1).unwrap(), 0, 4, 100, 30)
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            epoch: 2,
            batch: 3,
            // Past u64: the position is a 68-bit count.
            augment_position: (1u128 << 66) + 12345,
            arms: (0..2)
                .map(|i| ArmCheckpoint {
                    state: ArmState {
                        name: format!("arm {i}"),
                        status: ArmStatus::Running,
                        step: 8,
                        totals: EpochTotals {
                            loss_sum: 0.1 + f64::from(i),
                            correct: 17.0,
                            seen: 24,
                            busy_seconds: 0.25,
                        },
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
            assert_eq!(a.state, b.state);
        }
        for (a, b) in read.arms.iter().zip(&expected.arms) {
            assert_eq!(
                (&a.state.name, &a.model, &a.optimizer),
                (&b.state.name, &b.model, &b.optimizer)
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

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn checkpoints_never_panic(bytes in mutated(checkpoint_bytes())) {
            let _ = read_checkpoint("c", &bytes[..]);
        }
    }
}
