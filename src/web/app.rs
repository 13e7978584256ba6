//! The lab page: controls, schedule preview, trajectory panel, live training charts.

use std::time::Duration;

use burn::tensor::Device;
use gloo_timers::future::sleep;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use super::backend::{self, BackendInfo};
use super::chart::{COLOURS, Ranges, Series, line_chart};
use super::files;
use crate::data::Splits;
use crate::lab::{ArmKind, LabSettings};
use crate::optim::schedule::{sample_over_run, step_position};
use crate::optim::{Schedule, Shape};
use crate::trace::{TestFunction, TraceSpec, run_trace};
use crate::train::summary::smooth;
use crate::train::{Record, RunInfo, Session, StepRecord};

const TRACE_START: [f64; 2] = [-1.5, 2.0];
const TRACE_STEPS: u64 = 600;
/// The trajectory plot's x and y ranges.
const TRACE_VIEW: ((f64, f64), (f64, f64)) = ((-2.0, 2.0), (-1.0, 3.0));
/// How long the settings must rest before the trajectories are recomputed.
const TRACE_SETTLE_MS: u64 = 120;
/// Trajectories kept, so that moving a slider back and forth reuses them.
const TRACE_CACHE: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum RunState {
    Idle,
    Running,
    Paused,
    Finished,
    Failed(String),
}

/// What the live charts draw against: the running arms under the names their records carry
/// (arm labels follow the sliders, records keep the names from the start) and the run's length.
#[derive(Clone, Debug, Default, PartialEq)]
struct RunView {
    arms: Vec<(ArmKind, String)>,
    epochs: u64,
    steps_per_epoch: u64,
}

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

/// Yields to the browser so that it can paint and handle input between steps.
async fn yield_now() {
    sleep(Duration::from_millis(0)).await;
}

fn colour_of(kind: ArmKind) -> &'static str {
    COLOURS[ArmKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
}

/// One arm's per-step values at `step_position`, in record order.
fn step_series(
    records: &[Record],
    arm: &str,
    steps_per_epoch: u64,
    value: fn(&StepRecord) -> Option<f64>,
) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Step(step) if step.arm == arm => {
                Some((step_position(step.step, steps_per_epoch), value(step)?))
            }
            _ => None,
        })
        .collect()
}

/// A live chart over the run's epochs: `per_arm(records, kind, name, steps_per_epoch)` gives each
/// running arm's series; the x axis spans the run.
fn live_chart<PerArm>(
    view: RunView,
    records: RwSignal<Vec<Record>>,
    title: &str,
    y_label: &str,
    ranges: Ranges,
    per_arm: PerArm,
) -> impl IntoView + use<PerArm>
where
    PerArm: Fn(&[Record], ArmKind, String, u64) -> Vec<Series>,
{
    let series = records.with(|all| {
        view.arms
            .into_iter()
            .flat_map(|(kind, name)| per_arm(all, kind, name, view.steps_per_epoch))
            .collect()
    });
    line_chart(
        title,
        "epoch",
        y_label,
        series,
        Ranges {
            x: Some((0.0, view.epochs.max(1) as f64)),
            ..ranges
        },
    )
}

