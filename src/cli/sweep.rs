//! `adaexp sweep`: an experiment's seeds × arms as independent shards, each an `adaexp run
//! --seeds S --arms A --resume` into its own folder: submitted as one Slurm job array (with a
//! merge job after it), or run one after another here. `adaexp sweep status DIR` says where each
//! shard stands; `adaexp plot DIR` merges them.
//!
//! A sweep folder holds `experiment.toml` (what every shard runs), `sweep.json` (the shards and
//! the jobs submitted), `sweep.sbatch` and `merge.sbatch`, `logs/` and `shards/NN-…/` (each a
//! run's output folder, plus `exit-code` once its task ended).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use super::backend::Backend;
use super::interrupt::{self, EXIT_INTERRUPTED, Interrupted};
use super::results::{self, result_files};
use super::run::{file_stem, slug};
use super::{data, experiment, write_atomic};
use crate::train::ExperimentSpec;
use crate::train::summary::Run;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// One Slurm job array (sbatch), one task per shard, and a merge job after it.
    Slurm,
    /// The same shards one after another on this machine.
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ShardBy {
    /// One shard per seed and arm (an arm matched to another's update size goes with it).
    Arm,
    /// One shard per seed, all arms.
    Seed,
}

#[derive(Args, Debug)]
struct SubmitArgs {
    /// Experiment file (TOML); see experiments/.
    #[arg(value_name = "EXPERIMENT.toml", required_unless_present = "preset")]
    experiment: Option<PathBuf>,
    /// A built-in experiment (see `adaexp run --help`).
    #[arg(long, value_name = "NAME", conflicts_with = "experiment")]
    preset: Option<String>,
    /// The sweep's folder: its experiment, job scripts, logs and every shard's results.
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Engine::Slurm)]
    engine: Engine,
    #[arg(long, value_enum, default_value_t = ShardBy::Arm)]
    shard: ShardBy,
    /// Seeds [default: the experiment's].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Epochs [default: the experiment's].
    #[arg(long, value_name = "N")]
    epochs: Option<u64>,
    /// Dataset directory or archive, as seen from the nodes [default: as `run`; CIFAR-10 is
    /// fetched here before submitting, so that no task downloads it].
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// The backend each task trains on.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Slurm partition (sbatch --partition).
    #[arg(long, value_name = "NAME", value_parser = one_line)]
    partition: Option<String>,
    /// Time limit per task (sbatch --time), e.g. 12:00:00. A task stopped by it checkpoints
    /// and requeues itself.
    #[arg(long, value_name = "TIME", value_parser = slurm_time)]
    time: Option<String>,
    /// GPUs per task (sbatch --gpus-per-task), e.g. 1 or a100:1.
    #[arg(long, value_name = "N", value_parser = one_line)]
    gpus_per_task: Option<String>,
    /// CPU cores per task (sbatch --cpus-per-task).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    cpus_per_task: Option<u32>,
    /// Memory per node (sbatch --mem), e.g. 16G.
    #[arg(long, value_name = "SIZE", value_parser = one_line)]
    mem: Option<String>,
    /// At most this many tasks at once (the array's %N).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// How long before the time limit Slurm signals a task to checkpoint (sbatch --signal).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    signal_before: u32,
    /// Any other sbatch option, repeated as needed, e.g. --sbatch-arg=--account=proj42.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true, value_parser = sbatch_option)]
    sbatch_arg: Vec<String>,
    /// Print the job script and submit nothing (nothing is written either); the size of the
    /// sweep goes to stderr.
    #[arg(long)]
    dry_run: bool,
    /// Training images per second of one arm on the nodes, as `adaexp bench train` reports
    /// it there (the experiment's model, batch size and backend): the dry run then estimates
    /// the device-hours.
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    images_per_second: Option<f64>,
}

/// A value that goes into the job script as part of an `#SBATCH` line: one line, nothing a
/// shell or Slurm would read as the start of another (a newline would add lines of its own).
fn one_line(value: &str) -> Result<String, String> {
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
fn sbatch_option(value: &str) -> Result<String, String> {
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
fn slurm_time(value: &str) -> Result<String, String> {
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

fn positive_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "must be a positive number of images per second, got {value:?}"
        )),
    }
}

/// Evaluating an image (forward only, no gradients) costs about a third of training on it.
const EVALUATION_COST: f64 = 1.0 / 3.0;

