//! `ExperimentSpec`: dataset, subset sizes, model, arms, epochs, seeds. One TOML file per
//! experiment (see `experiments/`); result files carry it too.

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::model::ModelSpec;
use crate::optim::{Length, LrDecay, LrSchedule, OptimizerSpec, SpecError};

/// One optimizer run inside a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    pub name: String,
    pub optimizer: OptimizerSpec,
    pub lr: ArmLr,
}

/// An arm's learning rate: a schedule, or `{ match_update_of = "NAME" }`: at every step the
/// rate that makes this arm's update RMS equal the named arm's at the same step (the control
/// that gives one optimizer's direction another's step size).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "RawArmLr")]
pub enum ArmLr {
    Schedule(LrSchedule),
    Matched { match_update_of: String },
}

impl From<LrSchedule> for ArmLr {
    fn from(schedule: LrSchedule) -> Self {
        ArmLr::Schedule(schedule)
    }
}

impl ArmLr {
    pub fn schedule(&self) -> Option<&LrSchedule> {
        match self {
            ArmLr::Schedule(schedule) => Some(schedule),
            ArmLr::Matched { .. } => None,
        }
    }

    /// The arm whose update size this one matches.
    pub fn target(&self) -> Option<&str> {
        match self {
            ArmLr::Schedule(_) => None,
            ArmLr::Matched { match_update_of } => Some(match_update_of),
        }
    }
}

/// Every key either form may hold, so that a mistake gets a sentence rather than serde's
/// "did not match any variant".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArmLr {
    base: Option<f64>,
    decay: Option<LrDecay>,
    warmup: Option<Length>,
    match_update_of: Option<String>,
}

impl TryFrom<RawArmLr> for ArmLr {
    type Error = String;

    fn try_from(raw: RawArmLr) -> Result<Self, String> {
        match (raw.base, raw.match_update_of) {
            (Some(base), None) => Ok(ArmLr::Schedule(LrSchedule {
                base,
                decay: raw.decay.unwrap_or_default(),
                warmup: raw.warmup,
            })),
            (None, Some(target)) if raw.decay.is_none() && raw.warmup.is_none() => {
                Ok(ArmLr::Matched {
                    match_update_of: target,
                })
            }
            (None, Some(_)) => Err(
                "`decay` and `warmup` belong to a schedule (`base = …`); an arm \
                with `match_update_of` takes its rate from the arm it matches"
                    .into(),
            ),
            (Some(_), Some(_)) => Err("give either `base` (a learning-rate schedule) or \
                `match_update_of` (the name of the arm whose update size to match), not both"
                .into()),
            (None, None) => Err(
                "missing `base` (the learning rate) or `match_update_of` (the \
                name of the arm whose update size to match)"
                    .into(),
            ),
        }
    }
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub dataset: Dataset,
    /// Class-balanced training subset (all images when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Class-balanced test subset (all images when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_size: Option<usize>,
    /// Seed of the subset choice, the same for every run so that seeds vary only training.
    #[serde(default)]
    pub subset_seed: u64,
    pub model: ModelSpec,
    pub epochs: u64,
    pub batch_size: usize,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Random crop (4-pixel padding) and horizontal flip.
    #[serde(default = "default_true")]
    pub augment: bool,
    pub arms: Vec<ArmSpec>,
}

/// The longest experiment name: it becomes a folder and file-name prefix.
pub const MAX_NAME_LEN: usize = 64;

/// An experiment's name names files (`results/NAME`, `NAME-summary.md`), so it may only hold
/// letters, digits, `-`, `_` and `.`, must not start with `.` or `-`, and stays short: nothing
/// in it can reach outside a folder.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name.chars().all(allowed)
        || name.starts_with(['.', '-'])
    {
        return Err(SpecError::new(
            "name",
            format!(
                "must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', not starting with '.' or '-' (it names files), got {name:?}"
            ),
        ));
    }
    Ok(())
}

