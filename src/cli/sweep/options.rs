//! The flags of `adaexp sweep`, each checked before it reaches a job script.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::cli::backend::Backend;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// One Slurm job array (sbatch), one task per shard, and a merge job after it.
    Slurm,
    /// The same shards one after another on this machine.
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum ShardBy {
    /// One shard per seed and arm (an arm matched to another's update size goes with it).
    Arm,
    /// One shard per seed, all arms.
    Seed,
}

#[derive(Args, Debug)]
pub(super) struct SubmitArgs {
    /// Experiment file (TOML); see experiments/.
    #[arg(value_name = "EXPERIMENT.toml", required_unless_present = "preset")]
    pub(super) experiment: Option<PathBuf>,
    /// A built-in experiment (see `adaexp run --help`).
    #[arg(long, value_name = "NAME", conflicts_with = "experiment")]
    pub(super) preset: Option<String>,
    /// The sweep's folder: its experiment, job scripts, logs and every shard's results.
    #[arg(long, value_name = "DIR", required = true)]
    pub(super) out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Engine::Slurm)]
    pub(super) engine: Engine,
    #[arg(long, value_enum, default_value_t = ShardBy::Arm)]
    pub(super) shard: ShardBy,
    /// Seeds [default: the experiment's].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(super) seeds: Option<Vec<u64>>,
    /// Epochs [default: the experiment's].
    #[arg(long, value_name = "N")]
    pub(super) epochs: Option<u64>,
    /// Dataset directory or archive, as seen from the nodes [default: as `run`; CIFAR-10 is
    /// fetched here before submitting, so that no task downloads it].
    #[arg(long, value_name = "PATH")]
    pub(super) data: Option<PathBuf>,
    /// The backend each task trains on.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub(super) backend: Backend,
    /// Slurm partition (sbatch --partition).
    #[arg(long, value_name = "NAME", value_parser = one_line)]
    pub(super) partition: Option<String>,
    /// Time limit per task (sbatch --time), e.g. 12:00:00. A task stopped by it checkpoints
    /// and requeues itself.
    #[arg(long, value_name = "TIME", value_parser = slurm_time)]
    pub(super) time: Option<String>,
    /// GPUs per task (sbatch --gpus-per-task), e.g. 1 or a100:1.
    #[arg(long, value_name = "N", value_parser = one_line)]
    pub(super) gpus_per_task: Option<String>,
    /// CPU cores per task (sbatch --cpus-per-task).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) cpus_per_task: Option<u32>,
    /// Memory per node (sbatch --mem), e.g. 16G.
    #[arg(long, value_name = "SIZE", value_parser = one_line)]
    pub(super) mem: Option<String>,
    /// At most this many tasks at once (the array's %N).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) max_parallel: Option<u32>,
    /// How long before the time limit Slurm signals a task to checkpoint (sbatch --signal).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(super) signal_before: u32,
    /// Any other sbatch option, repeated as needed, e.g. --sbatch-arg=--account=proj42.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true, value_parser = sbatch_option)]
    pub(super) sbatch_arg: Vec<String>,
    /// Print the job script and submit nothing (nothing is written either); the size of the
    /// sweep goes to stderr.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Training images per second of one arm on the nodes, as `adaexp bench train` reports
    /// it there (the experiment's model, batch size and backend): the dry run then estimates
    /// the device-hours.
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub(super) images_per_second: Option<f64>,
}

/// A value that goes into the job script as part of an `#SBATCH` line: one line, nothing a
/// shell or Slurm would read as the start of another (a newline would add lines of its own).
pub(super) fn one_line(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "must be one line without control characters (it is written into the job script), found {c:?}"
        ));
    }
    Ok(value.to_owned())
}

/// An extra sbatch option: one line that starts with `-`, e.g. `--account=proj42`.
pub(super) fn sbatch_option(value: &str) -> Result<String, String> {
    let value = one_line(value)?;
    if !value.starts_with('-') {
        return Err(format!(
            "must be an sbatch option starting with '-', e.g. --account=proj42, got {value:?}"
        ));
    }
    Ok(value)
}

/// A Slurm time limit: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
/// days-hours:minutes or days-hours:minutes:seconds (sbatch --time), or `infinite`/`unlimited`.
pub(super) fn slurm_time(value: &str) -> Result<String, String> {
    let expected = || {
        format!(
            "must be a Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 12:00:00 or 1-00:00:00), got {value:?}"
        )
    };
    if matches!(value, "infinite" | "unlimited" | "UNLIMITED" | "INFINITE") {
        return Ok(value.to_owned());
    }
    let number = |part: &str| {
        !part.is_empty() && part.len() <= 6 && part.bytes().all(|b| b.is_ascii_digit())
    };
    let (days, clock) = match value.split_once('-') {
        Some((days, clock)) => (Some(days), clock),
        None => (None, value),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let fits = match days {
        Some(days) => number(days) && (1..=3).contains(&parts.len()),
        None => (1..=3).contains(&parts.len()),
    };
    if !fits || !parts.iter().all(|p| number(p)) {
        return Err(expected());
    }
    Ok(value.to_owned())
}

pub(super) fn positive_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "must be a positive number of images per second, got {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_options_are_checked_before_they_reach_the_job_script() {
        for time in [
            "30",
            "30:00",
            "12:00:00",
            "2-00",
            "1-12:00",
            "1-00:00:00",
            "unlimited",
        ] {
            assert_eq!(slurm_time(time).as_deref(), Ok(time));
        }
        for time in [
            "soon",
            "",
            "1:2:3:4",
            "-12",
            "1-",
            "12:",
            "1-2:3:4:5",
            "12:00 ",
            "1.5",
        ] {
            let err = slurm_time(time).unwrap_err();
            assert!(
                err.contains("Slurm time limit") && err.contains(&format!("{time:?}")),
                "{err}"
            );
        }
        let err = sbatch_option("--account=x\n#SBATCH --wrap=rm").unwrap_err();
        assert!(err.contains("one line") && err.contains("'\\n'"), "{err}");
        assert!(
            sbatch_option("account=x")
                .unwrap_err()
                .contains("starting with '-'")
        );
        assert_eq!(sbatch_option("--qos=low").as_deref(), Ok("--qos=low"));
        assert!(one_line("gpu\r").is_err() && one_line("").is_err());
        assert_eq!(one_line("a100:1").as_deref(), Ok("a100:1"));
    }
}
