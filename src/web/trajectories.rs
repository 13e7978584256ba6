//! The trajectory panel: each arm's optimizer on Rosenbrock at its family's learning rate,
//! computed by a worker of its own (so that a training run never delays it), redrawn as the
//! sliders move. One request is in flight at a time; while it is, only the newest settings wait.

use std::rc::Rc;

use leptos::prelude::*;

use super::chart::{Ranges, Series, line_chart};
use super::lab_worker::LabWorker;
use crate::lab::protocol::{Event, Request};
use crate::lab::{ArmKind, LabSettings};
use crate::trace::{TestFunction, TraceSpec};

const TRACE_START: [f64; 2] = [-1.5, 2.0];
const TRACE_STEPS: u64 = 600;
/// The trajectory plot's x and y ranges.
const TRACE_VIEW: ((f64, f64), (f64, f64)) = ((-2.0, 2.0), (-1.0, 3.0));

/// The arms a request asked for: kind and label, in the order of its specs.
type Asked = Vec<(ArmKind, String)>;

type Path = Result<Vec<[f64; 2]>, String>;

/// The paths to draw for `settings`: every enabled arm with a learning rate of its own (the
/// matched arm's step size comes from AdaExp's training run: no path of its own).
fn wanted(settings: &LabSettings) -> (Asked, Vec<TraceSpec>) {
    settings
        .arms
        .iter()
        .filter(|a| a.enabled && a.kind.has_lr())
        .map(|arm| {
            (
                (arm.kind, arm.label()),
                settings.trace_spec(arm, TestFunction::Rosenbrock, TRACE_START, TRACE_STEPS),
            )
        })
        .unzip()
}

/// One path as a chart series: cut where it leaves the view, and saying so.
fn series(kind: ArmKind, label: String, path: &[[f64; 2]]) -> Series {
    let inside = path
        .iter()
        .take_while(|[x, y]| {
            (TRACE_VIEW.0.0..=TRACE_VIEW.0.1).contains(x)
                && (TRACE_VIEW.1.0..=TRACE_VIEW.1.1).contains(y)
        })
        .count();
    let label = if inside < path.len() {
        format!("{label} (left the view at step {inside})")
    } else {
        label
    };
    let points = path[..inside].iter().map(|&[x, y]| (x, y)).collect();
    Series::line(label, kind.colour(), points)
}

#[component]
pub fn Trajectories(settings: RwSignal<LabSettings>) -> impl IntoView {
    let drawn = RwSignal::new(Vec::<(ArmKind, String, Path)>::new());
    let problem = RwSignal::new(None::<String>);
    // (id, arms) of the request in flight, and the newest settings waiting behind it.
    let in_flight = StoredValue::new(None::<(u64, Asked)>);
    let waiting = StoredValue::new(None::<(Asked, Vec<TraceSpec>)>);
    let next_id = StoredValue::new(0u64);
    let worker = StoredValue::new_local(None::<Rc<LabWorker>>);

    let send = move |(asked, specs): (Asked, Vec<TraceSpec>)| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        in_flight.set_value(Some((id, asked)));
        worker.with_value(|w| {
            if let Some(w) = w {
                w.send(&Request::Trace { id, specs });
            }
        });
    };
    let on_event = move |event: Event| match event {
        Event::Traced { id, paths } => {
            let Some((asked_id, asked)) = in_flight.get_value() else {
                return;
            };
            if asked_id != id {
                return;
            }
            drawn.set(
                asked
                    .into_iter()
                    .zip(paths)
                    .map(|((kind, label), path)| (kind, label, path))
                    .collect(),
            );
            in_flight.set_value(None);
            if let Some(next) = waiting.get_value() {
                waiting.set_value(None);
                send(next);
            }
        }
        Event::Fatal { why } => problem.set(Some(format!(
            "The trajectories stopped: {why}. Reload the page to see them again."
        ))),
        _ => {}
    };
    match LabWorker::spawn(on_event) {
        Ok(spawned) => worker.set_value(Some(spawned)),
        Err(why) => problem.set(Some(format!(
            "No trajectories: the browser could not start their worker ({why})."
        ))),
    }
    Effect::new(move |_| {
        let request = settings.with(wanted);
        if in_flight.with_value(Option::is_some) {
            waiting.set_value(Some(request));
        } else {
            send(request);
        }
    });

    move || {
        let series: Vec<Series> = drawn.with(|all| {
            all.iter()
                .filter_map(|(kind, label, path)| match path {
                    Ok(path) => Some(series(*kind, label.clone(), path)),
                    Err(why) => {
                        leptos::logging::warn!("no trajectory for {label}: {why}");
                        None
                    }
                })
                .collect()
        });
        view! {
            {line_chart(
                &format!("Rosenbrock from (−1.5, 2), {TRACE_STEPS} steps; minimum at (1, 1)"),
                "x",
                "y",
                series,
                Ranges {
                    x: Some(TRACE_VIEW.0),
                    y: Some(TRACE_VIEW.1),
                    log_y: false,
                },
            )}
            <p class="error" hidden=move || problem.with(Option::is_none)>{move || problem.get()}</p>
        }
    }
}
