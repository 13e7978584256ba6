//! The settings panel: each arm's fieldset, the shared optimizer settings and the run's size,
//! every input bound to one `LabSettings` key (which also names it in the URL).

use leptos::prelude::*;

use super::chart::arm_colour;
use crate::lab::{ArmKind, LabSettings};
use crate::optim::Shape;

/// A labelled numeric input bound to one settings key.
pub fn number_input(
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
                <fieldset class="arm" style=format!("border-color: {}", arm_colour(kind))>
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
