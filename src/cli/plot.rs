//! `adaexp plot`: result files, folders and sweeps (`cli::figures` draws them), and the
//! summary table with the paired differences and, for a tuned study, the rates chosen.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

pub use super::figures::plot_runs;
use super::results::{read_records, result_files};
use super::sweep;
use super::write_atomic;
use crate::train::selection::Selection;
use crate::train::summary::{Run, Summary};

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Result files (.jsonl) or directories holding them.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Where to write the figures [default: the first directory given, else the current one].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The arm the others are compared with, seed by seed [default: the first arm].
    #[arg(long, value_name = "NAME")]
    reference: Option<String>,
}

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    run_paths(&args.paths, args.out.as_deref(), args.reference.as_deref())
}

/// Plots result files and folders; a sweep's folder (`adaexp sweep`) stands for all of its
/// shards, and every shard not finished is listed beside the summary, never left out quietly.
pub fn run_paths(
    paths: &[PathBuf],
    out: Option<&Path>,
    reference: Option<&str>,
) -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut shards = String::new();
    for path in paths {
        if path.is_dir() && sweep::is_sweep(path) {
            let (found, states) = sweep::merge_inputs(path)?;
            let unfinished: Vec<_> = states.into_iter().filter(|s| !s.finished).collect();
            if !unfinished.is_empty() {
                shards += &format!(
                    "\nNot finished: {} of the sweep's shards; the table above covers only what they wrote so far.\n\n{}",
                    unfinished.len(),
                    sweep::states_markdown(&unfinished)
                );
            }
            if found.is_empty() {
                print!("{shards}");
                bail!("{}: no shard of this sweep has results yet", path.display());
            }
            files.extend(found);
        } else {
            files.extend(result_files(std::slice::from_ref(path))?);
        }
    }
    let mut runs = Vec::new();
    for file in &files {
        runs.extend(Run::split(read_records(file)?));
    }
    let runs = unique_runs(runs);
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        paths
            .iter()
            .find(|p| p.is_dir())
            .cloned()
            .unwrap_or_else(|| PathBuf::from("."))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for (prefix, summary) in plot_runs(&runs, &out)? {
        report(&summary, &out, &prefix, reference, &shards)?;
    }
    println!("figures in {}", out.display());
    Ok(())
}

/// Each (experiment, seed) once, its shards (`run --arms`) joined: the same file given twice
/// (as itself and inside its folder), or two copies of one run, must not count as two seeds.
/// The first one read is kept.
pub fn unique_runs(runs: Vec<Run>) -> Vec<Run> {
    let mut seen = std::collections::HashSet::new();
    let runs = runs
        .into_iter()
        .filter(|run| {
            let fresh = seen.insert((
                run.info.experiment.name.clone(),
                run.info.seed,
                run.info.arms.clone(),
            ));
            if !fresh {
                eprintln!(
                    "note: seed {} of '{}' was given more than once; counting it once",
                    run.info.seed, run.info.experiment.name
                );
            }
            fresh
        })
        .collect();
    let (merged, notes) = Run::merge_shards(runs);
    for note in notes {
        eprintln!("note: {note}");
    }
    merged
}

/// Prints the summary table and the paired differences against `reference` (default: the
/// first arm) and writes them as `{prefix}summary.md`.
pub fn report(
    summary: &Summary,
    out: &Path,
    prefix: &str,
    reference: Option<&str>,
    notes: &str,
) -> anyhow::Result<()> {
    let selection = Selection::of(summary);
    // A family's name stands for the arm chosen in it.
    let arm_reference = match reference {
        None => summary.arms[0].name.as_str(),
        Some(name) if summary.arms.iter().any(|a| a.name == name) => name,
        Some(name) => selection
            .as_ref()
            .and_then(|s| s.selected(name))
            .unwrap_or(name),
    };
    let paired = summary
        .paired_markdown(arm_reference)
        .map_err(|e| anyhow::anyhow!("--reference: {e}"))?;
    let tuned = match selection {
        Some(selection) => {
            // The reference names a family, or an arm of one.
            match reference {
                Some(name) => {
                    let family = summary
                        .experiment
                        .arms
                        .iter()
                        .find(|a| a.name == name)
                        .map_or(name, |a| a.family());
                    selection
                        .markdown(summary, family)
                        .map_err(|e| anyhow::anyhow!("--reference: {e}"))?
                }
                // The first family with a chosen arm: a shard (`run --arms`) may hold none of
                // the experiment's first family, and a summary must not fail a finished run.
                None => selection
                    .families
                    .iter()
                    .find(|f| f.selected.is_some())
                    .and_then(|f| selection.markdown(summary, &f.family).ok())
                    .unwrap_or_default(),
            }
        }
        None => String::new(),
    };
    let table = format!(
        "{}{}\n{paired}{tuned}{notes}",
        summary.markdown(),
        summary.provenance_markdown()
    );
    write_atomic(&out.join(format!("{prefix}summary.md")), table.as_bytes())?;
    println!("\n{table}");
    Ok(())
}
