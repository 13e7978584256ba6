//! The Slurm side: the job array's and the merge job's scripts, and `sbatch`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::manifest::{EXIT_CODE, MANIFEST, Shard};
use super::options::SubmitArgs;
use super::plan::Task;
use crate::cli::interrupt::EXIT_INTERRUPTED;
use crate::train::ExperimentSpec;

pub(super) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The job array: task i runs shard i, forwards the signals Slurm sends before a time limit
/// (to the batch shell, `B:`) and on preemption, records the exit status, and requeues itself
/// when the run stopped with a checkpoint.
pub(super) fn array_script(
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
pub(super) fn merge_script(
    args: &SubmitArgs,
    spec: &ExperimentSpec,
    dir: &Path,
    exe: &Path,
) -> String {
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

/// Submits with `sbatch --parsable`; returns the job id.
pub(super) fn sbatch(args: &[String]) -> anyhow::Result<String> {
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
