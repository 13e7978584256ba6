//! What the lab page and its worker say to each other. The page (src/web) holds only the UI;
//! the worker (src/worker) holds the device, the data, the training session and the
//! trajectories, so that training never blocks the page. Messages travel as JSON text, except
//! the files a user picks, which the page hands over as they are (a `FileList`).
//!
//! Arms are addressed by the names their records carry, never by position.

use serde::{Deserialize, Serialize};

use crate::optim::Schedule;
use crate::trace::TraceSpec;
use crate::train::{ExperimentSpec, Record, RunInfo};

/// Page → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Find the device (WebGPU, else the CPU) and load the CIFAR-10 subset served with the page.
    Setup,
    /// Trains `experiment`'s first seed from scratch on the data loaded last, as run `run`
    /// (the page numbers its runs; the events about this one carry the number).
    Start {
        run: u64,
        experiment: ExperimentSpec,
    },
    Pause,
    Resume,
    /// Abandons the run.
    Reset,
    /// From its next step on, the arm named `arm` follows `schedule`.
    SetExponent {
        arm: String,
        schedule: Schedule,
    },
    /// Compile the GPU kernels that `experiment`'s run will use, before Start asks for them
    /// (`lab::prepare`); the worker says `Event::PreparingGpu` meanwhile. Nothing to do on the
    /// CPU backend, or when the kernels for the same model, batch and optimizers are ready.
    PrepareGpu {
        experiment: ExperimentSpec,
    },
    /// The path of each spec, answered by `Event::Traced` with the same `id`.
    Trace {
        id: u64,
        specs: Vec<TraceSpec>,
    },
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker listens: the page holds its requests until then.
    Ready,
    Backend(BackendInfo),
    Data(DataStatus),
    /// About run `run`: events of a run the page has left behind (reset or restarted) may still
    /// be on their way, and are told apart by it.
    Run {
        run: u64,
        update: RunUpdate,
    },
    /// The paths asked for by `Request::Trace { id, .. }`, one per spec, points after the start.
    Traced {
        id: u64,
        paths: Vec<Result<Vec<[f64; 2]>, String>>,
    },
    /// Whether the worker is compiling kernels for `Request::PrepareGpu` (false: done, or given
    /// up for a run that started).
    PreparingGpu {
        busy: bool,
    },
    /// The worker broke (a panic); only a reload helps.
    Fatal {
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RunUpdate {
    /// The run is set up; `info` is the header of its result file (boxed: it is far larger
    /// than the other updates).
    Started {
        info: Box<RunInfo>,
    },
    /// What the run is busy with while no records come: the warm-up, an evaluation.
    Busy(Activity),
    /// New records, in order (batched: a few per second at most).
    Records(Vec<Record>),
    Finished,
    /// The run stopped on an error (a lost device, data the model cannot take).
    Failed {
        why: String,
    },
}

impl Request {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("requests hold no maps with non-string keys")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("a request the worker cannot read: {e}"))
    }
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events hold no maps with non-string keys")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("a message the page cannot read: {e}"))
    }
}

/// The device the worker trains on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    pub webgpu: bool,
    /// The adapter's name, or "CPU".
    pub name: String,
    /// Why the CPU is used, when it is: a sentence a person can act on.
    pub notice: Option<String>,
}

/// Where the training data stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataStatus {
    Reading,
    Loaded {
        source: String,
        train: usize,
        test: usize,
    },
    /// No subset is served with the page.
    NoSubset {
        why: String,
    },
    /// Files the user gave were not usable; `kept`: the data loaded before is still in use.
    Unusable {
        why: String,
        kept: bool,
    },
}

impl DataStatus {
    /// Whether a run can start on the data the worker holds.
    pub fn usable(&self) -> bool {
        matches!(
            self,
            DataStatus::Loaded { .. } | DataStatus::Unusable { kept: true, .. }
        )
    }

