//! The settings panel: each arm's fieldset, the shared optimizer settings and the run's size,
//! every input bound to one `Setting` (whose key also names it in the URL).

use leptos::prelude::*;

use crate::lab::{ArmKind, ArmSetting, LabSettings, Setting};
use crate::model::ModelSpec;
use crate::optim::Shape;

/// A labelled numeric input bound to one setting.
pub fn number_input(
    settings: RwSignal<LabSettings>,
    setting: Setting,
    label: String,
    step: &'static str,
) -> impl IntoView {
    // A rejected value stays in the box, marked, with the reason, until it is corrected.
    let problem = RwSignal::new(None::<String>);
    view! {
        <label class:invalid=move || problem.with(Option::is_some)>
            <span>{label}</span>
            <input type="number" step=step name=setting.key()
                title=move || problem.get().unwrap_or_default()
                prop:value=move || settings.with(|s| setting.get(s))
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    let mut next = settings.get_untracked();
                    let outcome = setting.set(&mut next, &value).and_then(|()| {
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
type Choices = Vec<(&'static str, &'static str)>;

fn lr_decays() -> Choices {
    Shape::ALL
        .map(|shape| {
            let text = match shape {
                Shape::Constant => "none",
                Shape::Linear => "linear to 0",
                Shape::Cosine => "cosine to 0",
                Shape::Step => "×0.1 at half the run",
            };
            (shape.name(), text)
        })
        .to_vec()
}

/// The models a browser trains in minutes (VGG-16's 15M parameters do not).
fn models() -> Choices {
    [
        (ModelSpec::SmallCnn, "small CNN (57k)"),
        (ModelSpec::Resnet20, "ResNet-20 (0.27M)"),
    ]
    .map(|(model, text)| (model.name(), text))
    .to_vec()
}

/// A labelled select bound to one setting.
fn select(
    settings: RwSignal<LabSettings>,
    setting: Setting,
    label: &'static str,
    choices: Choices,
) -> impl IntoView {
    view! {
        <label>
            <span>{label}</span>
            <select name=setting.key()
                prop:value=move || settings.with(|s| setting.get(s))
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    settings.update(|s| { let _ = setting.set(s, &value); });
                }>
                {choices.into_iter().map(|(value, text)| view! { <option value=value>{text}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// A slider on [0, 1] bound to one setting.
fn slider(settings: RwSignal<LabSettings>, setting: Setting, label: String) -> impl IntoView {
    view! {
        <label>
            <span>{label}</span>
            <input type="range" min="0" max="1" step="0.01" name=setting.key()
                prop:value=move || settings.with(|s| setting.get(s))
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    settings.update(|s| {
                        let _ = setting.set(s, &value);
                    });
                } />
            <output>{move || settings.with(|s| setting.get(s))}</output>
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
            let arm = move |setting| Setting::Arm(kind, setting);
            let enabled = arm(ArmSetting::Enabled);
            let label = move || {
                settings.with(|s| {
                    s.arms.iter().find(|a| a.kind == kind).map(|a| a.label()).unwrap_or_default()
                })
            };
            let extra = match kind {
                ArmKind::Padam => slider(settings, arm(ArmSetting::P), "p".into()).into_any(),
                ArmKind::AdaExp | ArmKind::AdaExp2 => view! {
                    {slider(settings, arm(ArmSetting::PStart), "p start".into())}
                    {slider(settings, arm(ArmSetting::PEnd), "p end".into())}
                    {select(settings, arm(ArmSetting::Shape), "shape", Shape::ALL.map(|s| (s.name(), s.name())).to_vec())}
                    {number_input(settings, arm(ArmSetting::DecayEpochs), "decay epochs".into(), "0.5")}
                }
                .into_any(),
                _ => ().into_any(),
            };
            view! {
                <fieldset class="arm" style=format!("border-color: {}", kind.colour())>
                    <legend>
                        <label>
                            <input type="checkbox" name=enabled.key()
                                prop:disabled=move || arms_locked.get()
                                title=move || if arms_locked.get() { "The arms are fixed while a run goes on; Reset to change them." } else { "" }
                                prop:checked=move || settings.with(|s| s.arm(kind).enabled)
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    settings.update(|s| s.arm_mut(kind).enabled = on);
                                } />
                            {label}
                        </label>
                    </legend>
                    {if kind.has_lr() {
                        number_input(settings, arm(ArmSetting::Lr), "learning rate".into(), "any").into_any()
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
            {number_input(settings, Setting::Momentum, "SGDM momentum".into(), "0.01")}
            {number_input(settings, Setting::Beta1, "β1".into(), "0.01")}
            {number_input(settings, Setting::Beta2, "β2".into(), "0.001")}
            {number_input(settings, Setting::Eps, "ε".into(), "any")}
            {number_input(settings, Setting::WeightDecay, "weight decay (decoupled)".into(), "any")}
            {select(settings, Setting::LrDecay, "lr decay (every arm)", lr_decays())}
        </fieldset>
        <fieldset>
            <legend>"run"</legend>
            {select(settings, Setting::Model, "model", models())}
            {number_input(settings, Setting::BatchSize, "batch size".into(), "1")}
            {number_input(settings, Setting::TrainSize, "training images".into(), "100")}
            {number_input(settings, Setting::TestSize, "test images".into(), "100")}
            {number_input(settings, Setting::Epochs, "epochs".into(), "1")}
            {number_input(settings, Setting::Seed, "seed".into(), "1")}
        </fieldset>
    }
}
