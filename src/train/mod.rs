//! The multi-arm trainer: N arms share the initial weights and the batch order; a step-driven
//! session (`step()` does one batch for every arm) lets the page yield between steps and the
//! CLI loop; every step and epoch produces metric records.

pub mod export;
pub mod selection;
#[cfg(feature = "train")]
mod session;
pub mod spec;
pub mod summary;

use serde::{Deserialize, Serialize};

#[cfg(feature = "train")]
pub use session::{
    ArmCheckpoint, ArmState, ArmStatus, Checkpoint, EpochTotals, Progress, Session, TrainError,
};
pub use spec::{ArmLr, ArmSpec, ExperimentSpec, Planned};

/// One line of a result file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The first line: what ran.
    Run(RunInfo),
    Step(StepRecord),
    Epoch(EpochRecord),
    Diverged(DivergedRecord),
    Stopped(StoppedRecord),
}

/// What a result file describes: one run (one seed) of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub experiment: ExperimentSpec,
    pub seed: u64,
    /// The device the run trained on, in words.
    pub backend: String,
    pub steps_per_epoch: u64,
    pub train_images: usize,
    pub test_images: usize,
    /// Images of the validation split (0: none, as in files written before it existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub val_images: usize,
    /// The processor the run computed on, where it is known (the CPU backend's float results
    /// depend on it; `None` in files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor: Option<String>,
    /// The arms this file trains when it is a shard of the experiment (`--arms`); `None`: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arms: Option<Vec<String>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RunInfo {
    /// The names of the arms this run trains, in the experiment's order.
    pub fn trained_arms(&self) -> Vec<&str> {
        self.experiment
            .arms
            .iter()
            .map(|a| a.name.as_str())
            .filter(|a| self.trains(a))
            .collect()
    }

    /// Whether this run trains the arm named `arm` (a whole run trains all of its experiment's).
    pub fn trains(&self, arm: &str) -> bool {
        self.arms
            .as_ref()
            .is_none_or(|arms| arms.iter().any(|a| a == arm))
    }
}

impl Record {
    pub fn as_step(&self) -> Option<&StepRecord> {
        match self {
            Record::Step(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_epoch(&self) -> Option<&EpochRecord> {
        match self {
            Record::Epoch(e) => Some(e),
            _ => None,
        }
    }

    /// The arm a metric record belongs to (`None` for the run header).
    pub fn arm(&self) -> Option<&str> {
        match self {
            Record::Run(_) => None,
            Record::Step(r) => Some(&r.arm),
            Record::Epoch(r) => Some(&r.arm),
            Record::Diverged(r) => Some(&r.arm),
            Record::Stopped(r) => Some(&r.arm),
        }
    }
}

/// The step records among `records`, in order.
pub fn steps(records: &[Record]) -> impl DoubleEndedIterator<Item = &StepRecord> {
    records.iter().filter_map(Record::as_step)
}

/// The epoch records among `records`, in order.
pub fn epochs(records: &[Record]) -> impl DoubleEndedIterator<Item = &EpochRecord> {
    records.iter().filter_map(Record::as_epoch)
}

/// `arm`'s step records, in order.
pub fn steps_of<'a: 'b, 'b>(
    records: &'a [Record],
    arm: &'b str,
) -> impl DoubleEndedIterator<Item = &'a StepRecord> + 'b {
    steps(records).filter(move |s| s.arm == arm)
}

/// `arm`'s epoch records, in order.
pub fn epochs_of<'a: 'b, 'b>(
    records: &'a [Record],
    arm: &'b str,
) -> impl DoubleEndedIterator<Item = &'a EpochRecord> + 'b {
    epochs(records).filter(move |e| e.arm == arm)
}

/// After one optimizer step of one arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub arm: String,
    /// Optimizer step, from 1.
    pub step: u64,
    /// Epoch the step belongs to, from 1.
    pub epoch: u64,
    /// Training loss of the batch, before the update.
    pub loss: f64,
    /// Exponent used in the update (`None` for SGDM).
    pub p: Option<f64>,
    pub lr: f64,
    /// Root-mean-square of this step's parameter change Δθ over all of the arm's parameters
    /// (`None` in files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_rms: Option<f64>,
}

/// At the end of an epoch, per arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub arm: String,
    pub epoch: u64,
    pub step: u64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// On the validation split, when the experiment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Wall time of the whole epoch (all arms and evaluation).
    pub wall_seconds: f64,
    /// Training images per second of this arm's own steps.
    pub images_per_second: f64,
}

#[cfg(test)]
impl RunInfo {
    /// A run header for tests: `experiment`'s `seed` on the CPU, all arms, no validation split.
    pub(crate) fn example(
        experiment: ExperimentSpec,
        seed: u64,
        steps_per_epoch: u64,
        train_images: usize,
        test_images: usize,
    ) -> Self {
        RunInfo {
            experiment,
            seed,
            backend: "cpu".into(),
            steps_per_epoch,
            train_images,
            test_images,
            val_images: 0,
            processor: None,
            arms: None,
        }
    }
}

#[cfg(test)]
impl EpochRecord {
    /// An epoch record for tests: `arm`'s `epoch` with these accuracy and loss, the rest fixed.
    pub(crate) fn example(arm: &str, epoch: u64, test_accuracy: f64, train_loss: f64) -> Self {
        EpochRecord {
            arm: arm.into(),
            epoch,
            step: epoch * 10,
            train_loss,
            train_accuracy: 0.5,
            test_loss: 1.0,
            test_accuracy,
            val_loss: None,
            val_accuracy: None,
            wall_seconds: 1.0,
            images_per_second: 100.0,
        }
    }
}

/// An arm stopped because its loss stopped being finite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DivergedRecord {
    pub arm: String,
    pub epoch: u64,
    pub step: u64,
    /// `NaN`, `inf` or `-inf` (JSON has no such numbers).
    pub loss: String,
}

/// An arm stopped for a reason other than its own loss (a matched arm whose target stopped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoppedRecord {
    pub arm: String,
    pub epoch: u64,
    /// The step it did not take.
    pub step: u64,
    pub reason: String,
}

#[cfg(test)]
pub(crate) mod tests;
