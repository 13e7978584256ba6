//! `--engine local`: the shards one after another on this machine, then the merge (`adaexp plot`,
//! as the Slurm engine's merge job runs it).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::manifest::{EXIT_CODE, Manifest};
use super::plan::{Task, describe};
use super::status::progress;
use crate::cli::interrupt::{self, EXIT_INTERRUPTED, Interrupted};
use crate::cli::write_atomic;

/// Runs the shards here, one after another, skipping finished ones; Ctrl-C stops the shard in
/// hand with a checkpoint (the child gets the signal too) and the sweep with it.
pub(super) fn run_local(dir: &Path, manifest: &Manifest, task: &Task) -> anyhow::Result<()> {
    interrupt::install()?;
    let mut failed = Vec::new();
    for (i, shard) in manifest.shards.iter().enumerate() {
        let shard_dir = dir.join(&shard.dir);
        if progress(&shard_dir, shard, manifest.epochs, 0)?.finished {
            println!(
                "shard {i} (seed {}, {}): finished already",
                shard.seed,
                describe(shard)
            );
            continue;
        }
        println!(
            "== shard {i} of {}: seed {}, {}",
            manifest.shards.len(),
            shard.seed,
            describe(shard)
        );
        std::fs::create_dir_all(&shard_dir)
            .with_context(|| format!("cannot create {}", shard_dir.display()))?;
        let _ = std::fs::remove_file(shard_dir.join(EXIT_CODE));
        let status = Command::new(&task.exe)
            .args(task.args(dir, shard))
            .status()
            .with_context(|| format!("cannot start {}", task.exe.display()))?;
        let code = status.code().unwrap_or(-1);
        write_atomic(&shard_dir.join(EXIT_CODE), format!("{code}\n").as_bytes())?;
        if code == i32::from(EXIT_INTERRUPTED) || interrupt::requested() {
            return Err(Interrupted(format!(
                "sweep stopped at shard {i} (checkpoint written); run the same command again to continue"
            ))
            .into());
        }
        if !status.success() {
            failed.push(i);
        }
    }
    // The merge, as the Slurm engine's merge job runs it.
    let merged = Command::new(&task.exe)
        .arg("plot")
        .arg(dir)
        .status()
        .with_context(|| format!("cannot start {}", task.exe.display()))?;
    if !merged.success() {
        bail!("merging the shards (adaexp plot {}) failed", dir.display());
    }
    if !failed.is_empty() {
        bail!(
            "shards {failed:?} failed (see above); the summary lists them; run the same command again to retry them"
        );
    }
    Ok(())
}