    pub fn describe(&self) -> String {
        match self {
            DataStatus::Reading => "Reading the files…".into(),
            DataStatus::Loaded {
                source,
                train,
                test,
            } => format!("{source}: {train} training and {test} test images."),
            DataStatus::NoSubset { why } => format!(
                "No CIFAR-10 subset here ({why}). Run `cargo run --release -- data fetch cifar10`, \
                 which writes www/data/, or choose or drop the official data_batch_*.bin and \
                 test_batch.bin files or cifar-10-binary.tar.gz."
            ),
            DataStatus::Unusable { why, kept } => {
                let kept = if *kept {
                    " The data loaded before is still in use."
                } else {
                    ""
                };
                format!("That file was not usable: {why}.{kept}")
            }
        }
    }
}

/// What a run is busy with while no records arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activity {
    /// Taking the subset and building each arm's model.
    Preparing,
    /// Queuing `arm`'s step `step` (`position` of the `arms` still training).
    Stepping {
        arm: String,
        position: usize,
        arms: usize,
        step: u64,
    },
    /// Waiting for the device to finish step `step`.
    Reading { step: u64 },
    /// Evaluating `arm` on the test set at the end of `epoch`.
    Evaluating {
        arm: String,
        position: usize,
        arms: usize,
        epoch: u64,
    },
}

