//! `ExperimentSpec`: dataset, subset sizes, model, arms, epochs, seeds. One TOML file per
//! experiment (see `experiments/`); result files carry it too.

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, SubsetSizes};
use crate::model::ModelSpec;
use crate::optim::schedule::sample_over_run;
use crate::optim::{Length, LrDecay, LrSchedule, OptimizerSpec};
use crate::validation::{ArmField, Field, SpecError};

/// One optimizer run inside a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawArm")]
pub struct ArmSpec {
    pub name: String,
    /// The arm before a learning-rate grid expanded it (`lr = { base = [..] }`): the name the
    /// selection of its best rate is reported under. `None`: an arm of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    pub optimizer: OptimizerSpec,
    pub lr: ArmLr,
}

impl ArmSpec {
    /// The family this arm belongs to: its grid's name, or its own.
    pub fn family(&self) -> &str {
        self.family.as_deref().unwrap_or(&self.name)
    }

    /// What this arm plans over a run of `total_steps`, sampled as every schedule figure draws
    /// it (`sample_over_run`, about `points` samples).
    pub fn planned(&self, total_steps: u64, steps_per_epoch: u64, points: u64) -> Planned {
        let spe = steps_per_epoch.max(1);
        Planned {
            exponent: sample_over_run(total_steps, spe, points, |t| {
                self.optimizer.exponent_at(t, spe)
            }),
            lr: self.lr.schedule().and_then(|lr| {
                sample_over_run(total_steps, spe, points, |t| Some(lr.value(t, spe)))
            }),
        }
    }
}

/// An arm's exponent p(t) and learning rate η(t) as (epoch, value) samples; `None` where it has
/// no plan: SGDM has no exponent, and a matched arm's rate is whatever its target's update size
/// asks, so figures draw what it took (from its records) instead.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub exponent: Option<Vec<(f64, f64)>>,
    pub lr: Option<Vec<(f64, f64)>>,
}

/// An arm as written: its rate may be a grid, which only an experiment's arm list expands.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArm {
    name: String,
    #[serde(default)]
    family: Option<String>,
    optimizer: OptimizerSpec,
    lr: RawArmLr,
}

impl TryFrom<RawArm> for ArmSpec {
    type Error = String;

    fn try_from(raw: RawArm) -> Result<Self, String> {
        Ok(ArmSpec {
            name: raw.name,
            family: raw.family,
            optimizer: raw.optimizer,
            lr: ArmLr::try_from(raw.lr)?,
        })
    }
}

/// `base = 1e-3`, or a grid `base = [3e-4, 1e-3, 3e-3]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum LrBase {
    One(f64),
    Grid(Vec<f64>),
}

/// The name of a grid's arm at rate `lr`: "Adam @ lr 3e-4".
pub fn grid_arm_name(family: &str, lr: f64) -> String {
    format!("{family} @ lr {lr:e}")
}

/// Expands the arms as written into the arms that train: an arm with a learning-rate grid
/// becomes one arm per rate ("NAME @ lr RATE", family NAME), and an arm matched to a grid's
/// family becomes one per member, each matched to that member ("NAME @ lr RATE" matched to
/// "TARGET @ lr RATE"). A list of one rate is a grid of one. Arms without a grid pass unchanged,
/// so an expanded list (a result file's) reads back as itself.
fn expand_arms<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ArmSpec>, D::Error> {
    use serde::de::Error;
    let raw: Vec<RawArm> = Vec::deserialize(deserializer)?;
    let mut grids: Vec<(String, Vec<f64>)> = Vec::new();
    for (i, arm) in raw.iter().enumerate() {
        if let Some(LrBase::Grid(rates)) = &arm.lr.base {
            check_grid(rates).map_err(|e| D::Error::custom(format!("arms[{i}].lr.base: {e}")))?;
            grids.push((arm.name.clone(), rates.clone()));
        }
    }
    let mut arms = Vec::with_capacity(raw.len());
    for (i, arm) in raw.into_iter().enumerate() {
        let at = |e: String| D::Error::custom(format!("arms[{i}]: {e}"));
        let grid_of_target = arm
            .lr
            .match_update_of
            .as_ref()
            .and_then(|target| grids.iter().find(|(name, _)| name == target));
        // One member per rate: a grid's own at that rate, or a control matched to the member
        // of its target's grid at that rate.
        let (rates, member_lr): (&[f64], &dyn Fn(f64) -> RawArmLr) =
            match (&arm.lr.base, grid_of_target) {
                (Some(LrBase::Grid(rates)), _) => (rates, &|rate| RawArmLr {
                    base: Some(LrBase::One(rate)),
                    ..arm.lr.clone()
                }),
                (_, Some((target, rates))) => (rates, &|rate| RawArmLr {
                    match_update_of: Some(grid_arm_name(target, rate)),
                    ..arm.lr.clone()
                }),
                _ => {
                    arms.push(ArmSpec::try_from(arm).map_err(at)?);
                    continue;
                }
            };
        for &rate in rates {
            arms.push(ArmSpec {
                name: grid_arm_name(&arm.name, rate),
                family: Some(arm.name.clone()),
                optimizer: arm.optimizer.clone(),
                lr: ArmLr::try_from(member_lr(rate)).map_err(at)?,
            });
        }
    }
    Ok(arms)
}

