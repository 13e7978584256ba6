//! The session on a tiny synthetic dataset: shared start, divergence, resume.

use burn::tensor::Device;

use super::spec::fixtures::{arm, matched, spec};
use super::*;
use crate::data::{ImageSet, ImageShape, Splits};
use crate::optim::spec::{AdaExpSpec, AdamSpec, SgdmSpec};
use crate::optim::{Length, OptimizerSpec, Schedule};

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

fn data() -> Splits {
    Splits::new(synthetic(40, 1), synthetic(20, 2))
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

/// Two SGDM arms, "a" and "b", at the same rate, for 2 epochs of 3 steps.
fn twin_sgdm_arms(seed: u64) -> Session {
    let sgdm = OptimizerSpec::Sgdm(SgdmSpec::default());
    Session::new(
        spec(vec![arm("a", sgdm.clone(), 0.05), arm("b", sgdm, 0.05)], 2),
        seed,
        data(),
        device(),
    )
    .unwrap()
}

#[test]
fn identical_arms_see_identical_weights_and_batches() {
    let mut session = twin_sgdm_arms(3);
    assert_eq!(session.steps_per_epoch(), 3); // 40 images in batches of 16
    let records = run(&mut session);
    let (a, b): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.arm() == Some("a"));
    assert_eq!(a.len(), 2 * 3 + 2);
    assert_eq!(b.len(), a.len(), "the zip below compares every record");
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
fn a_validation_split_is_evaluated_beside_the_test_set_and_changes_no_training() {
    let sgdm = OptimizerSpec::Sgdm(SgdmSpec::default());
    let records = |val: Option<ImageSet>| {
        let data = Splits { val, ..data() };
        without_timing(&run(&mut Session::new(
            spec(vec![arm("a", sgdm.clone(), 0.05)], 2),
            1,
            data,
            device(),
        )
        .unwrap()))
    };
    // The test images as the validation split: the same model on the same images.
    let with = records(Some(data().test));
    let epochs: Vec<&EpochRecord> = with
        .iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(epochs.len(), 2);
    for e in &epochs {
        assert_eq!(
            (e.val_loss, e.val_accuracy),
            (Some(e.test_loss), Some(e.test_accuracy))
        );
    }
    // Without one, the same records less the validation fields.
    let without = records(None);
    let stripped: Vec<Record> = with
        .into_iter()
        .map(|r| match r {
            Record::Epoch(e) => Record::Epoch(EpochRecord {
                val_loss: None,
                val_accuracy: None,
                ..e
            }),
            other => other,
        })
        .collect();
    assert_eq!(stripped, without);
}

#[test]
fn headers_and_records_written_before_validation_and_processor_still_read() {
    // As written before `val_size`, `family`, `val_images` and `processor` existed.
    let header = r#"{"type":"run","experiment":{"name":"e","dataset":"cifar10","subset_seed":0,"model":"small-cnn","epochs":1,"batch_size":8,"seeds":[0],"augment":true,"arms":[{"name":"SGDM","optimizer":{"kind":"sgdm","momentum":0.9,"nesterov":false},"lr":{"base":0.1,"decay":{"shape":"constant"}}}]},"seed":0,"backend":"cpu","steps_per_epoch":2,"train_images":16,"test_images":8}"#;
    let Record::Run(info) = serde_json::from_str::<Record>(header).unwrap() else {
        panic!("not a header");
    };
    assert_eq!((info.val_images, info.processor.as_deref()), (0, None));
    assert_eq!(info.experiment.val_size, None);
    assert_eq!(info.experiment.arms[0].family, None);
    // Written back, it is the same line: no new field appears.
    assert_eq!(serde_json::to_string(&Record::Run(info)).unwrap(), header);
    let epoch = r#"{"type":"epoch","arm":"SGDM","epoch":1,"step":2,"train_loss":1.0,"train_accuracy":0.5,"test_loss":1.0,"test_accuracy":0.5,"wall_seconds":1.0,"images_per_second":1.0}"#;
    let record: Record = serde_json::from_str(epoch).unwrap();
    assert!(matches!(&record, Record::Epoch(e) if e.val_accuracy.is_none()));
    assert_eq!(serde_json::to_string(&record).unwrap(), epoch);
    // A header with the new fields reads them back.
    let newer = header.replace(
        r#""test_images":8}"#,
        r#""test_images":8,"val_images":4,"processor":"AMD EPYC (x86-64-v3: AVX2, FMA)"}"#,
    );
    let Record::Run(info) = serde_json::from_str::<Record>(&newer).unwrap() else {
        panic!("not a header");
    };
    assert_eq!(
        (info.val_images, info.processor.as_deref()),
        (4, Some("AMD EPYC (x86-64-v3: AVX2, FMA)"))
    );
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

    // 3 batches per epoch: at the first epoch boundary, and mid-epoch (a preempted run), where
    // the order, the augmentation stream and the epoch's sums must all carry on.
    for steps in [3, 2, 4] {
        let mut first = Session::new(spec(arms.clone(), 3), 5, data(), device()).unwrap();
        let mut before = Vec::new();
        while first.steps_done() < steps {
            before.extend(pollster::block_on(first.step()).unwrap());
        }
        assert_eq!(first.at_epoch_boundary(), steps % 3 == 0);
        if !first.at_epoch_boundary() {
            assert!(first.checkpoint().is_err(), "a step is still queued");
        }
        before.extend(pollster::block_on(first.settle_all()).unwrap());
        let checkpoint = first.checkpoint().unwrap();
        assert_eq!(checkpoint.batch, steps % 3);
        drop(first);
        let mut resumed = Session::new(spec(arms.clone(), 3), 5, data(), device()).unwrap();
        resumed.restore(checkpoint).unwrap();
        let after = run(&mut resumed);
        let stitched = without_timing(&[before, after].concat());
        assert_eq!(stitched.len(), all.len(), "after {steps} steps");
        for (a, b) in stitched.iter().zip(&all) {
            assert_eq!(a, b, "after {steps} steps");
        }
    }
}

#[test]
fn an_arm_trains_the_same_alone_as_beside_the_others() {
    let arms = vec![
        arm("sgdm", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05),
        arm(
            "adaexp",
            OptimizerSpec::AdaExp(AdaExpSpec::new(Schedule::Linear {
                start: 0.5,
                end: 0.0,
                length: Length::Epochs(2.0),
            })),
            1e-3,
        ),
        ArmSpec {
            name: "matched".into(),
            family: None,
            optimizer: OptimizerSpec::Adam(AdamSpec::default()),
            lr: ArmLr::Matched {
                match_update_of: "adaexp".into(),
            },
        },
    ];
    let full = spec(arms, 2);
    let together = without_timing(&run(
        &mut Session::new(full.clone(), 4, data(), device()).unwrap()
    ));
    for group in full.arm_groups() {
        let shard = full.select_arms(&group).unwrap();
        let alone = without_timing(&run(&mut Session::new(shard, 4, data(), device()).unwrap()));
        let beside: Vec<Record> = together
            .iter()
            .filter(|r| r.arm().is_some_and(|a| group.iter().any(|g| g == a)))
            .cloned()
            .collect();
        assert!(!alone.is_empty());
        assert_eq!(alone, beside, "{group:?}");
    }
    assert_eq!(
        full.arm_groups(),
        vec![
            vec!["sgdm".to_owned()],
            vec!["adaexp".into(), "matched".into()]
        ]
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
    let err = Session::new(s(), 0, Splits::new(small.clone(), small), device())
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
    let err = Session::new(s(), 0, Splits::new(synthetic(40, 1), other), device())
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

fn adaexp_half_to_zero(epochs: f64) -> OptimizerSpec {
    OptimizerSpec::AdaExp(AdaExpSpec::new(Schedule::Linear {
        start: 0.5,
        end: 0.0,
        length: Length::Epochs(epochs),
    }))
}

/// RMS of the change between two parameter snapshots, from the host copies.
fn measured_rms(before: &[f32], after: &[f32]) -> f64 {
    let squares: f64 = before
        .iter()
        .zip(after)
        .map(|(b, a)| (f64::from(*a) - f64::from(*b)).powi(2))
        .sum();
    (squares / before.len() as f64).sqrt()
}

#[test]
fn a_matched_arm_takes_its_targets_step_size_at_every_step() {
    // The matched arms come first in the spec: the session must still step their target first.
    let spec = spec(
        vec![
            matched(
                "Adam matched",
                OptimizerSpec::Adam(AdamSpec::default()),
                "AdaExp",
            ),
            matched(
                "SGDM matched",
                OptimizerSpec::Sgdm(SgdmSpec::default()),
                "AdaExp",
            ),
            arm("AdaExp", adaexp_half_to_zero(2.0), 1e-3),
        ],
        2,
    );
    let mut session = Session::new(spec, 0, data(), device()).unwrap();
    let names = ["Adam matched", "SGDM matched", "AdaExp"];
    // The weights after each call hold every step queued so far (records may come a call
    // later): snapshot k holds steps 1..=k.
    let snapshot = |session: &Session| -> Vec<Vec<f32>> {
        names.iter().map(|n| session.flat_parameters(n)).collect()
    };
    let mut snapshots = vec![snapshot(&session)];
    let mut records = Vec::new();
    while !session.is_finished() {
        records.extend(pollster::block_on(session.step()).unwrap());
        snapshots.push(snapshot(&session));
    }
    let record = |name: &str, step: u64| {
        records
            .iter()
            .find_map(|r| match r {
                Record::Step(s) if s.arm == name && s.step == step => Some(s.clone()),
                _ => None,
            })
            .unwrap()
    };
    let steps: Vec<_> = (1..snapshots.len() as u64)
        .map(|t| {
            let (before, after) = (&snapshots[t as usize - 1], &snapshots[t as usize]);
            let measured: Vec<f64> = (0..3)
                .map(|i| measured_rms(&before[i], &after[i]))
                .collect();
            let [adam, sgdm, target] = names.map(|n| record(n, t));
            (adam, sgdm, target, measured)
        })
        .collect();
    assert_eq!(steps.len(), 2 * 3);
    for (adam, sgdm, target, measured) in &steps {
        let target_rms = target.update_rms.unwrap();
        for matched in [adam, sgdm] {
            let rms = matched.update_rms.unwrap();
            assert!(
                (rms - target_rms).abs() <= 1e-5 * target_rms,
                "step {}: {} {rms} vs target {target_rms}",
                matched.step,
                matched.arm
            );
        }
        // Measured from the weights themselves (f32 copies, so to 1e-3): every arm moved by
        // the target's size, and the target by what it recorded.
        for (i, m) in measured.iter().enumerate() {
            assert!(
                (m - target_rms).abs() <= 1e-3 * target_rms,
                "step {}: arm {} moved by {m}, target {target_rms}",
                target.step,
                names[i]
            );
        }
    }
    // Adam's first step is ≈ lr per coordinate whatever p is, so at step 1 the matched Adam runs
    // at ≈ AdaExp's lr; SGDM's rate is whatever its gradient size asks for, and both change as
    // p decays.
    let (adam1, _, _, _) = &steps[0];
    assert!((adam1.lr - 1e-3).abs() < 1e-4, "{}", adam1.lr);
    let adam_rates: Vec<f64> = steps.iter().map(|(a, _, _, _)| a.lr).collect();
    assert!(
        adam_rates
            .iter()
            .any(|lr| (lr - adam_rates[0]).abs() > 1e-6)
    );
    assert!(
        steps
            .iter()
            .all(|(_, s, _, _)| s.lr > 0.0 && s.lr.is_finite())
    );
}

#[test]
fn a_matched_arm_whose_target_diverged_stops_and_says_why() {
    let spec = spec(
        vec![
            arm("wild", OptimizerSpec::Sgdm(SgdmSpec::default()), 1e30),
            matched("follower", OptimizerSpec::Adam(AdamSpec::default()), "wild"),
            arm("adam", OptimizerSpec::Adam(AdamSpec::default()), 1e-3),
        ],
        2,
    );
    let mut session = Session::new(spec, 0, data(), device()).unwrap();
    let records = run(&mut session);
    let diverged_at = records
        .iter()
        .find_map(|r| match r {
            Record::Diverged(d) if d.arm == "wild" => Some(d.step),
            _ => None,
        })
        .unwrap();
    let stopped: Vec<&StoppedRecord> = records
        .iter()
        .filter_map(|r| match r {
            Record::Stopped(s) => Some(s),
            _ => None,
        })
        .collect();
    // lr 1e30 makes wild's first update infinite (its loss turns NaN a step later): there is
    // no size to match from step 1 on.
    assert_eq!(diverged_at, 2);
    assert_eq!(stopped.len(), 1, "{records:?}");
    assert_eq!(stopped[0].arm, "follower");
    assert_eq!(stopped[0].step, 1);
    assert!(
        stopped[0].reason.contains("'wild'") && stopped[0].reason.contains("no finite size"),
        "{}",
        stopped[0].reason
    );
    assert!(matches!(
        session.arm_status(1),
        Some(ArmStatus::Stopped { step: 1 })
    ));
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Step(s) if s.arm == "follower"))
    );
    // Back on its initial weights, not on the step it could not take.
    assert!(
        session
            .flat_parameters("follower")
            .iter()
            .all(|v| v.is_finite())
    );
    // The others go on to the end.
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::Epoch(e) if e.arm == "adam"))
            .count(),
        2
    );
}

