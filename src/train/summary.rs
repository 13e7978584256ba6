//! From the records of several runs (seeds) of one experiment to per-arm curves and a summary:
//! mean and spread over seeds of each epoch's metrics, final and best test accuracy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EpochRecord, ExperimentSpec, Record, RunInfo, StepRecord, epochs_of, steps_of};
use crate::optim::schedule::step_position;

/// Mean, standard deviation (n − 1; 0 for one value), min and max of per-seed values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Spread {
            mean,
            sd,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n,
        })
    }
}

/// Debiased exponential moving average (TensorBoard's smoothing) with weight `weight` on the
/// past: each point is the mean of all points so far weighted by `weight^age`, so early points
/// are not dragged toward the first one.
pub fn smooth(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let mut average = 0.0;
    let mut mass = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            average = weight * average + (1.0 - weight) * y;
            mass = weight * mass + (1.0 - weight);
            (x, average / mass)
        })
        .collect()
}

/// One run's records, split by arm.
#[derive(Clone, Debug)]
pub struct Run {
    pub info: RunInfo,
    pub records: Vec<Record>,
}

impl Run {
    /// Groups result-file lines into runs: each `Run` header starts one.
    pub fn split(records: Vec<Record>) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for record in records {
            match record {
                Record::Run(info) => runs.push(Run {
                    info,
                    records: Vec::new(),
                }),
                other => {
                    if let Some(run) = runs.last_mut() {
                        run.records.push(other);
                    }
                }
            }
        }
        runs
    }

    /// Joins the shards of each seed (runs of disjoint sets of arms, `--arms`) into one run per
    /// (experiment, seed), in the order first seen. An arm trained by two runs of the same seed
    /// counts once (the first); the returned notes say so.
    pub fn merge_shards(runs: Vec<Run>) -> (Vec<Run>, Vec<String>) {
        let mut merged: Vec<Run> = Vec::new();
        let mut notes = Vec::new();
        for run in runs {
            let key = (&run.info.experiment.name, run.info.seed);
            let Some(into) = merged
                .iter_mut()
                .find(|m| (&m.info.experiment.name, m.info.seed) == key)
            else {
                merged.push(run);
                continue;
            };
            let (twice, new): (Vec<String>, Vec<String>) = run
                .info
                .trained_arms()
                .into_iter()
                .map(str::to_owned)
                .partition(|a| into.info.trains(a));
            if !twice.is_empty() {
                notes.push(format!(
                    "seed {} of '{}': {twice:?} trained more than once; counting the first",
                    run.info.seed, run.info.experiment.name
                ));
            }
            if new.is_empty() {
                continue;
            }
            let union: Vec<String> = into
                .info
                .experiment
                .arms
                .iter()
                .map(|a| a.name.clone())
                .filter(|a| into.info.trains(a) || new.contains(a))
                .collect();
            into.info.arms = (union.len() < into.info.experiment.arms.len()).then_some(union);
            if !into
                .info
                .backend
                .split(" / ")
                .any(|b| b == run.info.backend)
            {
                into.info.backend = format!("{} / {}", into.info.backend, run.info.backend);
            }
            into.records.extend(
                run.records
                    .into_iter()
                    .filter(|r| r.arm().is_some_and(|a| new.iter().any(|n| n == a))),
            );
        }
        (merged, notes)
    }

    pub fn epochs(&self, arm: &str) -> Vec<&EpochRecord> {
        epochs_of(&self.records, arm).collect()
    }

    pub fn diverged(&self, arm: &str) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::Diverged(d) if d.arm == arm))
    }

    pub fn stopped(&self, arm: &str) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::Stopped(s) if s.arm == arm))
    }
}

