//! The run in the worker: one session at a time, stepped as fast as the device goes, with the
//! page's pause, reset and exponent edits applied between steps.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gloo_timers::future::sleep;
use wasm_bindgen_futures::spawn_local;
use web_time::Instant;

use super::{Worker, post};
use crate::lab::protocol::{Activity, Event, RunUpdate};
use crate::optim::Schedule;
use crate::train::{ExperimentSpec, Progress, Record};

/// The page's say over the run, read between steps.
#[derive(Default)]
pub struct Control {
    /// The page's number of the current run: a run that is no longer current ends.
    run: Option<u64>,
    pub paused: bool,
    /// Exponent edits by arm name, applied before the next step.
    pub edits: Vec<(String, Schedule)>,
}

impl Control {
    pub fn reset(&mut self) {
        *self = Control::default();
    }
}

fn tell(run: u64, update: RunUpdate) {
    post(&Event::Run { run, update });
}

/// Records are sent a few times a second at most (each batch redraws the page's charts), and
/// at once when they are the run's first or end an epoch.
const RECORDS_EVERY: Duration = Duration::from_millis(200);

struct Outbox {
    run: u64,
    records: Vec<Record>,
    sent_any: bool,
    last_sent: Instant,
}

impl Outbox {
    fn add(&mut self, new: Vec<Record>) {
        let urgent = !self.sent_any || new.iter().any(|r| !matches!(r, Record::Step(_)));
        self.records.extend(new);
        if urgent || self.last_sent.elapsed() >= RECORDS_EVERY {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.records.is_empty() {
            tell(
                self.run,
                RunUpdate::Records(std::mem::take(&mut self.records)),
            );
            self.sent_any = true;
            self.last_sent = Instant::now();
        }
    }
}

pub fn start(worker: Rc<Worker>, run: u64, experiment: ExperimentSpec) {
    *worker.run.borrow_mut() = Control {
        run: Some(run),
        ..Control::default()
    };
    spawn_local(async move {
        if let Err(why) = train(&worker, run, experiment).await {
            // A run left behind says nothing more.
            if worker.run.borrow().run == Some(run) {
                tell(run, RunUpdate::Failed { why });
            }
        }
    });
}

async fn train(worker: &Worker, run: u64, experiment: ExperimentSpec) -> Result<(), String> {
    let current = || worker.run.borrow().run == Some(run);
    tell(run, RunUpdate::Busy(Activity::Preparing));
    // Lets the page hear that before the models are built.
    sleep(Duration::ZERO).await;
    if !current() {
        return Ok(());
    }
    let (mut session, backend) = worker.session(experiment)?;
    let warming = Arc::new(AtomicBool::new(true));
    session.watch(watcher(run, warming.clone()));
    tell(
        run,
        RunUpdate::Started {
            info: Box::new(session.run_info(&backend.name)),
        },
    );
    let mut outbox = Outbox {
        run,
        records: Vec::new(),
        sent_any: false,
        last_sent: Instant::now(),
    };
    loop {
        if !current() {
            return Ok(());
        }
        if worker.run.borrow().paused {
            outbox.flush();
            sleep(Duration::from_millis(50)).await;
            continue;
        }
        for (arm, schedule) in std::mem::take(&mut worker.run.borrow_mut().edits) {
            session.set_exponent(&arm, schedule);
        }
        // Records go out as they are read (the first step's arm by arm), unless the run was
        // left behind meanwhile. The warm-up lasts the whole first step: each arm's compiles
        // its own kernels.
        let mut reported = false;
        session
            .step_reporting(|records| {
                if !records.is_empty() && current() {
                    reported = true;
                    outbox.add(records);
                }
            })
            .await
            .map_err(|e| format!("training stopped: {e}"))?;
        if !current() {
            return Ok(());
        }
        if reported {
            warming.store(false, Ordering::Relaxed);
        }
        if session.is_finished() {
            outbox.flush();
            tell(run, RunUpdate::Finished);
            return Ok(());
        }
        // Lets the page's requests in between steps.
        sleep(Duration::ZERO).await;
    }
}

/// Tells the page what the run is busy with: every part of the warm-up (until the first
/// records), and each evaluation.
fn watcher(run: u64, warming: Arc<AtomicBool>) -> impl FnMut(Progress<'_>) + Send + 'static {
    let mut step = 0;
    move |progress| {
        let warm_up = warming.load(Ordering::Relaxed);
        let activity = match progress {
            Progress::Stepping {
                arm,
                position,
                arms,
                step: now,
            } => {
                step = now;
                warm_up.then(|| Activity::Stepping {
                    arm: arm.to_owned(),
                    position,
                    arms,
                    step,
                })
            }
            Progress::Reading => warm_up.then_some(Activity::Reading { step }),
            Progress::Evaluating {
                arm,
                position,
                arms,
                epoch,
            } => Some(Activity::Evaluating {
                arm: arm.to_owned(),
                position,
                arms,
                epoch,
            }),
        };
        if let Some(activity) = activity {
            tell(run, RunUpdate::Busy(activity));
        }
    }
}
