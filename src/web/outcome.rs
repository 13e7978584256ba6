//! Where a run stands and what it showed: the progress bar under the run's buttons (epoch, step,
//! speed, time left, the last test accuracies), the document title that carries the percentage
//! to a background tab, and the verdict table and sentence once the run ends or pauses.

use leptos::prelude::*;

use super::run::{RunState, Runner};
use crate::lab::LabSettings;
use crate::lab::progress::title;
use crate::lab::verdict::{Verdict, signed_points, verdict};

/// The page's title between runs, as index.html has it.
const IDLE_TITLE: &str = "adaexp — decaying Adam's exponent";

#[component]
pub fn ProgressBar(runner: Runner) -> impl IntoView {
    let progress = Memo::new(move |_| runner.progress());
    // A background tab shows how far the run is.
    Effect::new(move |_| {
        let state = runner.state.get();
        let percent = progress.with(|p| p.as_ref().map(|p| p.percent()));
        let text = match state {
            RunState::Idle => IDLE_TITLE.to_owned(),
            RunState::Running => title(percent, ""),
            RunState::Paused => title(percent, "Paused · "),
            RunState::Finished => title(None, "Finished · "),
            RunState::Failed(_) => title(None, "Stopped · "),
        };
        // Only a change: setting the title, even to itself, costs the main thread (the browser
        // repaints the tab), and progress moves every half second.
        if let Some(document) = web_sys::window().and_then(|w| w.document())
            && document.title() != text
        {
            document.set_title(&text);
        }
    });
    view! {
        <div id="progress" hidden=move || progress.with(Option::is_none)>
            <progress id="progress-bar" max="1"
                prop:value=move || progress.with(|p| p.as_ref().map_or(0.0, |p| p.fraction))>
            </progress>
            <span id="progress-percent">{move || progress.with(|p| p.as_ref().map(|p| format!("{} %", p.percent())))}</span>
            <span id="progress-text">{move || progress.with(|p| p.as_ref().map(|p| p.describe()))}</span>
            <span id="progress-accuracy">{move || progress.with(|p| p.as_ref().and_then(|p| p.describe_accuracies()))}</span>
        </div>
    }
}

/// The verdict of the run now on the page, when it has ended or paused after an epoch.
fn current_verdict(runner: Runner, settings: RwSignal<LabSettings>) -> Option<Verdict> {
    let paused = match runner.state.get() {
        RunState::Paused => true,
        RunState::Finished | RunState::Failed(_) => false,
        RunState::Idle | RunState::Running => return None,
    };
    let view = runner.view.get();
    let arms: Vec<_> = settings.with(|s| {
        view.arms
            .iter()
            .map(|(kind, name)| {
                let label = s
                    .arms
                    .iter()
                    .find(|a| a.kind == *kind)
                    .map_or_else(|| name.clone(), |a| a.label());
                (*kind, name.clone(), label)
            })
            .collect()
    });
    runner
        .records
        .with(|records| verdict(records, &arms, view.epochs, paused))
}

/// A fraction in percent, the unit in the column's head (a phone's width holds the table so).
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{:.1}", 100.0 * v))
}

fn points(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), signed_points)
}

#[component]
pub fn VerdictPanel(runner: Runner, settings: RwSignal<LabSettings>) -> impl IntoView {
    let verdict = Memo::new(move |_| current_verdict(runner, settings));
    let rows = move || {
        verdict.with(|v| {
            v.iter()
                .flat_map(|v| v.arms.iter())
                .map(|arm| {
                    view! {
                        <tr data-arm=arm.name.clone()>
                            <th scope="row">{arm.label.clone()}</th>
                            <td class="final">{percent(arm.final_test_accuracy)}</td>
                            <td class="best">{percent(arm.best_test_accuracy)}</td>
                            <td class="loss">{arm.final_train_loss.map_or_else(|| "—".into(), |l| format!("{l:.3}"))}</td>
                            <td class="vs-adam">{points(arm.vs_adam)}</td>
                            <td class="vs-sgdm">{points(arm.vs_sgdm)}</td>
                            <td class="note">{arm.stopped.clone().unwrap_or_default()}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <section id="verdict" hidden=move || verdict.with(Option::is_none)>
            <h2>"What this run shows"</h2>
            <p id="verdict-sentence">{move || verdict.with(|v| v.as_ref().map(|v| v.sentence.clone()))}</p>
            <table id="verdict-table">
                <thead>
                    <tr>
                        <th scope="col">"arm"</th>
                        <th scope="col">"final test accuracy %"</th>
                        <th scope="col">"best test accuracy %"</th>
                        <th scope="col">"final training loss"</th>
                        <th scope="col" title="final test accuracy minus Adam's, in percentage points">"− Adam (points)"</th>
                        <th scope="col" title="final test accuracy minus SGDM's, in percentage points">"− SGDM (points)"</th>
                        <th scope="col"></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            <p class="note">
                "One seed on a subset is an anecdote: differences of a few points come and go "
                "with the seed and the batch order. For several seeds, the full data, paired "
                "intervals and every arm at its own tuned rate, run "
                <code>"adaexp run"</code> " natively (see the "
                <a href="README.md" target="_blank">"README"</a> ")."
            </p>
        </section>
    }
}