#[test]
fn a_watcher_hears_each_arm_step_each_read_and_each_evaluation_in_order() {
    let mut session = twin_sgdm_arms(0);
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = heard.clone();
    session.watch(move |progress| {
        log.lock().unwrap().push(match progress {
            Progress::Stepping {
                arm,
                position,
                arms,
                step,
            } => format!("step {step}: {arm} {position}/{arms}"),
            Progress::Reading => "read".into(),
            Progress::Evaluating {
                arm,
                position,
                arms,
                epoch,
            } => format!("epoch {epoch}: evaluate {arm} {position}/{arms}"),
        })
    });
    run(&mut session);
    // 40 images in batches of 16: 3 steps an epoch. The run's first step is read at once, arm
    // by arm; otherwise a step is read while the next is queued (one in flight), and the last
    // of an epoch when the epoch ends.
    let expected = [
        "step 1: a 1/2",
        "read",
        "step 1: b 2/2",
        "read",
        "step 2: a 1/2",
        "step 2: b 2/2",
        "step 3: a 1/2",
        "step 3: b 2/2",
        "read",
        "read",
        "epoch 1: evaluate a 1/2",
        "epoch 1: evaluate b 2/2",
        "step 4: a 1/2",
        "step 4: b 2/2",
        "step 5: a 1/2",
        "step 5: b 2/2",
        "read",
        "step 6: a 1/2",
        "step 6: b 2/2",
        "read",
        "read",
        "epoch 2: evaluate a 1/2",
        "epoch 2: evaluate b 2/2",
    ];
    assert_eq!(*heard.lock().unwrap(), expected);
}

