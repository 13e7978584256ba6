//! `adaexp run`: an experiment (file or preset), every seed, results, checkpoints, plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::backend::{self, Backend, Chosen};
use super::halt::{self, Point};
use super::interrupt::{self, Interrupted};
use super::layout::file_stem;
use super::results::{self, RecordWriter, Synced, result_files};
use super::{data, experiment, plot, write_atomic};
use crate::data::Splits;
use crate::train::summary::{Run, summarize};
use crate::train::{ExperimentSpec, Record, RunInfo, Session};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment file (TOML); see experiments/.
    #[arg(value_name = "EXPERIMENT.toml", required_unless_present = "preset")]
    experiment: Option<PathBuf>,
    /// A built-in experiment: quick, fashion-quick, fashion-study, fashion-tuned, seed-vgg16,
    /// seed-resnet20, seed-vgg16-tuned, seed-resnet20-tuned, fixed-p-sweep.
    #[arg(long, value_name = "NAME", conflicts_with = "experiment")]
    preset: Option<String>,
    /// Dataset directory or archive [default: data/ for CIFAR-10 (fetched when missing),
    /// /usr/share/datasets/fashion-mnist for Fashion-MNIST].
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Seeds to run, e.g. 0,1,2 [default: the experiment's].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Train only these arms (a shard of the experiment; results go to seed-S.ARMS.jsonl). An
    /// arm's records are the same alone as beside the others; an arm matched to another's
    /// update size needs that arm too. Repeat the flag for a name with a comma in it.
    #[arg(long, value_name = "NAME[,NAME…]")]
    arms: Option<Vec<String>>,
    /// Epochs [default: the experiment's].
    #[arg(long, value_name = "N")]
    epochs: Option<u64>,
    /// Output directory [default: results/NAME].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue runs from their checkpoints (a finished run is left as it is).
    #[arg(long)]
    resume: bool,
    /// Skip the plots at the end.
    #[arg(long)]
    no_plot: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let spec = experiment::load_with(
        args.experiment.as_deref(),
        args.preset.as_deref(),
        args.seeds.as_deref(),
        args.epochs,
    )?;
    let shard = args
        .arms
        .as_ref()
        .map(|values| {
            spec.select_arms(&experiment::arm_names(&spec, values))
                .map_err(experiment::flagged)
        })
        .transpose()?
        .map(|selected| {
            selected
                .arms
                .iter()
                .map(|a| a.name.clone())
                .collect::<Vec<_>>()
        });
    interrupt::install()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(&spec.name));
    // Before any work: a folder holding another experiment's results is not ours to add to.
    check_folder(&out, &spec)?;

    let data_path = args
        .data
        .clone()
        .unwrap_or_else(|| data::default_path(spec.dataset));
    let splits = data::load(spec.dataset, &data_path, args.data.is_none())?
        .subset(spec.subset_sizes(), spec.subset_seed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", data_path.display()))?;
    splits
        .check_shapes()
        .and_then(|()| spec.model.check_input(splits.train.shape))
        .map_err(|e| anyhow::anyhow!("{}: {e}", data_path.display()))?;
    let chosen = backend::choose(args.backend)?;
    let arms = match &shard {
        Some(names) => format!("arms {names:?}"),
        None => format!("{} arms", spec.arms.len()),
    };
    let val = splits
        .val
        .as_ref()
        .map_or(String::new(), |val| format!(" / {} validation", val.len()));
    println!(
        "{}: {} on {} ({} train{val} / {} test images), {arms}, {} epochs, seeds {:?}; backend {}",
        spec.name,
        spec.model.name(),
        spec.dataset.name(),
        splits.train.len(),
        splits.test.len(),
        spec.epochs,
        spec.seeds,
        chosen.name
    );

    let folder = NewFolder::create(&out)?;
    for &seed in &spec.seeds {
        if interrupt::requested() {
            return Err(Interrupted(format!(
                "stopped on request before seed {seed}; run the same command with --resume to continue"
            ))
            .into());
        }
        run_seed(
            &spec,
            shard.as_deref(),
            seed,
            &splits,
            &chosen,
            &out,
            args.resume,
        )?;
    }
    folder.keep();
    halt::point(Point::Summary);

    // The summary covers every run of this experiment in the folder, not only this call's seeds.
    let runs = plot::unique_runs(read_runs(&result_files(std::slice::from_ref(&out))?)?);
    let summary = summarize(&runs).expect("at least one run");
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    plot::report(&summary, &out, "", None, "")?;
    if !args.no_plot {
        plot::plot_runs(&runs, &out)?;
    }
    println!("results in {}", out.display());
    Ok(())
}