/// A grid's rates: at least one, each positive and finite, none twice.
fn check_grid(rates: &[f64]) -> Result<(), String> {
    if rates.is_empty() {
        return Err("an empty grid; list at least one learning rate".into());
    }
    if let Some(bad) = rates.iter().find(|r| !r.is_finite() || **r <= 0.0) {
        return Err(format!("every rate must be positive and finite, got {bad}"));
    }
    if let Some(twice) = rates
        .iter()
        .enumerate()
        .find_map(|(i, r)| rates[..i].contains(r).then_some(r))
    {
        return Err(format!("{twice} is listed twice; each rate is one arm"));
    }
    Ok(())
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
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArmLr {
    base: Option<LrBase>,
    decay: Option<LrDecay>,
    warmup: Option<Length>,
    match_update_of: Option<String>,
}

impl TryFrom<RawArmLr> for ArmLr {
    type Error = String;

    fn try_from(raw: RawArmLr) -> Result<Self, String> {
        match (raw.base, raw.match_update_of) {
            (Some(LrBase::Grid(_)), _) => Err("a learning-rate grid (`base = [..]`) expands \
                only in an experiment's list of arms"
                .into()),
            (Some(LrBase::One(base)), None) => Ok(ArmLr::Schedule(LrSchedule {
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
    /// A class-balanced validation split carved from the training set (none when absent), before
    /// the training subset is chosen from what is left: learning rates are selected on it, and
    /// the test accuracy reported never saw it. Chosen by `subset_seed`, so every seed and arm is
    /// selected on the same images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_size: Option<usize>,
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
    /// The arms, learning-rate grids expanded (see `expand_arms`).
    #[serde(deserialize_with = "expand_arms")]
    pub arms: Vec<ArmSpec>,
}

/// The longest description, in bytes: it travels in every result file's header line.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;

/// The largest experiment, as JSON: a result file's header line carries it, and result
/// readers refuse lines over 1 MiB, so a run must never write a header it cannot read back.
pub const MAX_EXPERIMENT_BYTES: usize = 256 * 1024;

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
            Field::Name,
            format!(
                "must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', not starting with '.' or '-' (it names files), got {name:?}"
            ),
        ));
    }
    Ok(())
}

impl ExperimentSpec {
    /// The sizes of the splits this experiment trains, validates and tests on.
    pub fn subset_sizes(&self) -> SubsetSizes {
        SubsetSizes {
            train: self.train_size,
            val: self.val_size,
            test: self.test_size,
        }
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        check_name(&self.name)?;
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(SpecError::new(
                Field::Description,
                format!(
                    "must be at most {MAX_DESCRIPTION_BYTES} bytes (every result file's header carries it), got {}",
                    self.description.len()
                ),
            ));
        }
        let bytes = serde_json::to_vec(self).map_or(0, |json| json.len());
        if bytes > MAX_EXPERIMENT_BYTES {
            return Err(SpecError::new(
                Field::Arms,
                format!(
                    "the experiment is {bytes} bytes as JSON, over the {MAX_EXPERIMENT_BYTES} a result file's header may hold; use fewer or shorter arms"
                ),
            ));
        }
        if self.epochs == 0 {
            return Err(SpecError::new(Field::Epochs, "must be at least 1, got 0"));
        }
        if self.batch_size == 0 {
            return Err(SpecError::new(
                Field::BatchSize,
                "must be at least 1, got 0",
            ));
        }
        if self.seeds.is_empty() {
            return Err(SpecError::new(Field::Seeds, "must list at least one seed"));
        }
        if let Some(seed) = self
            .seeds
            .iter()
            .enumerate()
            .find_map(|(i, seed)| self.seeds[..i].contains(seed).then_some(seed))
        {
            return Err(SpecError::new(
                Field::Seeds,
                format!("seed {seed} is listed twice; each seed is one run"),
            ));
        }
        for (field, size) in [
            (Field::TrainSize, self.train_size),
            (Field::TestSize, self.test_size),
            (Field::ValSize, self.val_size),
        ] {
            if size == Some(0) {
                return Err(SpecError::new(field, "must be at least 1, got 0"));
            }
        }
        if self.arms.is_empty() {
            return Err(SpecError::new(Field::Arms, "must list at least one arm"));
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if arm.name.trim().is_empty() {
                return Err(SpecError::new(
                    Field::Arm(i, ArmField::Name),
                    "must not be empty",
                ));
            }
            if self.arms[..i].iter().any(|a| a.name == arm.name) {
                return Err(SpecError::new(
                    Field::Arm(i, ArmField::Name),
                    format!(
                        "'{}' is used by an earlier arm; names must be unique",
                        arm.name
                    ),
                ));
            }
            arm.optimizer
                .validate()
                .map_err(|e| e.at(|f| Field::Arm(i, ArmField::Optimizer(f))))?;
            match &arm.lr {
                ArmLr::Schedule(schedule) => schedule
                    .validate()
                    .map_err(|e| e.at(|f| Field::Arm(i, ArmField::Lr(f))))?,
                ArmLr::Matched { match_update_of } => {
                    let field = Field::Arm(i, ArmField::MatchUpdateOf);
                    let target = self.arms.iter().find(|a| &a.name == match_update_of);
                    match target {
                        _ if match_update_of == &arm.name => {
                            return Err(SpecError::new(field, "an arm cannot match itself"));
                        }
                        None => {
                            let names: Vec<&str> =
                                self.arms.iter().map(|a| a.name.as_str()).collect();
                            return Err(SpecError::new(
                                field,
                                format!(
                                    "no arm is named {match_update_of:?}; the arms are {names:?}"
                                ),
                            ));
                        }
                        Some(target) if target.lr.target().is_some() => {
                            return Err(SpecError::new(
                                field,
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
            return Err(SpecError::new(Field::Arms, "name at least one arm"));
        }
        if let Some(unknown) = names.iter().find(|n| !all.contains(&n.as_str())) {
            return Err(SpecError::new(
                Field::Arms,
                format!("no arm is named {unknown:?}; the arms are {all:?}"),
            ));
        }
        for arm in self.arms.iter().filter(|a| names.contains(&a.name)) {
            if let Some(target) = arm.lr.target()
                && !names.iter().any(|n| n == target)
            {
                return Err(SpecError::new(
                    Field::Arms,
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

/// Experiments for tests: small CNN, batches of 16, seed 0, constant rates.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn spec(arms: Vec<ArmSpec>, epochs: u64) -> ExperimentSpec {
        ExperimentSpec {
            name: "test".into(),
            description: String::new(),
            dataset: Dataset::Cifar10,
            train_size: None,
            test_size: None,
            val_size: None,
            subset_seed: 0,
            model: ModelSpec::SmallCnn,
            epochs,
            batch_size: 16,
            seeds: vec![0],
            augment: true,
            arms,
        }
    }

    pub(crate) fn arm(name: &str, optimizer: OptimizerSpec, lr: f64) -> ArmSpec {
        ArmSpec {
            name: name.into(),
            family: None,
            optimizer,
            lr: LrSchedule::constant(lr).into(),
        }
    }

    pub(crate) fn matched(name: &str, optimizer: OptimizerSpec, target: &str) -> ArmSpec {
        ArmSpec {
            name: name.into(),
            family: None,
            optimizer,
            lr: ArmLr::Matched {
                match_update_of: target.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{arm, matched, spec};
    use super::*;
    use crate::optim::spec::{AdamSpec, SgdmSpec};

    fn experiment(arms: &str) -> Result<ExperimentSpec, String> {
        toml::from_str(&format!(
            "name = \"e\"\ndataset = \"fashion-mnist\"\nmodel = \"small-cnn\"\nepochs = 2\nbatch_size = 8\n{arms}"
        ))
        .map_err(|e| e.to_string())
    }

    const GRIDS: &str = r#"
        [[arms]]
        name = "Adam"
        optimizer = { kind = "adam" }
        lr = { base = [3e-4, 1e-3, 0.003], decay = { shape = "linear", floor = 0.0, length = { epochs = 2 } } }
        [[arms]]
        name = "SGDM"
        optimizer = { kind = "sgdm" }
        lr = { base = 0.05 }
        [[arms]]
        name = "AdaExp matched to Adam"
        optimizer = { kind = "adaexp", p = { shape = "linear", start = 0.5, end = 0.0, length = { epochs = 2 } } }
        lr = { match_update_of = "Adam" }
    "#;

    #[test]
    fn a_grid_expands_into_one_named_arm_per_rate_and_reads_back_as_itself() {
        let spec = experiment(GRIDS).unwrap();
        let names: Vec<&str> = spec.arms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Adam @ lr 3e-4",
                "Adam @ lr 1e-3",
                "Adam @ lr 3e-3",
                "SGDM",
                "AdaExp matched to Adam @ lr 3e-4",
                "AdaExp matched to Adam @ lr 1e-3",
                "AdaExp matched to Adam @ lr 3e-3",
            ]
        );
        let families: Vec<&str> = spec.arms.iter().map(ArmSpec::family).collect();
        assert_eq!(
            families,
            [
                "Adam",
                "Adam",
                "Adam",
                "SGDM",
                "AdaExp matched to Adam",
                "AdaExp matched to Adam",
                "AdaExp matched to Adam"
            ]
        );
        assert_eq!(spec.arms[3].family, None);
        // Each member keeps the rest of its schedule.
        let schedule = spec.arms[1].lr.schedule().unwrap();
        assert_eq!(schedule.base, 1e-3);
        assert!(matches!(schedule.decay, LrDecay::Linear { floor, .. } if floor == 0.0));
        // A control matched to a grid is matched to the member at each rate.
        assert_eq!(spec.arms[6].lr.target(), Some("Adam @ lr 3e-3"));
        spec.validate().unwrap();
        // Result files hold the expanded arms; they read back unchanged.
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ExperimentSpec>(&json).unwrap(), spec);
        // Each matched member trains beside its own target.
        assert_eq!(
            spec.arm_groups()[0],
            ["Adam @ lr 3e-4", "AdaExp matched to Adam @ lr 3e-4"]
        );
        assert!(
            spec.select_arms(&["AdaExp matched to Adam @ lr 1e-3".into()])
                .is_err()
        );
    }

    #[test]
    fn a_bad_grid_is_refused_naming_the_field() {
        let grid = |base: &str| {
            experiment(&format!(
                "[[arms]]\nname = \"SGDM\"\noptimizer = {{ kind = \"sgdm\" }}\nlr = {{ base = 0.1 }}\n\
                 [[arms]]\nname = \"Adam\"\noptimizer = {{ kind = \"adam\" }}\nlr = {{ base = {base} }}\n"
            ))
        };
        for (base, says) in [
            ("[]", "an empty grid"),
            ("[1e-3, 3e-3, 1e-3]", "0.001 is listed twice"),
            ("[1e-3, 0.0]", "positive and finite, got 0"),
            ("[1e-3, -1e-3]", "positive and finite, got -0.001"),
        ] {
            let err = grid(base).unwrap_err();
            assert!(
                err.contains("arms[1].lr.base") && err.contains(says),
                "{base}: {err}"
            );
        }
        assert!(grid("[1e-3]").is_ok());
        // A grid is for an experiment's arm list, not an arm alone (the page's messages).
        let err = serde_json::from_str::<ArmSpec>(
            r#"{"name":"a","optimizer":{"kind":"adam"},"lr":{"base":[1e-3,3e-3]}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("expands only in an experiment"),
            "{err}"
        );
    }

    #[test]
    fn an_experiment_too_large_for_a_header_line_is_refused_up_front() {
        let arms =
            "[[arms]]\nname = \"SGDM\"\noptimizer = { kind = \"sgdm\" }\nlr = { base = 0.1 }\n";
        let long = "x".repeat(MAX_DESCRIPTION_BYTES + 1);
        let err = experiment(&format!("description = \"{long}\"\n{arms}"))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.field, Field::Description);
        assert!(
            err.message.contains("at most 16384 bytes") && err.message.contains("16385"),
            "{}",
            err.message
        );
        // As many arms as make the header too long.
        let many: String = (0..3000)
            .map(|i| format!("[[arms]]\nname = \"arm {i} with a rather long name to fill the header\"\noptimizer = {{ kind = \"sgdm\" }}\nlr = {{ base = 0.1 }}\n"))
            .collect();
        let err = experiment(&many).unwrap().validate().unwrap_err();
        assert_eq!(err.field, Field::Arms);
        assert!(
            err.message.contains("a result file's header may hold"),
            "{}",
            err.message
        );
        assert!(experiment(arms).unwrap().validate().is_ok());
    }

    #[test]
    fn val_size_is_optional_and_must_hold_images() {
        let arms =
            "[[arms]]\nname = \"SGDM\"\noptimizer = { kind = \"sgdm\" }\nlr = { base = 0.1 }\n";
        let spec = experiment(arms).unwrap();
        assert_eq!(spec.val_size, None);
        assert!(!serde_json::to_string(&spec).unwrap().contains("val_size"));
        let spec = experiment(&format!("val_size = 0\n{arms}")).unwrap();
        let err = spec.validate().unwrap_err();
        assert_eq!(
            (err.field, err.message.as_str()),
            (Field::ValSize, "must be at least 1, got 0")
        );
    }

    #[test]
    fn a_shard_names_existing_arms_and_keeps_each_matched_arm_with_its_target() {
        let full = spec(
            vec![
                arm("a", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05),
                ArmSpec {
                    name: "m".into(),
                    family: None,
                    optimizer: OptimizerSpec::Adam(AdamSpec::default()),
                    lr: ArmLr::Matched {
                        match_update_of: "a".into(),
                    },
                },
            ],
            1,
        );
        let err = full.select_arms(&["b".into()]).unwrap_err();
        assert!(
            err.message.contains("no arm is named \"b\"") && err.message.contains("[\"a\", \"m\"]"),
            "{}",
            err.message
        );
        let err = full.select_arms(&["m".into()]).unwrap_err();
        assert!(err.message.contains("name 'a' too"), "{}", err.message);
        assert!(full.select_arms(&[]).is_err());
        let both = full.select_arms(&["m".into(), "a".into()]).unwrap();
        assert_eq!(both.arms, full.arms, "in the experiment's order");
    }

    #[test]
    fn names_that_would_leave_a_folder_are_refused() {
        let sgdm = || arm("SGDM", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05);
        for bad in [
            "../../x",
            "a/b",
            "",
            ".hidden",
            "-flag",
            "a b",
            "x\\y",
            &"n".repeat(65),
        ] {
            let mut s = spec(vec![sgdm()], 1);
            s.name = bad.into();
            let err = s.validate().unwrap_err();
            assert_eq!(err.field, Field::Name, "{bad:?}");
            assert!(err.message.contains("letters, digits"), "{}", err.message);
        }
        for good in ["quick", "seed-vgg16", "my_run.2", "A"] {
            let mut s = spec(vec![sgdm()], 1);
            s.name = good.into();
            s.validate().unwrap();
        }
    }

    #[test]
    fn a_seed_listed_twice_is_refused() {
        let mut s = spec(
            vec![arm("SGDM", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05)],
            1,
        );
        s.seeds = vec![0, 1, 0];
        let err = s.validate().unwrap_err();
        assert_eq!(err.field, Field::Seeds);
        assert!(
            err.message.contains("seed 0 is listed twice"),
            "{}",
            err.message
        );
    }

    #[test]
    fn matching_is_validated_by_name() {
        let adam = || OptimizerSpec::Adam(AdamSpec::default());
        let field = |arms: Vec<ArmSpec>| spec(arms, 1).validate().unwrap_err();
        let itself = field(vec![matched("a", adam(), "a")]);
        assert_eq!(itself.field, Field::Arm(0, ArmField::MatchUpdateOf));
        assert!(itself.message.contains("itself"));
        let missing = field(vec![arm("a", adam(), 1e-3), matched("b", adam(), "c")]);
        assert_eq!(missing.field, Field::Arm(1, ArmField::MatchUpdateOf));
        assert!(missing.message.contains("\"c\"") && missing.message.contains("\"a\""));
        let chained = field(vec![
            arm("a", adam(), 1e-3),
            matched("b", adam(), "a"),
            matched("c", adam(), "b"),
        ]);
        assert_eq!(chained.field, Field::Arm(2, ArmField::MatchUpdateOf));
        assert!(chained.message.contains("itself matched"));
        spec(vec![arm("a", adam(), 1e-3), matched("b", adam(), "a")], 1)
            .validate()
            .unwrap();
    }

    #[test]
    fn a_matched_lr_reads_and_writes_as_toml() {
        let parse = |lr: &str| {
            toml::from_str::<ArmSpec>(&format!(
                "name = \"x\"\noptimizer = {{ kind = \"adam\" }}\nlr = {lr}\n"
            ))
        };
        let arm = parse("{ match_update_of = \"AdaExp 0.5 → 0\" }").unwrap();
        assert_eq!(arm.lr.target(), Some("AdaExp 0.5 → 0"));
        let back: ArmSpec = toml::from_str(&toml::to_string(&arm).unwrap()).unwrap();
        assert_eq!(back, arm);
        let scheduled = parse(
            "{ base = 1e-3, decay = { shape = \"linear\", floor = 0.0, length = { epochs = 2 } } }",
        )
        .unwrap();
        assert_eq!(scheduled.lr.schedule().unwrap().value(1, 1), 1e-3);
        for (lr, says) in [
            ("{ base = 1e-3, match_update_of = \"a\" }", "not both"),
            ("{ }", "missing `base`"),
            (
                "{ match_update_of = \"a\", warmup = { steps = 3 } }",
                "belong to a schedule",
            ),
            ("{ base = 1e-3, speed = 2 }", "unknown field `speed`"),
        ] {
            let error = parse(lr).unwrap_err().to_string();
            assert!(error.contains(says), "{lr}: {error}");
        }
    }

    #[test]
    fn an_arms_plan_is_its_exponent_and_rate_sampled_over_the_run() {
        use crate::optim::Schedule;
        use crate::optim::spec::AdaExpSpec;
        let adaexp = arm(
            "AdaExp",
            OptimizerSpec::AdaExp(AdaExpSpec::new(Schedule::Linear {
                start: 0.5,
                end: 0.0,
                length: Length::Epochs(2.0),
            })),
            0.1,
        );
        // 2 epochs of 10 steps: step 11 starts epoch 1, where p = 0.5 · (1 − 10/20).
        let plan = adaexp.planned(20, 10, 100);
        let p = plan.exponent.unwrap();
        assert_eq!((p[0], p[10]), ((0.0, 0.5), (1.0, 0.25)));
        assert!(plan.lr.unwrap().iter().all(|&(_, lr)| lr == 0.1));
        let sgdm = arm("SGDM", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05);
        assert_eq!(sgdm.planned(20, 10, 100).exponent, None);
        let control = matched("m", OptimizerSpec::Adam(AdamSpec::default()), "AdaExp");
        let plan = control.planned(20, 10, 100);
        assert_eq!(plan.lr, None, "a matched arm's rate is what it took");
        assert!(plan.exponent.unwrap().iter().all(|&(_, p)| p == 0.5));
    }
}
