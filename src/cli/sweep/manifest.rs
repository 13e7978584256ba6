//! The sweep folder: `experiment.toml` and `sweep.json` (its shards and the jobs submitted),
//! created once and checked when the same sweep is submitted again.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::options::Engine;
use crate::cli::{experiment, write_atomic};
use crate::train::ExperimentSpec;

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

pub(super) const MANIFEST: &str = "sweep.json";

pub(super) const EXPERIMENT: &str = "experiment.toml";

pub(super) const EXIT_CODE: &str = "exit-code";

/// Creates (or checks) the sweep folder: a folder of another experiment, or of the same one cut
/// into other shards, is refused; the same sweep again continues it.
pub(super) fn prepare(
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

pub(super) fn write_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
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