/// Downloads `text` as a file.
fn download(name: &str, mime: &str, text: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) = window()
        .document()
        .and_then(|d| d.create_element("a").ok())
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
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
    let run_state = RwSignal::new(RunState::Idle);
    let run_id = StoredValue::new(0u64);
    let records = RwSignal::new(Vec::<Record>::new());
    let run = RwSignal::new(RunView::default());
    let trajectory_cache = StoredValue::new(Vec::<(TraceSpec, Vec<(f64, f64)>)>::new());
    let run_info = StoredValue::new(None::<RunInfo>);
    let started = StoredValue::new(None::<f64>);
    let elapsed = RwSignal::new(0.0f64);

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

    let train = move || {
        let Some(device) = device.get_value() else {
            return;
        };
        let Some(splits) = data.get_value() else {
            return;
        };
        let current = settings.get_untracked();
        let spec = current.experiment();
        let seed = spec.seeds[0];
        let subset = match splits.subset(spec.train_size, spec.test_size, spec.subset_seed) {
            Ok(subset) => subset,
            Err(why) => {
                run_state.set(RunState::Failed(why));
                return;
            }
        };
        let id = run_id.get_value() + 1;
        run_id.set_value(id);
        records.set(Vec::new());
        run.set(RunView {
            arms: current
                .arms
                .iter()
                .filter(|a| a.enabled)
                .map(|a| (a.kind, a.kind.name().to_owned()))
                .collect(),
            epochs: current.epochs,
            steps_per_epoch: current.steps_per_epoch(),
        });
        run_state.set(RunState::Running);
        started.set_value(Some(js_sys::Date::now()));
        spawn_local(async move {
            let mut session = match Session::new(spec, seed, subset, device) {
                Ok(session) => session,
                Err(e) => {
                    run_state.set(RunState::Failed(e.to_string()));
                    return;
                }
            };
            let name = backend.get_untracked().map(|b| b.name).unwrap_or_default();
            run_info.set_value(Some(session.run_info(&name)));
            let arms = run.get_untracked().arms;
            let mut applied = schedules.get_untracked();
            loop {
                if run_id.get_value() != id {
                    return;
                }
                match run_state.get_untracked() {
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
                    Ok(new) => records.update(|r| r.extend(new)),
                    Err(e) => {
                        run_state.set(RunState::Failed(format!("training stopped: {e}")));
                        return;
                    }
                }
                if let Some(start) = started.get_value() {
                    elapsed.set((js_sys::Date::now() - start) / 1000.0);
                }
                if session.is_finished() {
                    run_state.set(RunState::Finished);
                    return;
                }
                yield_now().await;
            }
        });
    };

    let start = move |_| match run_state.get_untracked() {
        RunState::Paused => run_state.set(RunState::Running),
        RunState::Running => {}
        _ => train(),
    };
    let pause = move |_| {
        if run_state.get_untracked() == RunState::Running {
            run_state.set(RunState::Paused);
        }
    };
    let reset = move |_| {
        run_id.set_value(run_id.get_value() + 1);
        run_state.set(RunState::Idle);
        records.set(Vec::new());
        run.set(RunView::default());
        elapsed.set(0.0);
    };

    let export_json = move |_| {
        let Some(info) = run_info.get_value() else {
            return;
        };
        let mut text = serde_json::to_string(&Record::Run(info)).unwrap_or_default();
        text.push('\n');
        records.with_untracked(|all| {
            for record in all {
                text += &serde_json::to_string(record).unwrap_or_default();
                text.push('\n');
            }
        });
        download("browser-lab-seed.jsonl", "application/x-ndjson", &text);
    };
    let export_csv = move |_| {
        let mut text = String::from(
            "arm,epoch,step,train_loss,train_accuracy,test_loss,test_accuracy,wall_seconds,images_per_second\n",
        );
        records.with_untracked(|all| {
            for record in all {
                if let Record::Epoch(e) = record {
                    text += &format!(
                        "\"{}\",{},{},{},{},{},{},{},{}\n",
                        e.arm.replace('"', "\"\""),
                        e.epoch,
                        e.step,
                        e.train_loss,
                        e.train_accuracy,
                        e.test_loss,
                        e.test_accuracy,
                        e.wall_seconds,
                        e.images_per_second
                    );
                }
            }
        });
        download("browser-lab-epochs.csv", "text/csv", &text);
    };
    let copy_link = move |_| {
        if let Ok(href) = window().location().href() {
            let _ = window().navigator().clipboard().write_text(&href);
        }
    };

    // Schedule preview: p(t) per adaptive arm (planned, solid), and what the run used so far
    // (dashed), drawn with the CLI's convention (`step_position`).
    let preview = move || {
        let s = settings.get();
        let spe = s.steps_per_epoch().max(1);
        let total = s.epochs * spe;
        let mut p_series = Vec::new();
        let mut lr_series = Vec::new();
        for arm in s.arms.iter().filter(|a| a.enabled) {
            let spec = s.optimizer(arm);
            let label = arm.label();
            if let Some(planned) = sample_over_run(total, spe, 200, |t| spec.exponent_at(t, spe)) {
                p_series.push(Series::line(label.clone(), colour_of(arm.kind), planned));
            }
            let lr = s.lr_schedule(arm.lr);
            if arm.kind.has_lr()
                && let Some(planned) = sample_over_run(total, spe, 200, |t| Some(lr.value(t, spe)))
            {
                lr_series.push(Series::line(label.clone(), colour_of(arm.kind), planned));
            }
            let running = run.with(|r| {
                r.arms
                    .iter()
                    .find(|(kind, _)| *kind == arm.kind)
                    .map(|(_, name)| name.clone())
            });
            let used = |value: fn(&StepRecord) -> Option<f64>| -> Vec<(f64, f64)> {
                running
                    .as_ref()
                    .map(|name| records.with(|r| step_series(r, name, spe, value)))
                    .unwrap_or_default()
            };
            let used_p = used(|step| step.p);
            if !used_p.is_empty() {
                p_series.push(Series {
                    dashed: true,
                    ..Series::line(format!("{label} (used)"), colour_of(arm.kind), used_p)
                });
            }
            // The matched arm's rate is known only as it trains: the lr decay AdaExp's exponent
            // amounts to for Adam's direction.
            if !arm.kind.has_lr() {
                let used_lr = used(|step| Some(step.lr));
                if !used_lr.is_empty() {
                    lr_series.push(Series {
                        dashed: true,
                        ..Series::line(format!("{label} (used)"), colour_of(arm.kind), used_lr)
                    });
                }
            }
        }
        view! {
            {line_chart("exponent p(t): planned, and used so far (dashed)", "epoch", "p", p_series, Ranges {
                x: Some((0.0, s.epochs as f64)),
                y: Some((0.0, 1.0)),
                log_y: false,
            })}
            {line_chart("learning rate η(t)", "epoch", "lr (log scale)", lr_series, Ranges {
                x: Some((0.0, s.epochs as f64)),
                y: None,
                log_y: true,
            })}
        }
    };

    // Trajectories on Rosenbrock with the arms' settings at one shared learning rate, computed
    // on the CPU. Each arm's path is cached by its trace spec, so moving one arm's slider
    // recomputes only that arm.
    let trajectories = move || {
        let s = settled.get();
        let cpu = Device::flex().autodiff();
        let series: Vec<Series> = s
            .arms
            .iter()
            // The matched arm's step size comes from AdaExp's training run: no path of its own.
            .filter(|a| a.enabled && a.kind.has_lr())
            .filter_map(|arm| {
                let spec = s.trace_spec(arm, TestFunction::Rosenbrock, TRACE_START, TRACE_STEPS);
                let cached = trajectory_cache.with_value(|cache| {
                    cache
                        .iter()
                        .find(|(key, _)| *key == spec)
                        .map(|(_, p)| p.clone())
                });
                let points = match cached {
                    Some(points) => points,
                    None => {
                        let rows = run_trace(&spec, &cpu).ok()?;
                        let mut points = vec![(TRACE_START[0], TRACE_START[1])];
                        points.extend(rows.iter().map(|r| (r.x, r.y)));
                        trajectory_cache.update_value(|cache| {
                            if cache.len() >= TRACE_CACHE {
                                cache.remove(0);
                            }
                            cache.push((spec, points.clone()));
                        });
                        points
                    }
                };
                // A path that leaves the view is cut there and says so.
                let inside = points
                    .iter()
                    .take_while(|(x, y)| {
                        (TRACE_VIEW.0.0..=TRACE_VIEW.0.1).contains(x)
                            && (TRACE_VIEW.1.0..=TRACE_VIEW.1.1).contains(y)
                    })
                    .count();
                let label = if inside < points.len() {
                    format!("{} (left the view at step {inside})", arm.label())
                } else {
                    arm.label()
                };
                let mut shown = points;
                shown.truncate(inside);
                Some(Series::line(label, colour_of(arm.kind), shown))
            })
            .collect();
        line_chart(
            &format!(
                "Rosenbrock from (−1.5, 2), {TRACE_STEPS} steps at lr {}; minimum at (1, 1)",
                s.trace_lr
            ),
            "x",
            "y",
            series,
            Ranges {
                x: Some(TRACE_VIEW.0),
                y: Some(TRACE_VIEW.1),
                log_y: false,
            },
        )
    };

    // Live charts, one series per running arm under the name its records carry.
    let loss_chart = move || {
        live_chart(
            run.get(),
            records,
            "training loss (per step, smoothed)",
            "loss",
            Ranges::default(),
            |all, kind, name, spe| {
                let raw = step_series(all, &name, spe, |s| Some(s.loss));
                let smoothed = smooth(&raw, 0.9);
                vec![
                    Series {
                        faint: true,
                        ..Series::line(format!("{name} raw"), colour_of(kind), raw)
                    },
                    Series::line(name, colour_of(kind), smoothed),
                ]
            },
        )
    };
    // The update size shows whether a decaying exponent only shrinks the steps.
    let update_chart = move || {
        let log = Ranges {
            log_y: true,
            ..Ranges::default()
        };
        live_chart(
            run.get(),
            records,
            "update size (RMS of Δθ per step)",
            "RMS Δθ (log scale)",
            log,
            |all, kind, name, spe| {
                let points = step_series(all, &name, spe, |s| s.update_rms);
                vec![Series::line(name, colour_of(kind), points)]
            },
        )
    };
    let accuracy_chart = move || {
        let fraction = Ranges {
            y: Some((0.0, 1.0)),
            ..Ranges::default()
        };
        live_chart(
            run.get(),
            records,
            "test accuracy (per epoch)",
            "accuracy",
            fraction,
            |all, kind, name, _| {
                let points = all
                    .iter()
                    .filter_map(|r| match r {
                        Record::Epoch(e) if e.arm == name => {
                            Some((e.epoch as f64, e.test_accuracy))
                        }
                        _ => None,
                    })
                    .collect();
                vec![Series::line(name, colour_of(kind), points)]
            },
        )
    };
    let throughput = move || {
        records.with(|all| {
            let mut rows: Vec<(String, f64, f64)> = Vec::new();
            for r in all {
                if let Record::Epoch(e) = r {
                    rows.retain(|(arm, _, _)| *arm != e.arm);
                    rows.push((e.arm.clone(), e.images_per_second, e.test_accuracy));
                }
            }
            rows.into_iter()
                .map(|(arm, rate, acc)| {
                    view! { <li>{format!("{arm}: {rate:.0} images/s, test accuracy {:.1}%", 100.0 * acc)}</li> }
                })
                .collect_view()
        })
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
                <Controls settings=settings arms_locked=Signal::derive(move || {
                    matches!(run_state.get(), RunState::Running | RunState::Paused)
                }) />
                <div class="buttons">
                    <button id="start" on:click=start disabled=move || !data_ready.get() || backend.get().is_none()>
                        {move || if run_state.get() == RunState::Paused { "Resume" } else { "Start" }}
                    </button>
                    <button id="pause" on:click=pause>"Pause"</button>
                    <button id="reset" on:click=reset>"Reset"</button>
                    <button id="copy-link" on:click=copy_link>"Copy link"</button>
                    <button id="export-json" on:click=export_json>"Export JSON"</button>
                    <button id="export-csv" on:click=export_csv>"Export CSV"</button>
                </div>
                <p id="run-state">{move || match run_state.get() {
                    RunState::Idle => "Ready.".to_owned(),
                    RunState::Running => format!("Training… {:.0} s", elapsed.get()),
                    RunState::Paused => "Paused.".to_owned(),
                    RunState::Finished => format!("Finished in {:.0} s.", elapsed.get()),
                    RunState::Failed(why) => format!("Stopped: {why}"),
                }}</p>
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
                <div id="preview">{preview}</div>
                <div id="trajectories">
                    {trajectories}
                    {number_input(settings, "trace_lr".into(), "learning rate of every trajectory".into(), "any")}
                </div>
                <div id="loss-chart">{loss_chart}</div>
                <div id="update-chart">{update_chart}</div>
                <div id="accuracy-chart">{accuracy_chart}</div>
                <ul id="throughput">{throughput}</ul>
            </section>
        </main>
    }
}

