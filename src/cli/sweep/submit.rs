//! `adaexp sweep`: plan the shards, prepare the folder, and submit them to Slurm or run them
//! here.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::local::run_local;
use super::manifest::{EXPERIMENT, Submission, prepare, write_manifest};
use super::options::{Engine, SubmitArgs};
use super::plan::{Task, shards, size_of_sweep};
use super::slurm::{array_script, merge_script, quote, sbatch};
use crate::cli::{data, experiment, write_atomic};

pub(super) fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}: no absolute path", path.display()))
}

pub(super) fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let spec = experiment::load_with(
        args.experiment.as_deref(),
        args.preset.as_deref(),
        args.seeds.as_deref(),
        args.epochs,
    )?;
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
