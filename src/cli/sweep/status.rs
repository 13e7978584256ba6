//! `adaexp sweep status`: where each shard stands (its result files, and Slurm's word on its
//! task), with the time left estimated from the epochs finished so far; and which shards'
//! results `adaexp plot` merges.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::manifest::{EXIT_CODE, EXPERIMENT, Manifest, Shard, read_manifest};
use super::options::Engine;
use super::plan::describe;
use crate::cli::experiment;
use crate::cli::interrupt::EXIT_INTERRUPTED;
use crate::cli::layout::file_stem;
use crate::cli::results::{self, result_files};
use crate::train::summary::Run;

/// What a shard's result files say.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Epochs every arm of the shard completed (or stopped before).
    pub(super) epochs: u64,
    pub(super) steps: u64,
    pub(super) finished: bool,
    pub(super) has_results: bool,
    /// What the finished epochs cost: for the time-left estimate.
    pub(super) cost: Cost,
}

/// Finished epochs and what they took, summed over shards for `sweep status`'s estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Cost {
    /// Epochs finished, summed over the arms that trained them.
    arm_epochs: u64,
    /// Arm-epochs still to train (an arm that stopped early has none left).
    arm_epochs_left: u64,
    /// Wall time of the finished epochs (each counted once: an epoch trains all its arms).
    seconds: f64,
    /// Training images/s per arm, summed over the finished arm-epochs (for the mean).
    images_per_second_sum: f64,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        self.arm_epochs += other.arm_epochs;
        self.arm_epochs_left += other.arm_epochs_left;
        self.seconds += other.seconds;
        self.images_per_second_sum += other.images_per_second_sum;
    }
}

impl Cost {
    /// What is left at the rate measured so far, in words; `None` before any epoch finished.
    fn estimate(&self, engine: Engine) -> Option<String> {
        if self.arm_epochs == 0 || self.seconds <= 0.0 {
            return None;
        }
        let per_arm_epoch = self.seconds / self.arm_epochs as f64;
        let hours_left = per_arm_epoch * self.arm_epochs_left as f64 / 3600.0;
        let images_per_second = self.images_per_second_sum / self.arm_epochs as f64;
        let left = match engine {
            Engine::Local => format!("about {hours_left:.1} hours left, one shard at a time"),
            Engine::Slurm => format!(
                "about {hours_left:.1} device-hours left (divide by the tasks that run at once)"
            ),
        };
        Some(format!(
            "measured: {per_arm_epoch:.0} s per arm-epoch over {} finished arm-epochs, training at {images_per_second:.0} images/s per arm; {} arm-epochs to go: {left}. (`--images-per-second {images_per_second:.0}` sizes a larger sweep of this model and batch on this kind of node.)",
            self.arm_epochs, self.arm_epochs_left
        ))
    }
}

/// `arms`: how many arms the shard trains (for the arm-epochs left before it starts).
pub(super) fn progress(
    shard_dir: &Path,
    shard: &Shard,
    epochs: u64,
    arms: usize,
) -> anyhow::Result<Progress> {
    let not_started = Progress {
        cost: Cost {
            arm_epochs_left: arms as u64 * epochs,
            ..Cost::default()
        },
        ..Progress::default()
    };
    let file = shard_dir.join(format!(
        "{}.jsonl",
        file_stem(shard.seed, shard.arms.as_deref())
    ));
    if !file.is_file() {
        return Ok(not_started);
    }
    let records = results::read_records(&file)?;
    let Some(run) = Run::split(records).into_iter().next() else {
        return Ok(not_started);
    };
    let mut cost = Cost::default();
    let mut epoch_seconds = std::collections::BTreeMap::new();
    // Per trained arm: epochs done, and whether it stopped early.
    let mut per_arm: Vec<(u64, bool)> = Vec::new();
    for arm in run.info.trained_arms() {
        let done = run.epochs(arm);
        let stopped = run.diverged(arm) || run.stopped(arm);
        per_arm.push((done.len() as u64, stopped));
        cost.arm_epochs += done.len() as u64;
        if !stopped {
            cost.arm_epochs_left += epochs.saturating_sub(done.len() as u64);
        }
        for epoch in done {
            cost.images_per_second_sum += epoch.images_per_second;
            epoch_seconds.insert(epoch.epoch, epoch.wall_seconds);
        }
    }
    cost.seconds = epoch_seconds.values().sum();
    let steps = crate::train::steps(&run.records)
        .map(|s| s.step)
        .max()
        .unwrap_or(0);
    Ok(Progress {
        epochs: per_arm.iter().map(|(e, _)| *e).min().unwrap_or(0),
        steps,
        finished: !per_arm.is_empty()
            && per_arm.iter().all(|(e, stopped)| *e >= epochs || *stopped),
        has_results: true,
        cost,
    })
}

