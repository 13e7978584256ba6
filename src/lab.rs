//! The browser lab's settings: every control on the page, its default, its query-string form and
//! the experiment it describes. Nothing here touches the DOM, so it is tested natively; the page
//! (src/web) only binds these values to controls.
//!
//! The query string is the whole state: `to_query` writes every setting, `from_query` reads one
//! back and replaces each missing, unparsable or out-of-range value by its default with a notice.
//! Ranges are not checked here: the settings become an `ExperimentSpec`, whose validation (the
//! one used by the CLI and the result files) names the offending field.

pub mod progress;
pub mod protocol;
pub mod verdict;

use crate::data::Dataset;
use crate::model::ModelSpec;
use crate::optim::spec::{AdamSpec, SgdmSpec, check_positive};
use crate::optim::{
    Family, FlatOptimizer, Length, LrDecay, LrSchedule, OptimizerSpec, Schedule, Shape, SpecError,
    WeightDecay,
};
use crate::trace::{TestFunction, TraceSpec};
use crate::train::{ArmLr, ArmSpec, ExperimentSpec};

/// The arms the page offers: AdaExp twice so that two schedules can be compared, and the
/// control that gives Adam's direction AdaExp's step size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmKind {
    Sgdm,
    Adam,
    Padam,
    AdaExp,
    AdaExp2,
    /// Adam whose learning rate, at every step, makes its update as large as AdaExp's.
    AdamMatched,
}

impl ArmKind {
    pub const ALL: [ArmKind; 6] = [
        ArmKind::Sgdm,
        ArmKind::Adam,
        ArmKind::Padam,
        ArmKind::AdaExp,
        ArmKind::AdaExp2,
        ArmKind::AdamMatched,
    ];

    /// The arm's prefix in the query string.
    pub fn key(self) -> &'static str {
        match self {
            ArmKind::Sgdm => "sgdm",
            ArmKind::Adam => "adam",
            ArmKind::Padam => "padam",
            ArmKind::AdaExp => "ax",
            ArmKind::AdaExp2 => "ax2",
            ArmKind::AdamMatched => "adam_m",
        }
    }

    /// The arm's name in the run: its id in records, live edits and chart series. Fixed per
    /// kind, so that moving a slider never renames (or re-addresses) a running arm; `label`
    /// is the display text with the values.
    pub fn name(self) -> &'static str {
        match self {
            ArmKind::Sgdm => "SGDM",
            ArmKind::Adam => "Adam",
            ArmKind::Padam => "Padam",
            ArmKind::AdaExp => "AdaExp",
            ArmKind::AdaExp2 => "AdaExp #2",
            ArmKind::AdamMatched => "Adam matched to AdaExp",
        }
    }

    fn has_schedule(self) -> bool {
        matches!(self, ArmKind::AdaExp | ArmKind::AdaExp2)
    }

    /// Whether the arm has a learning rate of its own (the matched arm takes AdaExp's step).
    pub fn has_lr(self) -> bool {
        self != ArmKind::AdamMatched
    }
}

/// One arm's controls. `p_start` is Padam's constant exponent; AdaExp arms use all four.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmControls {
    pub kind: ArmKind,
    pub enabled: bool,
    pub lr: f64,
    pub p_start: f64,
    pub p_end: f64,
    pub shape: Shape,
    /// Length of the p schedule in epochs.
    pub decay_epochs: f64,
}

impl ArmControls {
    /// The exponent schedule of an AdaExp arm.
    pub fn schedule(&self) -> Schedule {
        self.shape
            .schedule(self.p_start, self.p_end, Length::Epochs(self.decay_epochs))
    }

    pub fn label(&self) -> String {
        match self.kind {
            ArmKind::Sgdm => "SGDM".into(),
            ArmKind::Adam => "Adam".into(),
            ArmKind::AdamMatched => "Adam at AdaExp's step size".into(),
            ArmKind::Padam => format!("Padam p={}", self.p_start),
            ArmKind::AdaExp | ArmKind::AdaExp2 => {
                let n = if self.kind == ArmKind::AdaExp2 {
                    " #2"
                } else {
                    ""
                };
                match self.shape {
                    Shape::Constant => format!("AdaExp{n} p={}", self.p_start),
                    shape => format!("AdaExp{n} {}→{} {}", self.p_start, self.p_end, shape.name()),
                }
            }
        }
    }
}

