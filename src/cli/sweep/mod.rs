//! `adaexp sweep`: an experiment's seeds × arms as independent shards, each an `adaexp run
//! --seeds S --arms A --resume` into its own folder: submitted as one Slurm job array (with a
//! merge job after it), or run one after another here. `adaexp sweep status DIR` says where each
//! shard stands; `adaexp plot DIR` merges them.
//!
//! A sweep folder holds `experiment.toml` (what every shard runs), `sweep.json` (the shards and
//! the jobs submitted), `sweep.sbatch` and `merge.sbatch`, `logs/` and `shards/NN-…/` (each a
//! run's output folder, plus `exit-code` once its task ended).

mod local;
mod manifest;
mod options;
mod plan;
mod slurm;
mod status;
mod submit;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use manifest::is_sweep;
use options::SubmitArgs;
pub use status::{merge_inputs, states_markdown};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: Option<SweepCommand>,
    #[command(flatten)]
    submit: SubmitArgs,
}

#[derive(Subcommand, Debug)]
enum SweepCommand {
    /// Where each shard of a sweep stands: queued, running (epochs done), finished, failed.
    Status {
        /// The sweep's folder (its --out).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        Some(SweepCommand::Status { dir }) => status::status(&dir),
        None => submit::submit(args.submit),
    }
}