/// Slurm's view of the array's tasks: task index → state (`squeue`, then `sacct` for tasks
/// that left the queue, where accounting is on). Empty when neither answers.
pub(super) fn slurm_states(job: &str) -> std::collections::BTreeMap<usize, String> {
    let mut states = std::collections::BTreeMap::new();
    let run = |program: &str, args: &[&str]| -> Option<String> {
        let output = Command::new(program).args(args).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    if let Some(text) = run(
        "sacct",
        &["-n", "-X", "-P", "-j", job, "--format=JobID,State"],
    ) {
        for line in text.lines() {
            if let Some((id, state)) = line.split_once('|')
                && let Some(index) = id.split_once('_').and_then(|(_, i)| i.parse().ok())
            {
                states.insert(
                    index,
                    state.split_whitespace().next().unwrap_or("").to_owned(),
                );
            }
        }
    }
    // The queue is the fresher word on tasks still in it.
    if let Some(text) = run("squeue", &["-h", "-r", "-j", job, "-o", "%K|%T|%r"]) {
        for line in text.lines() {
            let mut fields = line.split('|');
            if let (Some(index), Some(state)) = (fields.next(), fields.next())
                && let Ok(index) = index.parse()
            {
                let reason = fields.next().unwrap_or("").trim();
                let state = if state == "PENDING" && !reason.is_empty() && reason != "None" {
                    format!("PENDING ({reason})")
                } else {
                    state.to_owned()
                };
                states.insert(index, state);
            }
        }
    }
    states
}

/// One row per shard: its state in words, for `sweep status` and the merged summary.
pub struct ShardState {
    pub index: usize,
    pub shard: Shard,
    pub state: String,
    pub epochs: String,
    pub finished: bool,
    cost: Cost,
}

pub fn shard_states(dir: &Path) -> anyhow::Result<(Manifest, Vec<ShardState>)> {
    let manifest = read_manifest(dir)?;
    let slurm = match (manifest.engine, manifest.jobs.last()) {
        (Engine::Slurm, Some(job)) => slurm_states(&job.array_job),
        _ => Default::default(),
    };
    let all_arms = experiment::load(Some(&dir.join(EXPERIMENT)), None)?
        .arms
        .len();
    let mut rows = Vec::new();
    for (index, shard) in manifest.shards.iter().enumerate() {
        let shard_dir = dir.join(&shard.dir);
        let arms = shard.arms.as_ref().map_or(all_arms, Vec::len);
        let progress = progress(&shard_dir, shard, manifest.epochs, arms)?;
        let exit = std::fs::read_to_string(shard_dir.join(EXIT_CODE))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        let queue = slurm.get(&index).map(String::as_str);
        let state = match (progress.finished, queue, exit) {
            (true, _, _) => "finished".to_owned(),
            (_, Some(q), _) if q.starts_with("RUNNING") => "running".into(),
            (_, Some(q), _) if q.starts_with("PENDING") || q.starts_with("REQUEUED") => {
                if progress.has_results {
                    format!("queued to resume ({})", q.to_lowercase())
                } else {
                    format!("queued ({})", q.to_lowercase())
                }
            }
            (_, _, Some(code)) if code == i32::from(EXIT_INTERRUPTED) => {
                "stopped with a checkpoint (submit again to continue)".into()
            }
            (_, _, Some(code)) if code != 0 => format!("failed (exit {code}; see its log)"),
            (_, Some(q), _) => format!("not finished (Slurm: {})", q.to_lowercase()),
            (_, None, _) if progress.has_results => "not finished (no task running)".into(),
            (_, None, _) => "not started".into(),
        };
        let epochs = if progress.has_results {
            format!(
                "{}/{} (step {})",
                progress.epochs, manifest.epochs, progress.steps
            )
        } else {
            format!("0/{}", manifest.epochs)
        };
        rows.push(ShardState {
            index,
            shard: shard.clone(),
            state,
            epochs,
            finished: progress.finished,
            cost: progress.cost,
        });
    }
    Ok((manifest, rows))
}

/// The shard table as Markdown.
pub fn states_markdown(rows: &[ShardState]) -> String {
    let mut out = String::from("| shard | seed | arms | state | epochs |\n|---|---|---|---|---|\n");
    for row in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            row.index,
            row.shard.seed,
            describe(&row.shard),
            row.state,
            row.epochs
        );
    }
    out
}