/// Every setting of the page.
#[derive(Clone, Debug, PartialEq)]
pub struct LabSettings {
    pub arms: Vec<ArmControls>,
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay λ (0: none).
    pub weight_decay: f64,
    pub model: ModelSpec,
    pub batch_size: usize,
    pub train_size: usize,
    pub test_size: usize,
    pub epochs: u64,
    pub seed: u64,
    /// How every arm's learning rate decays over the run: constant, linear or cosine to 0, or
    /// step (×0.1 at half the run). Linear to 0 is the control for a decaying exponent.
    pub lr_decay: Shape,
    /// The Rosenbrock trajectories' learning rates, one per family: an SGD step is lr × the
    /// gradient, an adaptive one about lr per coordinate, so no one rate lets both move without
    /// SGDM blowing up or Adam crawling. Every adaptive arm (Adam, Padam, AdaExp) shares one,
    /// so that among them only the exponent differs.
    pub trace_lr_sgdm: f64,
    pub trace_lr_adaptive: f64,
}

impl Default for LabSettings {
    /// Defaults that show the effect within minutes on a laptop GPU: the small CNN on 5,000
    /// images for 6 epochs, p decaying to 0 over the run.
    fn default() -> Self {
        let arm = |kind, enabled, lr, p_start, p_end, shape| ArmControls {
            kind,
            enabled,
            lr,
            p_start,
            p_end,
            shape,
            decay_epochs: 6.0,
        };
        let adam = AdamSpec::default();
        LabSettings {
            arms: vec![
                arm(ArmKind::Sgdm, true, 0.05, 0.0, 0.0, Shape::Constant),
                arm(ArmKind::Adam, true, 1e-3, 0.5, 0.5, Shape::Constant),
                arm(ArmKind::Padam, true, 0.1, 0.125, 0.125, Shape::Constant),
                arm(ArmKind::AdaExp, true, 1e-3, 0.5, 0.0, Shape::Linear),
                arm(ArmKind::AdaExp2, false, 1e-3, 0.5, 0.0, Shape::Cosine),
                arm(ArmKind::AdamMatched, false, 1e-3, 0.5, 0.5, Shape::Constant),
            ],
            momentum: SgdmSpec::default().momentum,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            weight_decay: 0.0,
            model: ModelSpec::SmallCnn,
            batch_size: 64,
            train_size: 5000,
            test_size: 1000,
            epochs: 6,
            seed: 0,
            lr_decay: Shape::Constant,
            trace_lr_sgdm: 0.002,
            trace_lr_adaptive: 0.02,
        }
    }
}

fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))
}

fn parse_finite(text: &str) -> Result<f64, String> {
    let value: f64 = parse_number(text)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("'{text}' is not a finite number"))
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(format!("'{text}' is not 0 or 1")),
    }
}

impl LabSettings {
    /// Every query key, in a stable order.
    pub fn keys() -> Vec<String> {
        let mut keys = Vec::new();
        for kind in ArmKind::ALL {
            let k = kind.key();
            keys.push(k.to_owned());
            if kind.has_lr() {
                keys.push(format!("{k}.lr"));
            }
            if kind == ArmKind::Padam {
                keys.push(format!("{k}.p"));
            }
            if kind.has_schedule() {
                for field in ["p0", "p1", "shape", "len"] {
                    keys.push(format!("{k}.{field}"));
                }
            }
        }
        for key in [
            "momentum",
            "beta1",
            "beta2",
            "eps",
            "wd",
            "model",
            "batch",
            "train",
            "test",
            "epochs",
            "seed",
            "lr_decay",
            "trace_lr_sgdm",
            "trace_lr_adaptive",
        ] {
            keys.push(key.to_owned());
        }
        keys
    }

    fn arm_mut(&mut self, key: &str) -> Option<&mut ArmControls> {
        self.arms.iter_mut().find(|a| a.kind.key() == key)
    }