/// How much training a sweep asks for, and at `images_per_second` per arm, how many
/// device-hours: every arm of every seed trains each epoch's images, then evaluates the
/// validation and test images.
fn size_of_sweep(
    spec: &ExperimentSpec,
    shards: &[Shard],
    images_per_second: Option<f64>,
) -> String {
    let (official_train, official_test) = spec.dataset.official_sizes();
    let val = spec.val_size.unwrap_or(0);
    let train = spec
        .train_size
        .unwrap_or(official_train.saturating_sub(val))
        .min(official_train.saturating_sub(val));
    let evaluated = val + spec.test_size.unwrap_or(official_test).min(official_test);
    let arm_runs = spec.arms.len() * spec.seeds.len();
    let mut out = format!(
        "{}: {} tasks, {arm_runs} arm runs ({} arms × {} seeds) of {} epochs over {train} training and {evaluated} evaluation images each",
        spec.name,
        shards.len(),
        spec.arms.len(),
        spec.seeds.len(),
        spec.epochs,
    );
    let per_arm_epoch = train as f64 + EVALUATION_COST * evaluated as f64;
    let work = per_arm_epoch * spec.epochs as f64 * arm_runs as f64;
    match images_per_second {
        Some(rate) => {
            let hours = work / rate / 3600.0;
            out += &format!(
                ".\nAt {rate} images/s per arm: about {hours:.1} device-hours in all, {:.1} per task on average (an evaluated image counted as a third of a trained one).",
                hours / shards.len().max(1) as f64
            );
        }
        None => {
            out += &format!(
                ".\nFor device-hours, pass --images-per-second with what `adaexp bench train --model {} --batch-size {}` reports on a node (with its --backend); once tasks run, `adaexp sweep status` shows their epochs as they finish.",
                spec.model.name(),
                spec.batch_size
            );
        }
    }
    out
}

/// One independent piece of a sweep: a seed and the arms it trains (`None`: all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub seed: u64,
    pub arms: Option<Vec<String>>,
    /// Its results folder, relative to the sweep's.
    pub dir: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    pub array_job: String,
    pub merge_job: Option<String>,
}

/// `sweep.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub epochs: u64,
    pub engine: Engine,
    pub shards: Vec<Shard>,
    /// Every submission of this sweep, oldest first (a sweep can be submitted again to go on).
    #[serde(default)]
    pub jobs: Vec<Submission>,
}

const MANIFEST: &str = "sweep.json";
const EXPERIMENT: &str = "experiment.toml";
const EXIT_CODE: &str = "exit-code";

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        Some(SweepCommand::Status { dir }) => status(&dir),
        None => submit(args.submit),
    }
}

/// The shards of `spec`: per seed, one per group of arms that can train apart, or one.
fn shards(spec: &ExperimentSpec, by: ShardBy) -> Vec<Shard> {
    let groups: Vec<Option<Vec<String>>> = match by {
        ShardBy::Arm => spec.arm_groups().into_iter().map(Some).collect(),
        ShardBy::Seed => vec![None],
    };
    let mut shards = Vec::new();
    for &seed in &spec.seeds {
        for arms in &groups {
            let what = arms.as_ref().map_or("all".to_owned(), |a| slug(&a[0]));
            shards.push(Shard {
                seed,
                arms: arms.clone(),
                dir: format!("shards/{:02}-seed{seed}-{what}", shards.len()),
            });
        }
    }
    shards
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}: no absolute path", path.display()))
}

/// The `adaexp run` arguments of a shard (after `run EXPERIMENT`).
fn shard_args(shard: &Shard) -> Vec<String> {
    let mut args = vec!["--seeds".to_owned(), shard.seed.to_string()];
    // One flag per arm: `run` takes each value as a whole name first, so commas in names pass.
    for arm in shard.arms.iter().flatten() {
        args.push("--arms".into());
        args.push(arm.clone());
    }
    args
}

/// Everything a task needs to run a shard besides the shard itself.
struct Task {
    exe: PathBuf,
    experiment: PathBuf,
    data: PathBuf,
    backend: Backend,
}

impl Task {
    fn args(&self, dir: &Path, shard: &Shard) -> Vec<String> {
        let mut args = vec!["run".to_owned(), self.experiment.display().to_string()];
        args.extend(shard_args(shard));
        args.extend([
            "--out".into(),
            dir.join(&shard.dir).display().to_string(),
            "--resume".into(),
            "--no-plot".into(),
            "--backend".into(),
            self.backend
                .to_possible_value()
                .expect("no skipped values")
                .get_name()
                .to_owned(),
            "--data".into(),
            self.data.display().to_string(),
        ]);
        args
    }
}

