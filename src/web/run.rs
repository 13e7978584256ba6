//! The run as the page sees it: the worker trains; the runner sends it the buttons' requests
//! and the live exponent edits (by arm name), and keeps what comes back (records, state, what
//! the warm-up is busy with, the elapsed time) as signals for the charts.

use std::rc::Rc;
use std::time::Duration;

use gloo_timers::future::sleep;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::lab_worker::LabWorker;
use crate::lab::progress::{Mark, Progress, last_step};
use crate::lab::protocol::{Activity, Request, RunUpdate};
use crate::lab::{ArmKind, LabSettings};
use crate::optim::Schedule;
use crate::train::{Record, RunInfo};

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Idle,
    Running,
    Paused,
    Finished,
    Failed(String),
}

impl RunState {
    /// Started and not over: running or paused.
    fn in_run(&self) -> bool {
        matches!(self, RunState::Running | RunState::Paused)
    }
}

/// What the live charts draw against: the running arms under the names their records carry
/// (arm labels follow the sliders, records keep the names from the start) and the run's length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunView {
    pub arms: Vec<(ArmKind, String)>,
    pub epochs: u64,
    pub steps_per_epoch: u64,
    /// Training images per epoch.
    pub train_images: usize,
}

/// Each adaptive arm's exponent schedule as the settings have it now.
pub type Schedules = Vec<(ArmKind, Option<Schedule>)>;

/// Training time, pauses left out.
#[derive(Clone, Copy, Default)]
struct Clock {
    /// `Date.now()` when the run last started or resumed, while it runs.
    since_ms: Option<f64>,
    /// Seconds before that.
    before: f64,
}

impl Clock {
    fn seconds(&self) -> f64 {
        self.before
            + self
                .since_ms
                .map_or(0.0, |since| (js_sys::Date::now() - since) / 1000.0)
    }

    fn go(&mut self) {
        self.since_ms.get_or_insert_with(js_sys::Date::now);
    }

    fn stop(&mut self) {
        self.before = self.seconds();
        self.since_ms = None;
    }
}

#[derive(Clone, Copy)]
pub struct Runner {
    pub state: RwSignal<RunState>,
    pub records: RwSignal<Vec<Record>>,
    pub view: RwSignal<RunView>,
    /// The header of the run's result file, for the export.
    pub info: StoredValue<Option<RunInfo>>,
    /// What the run is busy with while no records come (the warm-up, an evaluation).
    pub activity: RwSignal<Option<Activity>>,
    /// Seconds of training so far.
    pub elapsed: RwSignal<f64>,
    /// Whether the worker trains on WebGPU (the warm-up is then mostly kernel compilation).
    pub webgpu: RwSignal<bool>,
    /// The training clock and last step when the first records arrived (the warm-up's end) and
    /// when the latest did: the measured rate behind the time left.
    marks: RwSignal<(Option<Mark>, Option<Mark>)>,
    /// The current run's number; events of other runs are stale.
    run: StoredValue<u64>,
    clock: StoredValue<Clock>,
    /// The exponent schedules the worker has.
    sent: StoredValue<Schedules>,
    worker: StoredValue<Option<Rc<LabWorker>>, LocalStorage>,
}

impl Runner {
    pub fn new() -> Self {
        Runner {
            state: RwSignal::new(RunState::Idle),
            records: RwSignal::new(Vec::new()),
            view: RwSignal::new(RunView::default()),
            info: StoredValue::new(None),
            activity: RwSignal::new(None),
            elapsed: RwSignal::new(0.0),
            webgpu: RwSignal::new(false),
            marks: RwSignal::new((None, None)),
            run: StoredValue::new(0),
            clock: StoredValue::new(Clock::default()),
            sent: StoredValue::new(Vec::new()),
            worker: StoredValue::new_local(None),
        }
    }

    /// The worker that trains.
    pub fn attach(self, worker: Rc<LabWorker>) {
        self.worker.set_value(Some(worker));
    }

    pub fn send(self, request: Request) {
        self.worker.with_value(|worker| {
            if let Some(worker) = worker {
                worker.send(&request);
            }
        });
    }

    /// Steps per epoch of the run going on, as its header counts them (`None` between runs).
    pub fn running_steps_per_epoch(&self) -> Option<u64> {
        (self.arms_locked() && self.info.with_value(Option::is_some))
            .then(|| self.view.with(|v| v.steps_per_epoch))
    }

    /// During a run the set of arms is fixed: their weights and records started together.
    pub fn arms_locked(&self) -> bool {
        self.state.with(RunState::in_run)
    }

    /// Where the run stands, from Start until Reset.
    pub fn progress(&self) -> Option<Progress> {
        if self.state.with(|s| *s == RunState::Idle) {
            return None;
        }
        let view = self.view.get();
        let now = self.elapsed.get();
        let marks = self.marks.get();
        Some(self.records.with(|all| {
            Progress::of(
                all,
                (view.arms.len(), view.epochs),
                view.steps_per_epoch,
                view.train_images,
                marks,
                now,
            )
        }))
    }

    /// Whether a run is going on now, without subscribing to the state.
    fn in_run_now(&self) -> bool {
        self.state.with_untracked(RunState::in_run)
    }