impl Activity {
    /// In words; `webgpu`: the first step compiles the GPU kernels, which is most of the wait.
    pub fn describe(&self, webgpu: bool) -> String {
        let first = |step: &u64| *step == 1;
        match self {
            Activity::Preparing => "building the models and the data subset".into(),
            Activity::Stepping {
                arm,
                position,
                arms,
                step,
            } if first(step) && webgpu => {
                format!("compiling GPU kernels for the first step: {arm} ({position} of {arms})")
            }
            Activity::Stepping {
                arm,
                position,
                arms,
                step,
            } => format!("step {step}: {arm} ({position} of {arms})"),
            Activity::Reading { step } if first(step) && webgpu => {
                "the GPU runs the first step (kernels still compiling)".into()
            }
            Activity::Reading { step } => format!("waiting for step {step}'s losses"),
            Activity::Evaluating {
                arm,
                position,
                arms,
                epoch,
            } => format!("epoch {epoch}: evaluating {arm} on the test set ({position} of {arms})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::lab::LabSettings;
    use crate::train::{DivergedRecord, EpochRecord, StepRecord};

    fn run_info() -> RunInfo {
        RunInfo::example(LabSettings::default().experiment(), 0, 40, 2000, 500)
    }

    #[test]
    fn every_request_reads_back_as_written() {
        let settings = LabSettings::default();
        let ax = &settings.arms[3];
        let requests = [
            Request::Setup,
            Request::Start {
                run: 2,
                experiment: settings.experiment(),
            },
            Request::PrepareGpu {
                experiment: settings.experiment(),
            },
            Request::Pause,
            Request::Resume,
            Request::Reset,
            Request::SetExponent {
                arm: "AdaExp".into(),
                schedule: ax.schedule(),
            },
            Request::Trace {
                id: 7,
                specs: vec![settings.trace_spec(
                    ax,
                    crate::trace::TestFunction::Rosenbrock,
                    [-1.5, 2.0],
                    600,
                )],
            },
        ];
        for request in requests {
            assert_eq!(Request::from_json(&request.to_json()), Ok(request));
        }
    }

    #[test]
    fn every_event_reads_back_as_written() {
        let step = |arm: &str, step: u64, p: Option<f64>| {
            Record::Step(StepRecord {
                arm: arm.into(),
                step,
                epoch: 1,
                loss: std::f64::consts::LN_10,
                p,
                lr: 1e-3,
                update_rms: Some(3.3e-4),
            })
        };
        let run = |update| Event::Run { run: 4, update };
        let events = [
            Event::Ready,
            Event::PreparingGpu { busy: true },
            Event::Backend(BackendInfo {
                webgpu: false,
                name: "CPU".into(),
                notice: Some("This browser does not offer WebGPU.".into()),
            }),
            Event::Data(DataStatus::Loaded {
                source: "CIFAR-10 subset".into(),
                train: 2000,
                test: 500,
            }),
            run(RunUpdate::Started {
                info: Box::new(run_info()),
            }),
            run(RunUpdate::Busy(Activity::Stepping {
                arm: "Adam".into(),
                position: 2,
                arms: 4,
                step: 1,
            })),
            run(RunUpdate::Records(vec![
                step("SGDM", 1, None),
                step("AdaExp", 1, Some(0.5)),
                Record::Epoch(EpochRecord {
                    arm: "SGDM".into(),
                    epoch: 1,
                    step: 40,
                    train_loss: 2.1,
                    train_accuracy: 0.2,
                    test_loss: 2.0,
                    test_accuracy: 0.25,
                    val_loss: None,
                    val_accuracy: None,
                    wall_seconds: 12.5,
                    images_per_second: 51.2,
                }),
                Record::Diverged(DivergedRecord {
                    arm: "Adam".into(),
                    epoch: 1,
                    step: 3,
                    loss: "NaN".into(),
                }),
            ])),
            run(RunUpdate::Finished),
            run(RunUpdate::Failed {
                why: "the GPU device was lost".into(),
            }),
            Event::Traced {
                id: 3,
                paths: vec![
                    Ok(vec![[-1.5, 2.0], [-1.4, 1.9]]),
                    Err("lr: must be > 0".into()),
                ],
            },
            Event::Fatal {
                why: "panicked at src/x.rs".into(),
            },
        ];
        for event in events {
            assert_eq!(Event::from_json(&event.to_json()), Ok(event));
        }
    }

    /// The page exports what the worker computed: every float must cross as the same bits.
    #[test]
    fn floats_cross_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let values: Vec<f64> = (0..20_000)
            .map(|i| match i % 3 {
                // Any finite bit pattern, subnormals included.
                0 => loop {
                    let v = f64::from_bits(rng.random());
                    if v.is_finite() {
                        break v;
                    }
                },
                1 => rng.random::<f64>() * 10f64.powi(rng.random_range(-12..4)),
                _ => f64::from(rng.random::<f32>()),
            })
            .collect();
        let event = Event::Traced {
            id: 0,
            paths: vec![Ok(values.chunks(2).map(|c| [c[0], c[1]]).collect())],
        };
        let Ok(Event::Traced { paths, .. }) = Event::from_json(&event.to_json()) else {
            panic!("not read back");
        };
        let back: Vec<f64> = paths[0].as_ref().unwrap().concat();
        let changed = values
            .iter()
            .zip(&back)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(changed, 0, "{changed} of {} values changed", values.len());
    }

    #[test]
    fn a_request_that_is_not_one_is_named() {
        let err = Request::from_json(r#"{"Launch":{}}"#).unwrap_err();
        assert!(
            err.starts_with("a request the worker cannot read: unknown variant `Launch`"),
            "{err}"
        );
    }

    #[test]
    fn the_data_line_says_what_to_do() {
        assert!(!DataStatus::Reading.usable());
        assert!(
            DataStatus::Unusable {
                why: "x".into(),
                kept: true
            }
            .usable()
        );
        assert!(
            !DataStatus::Unusable {
                why: "x".into(),
                kept: false
            }
            .usable()
        );
        assert_eq!(
            DataStatus::Unusable {
                why: "data_batch_1.bin: 5000 bytes is not a multiple of 3073".into(),
                kept: true
            }
            .describe(),
            "That file was not usable: data_batch_1.bin: 5000 bytes is not a multiple of 3073. \
             The data loaded before is still in use."
        );
        assert!(
            DataStatus::NoSubset {
                why: "HTTP 404".into()
            }
            .describe()
            .contains("data fetch cifar10")
        );
    }

    #[test]
    fn the_warm_up_names_the_kernels_only_on_webgpu_and_only_for_the_first_step() {
        let stepping = |step| Activity::Stepping {
            arm: "Adam".into(),
            position: 2,
            arms: 4,
            step,
        };
        assert_eq!(
            stepping(1).describe(true),
            "compiling GPU kernels for the first step: Adam (2 of 4)"
        );
        assert_eq!(stepping(1).describe(false), "step 1: Adam (2 of 4)");
        assert_eq!(stepping(9).describe(true), "step 9: Adam (2 of 4)");
        assert!(
            Activity::Reading { step: 1 }
                .describe(true)
                .contains("compiling")
        );
        assert_eq!(
            Activity::Reading { step: 1 }.describe(false),
            "waiting for step 1's losses"
        );
    }
}