    /// The value of one key as the query string writes it.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some((arm_key, field)) = key.split_once('.') {
            let arm = self.arms.iter().find(|a| a.kind.key() == arm_key)?;
            return Some(match field {
                "lr" if arm.kind.has_lr() => arm.lr.to_string(),
                "p" | "p0" => arm.p_start.to_string(),
                "p1" => arm.p_end.to_string(),
                "shape" => arm.shape.name().to_owned(),
                "len" => arm.decay_epochs.to_string(),
                _ => return None,
            });
        }
        if let Some(arm) = self.arms.iter().find(|a| a.kind.key() == key) {
            return Some(if arm.enabled { "1" } else { "0" }.to_owned());
        }
        Some(match key {
            "momentum" => self.momentum.to_string(),
            "beta1" => self.beta1.to_string(),
            "beta2" => self.beta2.to_string(),
            "eps" => self.eps.to_string(),
            "wd" => self.weight_decay.to_string(),
            "model" => self.model.name().to_owned(),
            "batch" => self.batch_size.to_string(),
            "train" => self.train_size.to_string(),
            "test" => self.test_size.to_string(),
            "epochs" => self.epochs.to_string(),
            "seed" => self.seed.to_string(),
            "lr_decay" => self.lr_decay.name().to_owned(),
            "trace_lr_sgdm" => self.trace_lr_sgdm.to_string(),
            "trace_lr_adaptive" => self.trace_lr_adaptive.to_string(),
            _ => return None,
        })
    }

    /// Sets one key from its query-string text; the error says what was wrong with it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let unknown = || format!("unknown setting '{key}'");
        if let Some((arm_key, field)) = key.split_once('.') {
            let arm = self.arm_mut(arm_key).ok_or_else(unknown)?;
            match field {
                "lr" if arm.kind.has_lr() => arm.lr = parse_finite(value)?,
                "p" if arm.kind == ArmKind::Padam => arm.p_start = parse_finite(value)?,
                "p0" if arm.kind.has_schedule() => arm.p_start = parse_finite(value)?,
                "p1" if arm.kind.has_schedule() => arm.p_end = parse_finite(value)?,
                "len" if arm.kind.has_schedule() => arm.decay_epochs = parse_finite(value)?,
                "shape" if arm.kind.has_schedule() => {
                    arm.shape = Shape::parse(value).ok_or_else(|| {
                        format!("'{value}' is not constant, linear, cosine or step")
                    })?
                }
                _ => return Err(unknown()),
            }
            return Ok(());
        }
        if let Some(arm) = self.arm_mut(key) {
            arm.enabled = parse_bool(value)?;
            return Ok(());
        }
        match key {
            "momentum" => self.momentum = parse_finite(value)?,
            "beta1" => self.beta1 = parse_finite(value)?,
            "beta2" => self.beta2 = parse_finite(value)?,
            "eps" => self.eps = parse_finite(value)?,
            "wd" => self.weight_decay = parse_finite(value)?,
            "model" => {
                self.model = match value {
                    "small-cnn" => ModelSpec::SmallCnn,
                    "resnet20" => ModelSpec::Resnet20,
                    "vgg16" => ModelSpec::Vgg16,
                    _ => return Err(format!("'{value}' is not small-cnn, resnet20 or vgg16")),
                }
            }
            "batch" => self.batch_size = parse_number(value)?,
            "train" => self.train_size = parse_number(value)?,
            "test" => self.test_size = parse_number(value)?,
            "epochs" => self.epochs = parse_number(value)?,
            "seed" => self.seed = parse_number(value)?,
            "lr_decay" => {
                self.lr_decay = Shape::parse(value)
                    .ok_or_else(|| format!("'{value}' is not constant, linear, cosine or step"))?
            }
            "trace_lr_sgdm" | "trace_lr_adaptive" => {
                let lr = parse_finite(value)?;
                check_positive(key, lr).map_err(|e| e.message)?;
                if key == "trace_lr_sgdm" {
                    self.trace_lr_sgdm = lr;
                } else {
                    self.trace_lr_adaptive = lr;
                }
            }
            _ => return Err(unknown()),
        }
        Ok(())
    }

    /// The whole state as a query string (without the leading `?`).
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for key in Self::keys() {
            if let Some(value) = self.get(&key) {
                query.append_pair(&key, &value);
            }
        }
        query.finish()
    }

    /// Reads a query string (with or without `?`). Missing keys keep their defaults; each bad
    /// value is replaced by its default and reported in the notices.
    pub fn from_query(query: &str) -> (LabSettings, Vec<String>) {
        let defaults = LabSettings::default();
        let mut settings = defaults.clone();
        let mut notices = Vec::new();
        let query = query.strip_prefix('?').unwrap_or(query);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if let Err(why) = settings.set(&key, &value) {
                notices.push(format!("{key}: {why}; using the default"));
            }
        }
        // Out-of-range values: the spec's validation names the field; reset it and try again.
        for _ in 0..Self::keys().len() {
            let Err(error) = settings.experiment().validate() else {
                break;
            };
            let key = settings.key_for(&error);
            let default = defaults.get(&key).unwrap_or_default();
            if settings.set(&key, &default).is_err() {
                notices.push(format!("{error}"));
                return (defaults, notices);
            }
            notices.push(format!("{key}: {}; using {default}", error.message));
        }
        (settings, notices)
    }

    /// The query key behind a validation error of `experiment()`.
    fn key_for(&self, error: &SpecError) -> String {
        let field = error.field.as_str();
        if let Some(rest) = field.strip_prefix("arms[") {
            let (index, inner) = rest.split_once("].").unwrap_or((rest, ""));
            let enabled: Vec<&ArmControls> = self.arms.iter().filter(|a| a.enabled).collect();
            let arm = index
                .parse::<usize>()
                .ok()
                .and_then(|i| enabled.get(i).copied());
            let Some(arm) = arm else {
                return field.to_owned();
            };
            let k = arm.kind.key();
            return match inner {
                "lr" => format!("{k}.lr"),
                // The matched arm without AdaExp: it is switched off again.
                "lr.match_update_of" => k.to_owned(),
                "optimizer.p" => format!("{k}.p"),
                "optimizer.p.start" => format!("{k}.p0"),
                "optimizer.p.end" => format!("{k}.p1"),
                "optimizer.p.length" => format!("{k}.len"),
                "optimizer.weight_decay" => "wd".into(),
                other => other.trim_start_matches("optimizer.").to_owned(),
            };
        }
        match field {
            "batch_size" => "batch".into(),
            "train_size" => "train".into(),
            "test_size" => "test".into(),
            other => other.to_owned(),
        }
    }

    /// The optimizer one arm's controls describe.
    pub fn optimizer(&self, arm: &ArmControls) -> OptimizerSpec {
        let family = match arm.kind {
            ArmKind::Sgdm => Family::Sgdm,
            ArmKind::Adam | ArmKind::AdamMatched => Family::Adam,
            ArmKind::Padam => Family::Padam,
            ArmKind::AdaExp | ArmKind::AdaExp2 => Family::Adaexp,
        };
        family.spec(&FlatOptimizer {
            momentum: Some(self.momentum),
            beta1: Some(self.beta1),
            beta2: Some(self.beta2),
            eps: Some(self.eps),
            p: Some(arm.p_start),
            exponent: Some(arm.schedule()),
            weight_decay: (self.weight_decay != 0.0)
                .then_some(WeightDecay::Decoupled(self.weight_decay)),
            ..FlatOptimizer::default()
        })
    }

    /// An arm's learning rate over the run: `base`, decayed as `lr_decay` says.
    pub fn lr_schedule(&self, base: f64) -> LrSchedule {
        let length = Length::Epochs(self.epochs as f64);
        let decay = match self.lr_decay {
            Shape::Constant => LrDecay::Constant,
            Shape::Linear => LrDecay::Linear { floor: 0.0, length },
            Shape::Cosine => LrDecay::Cosine { floor: 0.0, length },
            Shape::Step => LrDecay::Step {
                milestones: vec![Length::Epochs(self.epochs as f64 / 2.0)],
                gamma: 0.1,
            },
        };
        LrSchedule {
            decay,
            ..LrSchedule::constant(base)
        }
    }

    /// The experiment the page trains: the enabled arms on the CIFAR-10 subset.
    pub fn experiment(&self) -> ExperimentSpec {
        ExperimentSpec {
            name: "browser-lab".into(),
            description: String::new(),
            dataset: Dataset::Cifar10,
            train_size: Some(self.train_size),
            test_size: Some(self.test_size),
            val_size: None,
            subset_seed: 0,
            model: self.model,
            epochs: self.epochs,
            batch_size: self.batch_size,
            seeds: vec![self.seed],
            augment: true,
            arms: self
                .arms
                .iter()
                .filter(|a| a.enabled)
                .map(|a| ArmSpec {
                    name: a.kind.name().to_owned(),
                    family: None,
                    optimizer: self.optimizer(a),
                    lr: if a.kind.has_lr() {
                        self.lr_schedule(a.lr).into()
                    } else {
                        ArmLr::Matched {
                            match_update_of: ArmKind::AdaExp.name().to_owned(),
                        }
                    },
                })
                .collect(),
        }
    }

    /// The learning rate of `arm`'s trajectory: its family's.
    pub fn trace_lr(&self, arm: &ArmControls) -> f64 {
        if self.optimizer(arm).adaptive().is_some() {
            self.trace_lr_adaptive
        } else {
            self.trace_lr_sgdm
        }
    }

    /// One arm's trace on a test function: its optimizer at its family's trace lr, with the p
    /// schedule stretched so that the trace's `steps` stand for the whole run (a schedule over half the
    /// epochs decays over half the steps).
    pub fn trace_spec(
        &self,
        arm: &ArmControls,
        function: TestFunction,
        start: [f64; 2],
        steps: u64,
    ) -> TraceSpec {
        let stretched = ArmControls {
            decay_epochs: arm.decay_epochs * steps as f64 / self.epochs.max(1) as f64,
            ..arm.clone()
        };
        TraceSpec {
            function,
            start,
            steps,
            optimizer: self.optimizer(&stretched),
            lr: LrSchedule::constant(self.trace_lr(arm)),
        }
    }

    /// The training images a run trains on when `loaded` are loaded (`None`: not known yet):
    /// the worker's session takes a class-balanced subset of what it has, and a subset of a
    /// smaller set is all of it.
    pub fn train_images_on(&self, loaded: Option<usize>) -> usize {
        loaded.map_or(self.train_size, |n| n.min(self.train_size))
    }

    /// Optimizer steps in one epoch of a run on `loaded` training images. A running run's own
    /// count is in its header (`RunInfo::steps_per_epoch`).
    pub fn steps_per_epoch_on(&self, loaded: Option<usize>) -> u64 {
        self.train_images_on(loaded)
            .div_ceil(self.batch_size.max(1)) as u64
    }

    /// What to tell the visitor when the settings ask for more training images than are loaded.
    pub fn subset_note(&self, loaded: usize) -> Option<String> {
        (loaded < self.train_size).then(|| {
            format!(
                "The settings ask for {} training images; {loaded} are loaded, so a run trains on \
                 those {loaded} ({} steps per epoch). Load a larger set to train on more.",
                self.train_size,
                self.steps_per_epoch_on(Some(loaded))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_schedules_span_the_same_share_of_the_trace_as_of_the_run() {
        let mut settings = LabSettings::default();
        let ax = settings.arms[3].clone();
        assert_eq!((ax.p_start, ax.p_end, settings.epochs), (0.5, 0.0, 6));
        // Linear over all 6 epochs → over all 300 steps: p(t) = 0.5 − 0.5·(t − 1)/300.
        let spec = settings.trace_spec(&ax, TestFunction::Rosenbrock, [-1.5, 2.0], 300);
        assert!((spec.optimizer.exponent_at(151, 1).unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(
            spec.lr,
            LrSchedule::constant(0.02),
            "the adaptive family's rate"
        );
        let sgdm = settings.trace_spec(&settings.arms[0], TestFunction::Rosenbrock, [0.0; 2], 9);
        assert_eq!(sgdm.lr, LrSchedule::constant(0.002), "SGDM's own");
        assert_eq!(spec.steps, 300);
        // Over 3 of 12 epochs → over the first 75 steps: p(38) = 0.5 − 0.5·37/75, then 0.
        settings.epochs = 12;
        let short = ArmControls {
            decay_epochs: 3.0,
            ..ax
        };
        let spec = settings.trace_spec(&short, TestFunction::Rosenbrock, [-1.5, 2.0], 300);
        let p38 = spec.optimizer.exponent_at(38, 1).unwrap();
        assert!((p38 - (0.5 - 0.5 * 37.0 / 75.0)).abs() < 1e-12, "{p38}");
        assert_eq!(spec.optimizer.exponent_at(200, 1), Some(0.0));
        // Arms without a schedule keep their exponent.
        let padam =
            settings.trace_spec(&settings.arms[2], TestFunction::Rosenbrock, [0.0, 0.0], 10);
        assert_eq!(padam.optimizer.exponent_at(7, 1), Some(0.125));
    }

    #[test]
    fn lr_decay_applies_to_every_arm_over_the_run() {
        let (settings, notices) =
            LabSettings::from_query("lr_decay=linear&epochs=4&batch=50&train=200");
        assert!(notices.is_empty(), "{notices:?}");
        let spec = settings.experiment();
        // 4 epochs of 4 steps: s = ½ at step 9, where η is half the base rate.
        for arm in &spec.arms {
            let lr = arm.lr.schedule().unwrap();
            assert_eq!(lr.value(1, 4), lr.base);
            assert!((lr.value(9, 4) - lr.base / 2.0).abs() < 1e-15);
        }
        let (_, notices) = LabSettings::from_query("lr_decay=exponential");
        assert!(
            notices[0].contains("lr_decay") && notices[0].contains("linear"),
            "{notices:?}"
        );
    }

    #[test]
    fn defaults_are_a_valid_experiment() {
        let settings = LabSettings::default();
        settings.experiment().validate().unwrap();
        assert_eq!(settings.experiment().arms.len(), 4);
        assert_eq!(settings.steps_per_epoch_on(None), 79); // ⌈5000 / 64⌉
    }

    #[test]
    fn steps_per_epoch_count_the_images_loaded_not_those_asked_for() {
        // The served subset holds 5,000 training images; ?train=10000 asks for twice that.
        let (settings, _) = LabSettings::from_query("?train=10000");
        assert_eq!(settings.train_size, 10_000);
        assert_eq!(settings.steps_per_epoch_on(None), 157); // ⌈10000 / 64⌉, before loading
        assert_eq!(settings.steps_per_epoch_on(Some(5000)), 79); // ⌈5000 / 64⌉
        assert_eq!(settings.steps_per_epoch_on(Some(20_000)), 157);
        let note = settings.subset_note(5000).unwrap();
        assert!(
            note.contains("ask for 10000") && note.contains("trains on those 5000 (79 steps"),
            "{note}"
        );
        assert_eq!(settings.subset_note(10_000), None);
    }

    /// The page's default panel must show what the exponent does: every default arm gets well
    /// on its way from (−1.5, 2) within 600 steps without leaving the view, and AdaExp (Adam's
    /// start, SGD's finish) ends nearer the minimum than Adam.
    #[test]
    fn the_default_trajectories_all_move_and_adaexp_ends_nearer_the_minimum_than_adam() {
        let settings = LabSettings::default();
        let device = burn::tensor::Device::flex().autodiff();
        let mut ends = Vec::new();
        for arm in settings.arms.iter().filter(|a| a.enabled) {
            let spec = settings.trace_spec(arm, TestFunction::Rosenbrock, [-1.5, 2.0], 600);
            let rows = crate::trace::run_trace(&spec, &device).unwrap();
            let inside = rows
                .iter()
                .all(|r| (-2.0..=2.0).contains(&r.x) && (-1.0..=3.0).contains(&r.y));
            let last = rows.last().unwrap();
            let moved = ((last.x + 1.5).powi(2) + (last.y - 2.0).powi(2)).sqrt();
            let to_minimum = ((last.x - 1.0).powi(2) + (last.y - 1.0).powi(2)).sqrt();
            assert!(inside, "{:?} leaves the view", arm.kind);
            assert!(moved > 1.0, "{:?} moved only {moved:.3}", arm.kind);
            ends.push((arm.kind, to_minimum));
        }
        let distance = |kind| ends.iter().find(|(k, _)| *k == kind).unwrap().1;
        assert!(
            distance(ArmKind::AdaExp) < distance(ArmKind::Adam),
            "{ends:?}"
        );
    }

    #[test]
    fn the_query_string_round_trips_every_setting() {
        let mut settings = LabSettings::default();
        settings.set("ax2", "1").unwrap();
        settings.set("ax2.shape", "step").unwrap();
        settings.set("ax.p1", "0.1").unwrap();
        settings.set("model", "resnet20").unwrap();
        settings.set("seed", "7").unwrap();
        settings.set("trace_lr_sgdm", "0.01").unwrap();
        settings.set("trace_lr_adaptive", "0.03").unwrap();
        settings.set("lr_decay", "linear").unwrap();
        let query = settings.to_query();
        assert!(
            query.contains("ax.p1=0.1") && query.contains("ax2.shape=step"),
            "{query}"
        );
        let (back, notices) = LabSettings::from_query(&format!("?{query}"));
        assert_eq!(back, settings);
        assert!(notices.is_empty(), "{notices:?}");
        // Six on/off keys, five learning rates (not the matched arm's), Padam's p, two schedules.
        assert_eq!(LabSettings::keys().len(), 6 + 5 + 1 + 2 * 4 + 14);
    }

    #[test]
    fn the_matched_arm_follows_adaexp_and_needs_it() {
        let (settings, notices) = LabSettings::from_query("adam_m=1");
        assert!(notices.is_empty(), "{notices:?}");
        let spec = settings.experiment();
        let matched = spec.arms.last().unwrap();
        assert_eq!(matched.name, "Adam matched to AdaExp");
        assert_eq!(matched.lr.target(), Some("AdaExp"));
        assert_eq!(matched.optimizer.exponent_at(1, 1), Some(0.5));
        spec.validate().unwrap();
        // Without AdaExp there is nothing to match: the arm is switched off, with a notice.
        let (settings, notices) = LabSettings::from_query("adam_m=1&ax=0");
        assert!(!settings.arms[5].enabled);
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("adam_m:") && n.contains("AdaExp")),
            "{notices:?}"
        );
        // It has no learning rate of its own.
        let (_, notices) = LabSettings::from_query("adam_m.lr=0.1");
        assert!(notices[0].contains("unknown setting"), "{notices:?}");
    }

    #[test]
    fn bad_values_fall_back_to_defaults_with_notices() {
        let (settings, notices) = LabSettings::from_query(
            "ax.p1=1.5&adam.lr=abc&beta2=1&epochs=0&nope=3&ax.shape=zigzag&trace_lr_adaptive=-1",
        );
        let defaults = LabSettings::default();
        assert_eq!(settings, defaults);
        let text = notices.join("\n");
        for key in [
            "ax.p1",
            "adam.lr",
            "beta2",
            "epochs",
            "nope",
            "ax.shape",
            "trace_lr_adaptive",
        ] {
            assert!(
                notices.iter().any(|n| n.starts_with(&format!("{key}:"))),
                "{key} missing from {text}"
            );
        }
        assert!(
            text.contains("ax.p1: must be in [0, 1], got 1.5; using 0"),
            "{text}"
        );
    }

    #[test]
    fn out_of_range_values_of_later_arms_map_to_their_keys() {
        // With SGDM off, AdaExp #2 is a later index in the experiment's arms.
        let (settings, notices) = LabSettings::from_query("sgdm=0&ax2=1&ax2.len=0&padam.p=-1");
        assert!(!settings.arms[0].enabled && settings.arms[4].enabled);
        assert_eq!(settings.arms[4].decay_epochs, 6.0);
        assert_eq!(settings.arms[2].p_start, 0.125);
        assert!(
            notices.iter().any(|n| n.starts_with("ax2.len:")),
            "{notices:?}"
        );
        assert!(
            notices.iter().any(|n| n.starts_with("padam.p:")),
            "{notices:?}"
        );
    }

    #[test]
    fn step_shape_switches_at_half_the_length() {
        let arm = ArmControls {
            shape: Shape::Step,
            ..LabSettings::default().arms[3].clone()
        };
        let schedule = arm.schedule();
        // 6 epochs of 10 steps: p = 0.5 through step 30, then 0.
        assert_eq!(schedule.value(30, 10), 0.5);
        assert_eq!(schedule.value(31, 10), 0.0);
    }

    mod never_panic {
        use proptest::prelude::*;

        use super::*;
        use crate::fuzz::{config, mutated_text};

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn query_string(bytes in mutated_text(&LabSettings::default().to_query())) {
                let (settings, _) = LabSettings::from_query(&String::from_utf8_lossy(&bytes));
                // Whatever came in, what comes out is a valid experiment.
                prop_assert!(settings.experiment().validate().is_ok());
            }
        }
    }
}