/// A labelled numeric input bound to one settings key.
fn number_input(
    settings: RwSignal<LabSettings>,
    key: String,
    label: String,
    step: &'static str,
) -> impl IntoView {
    let read_key = key.clone();
    // A rejected value stays in the box, marked, with the reason, until it is corrected.
    let problem = RwSignal::new(None::<String>);
    view! {
        <label class:invalid=move || problem.with(Option::is_some)>
            <span>{label}</span>
            <input type="number" step=step name=key.clone()
                title=move || problem.get().unwrap_or_default()
                prop:value=move || settings.with(|s| s.get(&read_key).unwrap_or_default())
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    let mut next = settings.get_untracked();
                    let outcome = next.set(&key, &value).and_then(|()| {
                        next.experiment().validate().map_err(|e| e.message)
                    });
                    match outcome {
                        Ok(()) => {
                            problem.set(None);
                            settings.set(next);
                        }
                        Err(why) => problem.set(Some(why)),
                    }
                } />
            <small class="problem">{move || problem.get()}</small>
        </label>
    }
}

/// (value, text) of each choice of a select.
type Choices = &'static [(&'static str, &'static str)];
const LR_DECAYS: Choices = &[
    ("constant", "none"),
    ("linear", "linear to 0"),
    ("cosine", "cosine to 0"),
    ("step", "×0.1 at half the run"),
];
const MODELS: Choices = &[
    ("small-cnn", "small CNN (57k)"),
    ("resnet20", "ResNet-20 (0.27M)"),
];