impl ExperimentSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        check_name(&self.name)?;
        if self.epochs == 0 {
            return Err(SpecError::new("epochs", "must be at least 1, got 0"));
        }
        if self.batch_size == 0 {
            return Err(SpecError::new("batch_size", "must be at least 1, got 0"));
        }
        if self.seeds.is_empty() {
            return Err(SpecError::new("seeds", "must list at least one seed"));
        }
        if let Some(seed) = self
            .seeds
            .iter()
            .enumerate()
            .find_map(|(i, seed)| self.seeds[..i].contains(seed).then_some(seed))
        {
            return Err(SpecError::new(
                "seeds",
                format!("seed {seed} is listed twice; each seed is one run"),
            ));
        }
        for (field, size) in [
            ("train_size", self.train_size),
            ("test_size", self.test_size),
        ] {
            if size == Some(0) {
                return Err(SpecError::new(field, "must be at least 1, got 0"));
            }
        }
        if self.arms.is_empty() {
            return Err(SpecError::new("arms", "must list at least one arm"));
        }
        for (i, arm) in self.arms.iter().enumerate() {
            let prefix = |e: SpecError| SpecError {
                field: format!("arms[{i}].{}", e.field),
                message: e.message,
            };
            if arm.name.trim().is_empty() {
                return Err(SpecError::new(
                    &format!("arms[{i}].name"),
                    "must not be empty",
                ));
            }
            if self.arms[..i].iter().any(|a| a.name == arm.name) {
                return Err(SpecError::new(
                    &format!("arms[{i}].name"),
                    format!(
                        "'{}' is used by an earlier arm; names must be unique",
                        arm.name
                    ),
                ));
            }
            arm.optimizer.validate().map_err(|e| {
                prefix(SpecError::new(&format!("optimizer.{}", e.field), e.message))
            })?;
            match &arm.lr {
                ArmLr::Schedule(schedule) => schedule.validate().map_err(prefix)?,
                ArmLr::Matched { match_update_of } => {
                    let field = format!("arms[{i}].lr.match_update_of");
                    let target = self.arms.iter().find(|a| &a.name == match_update_of);
                    match target {
                        _ if match_update_of == &arm.name => {
                            return Err(SpecError::new(&field, "an arm cannot match itself"));
                        }
                        None => {
                            let names: Vec<&str> =
                                self.arms.iter().map(|a| a.name.as_str()).collect();
                            return Err(SpecError::new(
                                &field,
                                format!(
                                    "no arm is named {match_update_of:?}; the arms are {names:?}"
                                ),
                            ));
                        }
                        Some(target) if target.lr.target().is_some() => {
                            return Err(SpecError::new(
                                &field,
                                format!(
                                    "'{match_update_of}' is itself matched to another arm; \
                                     match an arm with a learning-rate schedule"
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// The same experiment with only the arms named in `names` (in the experiment's order):
    /// a shard. Each arm's records do not depend on which other arms train beside it (the seed
    /// fixes the initial weights, the seed and epoch the batches), except that a matched arm
    /// needs the arm it matches.
    pub fn select_arms(&self, names: &[String]) -> Result<ExperimentSpec, SpecError> {
        let all: Vec<&str> = self.arms.iter().map(|a| a.name.as_str()).collect();
        if names.is_empty() {
            return Err(SpecError::new("arms", "name at least one arm"));
        }
        if let Some(unknown) = names.iter().find(|n| !all.contains(&n.as_str())) {
            return Err(SpecError::new(
                "arms",
                format!("no arm is named {unknown:?}; the arms are {all:?}"),
            ));
        }
        for arm in self.arms.iter().filter(|a| names.contains(&a.name)) {
            if let Some(target) = arm.lr.target()
                && !names.iter().any(|n| n == target)
            {
                return Err(SpecError::new(
                    "arms",
                    format!(
                        "'{}' takes its step size from '{target}', which must train beside it: \
                         name '{target}' too",
                        arm.name
                    ),
                ));
            }
        }
        Ok(ExperimentSpec {
            arms: self
                .arms
                .iter()
                .filter(|a| names.contains(&a.name))
                .cloned()
                .collect(),
            ..self.clone()
        })
    }

    /// The smallest sets of arms that can train apart: each scheduled arm with the arms that
    /// match its update size, in the experiment's order.
    pub fn arm_groups(&self) -> Vec<Vec<String>> {
        self.arms
            .iter()
            .filter(|a| a.lr.target().is_none())
            .map(|lead| {
                self.arms
                    .iter()
                    .filter(|a| a.name == lead.name || a.lr.target() == Some(lead.name.as_str()))
                    .map(|a| a.name.clone())
                    .collect()
            })
            .collect()
    }
}