/// Whether two specs describe the same experiment: seeds and epochs may differ (a run may be
/// extended, and each seed is its own file).
fn same_experiment(a: &ExperimentSpec, b: &ExperimentSpec) -> bool {
    let normalized = |s: &ExperimentSpec| ExperimentSpec {
        seeds: Vec::new(),
        epochs: 0,
        ..s.clone()
    };
    normalized(a) == normalized(b)
}

/// The top-level fields in which two experiments differ, for the error message.
fn differences(a: &ExperimentSpec, b: &ExperimentSpec) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return String::new();
    };
    let mut keys: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| !matches!(k.as_str(), "seeds" | "epochs") && a.get(*k) != b.get(*k))
        .collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses when `run` (a result file's header or a checkpoint's) is not `seed` of `spec`, or
/// trains other arms than `shard`.
fn check_same_run(
    run: &RunInfo,
    spec: &ExperimentSpec,
    shard: Option<&[String]>,
    seed: u64,
    file: &Path,
) -> anyhow::Result<()> {
    if run.arms.as_deref() != shard {
        let describe = |arms: Option<&[String]>| match arms {
            Some(arms) => format!("arms {arms:?}"),
            None => "every arm".to_owned(),
        };
        bail!(
            "{}: trains {}, not {}; it is left as it is — use another --out",
            file.display(),
            describe(run.arms.as_deref()),
            describe(shard)
        );
    }
    if !same_experiment(&run.experiment, spec) {
        bail!(
            "{}: holds a run of another experiment ('{}', differing in: {}); it is left as it is — use another --out",
            file.display(),
            run.experiment.name,
            differences(&run.experiment, spec)
        );
    }
    if run.seed != seed {
        bail!(
            "{}: holds seed {}, not seed {seed}; it is left as it is — use another --out",
            file.display(),
            run.seed
        );
    }
    Ok(())
}

/// Every result file already in `out` must belong to this experiment.
fn check_folder(out: &Path, spec: &ExperimentSpec) -> anyhow::Result<()> {
    if !out.is_dir() {
        return Ok(());
    }
    for file in results::jsonl_in(out)? {
        let Some(run) = results::read_header(&file)? else {
            continue;
        };
        if !same_experiment(&run.experiment, spec) {
            bail!(
                "{} holds results of another experiment ({}: '{}', differing in: {}); use another --out",
                out.display(),
                file.file_name().unwrap_or_default().to_string_lossy(),
                run.experiment.name,
                differences(&run.experiment, spec)
            );
        }
    }
    Ok(())
}

fn read_runs(files: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for file in files {
        runs.extend(Run::split(results::read_records(file)?));
    }
    Ok(runs)
}

/// A folder this run created, removed again (with the parents it created) if the run fails
/// before writing anything into it: a failed first run leaves no empty `results/NAME/`.
struct NewFolder {
    created: Vec<PathBuf>,
}

impl NewFolder {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let created: Vec<PathBuf> = path
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(NewFolder { created })
    }

    fn keep(mut self) {
        self.created.clear();
    }
}