/// The job array: task i runs shard i, forwards the signals Slurm sends before a time limit
/// (to the batch shell, `B:`) and on preemption, records the exit status, and requeues itself
/// when the run stopped with a checkpoint.
fn array_script(
    args: &SubmitArgs,
    spec: &ExperimentSpec,
    dir: &Path,
    shards: &[Shard],
    task: &Task,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let mut option = |line: String| s.push_str(&format!("#SBATCH {line}\n"));
    option(format!("--job-name=adaexp-{}", spec.name));
    option(format!(
        "--array=0-{}{}",
        shards.len() - 1,
        args.max_parallel
            .map(|n| format!("%{n}"))
            .unwrap_or_default()
    ));
    option(format!("--output={}/logs/%A_%a.out", dir.display()));
    // A requeued task appends to its log instead of replacing it.
    option("--open-mode=append".into());
    option("--requeue".into());
    option(format!("--signal=B:USR1@{}", args.signal_before));
    option("--ntasks=1".into());
    for (flag, value) in [
        ("partition", args.partition.clone()),
        ("time", args.time.clone()),
        ("gpus-per-task", args.gpus_per_task.clone()),
        ("cpus-per-task", args.cpus_per_task.map(|n| n.to_string())),
        ("mem", args.mem.clone()),
    ] {
        if let Some(value) = value {
            option(format!("--{flag}={value}"));
        }
    }
    for extra in &args.sbatch_arg {
        option(extra.clone());
    }
    s.push_str(&format!(
        "# Written by `adaexp sweep`: task i trains shard i of {}/{MANIFEST}.\nset -u\ncase \"${{SLURM_ARRAY_TASK_ID:?submit this with sbatch}}\" in\n",
        dir.display()
    ));
    for (i, shard) in shards.iter().enumerate() {
        let line: Vec<String> = task.args(dir, shard).iter().map(|a| quote(a)).collect();
        s.push_str(&format!(
            "  {i}) shard={}; args=({}) ;;\n",
            quote(&dir.join(&shard.dir).display().to_string()),
            line.join(" ")
        ));
    }
    s.push_str(&format!(
        r#"  *) echo "no shard $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
mkdir -p "$shard" && rm -f "$shard/{EXIT_CODE}"
echo "== task $SLURM_ARRAY_TASK_ID of job ${{SLURM_ARRAY_JOB_ID:-?}} on $(hostname), $(date -Is), restart ${{SLURM_RESTART_COUNT:-0}}"
{exe} "${{args[@]}}" &
child=$!
# Slurm signals this shell before the time limit and the whole job on preemption or requeue:
# the run finishes its step, writes a checkpoint there and exits {EXIT_INTERRUPTED}.
trap 'kill -TERM "$child" 2>/dev/null' TERM INT USR1
while :; do
  wait "$child"; code=$?
  kill -0 "$child" 2>/dev/null || break
done
echo "$code" > "$shard/{EXIT_CODE}"
if [ "$code" -eq {EXIT_INTERRUPTED} ]; then
  echo "== stopped with a checkpoint; requeueing to continue"
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}" 2>/dev/null \
    || echo "== (already requeued by Slurm)"
fi
exit "$code"
"#,
        exe = quote(&task.exe.display().to_string()),
    ));
    s
}

/// The job that merges the shards once every task has ended, however it ended.
fn merge_script(args: &SubmitArgs, spec: &ExperimentSpec, dir: &Path, exe: &Path) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name=adaexp-{}-merge\n", spec.name));
    s.push_str(&format!(
        "#SBATCH --output={}/logs/merge-%j.out\n",
        dir.display()
    ));
    s.push_str("#SBATCH --ntasks=1\n#SBATCH --time=00:30:00\n");
    if let Some(partition) = &args.partition {
        s.push_str(&format!("#SBATCH --partition={partition}\n"));
    }
    for extra in &args.sbatch_arg {
        s.push_str(&format!("#SBATCH {extra}\n"));
    }
    s.push_str(&format!(
        "{} plot {}\n",
        quote(&exe.display().to_string()),
        quote(&dir.display().to_string())
    ));
    s
}

fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let mut spec = experiment::load(args.experiment.as_deref(), args.preset.as_deref())?;
    if let Some(seeds) = &args.seeds {
        spec.seeds = seeds.clone();
    }
    if let Some(epochs) = args.epochs {
        spec.epochs = epochs;
    }
    spec.validate()
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    let dir = absolute(args.out.as_deref().expect("required"))?;
    let shards = shards(&spec, args.shard);
    let data_path = args
        .data
        .clone()
        .unwrap_or_else(|| data::default_path(spec.dataset));
    let task = Task {
        exe: std::env::current_exe().context("cannot tell where this adaexp binary is")?,
        experiment: dir.join(EXPERIMENT),
        data: absolute(&data_path)?,
        backend: args.backend,
    };
    if args.dry_run {
        eprintln!("{}", size_of_sweep(&spec, &shards, args.images_per_second));
        match args.engine {
            Engine::Slurm => print!("{}", array_script(&args, &spec, &dir, &shards, &task)),
            Engine::Local => {
                for shard in &shards {
                    let args: Vec<String> =
                        task.args(&dir, shard).iter().map(|a| quote(a)).collect();
                    println!(
                        "{} {}",
                        quote(&task.exe.display().to_string()),
                        args.join(" ")
                    );
                }
            }
        }
        return Ok(());
    }

    // The data once, here: tasks must not each fetch CIFAR-10 into the same folder.
    data::load(spec.dataset, &data_path, args.data.is_none())?;
    let mut manifest = prepare(&dir, &spec, &shards, args.engine)?;
    match args.engine {
        Engine::Local => run_local(&dir, &manifest, &task),
        Engine::Slurm => {
            let array = dir.join("sweep.sbatch");
            write_atomic(
                &array,
                array_script(&args, &spec, &dir, &shards, &task).as_bytes(),
            )?;
            let merge = dir.join("merge.sbatch");
            write_atomic(
                &merge,
                merge_script(&args, &spec, &dir, &task.exe).as_bytes(),
            )?;
            let array_job = sbatch(&[array.display().to_string()])?;
            let merge_job = sbatch(&[
                format!("--dependency=afterany:{array_job}"),
                merge.display().to_string(),
            ]);
            let merge_job = match merge_job {
                Ok(id) => Some(id),
                Err(e) => {
                    eprintln!(
                        "note: the merge job was not submitted ({e:#}); run `adaexp plot {}` when the array is done",
                        dir.display()
                    );
                    None
                }
            };
            manifest.jobs.push(Submission {
                array_job: array_job.clone(),
                merge_job: merge_job.clone(),
            });
            write_manifest(&dir, &manifest)?;
            println!(
                "submitted job array {array_job}: {} tasks ({} seeds × {} shards each){}",
                shards.len(),
                spec.seeds.len(),
                shards.len() / spec.seeds.len(),
                args.max_parallel
                    .map(|n| format!(", at most {n} at once"))
                    .unwrap_or_default()
            );
            if let Some(id) = merge_job {
                println!(
                    "merge job {id} runs `adaexp plot {}` after it",
                    dir.display()
                );
            }
            println!(
                "results in {}/shards, logs in {}/logs; watch with: adaexp sweep status {}",
                dir.display(),
                dir.display(),
                dir.display()
            );
            Ok(())
        }
    }
}