    /// Trains `settings`' experiment from scratch on the `loaded` training images; `schedules`
    /// are the arms' exponent schedules now (later edits follow through `edit_schedules`).
    pub fn start(self, settings: &LabSettings, schedules: Schedules, loaded: Option<usize>) {
        let run = self.run.get_value() + 1;
        self.run.set_value(run);
        self.records.set(Vec::new());
        self.info.set_value(None);
        self.activity.set(None);
        self.view.set(RunView {
            arms: settings
                .arms
                .iter()
                .filter(|a| a.enabled)
                .map(|a| (a.kind, a.kind.name().to_owned()))
                .collect(),
            epochs: settings.epochs,
            // Until the run's header says how many it counts.
            steps_per_epoch: settings.steps_per_epoch_on(loaded),
            train_images: settings.train_images_on(loaded),
        });
        self.marks.set((None, None));
        self.sent.set_value(schedules);
        self.clock.set_value(Clock::default());
        self.clock.update_value(Clock::go);
        self.elapsed.set(0.0);
        self.state.set(RunState::Running);
        self.send(Request::Start {
            run,
            experiment: settings.experiment(),
        });
        self.tick(run);
    }

    /// Keeps the elapsed time moving while run `run` trains.
    fn tick(self, run: u64) {
        spawn_local(async move {
            while self.run.get_value() == run {
                match self.state.get_untracked() {
                    RunState::Running => self.elapsed.set(self.clock.get_value().seconds()),
                    RunState::Paused => {}
                    _ => return,
                }
                sleep(Duration::from_millis(500)).await;
            }
        });
    }

    pub fn pause(self) {
        if self.state.get_untracked() == RunState::Running {
            self.clock.update_value(Clock::stop);
            self.state.set(RunState::Paused);
            self.send(Request::Pause);
        }
    }

    /// Continues a paused run; returns false when there is none.
    pub fn resume(self) -> bool {
        match self.state.get_untracked() {
            RunState::Paused => {
                self.clock.update_value(Clock::go);
                self.state.set(RunState::Running);
                self.send(Request::Resume);
                true
            }
            RunState::Running => true,
            _ => false,
        }
    }

    pub fn reset(self) {
        self.run.set_value(self.run.get_value() + 1);
        self.send(Request::Reset);
        self.state.set(RunState::Idle);
        self.records.set(Vec::new());
        self.view.set(RunView::default());
        self.marks.set((None, None));
        self.activity.set(None);
        self.elapsed.set(0.0);
    }

    /// Sends the running arms' changed exponent schedules, by arm name.
    pub fn edit_schedules(self, wanted: &Schedules) {
        if !self.in_run_now() {
            return;
        }
        let schedule_of = |all: &Schedules, kind: ArmKind| {
            all.iter()
                .find(|(k, _)| *k == kind)
                .and_then(|(_, s)| s.clone())
        };
        let sent = self.sent.get_value();
        for (kind, name) in self.view.get_untracked().arms {
            if let Some(schedule) = schedule_of(wanted, kind)
                && schedule_of(&sent, kind).as_ref() != Some(&schedule)
            {
                self.send(Request::SetExponent {
                    arm: name,
                    schedule,
                });
            }
        }
        self.sent.set_value(wanted.clone());
    }

    /// What the worker says about run `run`.
    pub fn update(self, run: u64, update: RunUpdate) {
        if run != self.run.get_value() {
            return;
        }
        self.elapsed.set(self.clock.get_value().seconds());
        match update {
            RunUpdate::Started { info } => {
                // The session's own count: records are placed by it, not by the settings'.
                self.view.update(|view| {
                    view.steps_per_epoch = info.steps_per_epoch;
                    view.train_images = info.train_images;
                });
                self.info.set_value(Some(*info));
            }
            RunUpdate::Busy(activity) => self.activity.set(Some(activity)),
            RunUpdate::Records(new) => {
                self.activity.set(None);
                self.records.update(|all| all.extend(new));
                let mark = Mark {
                    seconds: self.clock.get_value().seconds(),
                    step: self.records.with_untracked(|all| last_step(all)),
                };
                // The first step's records come arm by arm: the warm-up ends with the last
                // arm's (each arm's first step compiles its own kernels).
                let arms = self.view.with_untracked(|v| v.arms.len());
                let all_heard = self.marks.with_untracked(|(first, _)| first.is_some())
                    || self.records.with_untracked(|all| {
                        all.iter()
                            .filter_map(Record::arm)
                            .collect::<std::collections::BTreeSet<_>>()
                            .len()
                            >= arms
                    });
                self.marks.update(|(first, last)| {
                    if all_heard {
                        first.get_or_insert(mark);
                    }
                    *last = Some(mark);
                });
            }
            RunUpdate::Finished => self.end(RunState::Finished),
            RunUpdate::Failed { why } => self.end(RunState::Failed(why)),
        }
    }

    /// The worker broke: the run (if any) is over.
    pub fn fail(self, why: String) {
        if self.in_run_now() {
            self.end(RunState::Failed(why));
        }
    }

    fn end(self, state: RunState) {
        self.clock.update_value(Clock::stop);
        self.elapsed.set(self.clock.get_value().seconds());
        self.activity.set(None);
        self.state.set(state);
    }

    /// The run state in words.
    pub fn describe(&self) -> String {
        let elapsed = self.elapsed.get();
        let busy = self
            .activity
            .get()
            .map(|a| format!(": {}", a.describe(self.webgpu.get())))
            .unwrap_or_default();
        match self.state.get() {
            RunState::Idle => "Ready.".to_owned(),
            RunState::Running if self.records.with(Vec::is_empty) => {
                format!("Warming up… {elapsed:.0} s{busy}")
            }
            RunState::Running => format!("Training… {elapsed:.0} s{busy}"),
            RunState::Paused => format!("Paused after {elapsed:.0} s."),
            RunState::Finished => format!("Finished in {elapsed:.0} s."),
            RunState::Failed(why) => format!("Stopped: {why}"),
        }
    }
}