impl Drop for NewFolder {
    fn drop(&mut self) {
        // Deepest first; `remove_dir` only removes empty folders.
        for dir in &self.created {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Everything the epoch-end message shows: each arm's latest test accuracy.
fn epoch_message(records: &[Record], epoch: u64) -> String {
    let parts: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(format!("{} {:.1}%", e.arm, 100.0 * e.test_accuracy)),
            Record::Diverged(d) => Some(format!("{} diverged", d.arm)),
            Record::Stopped(s) => Some(format!("{} stopped: {}", s.arm, s.reason)),
            _ => None,
        })
        .collect();
    format!("epoch {epoch}: {}", parts.join(", "))
}

/// A line above the progress bar; a hidden bar (no terminal) drops its printouts, and a log
/// should still show them.
fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// Trains one seed to the end (or continues it), appending to its result file. Stops with
/// `Interrupted` after writing a checkpoint when a stop is asked for.
fn run_seed(
    full: &ExperimentSpec,
    shard: Option<&[String]>,
    seed: u64,
    splits: &Splits,
    chosen: &Chosen,
    out: &Path,
    resume: bool,
) -> anyhow::Result<()> {
    let backend_name = chosen.name.as_str();
    let stem = file_stem(seed, shard);
    let jsonl = out.join(format!("{stem}.jsonl"));
    let checkpoint_path = out.join(format!("{stem}.checkpoint"));
    let spec = match shard {
        Some(arms) => &full.select_arms(arms).expect("checked by the caller"),
        None => full,
    };
    let mut session = Session::new(spec.clone(), seed, splits.clone(), chosen.device.clone())?;
    // The header names the whole experiment, so that shards of it merge; `arms` says which
    // part this file trains.
    let info = RunInfo {
        experiment: full.clone(),
        arms: shard.map(<[String]>::to_vec),
        processor: Some(backend::processor()),
        ..session.run_info(backend_name)
    };

    let mut writer = if jsonl.exists() {
        if !resume {
            bail!(
                "{} exists: pass --resume to continue it, or choose another --out",
                jsonl.display()
            );
        }
        let header = results::read_header(&jsonl)?;
        if let Some(header) = &header {
            check_same_run(header, full, shard, seed, &jsonl)?;
        }
        // This run is the checkpoint's one writer: what a killed write left goes.
        super::remove_stale_temps(&checkpoint_path);
        if checkpoint_path.is_file() {
            // Everything is checked before the result file is touched.
            let (index, checkpoint) = results::load_checkpoint(&checkpoint_path)?;
            check_same_run(&index.run, full, shard, seed, &checkpoint_path)?;
            session.restore(checkpoint)?;
            let writer = RecordWriter::resume(
                &jsonl,
                &Synced {
                    len: index.records_len,
                    sha256: index.records_sha256,
                },
            )?;
            if index.batch == 0 {
                println!("seed {seed}: resuming after epoch {}", index.epoch);
            } else {
                println!(
                    "seed {seed}: resuming in epoch {} after step {} (batch {} of {})",
                    index.epoch + 1,
                    session.steps_done(),
                    index.batch,
                    session.steps_per_epoch()
                );
            }
            writer
        } else {
            // Without a checkpoint (killed before the first one was complete, or deleted) the
            // run starts over. That only replaces records training will write again: the same
            // experiment and seed (checked above) on the same backend.
            if let Some(header) = &header
                && header.backend != backend_name
            {
                bail!(
                    "{} has no checkpoint to resume from, and starting over on {backend_name} would replace records made on {}; it is left as it is — use another --out or --backend",
                    jsonl.display(),
                    header.backend
                );
            }
            println!("seed {seed}: no checkpoint; starting over");
            let mut writer = RecordWriter::resume(&jsonl, &Synced::nothing())?;
            writer.write(&Record::Run(info.clone()))?;
            writer
        }
    } else {
        if checkpoint_path.exists() {
            bail!(
                "{} exists without its result file {}; move it away or use another --out",
                checkpoint_path.display(),
                jsonl.display()
            );
        }
        let mut writer = RecordWriter::create(&jsonl)?;
        writer.write(&Record::Run(info.clone()))?;
        writer
    };

    let bar = ProgressBar::new(session.total_steps()).with_style(
        ProgressStyle::with_template(
            "seed {prefix} [{bar:30}] {pos}/{len} steps {per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(seed.to_string());
    bar.set_position(session.steps_done());
    // A GPU's first steps compile and autotune its kernels: say so, or it looks hung.
    let mut warming_up = chosen.compiles_kernels.then(|| {
        say(&bar, "compiling and autotuning GPU kernels (the first steps; minutes on a slow or software device)…");
        Instant::now()
    });
    // The records up to here reach the disk before the checkpoint that continues them.
    let save_checkpoint = |writer: &mut RecordWriter, session: &Session| -> anyhow::Result<()> {
        let synced = writer.sync()?;
        results::save_checkpoint(&checkpoint_path, &info, &synced, &session.checkpoint()?)
    };
    while !session.is_finished() {
        let records = pollster::block_on(session.step())?;
        if let Some(started) = warming_up.take() {
            say(
                &bar,
                &format!(
                    "first step, kernels included: {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
            );
        }
        halt::point(Point::StepComputed);
        for record in &records {
            writer.write(record)?;
        }
        halt::point(Point::StepWritten);
        bar.set_position(session.steps_done());
        if session.at_epoch_boundary() {
            save_checkpoint(&mut writer, &session)?;
            say(
                &bar,
                &format!(
                    "seed {seed} {}",
                    epoch_message(&records, session.epochs_done())
                ),
            );
        }
        if interrupt::requested() && !session.is_finished() {
            // Asked to stop (preemption, a time limit, Ctrl-C): the queued step's records
            // first, then a checkpoint at this very step, so that nothing is trained twice.
            if !session.at_epoch_boundary() {
                let started = Instant::now();
                for record in pollster::block_on(session.settle_all())? {
                    writer.write(&record)?;
                }
                save_checkpoint(&mut writer, &session)?;
                say(
                    &bar,
                    &format!(
                        "seed {seed}: checkpoint at step {} written in {:.1} s",
                        session.steps_done(),
                        started.elapsed().as_secs_f64()
                    ),
                );
            }
            bar.abandon();
            return Err(Interrupted(format!(
                "stopped on request at step {} of {} (seed {seed}); the checkpoint is written: run the same command with --resume to continue",
                session.steps_done(),
                session.total_steps()
            ))
            .into());
        }
    }
    writer.sync()?;
    bar.finish_and_clear();
    Ok(())
}