pub(super) fn status(dir: &Path) -> anyhow::Result<()> {
    let (manifest, rows) = shard_states(dir)?;
    let jobs = match manifest.jobs.last() {
        Some(job) => format!("job array {}", job.array_job),
        None => format!("{:?} engine", manifest.engine).to_lowercase(),
    };
    let done = rows.iter().filter(|r| r.finished).count();
    println!(
        "sweep '{}' in {} ({jobs}): {done} of {} shards finished\n",
        manifest.experiment,
        dir.display(),
        rows.len()
    );
    print!("{}", states_markdown(&rows));
    let mut cost = Cost::default();
    for row in &rows {
        cost += row.cost;
    }
    if let Some(estimate) = cost.estimate(manifest.engine) {
        println!("\n{estimate}");
    }
    Ok(())
}

/// The result files of every shard that has any, and the shard table for the summary.
pub fn merge_inputs(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<ShardState>)> {
    let (manifest, rows) = shard_states(dir)?;
    let folders: Vec<PathBuf> = manifest
        .shards
        .iter()
        .map(|s| dir.join(&s.dir))
        .filter(|d| results::jsonl_in(d).is_ok_and(|files| !files.is_empty()))
        .collect();
    let files = if folders.is_empty() {
        Vec::new()
    } else {
        result_files(&folders)?
    };
    Ok((files, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_comes_from_the_epochs_finished_so_far() {
        assert_eq!(Cost::default().estimate(Engine::Local), None);
        // Two shards: one of 2 arms with 1 of 2 epochs done (3,600 s), one not started
        // (2 arms × 2 epochs).
        let mut cost = Cost {
            arm_epochs: 2,
            arm_epochs_left: 2,
            seconds: 3600.0,
            images_per_second_sum: 2.0 * 480.0,
        };
        cost += Cost {
            arm_epochs_left: 4,
            ..Cost::default()
        };
        // 3,600 s / 2 arm-epochs = 1,800 s each; 6 left × 1,800 s = 3 hours.
        let local = cost.estimate(Engine::Local).unwrap();
        assert!(
            local.contains("1800 s per arm-epoch over 2 finished"),
            "{local}"
        );
        assert!(
            local.contains("6 arm-epochs to go: about 3.0 hours left"),
            "{local}"
        );
        assert!(local.contains("480 images/s per arm"), "{local}");
        assert!(
            cost.estimate(Engine::Slurm)
                .unwrap()
                .contains("about 3.0 device-hours left")
        );
    }
}
