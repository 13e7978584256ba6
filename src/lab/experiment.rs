//! The experiment and the trajectories the page's settings describe.

use super::{ArmControls, ArmKind, LabSettings};
use crate::data::Dataset;
use crate::optim::{FlatOptimizer, Length, LrDecay, LrSchedule, OptimizerSpec, Shape, WeightDecay};
use crate::trace::{TestFunction, TraceSpec};
use crate::train::{ArmLr, ArmSpec, ExperimentSpec};

impl LabSettings {
    /// The optimizer one arm's controls describe.
    pub fn optimizer(&self, arm: &ArmControls) -> OptimizerSpec {
        arm.kind.family().spec(&FlatOptimizer {
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
}
