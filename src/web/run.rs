//! The run: one training session at a time, stepped between paints, with its records, state
//! and elapsed time as signals for the charts. Start, pause, resume and reset come from the
//! buttons; live exponent edits reach the session from its next step, by arm name.

use std::time::Duration;

use burn::tensor::Device;
use gloo_timers::future::sleep;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::data::Splits;
use crate::lab::{ArmKind, LabSettings};
use crate::optim::Schedule;
use crate::train::{Record, RunInfo, Session};

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Idle,
    Running,
    Paused,
    Finished,
    Failed(String),
}

/// What the live charts draw against: the running arms under the names their records carry
/// (arm labels follow the sliders, records keep the names from the start) and the run's length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunView {
    pub arms: Vec<(ArmKind, String)>,
    pub epochs: u64,
    pub steps_per_epoch: u64,
}

/// Each adaptive arm's exponent schedule as the settings have it now.
pub type Schedules = Memo<Vec<(ArmKind, Option<Schedule>)>>;

#[derive(Clone, Copy)]
pub struct Runner {
    pub state: RwSignal<RunState>,
    pub records: RwSignal<Vec<Record>>,
    pub view: RwSignal<RunView>,
    /// The header of the run's result file, for the export.
    pub info: StoredValue<Option<RunInfo>>,
    /// Seconds since Start.
    pub elapsed: RwSignal<f64>,
    /// Bumped by every start and reset: a loop whose id is no longer current ends.
    id: StoredValue<u64>,
    started: StoredValue<Option<f64>>,
}

/// Yields to the browser so that it can paint and handle input between steps.
async fn yield_now() {
    sleep(Duration::from_millis(0)).await;
}

impl Runner {
    pub fn new() -> Self {
        Runner {
            state: RwSignal::new(RunState::Idle),
            records: RwSignal::new(Vec::new()),
            view: RwSignal::new(RunView::default()),
            info: StoredValue::new(None),
            elapsed: RwSignal::new(0.0),
            id: StoredValue::new(0),
            started: StoredValue::new(None),
        }
    }

    /// During a run the set of arms is fixed: their weights and records started together.
    pub fn arms_locked(&self) -> bool {
        matches!(self.state.get(), RunState::Running | RunState::Paused)
    }

    /// Trains `settings`' experiment on `splits` from scratch.
    pub fn start(
        self,
        settings: LabSettings,
        splits: Splits,
        device: Device,
        backend_name: String,
        schedules: Schedules,
    ) {
        let spec = settings.experiment();
        let seed = spec.seeds[0];
        let subset = match splits.subset(spec.train_size, spec.test_size, spec.subset_seed) {
            Ok(subset) => subset,
            Err(why) => {
                self.state.set(RunState::Failed(why));
                return;
            }
        };
        let id = self.id.get_value() + 1;
        self.id.set_value(id);
        self.records.set(Vec::new());
        self.view.set(RunView {
            arms: settings
                .arms
                .iter()
                .filter(|a| a.enabled)
                .map(|a| (a.kind, a.kind.name().to_owned()))
                .collect(),
            epochs: settings.epochs,
            steps_per_epoch: settings.steps_per_epoch(),
        });
        self.state.set(RunState::Running);
        self.started.set_value(Some(js_sys::Date::now()));
        spawn_local(async move {
            let mut session = match Session::new(spec, seed, subset, device) {
                Ok(session) => session,
                Err(e) => {
                    self.state.set(RunState::Failed(e.to_string()));
                    return;
                }
            };
            self.info.set_value(Some(session.run_info(&backend_name)));
            let arms = self.view.get_untracked().arms;
            let mut applied = schedules.get_untracked();
            loop {
                if self.id.get_value() != id {
                    return;
                }
                match self.state.get_untracked() {
                    RunState::Paused => {
                        sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    RunState::Running => {}
                    _ => return,
                }
                let wanted = schedules.get_untracked();
                for (kind, name) in &arms {
                    let schedule_of = |all: &[(ArmKind, Option<Schedule>)]| {
                        all.iter()
                            .find(|(k, _)| k == kind)
                            .and_then(|(_, s)| s.clone())
                    };
                    if let Some(schedule) = schedule_of(&wanted)
                        && schedule_of(&applied).as_ref() != Some(&schedule)
                    {
                        session.set_exponent(name, schedule);
                    }
                }
                applied = wanted;
                match session.step().await {
                    Ok(new) => self.records.update(|r| r.extend(new)),
                    Err(e) => {
                        self.state
                            .set(RunState::Failed(format!("training stopped: {e}")));
                        return;
                    }
                }
                if let Some(start) = self.started.get_value() {
                    self.elapsed.set((js_sys::Date::now() - start) / 1000.0);
                }
                if session.is_finished() {
                    self.state.set(RunState::Finished);
                    return;
                }
                yield_now().await;
            }
        });
    }

    pub fn pause(self) {
        if self.state.get_untracked() == RunState::Running {
            self.state.set(RunState::Paused);
        }
    }

    /// Continues a paused run; returns false when there is none.
    pub fn resume(self) -> bool {
        match self.state.get_untracked() {
            RunState::Paused => {
                self.state.set(RunState::Running);
                true
            }
            RunState::Running => true,
            _ => false,
        }
    }

    pub fn reset(self) {
        self.id.set_value(self.id.get_value() + 1);
        self.state.set(RunState::Idle);
        self.records.set(Vec::new());
        self.view.set(RunView::default());
        self.elapsed.set(0.0);
    }

    /// The run state in words.
    pub fn describe(&self) -> String {
        match self.state.get() {
            RunState::Idle => "Ready.".to_owned(),
            RunState::Running => format!("Training… {:.0} s", self.elapsed.get()),
            RunState::Paused => "Paused.".to_owned(),
            RunState::Finished => format!("Finished in {:.0} s.", self.elapsed.get()),
            RunState::Failed(why) => format!("Stopped: {why}"),
        }
    }
}
