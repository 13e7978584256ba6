//! Preparing the GPU: its kernels compiled before Start. On WebGPU an arm's first step compiles every
//! kernel its model and optimizer use (on a software adapter, seconds per arm); the compiled
//! kernels stay with the device. So while the visitor reads the page, the worker steps a
//! throwaway copy of each arm once, on a batch of the loaded images: the run that Start begins
//! then finds its kernels ready. The throwaway runs build models and optimizers of their own
//! (the same seeded initialisation, nothing shared), so the real run's records are exactly
//! what they would be without them.

use crate::model::ModelSpec;
use crate::train::ExperimentSpec;

/// What decides which kernels a run compiles: the model, the batch shape and each arm's
/// optimizer kind (a matched arm also scales its update). Learning rates, betas and exponent
/// schedules are kernel arguments, not new kernels: moving a slider needs no new preparation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelKey {
    model: ModelSpec,
    batch_size: usize,
    augment: bool,
    optimizers: Vec<(&'static str, bool)>,
}

impl KernelKey {
    pub fn of(experiment: &ExperimentSpec) -> Self {
        let mut optimizers: Vec<(&'static str, bool)> = experiment
            .arms
            .iter()
            .map(|arm| (arm.optimizer.kind(), arm.lr.target().is_some()))
            .collect();
        optimizers.sort_unstable();
        optimizers.dedup();
        KernelKey {
            model: experiment.model,
            batch_size: experiment.batch_size,
            augment: experiment.augment,
            optimizers,
        }
    }
}

/// The throwaway runs that compile `experiment`'s kernels, each to be stepped once: one per
/// arm that matches no other, with the arms that match it (they scale by its update in the
/// same step), in the experiment's order. Each trains on two batches of the loaded images, so
/// that its one step is not an epoch's last (no evaluation), and keeps one seed.
pub fn throwaway_runs(experiment: &ExperimentSpec) -> Vec<ExperimentSpec> {
    experiment
        .arms
        .iter()
        .filter(|arm| arm.lr.target().is_none())
        .map(|target| {
            let arms = experiment
                .arms
                .iter()
                .filter(|arm| arm.name == target.name || arm.lr.target() == Some(&target.name))
                .cloned()
                .collect();
            ExperimentSpec {
                name: format!("{}-prepare", experiment.name),
                train_size: Some(2 * experiment.batch_size),
                test_size: Some(experiment.batch_size.min(10)),
                val_size: None,
                epochs: 1,
                seeds: experiment.seeds.iter().copied().take(1).collect(),
                arms,
                ..experiment.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{ArmKind, LabSettings};

    fn with_matched() -> LabSettings {
        let mut settings = LabSettings::default();
        settings.arm_mut(ArmKind::AdamMatched).enabled = true;
        settings
    }

    #[test]
    fn each_arm_is_prepared_once_and_a_matched_arm_beside_its_target() {
        let experiment = with_matched().experiment();
        let runs = throwaway_runs(&experiment);
        let names: Vec<Vec<&str>> = runs
            .iter()
            .map(|run| run.arms.iter().map(|a| a.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["SGDM"],
                vec!["Adam"],
                vec!["Padam"],
                vec!["AdaExp", "Adam matched to AdaExp"]
            ]
        );
        for run in &runs {
            assert_eq!(run.validate(), Ok(()), "{}", run.name);
            assert_eq!(
                (run.model, run.batch_size, run.epochs),
                (experiment.model, experiment.batch_size, 1)
            );
            assert_eq!(run.train_size, Some(2 * experiment.batch_size));
        }
    }

    #[test]
    fn only_what_changes_kernels_asks_for_new_preparation() {
        let settings = LabSettings::default();
        let key = KernelKey::of(&settings.experiment());
        let mut rates = settings.clone();
        rates.arm_mut(ArmKind::Adam).lr = 0.123;
        rates.beta2 = 0.99;
        rates.arm_mut(ArmKind::AdaExp).p_end = 0.25;
        assert_eq!(KernelKey::of(&rates.experiment()), key);
        let mut batch = settings.clone();
        batch.batch_size = 32;
        assert_ne!(KernelKey::of(&batch.experiment()), key);
        assert_ne!(KernelKey::of(&with_matched().experiment()), key);
        // A second AdaExp arm uses the kernels of the first.
        let mut second = settings.clone();
        second.arm_mut(ArmKind::AdaExp2).enabled = true;
        assert_eq!(KernelKey::of(&second.experiment()), key);
    }

    #[cfg(feature = "train")]
    #[test]
    fn a_throwaway_run_steps_on_the_loaded_images() {
        use crate::train::Session;
        use crate::train::tests::synthetic;

        let mut experiment = with_matched().experiment();
        experiment.model = ModelSpec::SmallCnn;
        experiment.batch_size = 8;
        let loaded = crate::data::Splits::new(synthetic(40, 1), synthetic(20, 2));
        for run in throwaway_runs(&experiment) {
            let data = loaded.subset(run.subset_sizes(), run.subset_seed).unwrap();
            let device = burn::tensor::Device::flex().autodiff();
            let mut session = Session::new(run.clone(), run.seeds[0], data, device).unwrap();
            let records = pollster::block_on(session.step()).unwrap();
            assert_eq!(records.len(), run.arms.len(), "{}: {records:?}", run.name);
            assert!(!session.is_finished());
        }
    }
}
