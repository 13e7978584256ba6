//! The session on a tiny synthetic dataset: shared start, divergence, resume.

use burn::tensor::Device;

use super::*;
use crate::data::{Dataset, ImageSet, ImageShape, Splits};
use crate::model::ModelSpec;
use crate::optim::spec::{AdamSpec, SgdmSpec};
use crate::optim::{LrSchedule, OptimizerSpec};

/// Class c lights up a c-dependent block of an 8×8 image, plus seeded noise.
pub(crate) fn synthetic(n: usize, seed: u64) -> ImageSet {
    let shape = ImageShape {
        channels: 3,
        height: 8,
        width: 8,
    };
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 58) as u8
    };
    let mut set = ImageSet::empty(shape);
    for i in 0..n {
        let label = (i % 10) as u8;
        for c in 0..3 {
            for y in 0..8 {
                for x in 0..8 {
                    let lit = (y / 4) * 2 + x / 4 == usize::from(label) % 4
                        && c == usize::from(label) % 3;
                    set.images.push(if lit { 180 } else { 30 } + noise());
                }
            }
        }
        set.labels.push(label);
    }
    set
}

fn spec(arms: Vec<ArmSpec>, epochs: u64) -> ExperimentSpec {
    ExperimentSpec {
        name: "test".into(),
        description: String::new(),
        dataset: Dataset::Cifar10,
        train_size: None,
        test_size: None,
        subset_seed: 0,
        model: ModelSpec::SmallCnn,
        epochs,
        batch_size: 16,
        seeds: vec![0],
        augment: true,
        arms,
    }
}

fn arm(name: &str, optimizer: OptimizerSpec, lr: f64) -> ArmSpec {
    ArmSpec {
        name: name.into(),
        optimizer,
        lr: LrSchedule::constant(lr),
    }
}

fn data() -> Splits {
    Splits {
        train: synthetic(40, 1),
        test: synthetic(20, 2),
    }
}

