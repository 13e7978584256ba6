//! The lab page: composes the settings panel, the run's buttons and state, the data loader and
//! the charts (each in its own module), and keeps the settings in the URL.

use std::time::Duration;

use burn::tensor::Device;
use gloo_timers::future::sleep;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::backend::{self, BackendInfo};
use super::controls::{Controls, number_input};
use super::export::{export_csv, export_json};
use super::files;
use super::panels::{SchedulePreview, TrainingCharts, Trajectories};
use super::run::{RunState, Runner};
use crate::data::Splits;
use crate::lab::LabSettings;

/// How long the settings must rest before the trajectories are recomputed.
const TRACE_SETTLE_MS: u64 = 120;

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

#[component]
pub fn App() -> impl IntoView {
    let (initial, initial_notices) =
        LabSettings::from_query(&window().location().search().unwrap_or_default());
    let settings = RwSignal::new(initial);
    let notices = RwSignal::new(initial_notices);
    let backend = RwSignal::new(None::<BackendInfo>);
    let device = StoredValue::new(None::<Device>);
    let data = StoredValue::new(None::<Splits>);
    let data_status = RwSignal::new("Loading the CIFAR-10 subset…".to_owned());
    let data_ready = RwSignal::new(false);
    let runner = Runner::new();

    Effect::new(move |_| settings.with(write_url));
    // The trajectories follow the settings once they rest for a moment, so that dragging a
    // slider stays smooth while each changed arm's path is recomputed.
    let settled = RwSignal::new(settings.get_untracked());
    let generation = StoredValue::new(0u64);
    Effect::new(move |_| {
        let next = settings.get();
        let this = generation.get_value() + 1;
        generation.set_value(this);
        spawn_local(async move {
            sleep(Duration::from_millis(TRACE_SETTLE_MS)).await;
            if generation.get_value() == this && settled.get_untracked() != next {
                settled.set(next);
            }
        });
    });

    spawn_local(async move {
        let (chosen, info) = backend::choose().await;
        device.set_value(Some(chosen));
        backend.set(Some(info));
    });
    // Data from either source becomes the one training set, with a line saying where it came from.
    let accept = move |splits: Splits, source: &str| {
        data_status.set(format!(
            "{source}: {} training and {} test images.",
            splits.train.len(),
            splits.test.len()
        ));
        data.set_value(Some(splits));
        data_ready.set(true);
    };
    spawn_local(async move {
        match files::load_subset().await {
            Ok(splits) => accept(splits, "CIFAR-10 subset"),
            Err(why) => data_status.set(format!(
                "No CIFAR-10 subset here ({why}). Run `cargo run --release -- data fetch cifar10`, \
                 which writes www/data/, or choose or drop the official data_batch_*.bin and \
                 test_batch.bin files or cifar-10-binary.tar.gz."
            )),
        }
    });

    let load_files = move |list: web_sys::FileList| {
        data_status.set("Reading the files…".into());
        spawn_local(async move {
            match files::load_files(list).await {
                Ok(splits) => accept(splits, "From your files"),
                Err(why) => {
                    let kept = if data.with_value(Option::is_some) {
                        " The data loaded before is still in use."
                    } else {
                        ""
                    };
                    data_status.set(format!("That file was not usable: {why}.{kept}"));
                }
            }
        });
    };

    // Live schedule edits reach a running session from its next step, addressed by arm name.
    let schedules = Memo::new(move |_| {
        settings.with(|s| {
            s.arms
                .iter()
                .map(|a| (a.kind, s.optimizer(a).adaptive().map(|p| p.exponent)))
                .collect::<Vec<_>>()
        })
    });

    let start = move |_| {
        if runner.resume() {
            return;
        }
        let (Some(device), Some(splits)) = (device.get_value(), data.get_value()) else {
            return;
        };
        let name = backend.get_untracked().map(|b| b.name).unwrap_or_default();
        runner.start(settings.get_untracked(), splits, device, name, schedules);
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
            <p id="backend" class=move || if backend.get().is_some_and(|b| b.webgpu) { "badge webgpu" } else { "badge cpu" }>
                {move || match backend.get() {
                    None => "Looking for WebGPU…".to_owned(),
                    Some(b) if b.webgpu => format!("WebGPU: {}", b.name),
                    Some(_) => "CPU backend".to_owned(),
                }}
            </p>
            <p id="cpu-notice" class="notice" hidden=move || backend.get().and_then(|b| b.notice).is_none()>
                {move || backend.get().and_then(|b| b.notice).unwrap_or_default()}
            </p>
            <ul id="url-notices" class="notice" hidden=move || notices.with(Vec::is_empty)>
                {move || notices.get().into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
            <p id="fatal" class="error"></p>
        </header>
        <main>
            <section class="controls">
                <Controls settings=settings arms_locked=Signal::derive(move || runner.arms_locked()) />
                <div class="buttons">
                    <button id="start" on:click=start disabled=move || !data_ready.get() || backend.get().is_none()>
                        {move || if runner.state.get() == RunState::Paused { "Resume" } else { "Start" }}
                    </button>
                    <button id="pause" on:click=move |_| runner.pause()>"Pause"</button>
                    <button id="reset" on:click=move |_| runner.reset()>"Reset"</button>
                    <button id="copy-link" on:click=copy_link>"Copy link"</button>
                    <button id="export-json" on:click=move |_| export_json(runner)>"Export JSON"</button>
                    <button id="export-csv" on:click=move |_| export_csv(runner)>"Export CSV"</button>
                </div>
                <p id="run-state">{move || runner.describe()}</p>
                <div id="data" class="drop"
                    on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
                    on:drop=move |ev: web_sys::DragEvent| {
                        ev.prevent_default();
                        if let Some(list) = ev.data_transfer().and_then(|t| t.files()) {
                            load_files(list);
                        }
                    }>
                    <p id="data-status">{move || data_status.get()}</p>
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
                <div id="preview"><SchedulePreview settings=settings runner=runner /></div>
                <div id="trajectories">
                    <Trajectories settings=settled />
                    <p class="note">{move || settings.with(|s| format!(
                        "SGDM at lr {}; Adam, Padam and AdaExp at lr {}. Each family at its own rate: an SGD step is lr × the gradient, an adaptive step about lr per coordinate, so one rate would blow SGDM up or leave Adam crawling. Among the adaptive arms only the exponent differs: AdaExp starts like Adam and ends like SGD.",
                        s.trace_lr_sgdm, s.trace_lr_adaptive
                    ))}</p>
                    {number_input(settings, "trace_lr_sgdm".into(), "trajectory lr, SGDM".into(), "any")}
                    {number_input(settings, "trace_lr_adaptive".into(), "trajectory lr, Adam, Padam, AdaExp".into(), "any")}
                </div>
                <TrainingCharts runner=runner />
            </section>
        </main>
    }
}