/// Creates (or checks) the sweep folder: a folder of another experiment, or of the same one cut
/// into other shards, is refused; the same sweep again continues it.
fn prepare(
    dir: &Path,
    spec: &ExperimentSpec,
    shards: &[Shard],
    engine: Engine,
) -> anyhow::Result<Manifest> {
    let toml = toml::to_string(spec).context("cannot write the experiment as TOML")?;
    let manifest_path = dir.join(MANIFEST);
    if manifest_path.exists() {
        let existing = read_manifest(dir)?;
        let written = experiment::load(Some(&dir.join(EXPERIMENT)), None)?;
        if &written != spec || existing.shards != shards {
            bail!(
                "{} holds another sweep ('{}', {} shards); use another --out, or the same experiment, seeds and --shard to continue it",
                dir.display(),
                existing.experiment,
                existing.shards.len()
            );
        }
        return Ok(Manifest { engine, ..existing });
    }
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!(
            "{} exists and is not a sweep folder; use a new or empty --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join(EXPERIMENT), toml.as_bytes())?;
    let manifest = Manifest {
        experiment: spec.name.clone(),
        epochs: spec.epochs,
        engine,
        shards: shards.to_vec(),
        jobs: Vec::new(),
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    write_atomic(&dir.join(MANIFEST), &serde_json::to_vec_pretty(manifest)?)
}

pub fn is_sweep(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        bail!(
            "{}: not a sweep folder (no {MANIFEST}; `adaexp sweep … --out DIR` makes one)",
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a sweep manifest", path.display()))?;
    for shard in &manifest.shards {
        // The folder names come from a file: keep them inside the sweep.
        if Path::new(&shard.dir)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!(
                "{}: shard folder {:?} leaves the sweep",
                path.display(),
                shard.dir
            );
        }
    }
    Ok(manifest)
}

/// Submits with `sbatch --parsable`; returns the job id.
fn sbatch(args: &[String]) -> anyhow::Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .output()
        .context("cannot run sbatch (is this a Slurm login node? --engine local runs here)")?;
    if !output.status.success() {
        bail!(
            "sbatch failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints "ID" or "ID;CLUSTER".
    let id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {stdout:?}");
    }
    Ok(id)
}

/// Runs the shards here, one after another, skipping finished ones; Ctrl-C stops the shard in
/// hand with a checkpoint (the child gets the signal too) and the sweep with it.
fn run_local(dir: &Path, manifest: &Manifest, task: &Task) -> anyhow::Result<()> {
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
    super::plot::run_paths(&[dir.to_path_buf()], None, None)?;
    if !failed.is_empty() {
        bail!(
            "shards {failed:?} failed (see above); the summary lists them; run the same command again to retry them"
        );
    }
    Ok(())
}

fn describe(shard: &Shard) -> String {
    match &shard.arms {
        Some(arms) => arms.join(" + "),
        None => "all arms".into(),
    }
}

/// What a shard's result files say.
#[derive(Debug, Default)]
struct Progress {
    /// Epochs every arm of the shard completed (or stopped before).
    epochs: u64,
    steps: u64,
    finished: bool,
    has_results: bool,
    /// What the finished epochs cost: for the time-left estimate.
    cost: Cost,
}

/// Finished epochs and what they took, summed over shards for `sweep status`'s estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cost {
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
fn progress(shard_dir: &Path, shard: &Shard, epochs: u64, arms: usize) -> anyhow::Result<Progress> {
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
    let steps = run
        .records
        .iter()
        .filter_map(|r| match r {
            crate::train::Record::Step(s) => Some(s.step),
            _ => None,
        })
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
fn slurm_states(job: &str) -> std::collections::BTreeMap<usize, String> {
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

fn status(dir: &Path) -> anyhow::Result<()> {
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
    fn the_size_of_a_sweep_counts_arms_seeds_epochs_and_images() {
        let spec = experiment::load(None, Some("seed-resnet20-tuned")).unwrap();
        let shards = shards(&spec, ShardBy::Arm);
        // 21 scheduled arms, each with the controls matched to it, × 5 seeds.
        assert_eq!(shards.len(), 105);
        let text = size_of_sweep(&spec, &shards, Some(2000.0));
        assert!(text.contains("105 tasks, 150 arm runs (30 arms × 5 seeds) of 100 epochs over 45000 training and 15000 evaluation images each"), "{text}");
        // By hand: (45,000 + 15,000/3) × 100 epochs × 150 arm runs / 2,000 per second / 3,600.
        let hours = (45_000.0 + 5_000.0) * 100.0 * 150.0 / 2000.0 / 3600.0;
        assert!(
            text.contains(&format!("about {hours:.1} device-hours")),
            "{text}"
        );
        assert!(size_of_sweep(&spec, &shards, None).contains("--images-per-second"));
        assert!(positive_rate("0").is_err() && positive_rate("x").is_err());
    }

    #[test]
    fn every_preset_shards_into_run_arguments_that_name_its_arms() {
        for (name, _) in experiment::PRESETS {
            let spec = experiment::load(None, Some(name)).unwrap();
            for shard in shards(&spec, ShardBy::Arm) {
                let args = shard_args(&shard);
                let passed: Vec<String> = args
                    .chunks(2)
                    .filter(|pair| pair[0] == "--arms")
                    .map(|pair| pair[1].clone())
                    .collect();
                let Some(arms) = &shard.arms else {
                    panic!("{name}: sharded by arm");
                };
                // What `run` makes of them: the shard's arms, names with commas included.
                let named = super::super::run::arm_names(&spec, &passed);
                assert_eq!(&named, arms, "{name}");
                spec.select_arms(&named).unwrap();
            }
        }
    }

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
