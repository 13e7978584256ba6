//! From the records of several runs (seeds) of one experiment to per-arm curves and a summary:
//! mean and spread over seeds of each epoch's metrics, final and best test accuracy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EpochRecord, ExperimentSpec, Record, RunInfo};

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

    pub fn epochs(&self, arm: &str) -> Vec<&EpochRecord> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Epoch(e) if e.arm == arm => Some(e),
                _ => None,
            })
            .collect()
    }

    pub fn diverged(&self, arm: &str) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::Diverged(d) if d.arm == arm))
    }
}

/// An arm across seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    pub name: String,
    pub seeds: Vec<u64>,
    pub diverged_seeds: Vec<u64>,
    pub epochs_done: Vec<u64>,
    pub final_test_accuracy: Option<Spread>,
    pub best_test_accuracy: Option<Spread>,
    pub final_train_loss: Option<Spread>,
    /// Per epoch (from 1): the spread over the seeds that reached it.
    pub curves: Vec<EpochSpread>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSpread {
    pub epoch: u64,
    pub train_loss: Spread,
    pub train_accuracy: Spread,
    pub test_loss: Spread,
    pub test_accuracy: Spread,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub experiment: ExperimentSpec,
    pub arms: Vec<ArmSummary>,
}

/// Summarises runs of the same experiment (the first run's spec names the arms, in order).
pub fn summarize(runs: &[Run]) -> Option<Summary> {
    let experiment = runs.first()?.info.experiment.clone();
    let arms = experiment
        .arms
        .iter()
        .map(|arm| {
            let name = arm.name.as_str();
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
                    Some(EpochSpread {
                        epoch: at.first()?.epoch,
                        train_loss: spread(|e| e.train_loss)?,
                        train_accuracy: spread(|e| e.train_accuracy)?,
                        test_loss: spread(|e| e.test_loss)?,
                        test_accuracy: spread(|e| e.test_accuracy)?,
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
                epochs_done: per_seed.iter().map(|(_, e)| e.len() as u64).collect(),
                final_test_accuracy: Spread::of(&last(|e| e.test_accuracy)),
                best_test_accuracy: Spread::of(&best),
                final_train_loss: Spread::of(&last(|e| e.train_loss)),
                curves,
            }
        })
        .collect();
    Some(Summary { experiment, arms })
}

impl Summary {
    /// A Markdown table: final and best test accuracy (mean ± sd over seeds), final train loss.
    pub fn markdown(&self) -> String {
        let pct = |s: &Option<Spread>| match s {
            Some(s) if s.n > 1 => format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.sd),
            Some(s) => format!("{:.2}", 100.0 * s.mean),
            None => "—".into(),
        };
        let loss = |s: &Option<Spread>| match s {
            Some(s) if s.n > 1 => format!("{:.4} ± {:.4}", s.mean, s.sd),
            Some(s) => format!("{:.4}", s.mean),
            None => "—".into(),
        };
        let mut out = format!(
            "| {} | final test acc % | best test acc % | final train loss | seeds | epochs |\n|---|---|---|---|---|---|\n",
            self.experiment.name
        );
        for arm in &self.arms {
            let diverged = if arm.diverged_seeds.is_empty() {
                String::new()
            } else {
                format!(" (diverged: {:?})", arm.diverged_seeds)
            };
            let epochs: BTreeMap<u64, usize> =
                arm.epochs_done.iter().fold(BTreeMap::new(), |mut m, e| {
                    *m.entry(*e).or_default() += 1;
                    m
                });
            out += &format!(
                "| {}{} | {} | {} | {} | {} | {} |\n",
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