#[test]
fn the_first_step_reports_each_arm_as_it_is_read_and_a_matched_arm_with_its_target() {
    let spec = spec(
        vec![
            arm("SGDM", OptimizerSpec::Sgdm(SgdmSpec::default()), 0.05),
            matched(
                "Adam matched",
                OptimizerSpec::Adam(AdamSpec::default()),
                "AdaExp",
            ),
            arm("AdaExp", adaexp_half_to_zero(2.0), 1e-3),
        ],
        1,
    );
    let mut reported = Vec::new();
    let mut session = Session::new(spec.clone(), 0, data(), device()).unwrap();
    while !session.is_finished() {
        pollster::block_on(session.step_reporting(|records| reported.push(records))).unwrap();
    }
    let names = |records: &Vec<Record>| -> Vec<String> {
        records
            .iter()
            .map(|r| match r {
                Record::Step(s) => format!("{} {}", s.arm, s.step),
                Record::Epoch(e) => format!("{} epoch {}", e.arm, e.epoch),
                other => format!("{other:?}"),
            })
            .collect()
    };
    let calls: Vec<Vec<String>> = reported.iter().map(names).collect();
    // The first step: SGDM alone, then the target with the arm that matches it (it needs the
    // target's update in the same read), then nothing left over. Later steps report once.
    assert_eq!(calls[0], ["SGDM 1"]);
    assert_eq!(calls[1], ["AdaExp 1", "Adam matched 1"]);
    assert!(calls[2].is_empty(), "{:?}", calls[2]);
    assert_eq!(calls.len(), 3 + 2, "3 steps an epoch: {calls:?}");
    // The same records as `step` gives, in the same order.
    let mut plain = Session::new(spec, 0, data(), device()).unwrap();
    let reported: Vec<Record> = reported.into_iter().flatten().collect();
    assert_eq!(without_timing(&reported), without_timing(&run(&mut plain)));
}
