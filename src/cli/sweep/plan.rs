//! A sweep's shards, what each task runs, and how much training they add up to.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::manifest::Shard;
use super::options::ShardBy;
use crate::cli::backend::Backend;
use crate::cli::layout::shard_dir;
use crate::train::ExperimentSpec;

/// Evaluating an image (forward only, no gradients) costs about a third of training on it.
pub(super) const EVALUATION_COST: f64 = 1.0 / 3.0;

/// How much training a sweep asks for, and at `images_per_second` per arm, how many
/// device-hours: every arm of every seed trains each epoch's images, then evaluates the
/// validation and test images.
pub(super) fn size_of_sweep(
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

/// The shards of `spec`: per seed, one per group of arms that can train apart, or one.
pub(super) fn shards(spec: &ExperimentSpec, by: ShardBy) -> Vec<Shard> {
    let groups: Vec<Option<Vec<String>>> = match by {
        ShardBy::Arm => spec.arm_groups().into_iter().map(Some).collect(),
        ShardBy::Seed => vec![None],
    };
    let mut shards = Vec::new();
    for &seed in &spec.seeds {
        for arms in &groups {
            shards.push(Shard {
                seed,
                arms: arms.clone(),
                dir: shard_dir(shards.len(), seed, arms.as_deref()),
            });
        }
    }
    shards
}

/// The `adaexp run` arguments of a shard (after `run EXPERIMENT`).
pub(super) fn shard_args(shard: &Shard) -> Vec<String> {
    let mut args = vec!["--seeds".to_owned(), shard.seed.to_string()];
    // One flag per arm: `run` takes each value as a whole name first, so commas in names pass.
    for arm in shard.arms.iter().flatten() {
        args.push("--arms".into());
        args.push(arm.clone());
    }
    args
}

/// Everything a task needs to run a shard besides the shard itself.
pub(super) struct Task {
    pub(super) exe: PathBuf,
    pub(super) experiment: PathBuf,
    pub(super) data: PathBuf,
    pub(super) backend: Backend,
}

impl Task {
    pub(super) fn args(&self, dir: &Path, shard: &Shard) -> Vec<String> {
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

pub(super) fn describe(shard: &Shard) -> String {
    match &shard.arms {
        Some(arms) => arms.join(" + "),
        None => "all arms".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::experiment;
    use crate::cli::sweep::options::positive_rate;

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
                let named = experiment::arm_names(&spec, &passed);
                assert_eq!(&named, arms, "{name}");
                spec.select_arms(&named).unwrap();
            }
        }
    }
}