fn run(session: &mut Session) -> Vec<Record> {
    let mut records = Vec::new();
    while !session.is_finished() {
        records.extend(pollster::block_on(session.step()).unwrap());
    }
    records
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// Drops the fields that measure time, which no two runs share.
fn without_timing(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .cloned()
        .map(|r| match r {
            Record::Epoch(e) => Record::Epoch(EpochRecord {
                wall_seconds: 0.0,
                images_per_second: 0.0,
                ..e
            }),
            other => other,
        })
        .collect()
}

#[test]
fn identical_arms_see_identical_weights_and_batches() {
    let sgdm = OptimizerSpec::Sgdm(SgdmSpec::default());
    let mut session = Session::new(
        spec(vec![arm("a", sgdm.clone(), 0.05), arm("b", sgdm, 0.05)], 2),
        3,
        data(),
        device(),
    )
    .unwrap();
    assert_eq!(session.steps_per_epoch(), 3); // 40 images in batches of 16
    let records = run(&mut session);
    let (a, b): (Vec<_>, Vec<_>) = records.iter().partition(|r| match r {
        Record::Step(s) => s.arm == "a",
        Record::Epoch(e) => e.arm == "a",
        Record::Diverged(d) => d.arm == "a",
        Record::Run(_) => false,
    });
    assert_eq!(a.len(), 2 * 3 + 2);
    for (x, y) in without_timing(&a.into_iter().cloned().collect::<Vec<_>>())
        .iter()
        .zip(without_timing(&b.into_iter().cloned().collect::<Vec<_>>()))
    {
        match (x, y) {
            (Record::Step(x), Record::Step(y)) => assert_eq!((x.loss, x.step), (y.loss, y.step)),
            (Record::Epoch(x), Record::Epoch(y)) => {
                assert_eq!(x.test_accuracy, y.test_accuracy);
                assert_eq!(x.train_loss, y.train_loss);
            }
            other => panic!("records differ in kind: {other:?}"),
        }
    }
}

#[test]
fn a_diverging_arm_stops_and_the_others_go_on() {
    let mut session = Session::new(
        spec(
            vec![
                arm("wild", OptimizerSpec::Sgdm(SgdmSpec::default()), 1e30),
                arm("adam", OptimizerSpec::Adam(AdamSpec::default()), 1e-3),
            ],
            2,
        ),
        0,
        data(),
        device(),
    )
    .unwrap();
    let records = run(&mut session);
    let diverged: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Diverged(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(diverged.len(), 1);
    assert_eq!(diverged[0].arm, "wild");
    assert!(matches!(
        session.arm_status(0),
        Some(ArmStatus::Diverged { .. })
    ));
    let adam_epochs = records
        .iter()
        .filter(|r| matches!(r, Record::Epoch(e) if e.arm == "adam"))
        .count();
    assert_eq!(adam_epochs, 2);
    assert!(
        !records.iter().any(
            |r| matches!(r, Record::Epoch(e) if e.arm == "wild" && e.epoch > diverged[0].epoch)
        )
    );
}

#[test]
fn training_lowers_the_loss() {
    // Without augmentation: a 4-pixel shift would move an 8×8 image's class pattern away.
    let experiment = ExperimentSpec {
        augment: false,
        ..spec(
            vec![arm("adam", OptimizerSpec::Adam(AdamSpec::default()), 1e-2)],
            8,
        )
    };
    let mut session = Session::new(experiment, 0, data(), device()).unwrap();
    let epochs: Vec<EpochRecord> = run(&mut session)
        .into_iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(epochs.len(), 8);
    assert!(
        epochs[7].train_loss < 0.5 * epochs[0].train_loss,
        "{} → {}",
        epochs[0].train_loss,
        epochs[7].train_loss
    );
    assert!(
        epochs
            .iter()
            .all(|e| (0.0..=1.0).contains(&e.test_accuracy))
    );
}

#[test]
fn resume_from_a_checkpoint_equals_the_uninterrupted_run() {
    let arms = vec![
        arm("sgdm", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05),
        arm(
            "adaexp",
            OptimizerSpec::AdaExp(crate::optim::spec::AdaExpSpec {
                amsgrad: true,
                ..crate::optim::spec::AdaExpSpec::new(crate::optim::Schedule::Linear {
                    start: 0.5,
                    end: 0.0,
                    length: crate::optim::Length::Epochs(3.0),
                })
            }),
            1e-3,
        ),
    ];
    let mut straight = Session::new(spec(arms.clone(), 3), 5, data(), device()).unwrap();
    let all = without_timing(&run(&mut straight));

    let mut first = Session::new(spec(arms.clone(), 3), 5, data(), device()).unwrap();
    let mut before = Vec::new();
    while first.epochs_done() < 1 {
        before.extend(pollster::block_on(first.step()).unwrap());
    }
    let checkpoint = first.checkpoint().unwrap().expect("at an epoch boundary");
    drop(first);
    let mut resumed = Session::new(spec(arms, 3), 5, data(), device()).unwrap();
    resumed.restore(checkpoint).unwrap();
    let after = run(&mut resumed);
    let stitched = without_timing(&[before, after].concat());
    assert_eq!(stitched, all);
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
        assert_eq!(err.field, "name", "{bad:?}");
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
    assert_eq!(err.field, "seeds");
    assert!(
        err.message.contains("seed 0 is listed twice"),
        "{}",
        err.message
    );
}

#[test]
fn data_the_model_cannot_take_is_refused() {
    let s = || {
        spec(
            vec![arm("SGDM", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05)],
            1,
        )
    };
    let tiny = ImageShape {
        channels: 3,
        height: 4,
        width: 4,
    };
    let mut small = ImageSet::empty(tiny);
    small.images = vec![0; 2 * tiny.pixels()];
    small.labels = vec![0, 1];
    let err = Session::new(
        s(),
        0,
        Splits {
            train: small.clone(),
            test: small,
        },
        device(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("4×4") && err.contains("small-cnn") && err.contains("8×8"),
        "{err}"
    );

    // Test images of another shape than the training images.
    let mut other = synthetic(20, 2);
    other.shape.height = 16;
    other.shape.width = 4;
    let err = Session::new(
        s(),
        0,
        Splits {
            train: synthetic(40, 1),
            test: other,
        },
        device(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("test images are 3×16×4") && err.contains("3×8×8"),
        "{err}"
    );
}

#[test]
fn every_step_records_its_update_size() {
    let spec = spec(
        vec![
            arm("SGDM", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05),
            arm("Adam", OptimizerSpec::Adam(AdamSpec::default()), 1e-3),
        ],
        1,
    );
    let mut session = Session::new(spec, 0, data(), device()).unwrap();
    let records = run(&mut session);
    let sizes: Vec<(&str, u64, f64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Step(s) => Some((s.arm.as_str(), s.step, s.update_rms.unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(sizes.len(), 2 * 3);
    assert!(
        sizes
            .iter()
            .all(|(_, _, rms)| rms.is_finite() && *rms > 0.0)
    );
    // Adam's first step moves each parameter by at most lr (exactly lr where the gradient is
    // not zero).
    let (_, _, adam_first) = sizes
        .iter()
        .find(|(a, s, _)| *a == "Adam" && *s == 1)
        .unwrap();
    assert!(
        *adam_first <= 1e-3 * (1.0 + 1e-6) && *adam_first > 1e-4,
        "{adam_first}"
    );
}
