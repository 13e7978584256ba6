//! The lab page: composes the settings panel, the run's buttons and state, the data drop zone
//! and the charts (each in its own module), keeps the settings in the URL, and starts the worker
//! that trains (everything heavy happens there: the page only draws).

use leptos::prelude::*;

use super::controls::{Controls, number_input};
use super::export::{export_csv, export_json};
use super::lab_worker::LabWorker;
use super::outcome::{ProgressBar, VerdictPanel};
use super::panels::{SchedulePreview, TrainingCharts};
use super::run::{RunState, Runner, Schedules};
use super::trajectories::Trajectories;
use crate::lab::prepare::KernelKey;
use crate::lab::protocol::{BackendInfo, DataStatus, Event, Request};
use crate::lab::{LabSettings, Setting};

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

/// Puts the settings into the address bar without a reload or a history entry.
fn write_url(settings: &LabSettings) {
    let url = format!("?{}", settings.to_query());
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// Each adaptive arm's exponent schedule in `settings`.
fn schedules(settings: &LabSettings) -> Schedules {
    settings
        .arms
        .iter()
        .map(|a| (a.kind, settings.optimizer(a).adaptive().map(|p| p.exponent)))
        .collect()
}

/// Why the page cannot train, for the `#fatal` line.
fn worker_broke(why: &str) -> String {
    format!("The lab's worker stopped: {why}. Reload the page to start again.")
}

#[component]
pub fn App() -> impl IntoView {
    let (initial, initial_notices) =
        LabSettings::from_query(&window().location().search().unwrap_or_default());
    let settings = RwSignal::new(initial);
    let notices = RwSignal::new(initial_notices);
    let backend = RwSignal::new(None::<BackendInfo>);
    let data = RwSignal::new(None::<DataStatus>);
    let data_usable = RwSignal::new(false);
    // The training images of the last set loaded (still in use when a later file is refused).
    let loaded_train = RwSignal::new(None::<usize>);
    let fatal = RwSignal::new(None::<String>);
    // The worker compiles the GPU kernels for the settings before Start (lab::prepare).
    let preparing = RwSignal::new(false);
    let runner = Runner::new();

    Effect::new(move |_| settings.with(write_url));

    // The worker chooses the device and loads the subset as soon as it listens.
    let on_event = move |event: Event| match event {
        Event::Backend(info) => {
            runner.webgpu.set(info.webgpu);
            backend.set(Some(info));
        }
        Event::Data(status) => {
            if let DataStatus::Loaded { train, .. } = &status {
                loaded_train.set(Some(*train));
            }
            if status.usable() {
                data_usable.set(true);
            } else if !matches!(status, DataStatus::Reading) {
                data_usable.set(false);
            }
            data.set(Some(status));
        }
        Event::PreparingGpu { busy } => preparing.set(busy),
        Event::Run { run, update } => runner.update(run, update),
        Event::Fatal { why } => {
            runner.fail(why.clone());
            fatal.set(Some(worker_broke(&why)));
        }
        Event::Ready | Event::Traced { .. } => {}
    };
    let worker = match LabWorker::spawn(on_event) {
        Ok(worker) => {
            worker.send(&Request::Setup);
            runner.attach(worker.clone());
            Some(worker)
        }
        Err(why) => {
            fatal.set(Some(format!(
                "This browser could not start the lab's worker ({why}), where the lab trains so \
                 that the page stays responsive. A current Chrome, Edge, Firefox or Safari can."
            )));
            None
        }
    };
    let worker = StoredValue::new_local(worker);

    // The worker reads and parses the files: a large archive never holds up the page.
    let load_files = move |list: web_sys::FileList| {
        worker.with_value(|w| {
            if let Some(w) = w {
                w.send_files(&list);
            }
        });
    };

    // Live schedule edits reach a running session from its next step, addressed by arm name.
    let schedules = Memo::new(move |_| settings.with(schedules));
    Effect::new(move |_| schedules.with(|wanted| runner.edit_schedules(wanted)));

    // Whenever the kernels a run would need change (model, batch size, optimizers), the worker
    // compiles them while nobody waits; it skips what it has, and the CPU has nothing to compile.
    let kernel_key = Memo::new(move |_| settings.with(|s| KernelKey::of(&s.experiment())));
    Effect::new(move |_| {
        kernel_key.track();
        let webgpu = backend.with(|b| b.as_ref().is_some_and(|b| b.webgpu));
        if webgpu && data_usable.get() && !runner.arms_locked() {
            runner.send(Request::PrepareGpu {
                experiment: settings.with_untracked(LabSettings::experiment),
            });
        }
    });

    let start = move |_| {
        if runner.resume() {
            return;
        }
        // The worker gives the preparation up for the run.
        preparing.set(false);
        settings.with_untracked(|s| {
            runner.start(s, schedules.get_untracked(), loaded_train.get_untracked())
        });
    };
    let subset_note = move || {
        loaded_train
            .get()
            .and_then(|n| settings.with(|s| s.subset_note(n)))
    };
    let copy_link = move |_| {
        if let Ok(href) = window().location().href() {
            let _ = window().navigator().clipboard().write_text(&href);
        }
    };

    view! {
        <header>
            <h1>"adaexp lab"</h1>
            <p class="lead">
                "Adam divides by v̂" <sup>"p"</sup> " with p = 0.5; p = 0 is SGD with momentum. "
                "Decay p during training and watch whether it closes the gap."
            </p>
        </header>
        // The run's action and state stay in view while the settings scroll.
        <div id="actions">
            <p id="backend" class=move || if backend.get().is_some_and(|b| b.webgpu) { "badge webgpu" } else { "badge cpu" }>
                {move || match backend.get() {
                    None if fatal.with(Option::is_some) => "No device".to_owned(),
                    None => "Looking for WebGPU…".to_owned(),
                    Some(b) if b.webgpu && preparing.get() => {
                        format!("WebGPU: {} · preparing the GPU…", b.name)
                    }
                    Some(b) if b.webgpu => format!("WebGPU: {}", b.name),
                    Some(_) => "CPU backend".to_owned(),
                }}
            </p>
            <div class="buttons">
                <button id="start" class="primary" on:click=start disabled=move || !data_usable.get() || backend.get().is_none() || fatal.with(Option::is_some)>
                    {move || if runner.state.get() == RunState::Paused { "Resume" } else { "Start" }}
                </button>
                <button id="pause" on:click=move |_| runner.pause()>"Pause"</button>
                <button id="reset" on:click=move |_| runner.reset()>"Reset"</button>
            </div>
            <p id="run-state">{move || runner.describe()}</p>
            <ProgressBar runner=runner />
        </div>
        <div class="notices">
            <p id="cpu-notice" class="notice" hidden=move || backend.get().and_then(|b| b.notice).is_none()>
                {move || backend.get().and_then(|b| b.notice).unwrap_or_default()}
            </p>
            <ul id="url-notices" class="notice" hidden=move || notices.with(Vec::is_empty)>
                {move || notices.get().into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
            <p id="fatal" class="error">{move || fatal.get()}</p>
        </div>
        <main>
            <section class="controls">
                <Controls settings=settings arms_locked=Signal::derive(move || runner.arms_locked()) />
                <div class="buttons">
                    <button id="copy-link" on:click=copy_link>"Copy link"</button>
                    <button id="export-json" on:click=move |_| export_json(runner)>"Export JSON"</button>
                    <button id="export-csv" on:click=move |_| export_csv(runner)>"Export CSV"</button>
                </div>
                <div id="data" class="drop"
                    on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
                    on:drop=move |ev: web_sys::DragEvent| {
                        ev.prevent_default();
                        if let Some(list) = ev.data_transfer().and_then(|t| t.files()) {
                            load_files(list);
                        }
                    }>
                    <p id="data-status">{move || data.with(|d| d.as_ref().map_or_else(
                        || "Loading the CIFAR-10 subset…".to_owned(),
                        DataStatus::describe,
                    ))}</p>
                    <p id="subset-note" class="notice"
                        hidden=move || subset_note().is_none()>
                        {move || subset_note().unwrap_or_default()}
                    </p>
                    <input id="file-input" type="file" multiple accept=".bin,.gz,.tgz"
                        on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            if let Some(list) = input.files() {
                                load_files(list);
                            }
                        } />
                </div>
            </section>
            <section class="charts">
                <VerdictPanel runner=runner settings=settings />
                <div id="preview"><SchedulePreview settings=settings runner=runner loaded=loaded_train.into() /></div>
                <div id="trajectories">
                    <Trajectories settings=settings />
                    <p class="note">{move || settings.with(|s| format!(
                        "SGDM at lr {}; Adam, Padam and AdaExp at lr {}. Each family at its own rate: an SGD step is lr × the gradient, an adaptive step about lr per coordinate, so one rate would blow SGDM up or leave Adam crawling. Among the adaptive arms only the exponent differs: AdaExp starts like Adam and ends like SGD.",
                        s.trace_lr_sgdm, s.trace_lr_adaptive
                    ))}</p>
                    <div class="rates">
                        {number_input(settings, Setting::TraceLrSgdm, "trajectory lr, SGDM".into(), "any")}
                        {number_input(settings, Setting::TraceLrAdaptive, "trajectory lr, Adam, Padam, AdaExp".into(), "any")}
                    </div>
                </div>
                <TrainingCharts runner=runner />
            </section>
        </main>
    }
}