/// An arm across seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    pub name: String,
    pub seeds: Vec<u64>,
    pub diverged_seeds: Vec<u64>,
    /// Seeds where the arm stopped early for another reason (a matched arm whose target
    /// diverged).
    #[serde(default)]
    pub stopped_seeds: Vec<u64>,
    pub epochs_done: Vec<u64>,
    pub final_test_accuracy: Option<Spread>,
    /// (seed, epoch, accuracy) of each seed's last epoch: what paired comparisons pair.
    #[serde(default)]
    pub final_test_accuracy_per_seed: Vec<(u64, u64, f64)>,
    pub best_test_accuracy: Option<Spread>,
    pub final_train_loss: Option<Spread>,
    /// On the validation split, when the runs have one: what learning rates are selected by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_accuracy: Option<Spread>,
    /// Per epoch (from 1): the spread over the seeds that reached it.
    pub curves: Vec<EpochSpread>,
    /// The update size over the run: per stretch of steps, the spread over seeds of each
    /// seed's RMS of Δθ over those steps (empty for files without `update_rms`).
    #[serde(default)]
    pub update_size: Vec<StepSpread>,
    /// For an arm whose rate matches another's update size, the rate it took: per stretch of
    /// steps, the spread over seeds of each seed's mean lr (empty for scheduled arms, whose
    /// rate is their schedule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_lr: Vec<StepSpread>,
}

/// A spread over seeds at a position on the epoch axis (the start of a stretch of steps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSpread {
    pub position: f64,
    pub value: Spread,
}

/// How many stretches a run's steps are cut into for the per-step curves.
const STRETCHES: u64 = 200;

/// One arm's update size across seeds: per stretch and seed the RMS of Δθ over its steps (√ of
/// the mean of the per-step squares), then their spread over seeds.
fn update_size_curve(runs: &[Run], arm: &str) -> Vec<StepSpread> {
    stretch_curve(
        runs,
        arm,
        |s| s.update_rms,
        |values| (values.iter().map(|v| v * v).sum::<f64>() / values.len() as f64).sqrt(),
    )
}

/// One arm's learning rate across seeds: per stretch and seed the mean rate, then the spread.
fn lr_curve(runs: &[Run], arm: &str) -> Vec<StepSpread> {
    stretch_curve(
        runs,
        arm,
        |s| Some(s.lr),
        |values| values.iter().sum::<f64>() / values.len() as f64,
    )
}

