//! `adaexp run`: an experiment (file or preset), every seed, results, checkpoints, plots.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::backend::{self, Backend};
use super::results::{self, RecordWriter};
use super::{data, experiment, plot, write_atomic};
use crate::data::Splits;
use crate::train::summary::{Run, summarize};
use crate::train::{ExperimentSpec, Record, Session};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment file (TOML); see experiments/.
    #[arg(value_name = "EXPERIMENT.toml", required_unless_present = "preset")]
    experiment: Option<PathBuf>,
    /// A built-in experiment: quick, fashion-quick, seed-vgg16, seed-resnet20, fixed-p-sweep.
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
    let mut spec = experiment::load(args.experiment.as_deref(), args.preset.as_deref())?;
    if let Some(seeds) = &args.seeds {
        spec.seeds = seeds.clone();
    }
    if let Some(epochs) = args.epochs {
        spec.epochs = epochs;
    }
    spec.validate().map_err(|e| {
        let flag = match e.field.as_str() {
            "seeds" => "--seeds".to_owned(),
            "epochs" => "--epochs".to_owned(),
            other => other.to_owned(),
        };
        anyhow::anyhow!("{flag}: {}", e.message)
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(&spec.name));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let data_path = args
        .data
        .clone()
        .unwrap_or_else(|| data::default_path(spec.dataset));
    let splits = data::load(spec.dataset, &data_path, args.data.is_none())?
        .subset(spec.train_size, spec.test_size, spec.subset_seed)
        .map_err(|e| anyhow::anyhow!("{}: {e}", data_path.display()))?;
    let (device, backend_name) = backend::choose(args.backend)?;
    println!(
        "{}: {} on {} ({} train / {} test images), {} arms, {} epochs, seeds {:?}; backend {backend_name}",
        spec.name,
        spec.model.name(),
        spec.dataset.name(),
        splits.train.len(),
        splits.test.len(),
        spec.arms.len(),
        spec.epochs,
        spec.seeds
    );

    let mut runs = Vec::new();
    for &seed in &spec.seeds {
        let records = run_seed(
            &spec,
            seed,
            &splits,
            &device,
            &backend_name,
            &out,
            args.resume,
        )?;
        runs.extend(Run::split(records));
    }
    let summary = summarize(&runs).expect("at least one run");
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    plot::report(&summary, &out, "")?;
    if !args.no_plot {
        plot::plot_runs(&runs, &out)?;
    }
    println!("results in {}", out.display());
    Ok(())
}

/// Everything the epoch-end message shows: each arm's latest test accuracy.
fn epoch_message(records: &[Record], epoch: u64) -> String {
    let parts: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(format!("{} {:.1}%", e.arm, 100.0 * e.test_accuracy)),
            Record::Diverged(d) => Some(format!("{} diverged", d.arm)),
            _ => None,
        })
        .collect();
    format!("epoch {epoch}: {}", parts.join(", "))
}

/// Trains one seed to the end (or continues it), returning its records as written.
fn run_seed(
    spec: &ExperimentSpec,
    seed: u64,
    splits: &Splits,
    device: &burn::tensor::Device,
    backend_name: &str,
    out: &Path,
    resume: bool,
) -> anyhow::Result<Vec<Record>> {
    let jsonl = out.join(format!("seed-{seed}.jsonl"));
    let checkpoint_path = out.join(format!("seed-{seed}.checkpoint"));
    let mut session = Session::new(spec.clone(), seed, splits.clone(), device.clone())?;
    let info = session.run_info(backend_name);

    let mut writer = if resume && checkpoint_path.is_file() {
        let (index, checkpoint) = results::load_checkpoint(&checkpoint_path)?;
        // A run may be extended (more epochs); anything else must be what it was.
        let saved = ExperimentSpec {
            epochs: spec.epochs,
            seeds: spec.seeds.clone(),
            ..index.run.experiment.clone()
        };
        if saved != *spec || index.run.seed != seed {
            bail!(
                "{}: was taken for a different experiment or seed; use another --out",
                checkpoint_path.display()
            );
        }
        session.restore(checkpoint)?;
        println!("seed {seed}: resuming after epoch {}", index.epoch);
        RecordWriter::resume(&jsonl, index.records_len)?
    } else if jsonl.exists() && !resume {
        bail!(
            "{} exists: pass --resume to continue it, or choose another --out",
            jsonl.display()
        );
    } else {
        // With --resume but no checkpoint yet, the run died in its first epoch: start over.
        let mut writer = if jsonl.exists() {
            println!("seed {seed}: no checkpoint yet; starting over");
            RecordWriter::resume(&jsonl, 0)?
        } else {
            RecordWriter::create(&jsonl)?
        };
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
    while !session.is_finished() {
        let records = pollster::block_on(session.step())?;
        for record in &records {
            writer.write(record)?;
        }
        bar.set_position(session.steps_done());
        if let Some(checkpoint) = session.checkpoint()? {
            let len = writer.sync()?;
            results::save_checkpoint(&checkpoint_path, &info, len, &checkpoint)?;
            let message = epoch_message(&records, session.epochs_done());
            // A hidden bar (no terminal) drops its printouts; the log should still show epochs.
            if bar.is_hidden() {
                println!("seed {seed} {message}");
            } else {
                bar.println(message);
            }
        }
    }
    writer.sync()?;
    bar.finish_and_clear();
    results::read_records(&jsonl)
}