/// A labelled select bound to one settings key.
fn select(
    settings: RwSignal<LabSettings>,
    key: String,
    label: &'static str,
    choices: Vec<(&'static str, &'static str)>,
) -> impl IntoView {
    let read_key = key.clone();
    view! {
        <label>
            <span>{label}</span>
            <select name=key.clone()
                prop:value=move || settings.with(|s| s.get(&read_key).unwrap_or_default())
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    settings.update(|s| { let _ = s.set(&key, &value); });
                }>
                {choices.into_iter().map(|(value, text)| view! { <option value=value>{text}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// A slider on [0, 1] bound to one settings key.
fn slider(settings: RwSignal<LabSettings>, key: String, label: String) -> impl IntoView {
    let read_key = key.clone();
    let shown_key = key.clone();
    view! {
        <label>
            <span>{label}</span>
            <input type="range" min="0" max="1" step="0.01" name=key.clone()
                prop:value=move || settings.with(|s| s.get(&read_key).unwrap_or_default())
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    settings.update(|s| {
                        let _ = s.set(&key, &value);
                    });
                } />
            <output>{move || settings.with(|s| s.get(&shown_key).unwrap_or_default())}</output>
        </label>
    }
}

/// `arms_locked`: during a run the set of arms is fixed (their weights and records started
/// together); the checkboxes say so instead of silently changing what the run means.
#[component]
pub fn Controls(settings: RwSignal<LabSettings>, arms_locked: Signal<bool>) -> impl IntoView {
    let arms = ArmKind::ALL
        .into_iter()
        .map(|kind| {
            let k = kind.key();
            let label = move || {
                settings.with(|s| {
                    s.arms.iter().find(|a| a.kind == kind).map(|a| a.label()).unwrap_or_default()
                })
            };
            let extra = match kind {
                ArmKind::Padam => slider(settings, format!("{k}.p"), "p".into()).into_any(),
                ArmKind::AdaExp | ArmKind::AdaExp2 => view! {
                    {slider(settings, format!("{k}.p0"), "p start".into())}
                    {slider(settings, format!("{k}.p1"), "p end".into())}
                    {select(settings, format!("{k}.shape"), "shape", Shape::ALL.map(|s| (s.name(), s.name())).to_vec())}
                    {number_input(settings, format!("{k}.len"), "decay epochs".into(), "0.5")}
                }
                .into_any(),
                _ => ().into_any(),
            };
            let enabled_key = k.to_owned();
            view! {
                <fieldset class="arm" style=format!("border-color: {}", colour_of(kind))>
                    <legend>
                        <label>
                            <input type="checkbox" name=k
                                prop:disabled=move || arms_locked.get()
                                title=move || if arms_locked.get() { "The arms are fixed while a run goes on; Reset to change them." } else { "" }
                                prop:checked=move || settings.with(|s| s.get(&enabled_key).as_deref() == Some("1"))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    settings.update(|s| { let _ = s.set(k, if on { "1" } else { "0" }); });
                                } />
                            {label}
                        </label>
                    </legend>
                    {if kind.has_lr() {
                        number_input(settings, format!("{k}.lr"), "learning rate".into(), "any").into_any()
                    } else {
                        view! {
                            <p class="note">"Its learning rate at every step makes its update as large as AdaExp's (needs AdaExp): Adam's direction with AdaExp's step size. If it does as well, the exponent only shrank the steps."</p>
                        }.into_any()
                    }}
                    {extra}
                </fieldset>
            }
        })
        .collect_view();
    view! {
        <div class="arms">{arms}</div>
        <fieldset>
            <legend>"shared"</legend>
            {number_input(settings, "momentum".into(), "SGDM momentum".into(), "0.01")}
            {number_input(settings, "beta1".into(), "β1".into(), "0.01")}
            {number_input(settings, "beta2".into(), "β2".into(), "0.001")}
            {number_input(settings, "eps".into(), "ε".into(), "any")}
            {number_input(settings, "wd".into(), "weight decay (decoupled)".into(), "any")}
            {select(settings, "lr_decay".into(), "lr decay (every arm)", LR_DECAYS.to_vec())}
        </fieldset>
        <fieldset>
            <legend>"run"</legend>
            {select(settings, "model".into(), "model", MODELS.to_vec())}
            {number_input(settings, "batch".into(), "batch size".into(), "1")}
            {number_input(settings, "train".into(), "training images".into(), "100")}
            {number_input(settings, "test".into(), "test images".into(), "100")}
            {number_input(settings, "epochs".into(), "epochs".into(), "1")}
            {number_input(settings, "seed".into(), "seed".into(), "1")}
        </fieldset>
    }
}