/// A per-step value of one arm across seeds: the steps cut into about `STRETCHES` stretches;
/// per stretch and seed `combine` of the values in it, then their spread over seeds.
fn stretch_curve(
    runs: &[Run],
    arm: &str,
    value: fn(&StepRecord) -> Option<f64>,
    combine: fn(&[f64]) -> f64,
) -> Vec<StepSpread> {
    let per_seed: Vec<(u64, Vec<(u64, f64)>)> = runs
        .iter()
        .map(|run| {
            let steps = steps_of(&run.records, arm)
                .filter_map(|s| Some((s.step, value(s)?)))
                .collect();
            (run.info.steps_per_epoch, steps)
        })
        .collect();
    let last = per_seed
        .iter()
        .flat_map(|(_, steps)| steps.iter().map(|(t, _)| *t))
        .max()
        .unwrap_or(0);
    if last == 0 {
        return Vec::new();
    }
    let width = last.div_ceil(STRETCHES);
    let spe = per_seed[0].0;
    (0..last.div_ceil(width))
        .filter_map(|k| {
            let range = k * width + 1..=(k + 1) * width;
            let values: Vec<f64> = per_seed
                .iter()
                .filter_map(|(_, steps)| {
                    let inside: Vec<f64> = steps
                        .iter()
                        .filter(|(t, _)| range.contains(t))
                        .map(|(_, v)| *v)
                        .collect();
                    (!inside.is_empty()).then(|| combine(&inside))
                })
                .collect();
            Some(StepSpread {
                position: step_position(*range.start(), spe),
                value: Spread::of(&values)?,
            })
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSpread {
    pub epoch: u64,
    pub train_loss: Spread,
    pub train_accuracy: Spread,
    pub test_loss: Spread,
    pub test_accuracy: Spread,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<Spread>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<Spread>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub experiment: ExperimentSpec,
    pub arms: Vec<ArmSummary>,
    /// Where the runs computed, each once: "BACKEND on PROCESSOR" (float results reproduce bit
    /// for bit only on the same kind of processor with the same build).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub computed_on: Vec<String>,
}

/// Summarises runs of the same experiment (the first run's spec names the arms, in order).
pub fn summarize(runs: &[Run]) -> Option<Summary> {
    let experiment = runs.first()?.info.experiment.clone();
    let arms = experiment
        .arms
        .iter()
        .map(|arm| {
            let name = arm.name.as_str();
            let matched = arm.lr.target().is_some();
            // The runs that train this arm: a shard of another arm says nothing about it.
            let runs: Vec<Run> = runs
                .iter()
                .filter(|r| r.info.trains(name))
                .cloned()
                .collect();
            let runs = &runs[..];
            let per_seed: Vec<(u64, Vec<&EpochRecord>)> =
                runs.iter().map(|r| (r.info.seed, r.epochs(name))).collect();
            let last = |f: fn(&EpochRecord) -> f64| -> Vec<f64> {
                per_seed
                    .iter()
                    .filter_map(|(_, e)| e.last().map(|e| f(e)))
                    .collect()
            };
            let best: Vec<f64> = per_seed
                .iter()
                .filter(|(_, e)| !e.is_empty())
                .map(|(_, e)| e.iter().map(|e| e.test_accuracy).fold(f64::MIN, f64::max))
                .collect();
            let max_epoch = per_seed.iter().map(|(_, e)| e.len()).max().unwrap_or(0);
            let curves = (0..max_epoch)
                .filter_map(|i| {
                    let at: Vec<&EpochRecord> = per_seed
                        .iter()
                        .filter_map(|(_, e)| e.get(i).copied())
                        .collect();
                    let spread = |f: fn(&EpochRecord) -> f64| {
                        Spread::of(&at.iter().map(|e| f(e)).collect::<Vec<_>>())
                    };
                    let val_spread = |f: fn(&EpochRecord) -> Option<f64>| {
                        Spread::of(&at.iter().filter_map(|e| f(e)).collect::<Vec<_>>())
                    };
                    Some(EpochSpread {
                        epoch: at.first()?.epoch,
                        train_loss: spread(|e| e.train_loss)?,
                        train_accuracy: spread(|e| e.train_accuracy)?,
                        test_loss: spread(|e| e.test_loss)?,
                        test_accuracy: spread(|e| e.test_accuracy)?,
                        val_loss: val_spread(|e| e.val_loss),
                        val_accuracy: val_spread(|e| e.val_accuracy),
                    })
                })
                .collect();
            ArmSummary {
                name: name.to_owned(),
                seeds: runs.iter().map(|r| r.info.seed).collect(),
                diverged_seeds: runs
                    .iter()
                    .filter(|r| r.diverged(name))
                    .map(|r| r.info.seed)
                    .collect(),
                stopped_seeds: runs
                    .iter()
                    .filter(|r| r.stopped(name))
                    .map(|r| r.info.seed)
                    .collect(),
                epochs_done: per_seed.iter().map(|(_, e)| e.len() as u64).collect(),
                final_test_accuracy: Spread::of(&last(|e| e.test_accuracy)),
                final_test_accuracy_per_seed: per_seed
                    .iter()
                    .filter_map(|(seed, e)| e.last().map(|e| (*seed, e.epoch, e.test_accuracy)))
                    .collect(),
                best_test_accuracy: Spread::of(&best),
                final_train_loss: Spread::of(&last(|e| e.train_loss)),
                final_val_accuracy: Spread::of(
                    &per_seed
                        .iter()
                        .filter_map(|(_, e)| e.last()?.val_accuracy)
                        .collect::<Vec<_>>(),
                ),
                curves,
                update_size: update_size_curve(runs, name),
                matched_lr: if matched {
                    lr_curve(runs, name)
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let mut computed_on: Vec<String> = Vec::new();
    for run in runs {
        let place = match &run.info.processor {
            Some(processor) => format!("{} on {processor}", run.info.backend),
            None => run.info.backend.clone(),
        };
        if !computed_on.contains(&place) {
            computed_on.push(place);
        }
    }
    Some(Summary {
        experiment,
        arms,
        computed_on,
    })
}

/// One arm's final test accuracy minus the reference arm's, paired by seed: arms share a
/// seed's initial weights and batches, so the per-seed difference removes that variation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub arm: String,
    pub reference: String,
    /// Seeds where both arms reached the same last epoch without diverging.
    pub seeds: Vec<u64>,
    pub mean: f64,
    /// The 95 % confidence interval of the mean difference (paired t, n − 1 degrees of
    /// freedom); `None` with a single seed.
    pub ci95: Option<(f64, f64)>,
    /// The two-sided p-value of the paired t test of a zero mean difference; `None` with a
    /// single seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
}

/// Mean and 95 % confidence interval of paired differences (Student's t with n − 1 degrees of
/// freedom); no interval for fewer than two values.
pub fn paired_t_interval(differences: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let spread = Spread::of(differences)?;
    if spread.n < 2 {
        return Some((spread.mean, None));
    }
    let t = StudentsT::new(0.0, 1.0, (spread.n - 1) as f64)
        .ok()?
        .inverse_cdf(0.975);
    let half = t * spread.sd / (spread.n as f64).sqrt();
    Some((spread.mean, Some((spread.mean - half, spread.mean + half))))
}

/// A spread of fractions as percent: "mean ± sd" over several seeds, the mean for one.
pub(crate) fn percent(spread: &Option<Spread>) -> String {
    match spread {
        Some(s) if s.n > 1 => format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.sd),
        Some(s) => format!("{:.2}", 100.0 * s.mean),
        None => "—".into(),
    }
}

/// A signed difference of fractions in percentage points.
pub(crate) fn points(difference: f64) -> String {
    format!("{:+.2}", 100.0 * difference)
}

/// A paired difference's 95 % interval in percentage points, or why there is none.
pub(crate) fn interval_points(ci95: Option<(f64, f64)>) -> String {
    match ci95 {
        Some((low, high)) => format!("[{}, {}]", points(low), points(high)),
        None => "n = 1: no interval".into(),
    }
}

/// The two-sided p-value of a paired t test of a zero mean (n − 1 degrees of freedom); `None`
/// for fewer than two values. Identical differences give 0 (or 1 when all are 0).
pub fn paired_t_p_value(differences: &[f64]) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let spread = Spread::of(differences)?;
    if spread.n < 2 {
        return None;
    }
    if spread.sd == 0.0 {
        return Some(if spread.mean == 0.0 { 1.0 } else { 0.0 });
    }
    let t = spread.mean / (spread.sd / (spread.n as f64).sqrt());
    let distribution = StudentsT::new(0.0, 1.0, (spread.n - 1) as f64).ok()?;
    Some(2.0 * distribution.cdf(-t.abs()))
}

impl Summary {
    /// Every other arm against `reference` (an arm's name): final test accuracy differences.
    pub fn paired_differences(&self, reference: &str) -> Result<Vec<PairedDifference>, String> {
        let find = |name: &str| self.arms.iter().find(|a| a.name == name);
        let base = find(reference).ok_or_else(|| {
            format!(
                "no arm named '{reference}'; the arms are {}",
                self.arms
                    .iter()
                    .map(|a| format!("'{}'", a.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let usable = |arm: &ArmSummary| -> BTreeMap<u64, (u64, f64)> {
            arm.final_test_accuracy_per_seed
                .iter()
                .filter(|(seed, _, _)| {
                    !arm.diverged_seeds.contains(seed) && !arm.stopped_seeds.contains(seed)
                })
                .map(|&(seed, epoch, accuracy)| (seed, (epoch, accuracy)))
                .collect()
        };
        let base_finals = usable(base);
        Ok(self
            .arms
            .iter()
            .filter(|arm| arm.name != reference)
            .filter_map(|arm| {
                let pairs: Vec<(u64, f64)> = usable(arm)
                    .into_iter()
                    .filter_map(|(seed, (epoch, accuracy))| {
                        let (base_epoch, base_accuracy) = base_finals.get(&seed)?;
                        (*base_epoch == epoch).then_some((seed, accuracy - base_accuracy))
                    })
                    .collect();
                let differences: Vec<f64> = pairs.iter().map(|(_, d)| *d).collect();
                let (mean, ci95) = paired_t_interval(&differences)?;
                Some(PairedDifference {
                    arm: arm.name.clone(),
                    reference: reference.to_owned(),
                    seeds: pairs.iter().map(|(seed, _)| *seed).collect(),
                    mean,
                    ci95,
                    p_value: paired_t_p_value(&differences),
                })
            })
            .collect())
    }

    /// The paired differences as a Markdown table, in percentage points.
    pub fn paired_markdown(&self, reference: &str) -> Result<String, String> {
        let mut out = format!(
            "| final test acc − {reference} (pp) | mean difference | 95 % CI (paired t) | seeds |\n|---|---|---|---|\n"
        );
        for d in self.paired_differences(reference)? {
            out += &format!(
                "| {} | {} | {} | {} |\n",
                d.arm,
                points(d.mean),
                interval_points(d.ci95),
                d.seeds.len()
            );
        }
        Ok(out)
    }

    /// Where the runs computed, as a Markdown line (empty when unknown).
    pub fn provenance_markdown(&self) -> String {
        if self.computed_on.is_empty() {
            return String::new();
        }
        format!("\nComputed on: {}.\n", self.computed_on.join("; "))
    }

    /// A Markdown table: final and best test accuracy (mean ± sd over seeds), final train loss.
    pub fn markdown(&self) -> String {
        let pct = percent;
        let loss = |s: &Option<Spread>| match s {
            Some(s) if s.n > 1 => format!("{:.4} ± {:.4}", s.mean, s.sd),
            Some(s) => format!("{:.4}", s.mean),
            None => "—".into(),
        };
        let validated = self.arms.iter().any(|a| a.final_val_accuracy.is_some());
        let val_header = if validated { " final val acc % |" } else { "" };
        let mut out = format!(
            "| {} |{val_header} final test acc % | best test acc % | final train loss | seeds | epochs |\n|---|{}---|---|---|---|---|\n",
            self.experiment.name,
            if validated { "---|" } else { "" }
        );
        for arm in &self.arms {
            let mut diverged = String::new();
            if !arm.diverged_seeds.is_empty() {
                diverged += &format!(" (diverged: {:?})", arm.diverged_seeds);
            }
            if !arm.stopped_seeds.is_empty() {
                diverged += &format!(" (stopped: {:?})", arm.stopped_seeds);
            }
            let epochs: BTreeMap<u64, usize> =
                arm.epochs_done.iter().fold(BTreeMap::new(), |mut m, e| {
                    *m.entry(*e).or_default() += 1;
                    m
                });
            let val = if validated {
                format!(" {} |", pct(&arm.final_val_accuracy))
            } else {
                String::new()
            };
            out += &format!(
                "| {}{} |{val} {} | {} | {} | {} | {} |\n",
                arm.name,
                diverged,
                pct(&arm.final_test_accuracy),
                pct(&arm.best_test_accuracy),
                loss(&arm.final_train_loss),
                arm.seeds.len(),
                epochs
                    .keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::spec::fixtures::spec;

    /// A whole run's header: 2 steps per epoch, 16 training and 8 test images.
    fn run_info(experiment: &ExperimentSpec, seed: u64) -> RunInfo {
        RunInfo::example(experiment.clone(), seed, 2, 16, 8)
    }

    #[test]
    fn shards_of_a_seed_merge_into_one_run_and_a_missing_arm_has_no_seed() {
        use crate::train::ArmSpec;
        let arm = |name: &str| -> ArmSpec {
            toml::from_str(&format!(
                "name = \"{name}\"\noptimizer = {{ kind = \"sgdm\" }}\nlr = {{ base = 0.1 }}"
            ))
            .unwrap()
        };
        let experiment = ExperimentSpec {
            arms: vec![arm("A"), arm("B"), arm("C")],
            ..spec(Vec::new(), 1)
        };
        let epoch = |arm: &str, accuracy: f64| {
            Record::Epoch(EpochRecord {
                arm: arm.into(),
                epoch: 1,
                step: 2,
                train_loss: 1.0,
                train_accuracy: 0.5,
                test_loss: 1.0,
                test_accuracy: accuracy,
                val_loss: None,
                val_accuracy: None,
                wall_seconds: 1.0,
                images_per_second: 1.0,
            })
        };
        let shard = |seed: u64, arms: &[&str], accuracy: f64| Run {
            info: RunInfo {
                arms: Some(arms.iter().map(|a| a.to_string()).collect()),
                ..run_info(&experiment, seed)
            },
            records: arms.iter().map(|a| epoch(a, accuracy)).collect(),
        };
        // Seed 0 in three shards (A given twice), seed 1 without C's shard.
        let (runs, notes) = Run::merge_shards(vec![
            shard(0, &["A"], 0.5),
            shard(1, &["A", "B"], 0.7),
            shard(0, &["B", "C"], 0.6),
            shard(0, &["A"], 0.9),
        ]);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].info.arms, None, "seed 0 has every arm");
        assert_eq!(runs[0].records.len(), 3);
        assert_eq!(runs[1].info.arms, Some(vec!["A".into(), "B".into()]));
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("[\"A\"] trained more than once"),
            "{}",
            notes[0]
        );

        let summary = summarize(&runs).unwrap();
        let seeds = |i: usize| summary.arms[i].seeds.clone();
        assert_eq!(
            (seeds(0), seeds(1), seeds(2)),
            (vec![0, 1], vec![0, 1], vec![0])
        );
        // A: the first shard's 0.5 counts, not the duplicate's 0.9.
        assert!((summary.arms[0].final_test_accuracy.as_ref().unwrap().mean - 0.6).abs() < 1e-12);
    }

    #[test]
    fn smoothing_is_a_debiased_ema() {
        let s = smooth(&[(1.0, 1.0), (2.0, 3.0), (3.0, 3.0)], 0.5);
        // Weights 0.5^age: (1), (0.5·1 + 3)/1.5, (0.25·1 + 0.5·3 + 3)/1.75.
        let expected = [1.0, 3.5 / 1.5, 4.75 / 1.75];
        for ((x, y), (i, e)) in s.iter().zip(expected.iter().enumerate()) {
            assert_eq!(*x, i as f64 + 1.0);
            assert!((y - e).abs() < 1e-12, "{y} vs {e}");
        }
    }

    #[test]
    fn paired_interval_matches_a_hand_computed_t_interval() {
        // Differences 0.01, 0.02, 0.04 over 3 seeds: mean 0.07/3, sample sd √(0.00046667/2),
        // t(0.975, 2 df) = 4.302652729749464 (tables: 4.303).
        let (mean, ci) = paired_t_interval(&[0.01, 0.02, 0.04]).unwrap();
        let sd = ((0.01f64 - 0.07 / 3.0).powi(2)
            + (0.02f64 - 0.07 / 3.0).powi(2)
            + (0.04f64 - 0.07 / 3.0).powi(2))
            / 2.0;
        let half = 4.302652729749464 * sd.sqrt() / 3f64.sqrt();
        assert!((mean - 0.07 / 3.0).abs() < 1e-12);
        let (low, high) = ci.unwrap();
        assert!((low - (0.07 / 3.0 - half)).abs() < 1e-9, "{low}");
        assert!((high - (0.07 / 3.0 + half)).abs() < 1e-9, "{high}");
        // By hand: half-width 0.037946 → [−0.014613, 0.061279].
        assert!((low + 0.014613).abs() < 1e-6 && (high - 0.061279).abs() < 1e-6);
        assert_eq!(paired_t_interval(&[0.03]), Some((0.03, None)));
        assert_eq!(paired_t_interval(&[]), None);
    }

    #[test]
    fn paired_p_value_matches_the_closed_form_for_two_degrees_of_freedom() {
        // The same differences: t = mean / (sd/√3) = √7 exactly; with 2 df the t CDF is
        // 1/2 + t/(2√(2 + t²)), so p = 1 − t/√(2 + t²) = 1 − √7/3.
        let p = paired_t_p_value(&[0.01, 0.02, 0.04]).unwrap();
        assert!((p - (1.0 - 7f64.sqrt() / 3.0)).abs() < 1e-9, "{p}");
        assert_eq!(paired_t_p_value(&[-0.01, -0.02, -0.04]), Some(p));
        assert_eq!(paired_t_p_value(&[0.03]), None);
        assert_eq!(paired_t_p_value(&[0.02, 0.02]), Some(0.0));
        assert_eq!(paired_t_p_value(&[0.0, 0.0]), Some(1.0));
    }

    fn arm(name: &str, finals: &[(u64, u64, f64)], diverged: &[u64]) -> ArmSummary {
        ArmSummary {
            name: name.into(),
            seeds: finals.iter().map(|f| f.0).collect(),
            diverged_seeds: diverged.to_vec(),
            stopped_seeds: Vec::new(),
            epochs_done: finals.iter().map(|f| f.1).collect(),
            final_test_accuracy: None,
            final_test_accuracy_per_seed: finals.to_vec(),
            best_test_accuracy: None,
            final_train_loss: None,
            final_val_accuracy: None,
            curves: Vec::new(),
            update_size: Vec::new(),
            matched_lr: Vec::new(),
        }
    }

    #[test]
    fn paired_differences_pair_by_seed_and_skip_what_cannot_pair() {
        let experiment = spec(Vec::new(), 2);
        let summary = Summary {
            experiment,
            arms: vec![
                arm("SGDM", &[(0, 2, 0.50), (1, 2, 0.60), (2, 2, 0.55)], &[]),
                // Seed order differs from the reference's: pairing is by seed, not position.
                arm("Adam", &[(2, 2, 0.56), (0, 2, 0.52), (1, 2, 0.61)], &[]),
                // Seed 1 diverged, seed 2 stopped at epoch 1: only seed 0 pairs.
                arm("AdaExp", &[(0, 2, 0.58), (1, 1, 0.1), (2, 1, 0.4)], &[1]),
            ],
            computed_on: Vec::new(),
        };
        let d = summary.paired_differences("SGDM").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].seeds, vec![0, 1, 2]);
        assert!((d[0].mean - (0.02 + 0.01 + 0.01) / 3.0).abs() < 1e-12);
        assert!(d[0].ci95.is_some());
        assert_eq!((d[1].seeds.clone(), d[1].ci95), (vec![0], None));
        let table = summary.paired_markdown("SGDM").unwrap();
        assert!(
            table.contains("| AdaExp | +8.00 | n = 1: no interval | 1 |"),
            "{table}"
        );
        let err = summary.paired_differences("Nope").unwrap_err();
        assert!(err.contains("'Nope'") && err.contains("'SGDM'"), "{err}");
    }

    #[test]
    fn update_size_is_the_rms_over_each_stretch_then_spread_over_seeds() {
        use crate::train::StepRecord;
        let experiment = spec(Vec::new(), 1);
        let run = |seed: u64, sizes: &[f64]| Run {
            info: run_info(&experiment, seed),
            records: sizes
                .iter()
                .enumerate()
                .map(|(i, &rms)| {
                    Record::Step(StepRecord {
                        arm: "A".into(),
                        step: i as u64 + 1,
                        epoch: 1,
                        loss: 1.0,
                        p: None,
                        lr: rms / 10.0,
                        update_rms: Some(rms),
                    })
                })
                .collect(),
        };
        // 4 steps, one stretch per step (4 < 200 points).
        let curve = update_size_curve(
            &[run(0, &[1.0, 2.0, 3.0, 4.0]), run(1, &[3.0, 2.0, 1.0, 0.0])],
            "A",
        );
        assert_eq!(curve.len(), 4);
        assert_eq!(curve[0].position, 0.0);
        assert_eq!(curve[2].position, 1.0);
        assert_eq!(
            (curve[0].value.mean, curve[0].value.min, curve[0].value.max),
            (2.0, 1.0, 3.0)
        );
        // 400 steps: stretches of 2 steps, each the RMS of its two step sizes.
        let long: Vec<f64> = (0..400)
            .map(|i| if i % 2 == 0 { 3.0 } else { 4.0 })
            .collect();
        let curve = update_size_curve(&[run(0, &long)], "A");
        assert_eq!(curve.len(), 200);
        assert!((curve[7].value.mean - ((9.0 + 16.0) / 2.0f64).sqrt()).abs() < 1e-12);
        assert!(update_size_curve(&[run(0, &long)], "B").is_empty());
        // The rate is averaged, not root-mean-squared: (0.3 + 0.4) / 2.
        let rates = lr_curve(&[run(0, &long)], "A");
        assert!((rates[7].value.mean - 0.35).abs() < 1e-12);
    }

    #[test]
    fn spread_matches_hand_computation() {
        let s = Spread::of(&[0.8, 0.9, 1.0]).unwrap();
        assert!((s.mean - 0.9).abs() < 1e-12);
        // Sample sd of (−0.1, 0, 0.1): sqrt(0.02 / 2) = 0.1.
        assert!((s.sd - 0.1).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.n), (0.8, 1.0, 3));
        assert_eq!(Spread::of(&[0.5]).unwrap().sd, 0.0);
        assert!(Spread::of(&[]).is_none());
    }
}
