//! The page's charts: the schedule preview (p(t) and η(t), planned and used) and the live
//! training charts (loss, update size, test accuracy, throughput). The trajectories have their
//! own module.

use leptos::prelude::*;

use super::chart::{Ranges, Series, empty_chart, line_chart};
use super::run::{RunView, Runner};
use crate::lab::{ArmKind, LabSettings};
use crate::optim::schedule::step_position;
use crate::train::summary::smooth;
use crate::train::{Record, StepRecord, epochs, epochs_of, steps_of};

/// One arm's per-step values at `step_position`, in record order.
fn step_series(
    records: &[Record],
    arm: &str,
    steps_per_epoch: u64,
    value: fn(&StepRecord) -> Option<f64>,
) -> Vec<(f64, f64)> {
    steps_of(records, arm)
        .filter_map(|step| Some((step_position(step.step, steps_per_epoch), value(step)?)))
        .collect()
}

/// A live chart over the run's epochs: `per_arm(records, kind, name, steps_per_epoch)` gives each
/// running arm's series; the x axis spans the run. Before a run it asks for Start, and during
/// one it says `until` (when its first points come) until they do.
fn live_chart<PerArm>(
    view: RunView,
    records: RwSignal<Vec<Record>>,
    (title, until): (&str, &str),
    y_label: &str,
    ranges: Ranges,
    per_arm: PerArm,
) -> AnyView
where
    PerArm: Fn(&[Record], ArmKind, String, u64) -> Vec<Series>,
{
    if view.arms.is_empty() {
        return empty_chart(title, "Press Start to train the arms side by side").into_any();
    }
    let series: Vec<Series> = records.with(|all| {
        view.arms
            .into_iter()
            .flat_map(|(kind, name)| per_arm(all, kind, name, view.steps_per_epoch))
            .collect()
    });
    if series.iter().all(|s| s.points.is_empty()) {
        return empty_chart(title, until).into_any();
    }
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
    .into_any()
}

#[component]
pub fn SchedulePreview(
    settings: RwSignal<LabSettings>,
    runner: Runner,
    /// The training images the worker holds.
    loaded: Signal<Option<usize>>,
) -> impl IntoView {
    let (run, records) = (runner.view, runner.records);
    // Schedule preview: p(t) per adaptive arm (planned, solid), and what the run used so far
    // (dashed), drawn with the CLI's convention (`step_position`).
    move || {
        let s = settings.get();
        let spe = runner
            .running_steps_per_epoch()
            .unwrap_or_else(|| s.steps_per_epoch_on(loaded.get()))
            .max(1);
        let total = s.epochs * spe;
        let mut p_series = Vec::new();
        let mut lr_series = Vec::new();
        let experiment = s.experiment();
        // The experiment's arms are the enabled ones, in the same order.
        for (arm, spec) in s.arms.iter().filter(|a| a.enabled).zip(&experiment.arms) {
            let label = arm.label();
            let planned = spec.planned(total, spe, 200);
            if let Some(p) = planned.exponent {
                p_series.push(Series::line(label.clone(), arm.kind.colour(), p));
            }
            if let Some(lr) = planned.lr {
                lr_series.push(Series::line(label.clone(), arm.kind.colour(), lr));
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
                    ..Series::line(format!("{label} (used)"), arm.kind.colour(), used_p)
                });
            }
            // The matched arm's rate is known only as it trains: the lr decay AdaExp's exponent
            // amounts to for Adam's direction.
            if spec.lr.target().is_some() {
                let used_lr = used(|step| Some(step.lr));
                if !used_lr.is_empty() {
                    lr_series.push(Series {
                        dashed: true,
                        ..Series::line(format!("{label} (used)"), arm.kind.colour(), used_lr)
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
    }
}

#[component]
pub fn TrainingCharts(runner: Runner) -> impl IntoView {
    let (run, records) = (runner.view, runner.records);
    // Live charts, one series per running arm under the name its records carry.
    let loss_chart = move || {
        live_chart(
            run.get(),
            records,
            (
                "training loss (per step, smoothed)",
                "The first losses come after the warm-up",
            ),
            "loss",
            Ranges::default(),
            |all, kind, name, spe| {
                let raw = step_series(all, &name, spe, |s| Some(s.loss));
                let smoothed = smooth(&raw, 0.9);
                vec![
                    Series {
                        faint: true,
                        ..Series::line(format!("{name} raw"), kind.colour(), raw)
                    },
                    Series::line(name, kind.colour(), smoothed),
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
            (
                "update size (RMS of Δθ per step)",
                "The first steps come after the warm-up",
            ),
            "RMS Δθ (log scale)",
            log,
            |all, kind, name, spe| {
                let points = step_series(all, &name, spe, |s| s.update_rms);
                vec![Series::line(name, kind.colour(), points)]
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
            (
                "test accuracy (per epoch)",
                "Measured on the test images at each epoch's end",
            ),
            "accuracy",
            fraction,
            |all, kind, name, _| {
                let points = epochs_of(all, &name)
                    .map(|e| (e.epoch as f64, e.test_accuracy))
                    .collect();
                vec![Series::line(name, kind.colour(), points)]
            },
        )
    };
    let throughput = move || {
        records.with(|all| {
            let mut rows: Vec<(String, f64, f64)> = Vec::new();
            for e in epochs(all) {
                rows.retain(|(arm, _, _)| *arm != e.arm);
                rows.push((e.arm.clone(), e.images_per_second, e.test_accuracy));
            }
            rows.into_iter()
                .map(|(arm, rate, acc)| {
                    view! { <li>{format!("{arm}: {rate:.0} images/s, test accuracy {:.1}%", 100.0 * acc)}</li> }
                })
                .collect_view()
        })
    };

    view! {
        <div id="loss-chart">{loss_chart}</div>
        <div id="update-chart">{update_chart}</div>
        <div id="accuracy-chart">{accuracy_chart}</div>
        <ul id="throughput">{throughput}</ul>
    }
}
