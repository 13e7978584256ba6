//! Experiment files: TOML on disk, or a preset from `experiments/` built into the binary.

use std::path::Path;

use anyhow::{Context, bail};

use crate::train::ExperimentSpec;
use crate::validation::{ArmField, ExponentField, Field, LrField, OptimizerField, SpecError};

/// The files in `experiments/`, embedded so that `--preset` works from any directory.
pub const PRESETS: [(&str, &str); 9] = [
    ("quick", include_str!("../../experiments/quick.toml")),
    (
        "fashion-quick",
        include_str!("../../experiments/fashion-quick.toml"),
    ),
    (
        "fashion-study",
        include_str!("../../experiments/fashion-study.toml"),
    ),
    (
        "fashion-tuned",
        include_str!("../../experiments/fashion-tuned.toml"),
    ),
    (
        "seed-vgg16",
        include_str!("../../experiments/seed-vgg16.toml"),
    ),
    (
        "seed-resnet20",
        include_str!("../../experiments/seed-resnet20.toml"),
    ),
    (
        "seed-vgg16-tuned",
        include_str!("../../experiments/seed-vgg16-tuned.toml"),
    ),
    (
        "seed-resnet20-tuned",
        include_str!("../../experiments/seed-resnet20-tuned.toml"),
    ),
    (
        "fixed-p-sweep",
        include_str!("../../experiments/fixed-p-sweep.toml"),
    ),
];

/// Parses and validates an experiment; `source` names it in errors.
pub fn parse(source: &str, text: &str) -> anyhow::Result<ExperimentSpec> {
    let spec: ExperimentSpec = toml::from_str(text).map_err(|e| {
        // toml's message spans lines (a source excerpt); keep the first, with the line number.
        let line = e
            .span()
            .map(|span| format!(" at line {}", text[..span.start].lines().count().max(1)))
            .unwrap_or_default();
        anyhow::anyhow!("{source}{line}: {}", e.message().replace('\n', " "))
    })?;
    spec.validate()
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    Ok(spec)
}

pub fn load(path: Option<&Path>, preset: Option<&str>) -> anyhow::Result<ExperimentSpec> {
    match (path, preset) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            parse(&path.display().to_string(), &text)
        }
        (None, Some(name)) => match PRESETS.iter().find(|(n, _)| *n == name) {
            Some((_, text)) => parse(&format!("preset {name}"), text),
            None => bail!(
                "--preset: unknown preset '{name}', expected one of {}",
                PRESETS.map(|(n, _)| n).join(", ")
            ),
        },
        _ => bail!(
            "give an experiment file or --preset NAME (one of {})",
            PRESETS.map(|(n, _)| n).join(", ")
        ),
    }
}

/// The arms `--arms` names: each value is one arm's whole name when the experiment has an arm
/// so named (names such as "Adam, lr linear → 0" hold commas), else a comma-separated list.
pub fn arm_names(spec: &ExperimentSpec, values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|value| {
            if spec.arms.iter().any(|a| &a.name == value) {
                vec![value.clone()]
            } else {
                value.split(',').map(|n| n.trim().to_owned()).collect()
            }
        })
        .collect()
}

/// The experiment `run` and `sweep` train: loaded, with the seeds and epochs their flags give,
/// and validated again, an error naming the flag when a flag set the value.
pub fn load_with(
    path: Option<&Path>,
    preset: Option<&str>,
    seeds: Option<&[u64]>,
    epochs: Option<u64>,
) -> anyhow::Result<ExperimentSpec> {
    let mut spec = load(path, preset)?;
    if let Some(seeds) = seeds {
        spec.seeds = seeds.to_vec();
    }
    if let Some(epochs) = epochs {
        spec.epochs = epochs;
    }
    spec.validate().map_err(flagged)?;
    Ok(spec)
}

/// The flag of `run`, `sweep` or `trace` that sets `field`; `None` for what only an experiment
/// file holds.
pub fn flag_for(field: Field) -> Option<&'static str> {
    use ExponentField as P;
    use OptimizerField as O;
    match field {
        Field::Epochs => Some("--epochs"),
        Field::Seeds => Some("--seeds"),
        Field::Arms => Some("--arms"),
        Field::Start => Some("--start"),
        Field::Steps => Some("--steps"),
        Field::Optimizer(optimizer) => match optimizer {
            O::Momentum => Some("--momentum"),
            O::Beta1 => Some("--beta1"),
            O::Beta2 => Some("--beta2"),
            O::Eps => Some("--eps"),
            O::WeightDecay => Some("--weight-decay"),
            O::P(P::Value) => Some("--p"),
            O::P(P::Start) => Some("--p-start"),
            O::P(P::End) => Some("--p-end"),
            O::P(P::Length) => Some("--decay-steps"),
            O::P(P::Step(_)) => None,
        },
        Field::Lr(LrField::Base) => Some("--lr"),
        Field::Lr(
            LrField::Gamma
            | LrField::Milestone(_)
            | LrField::Floor
            | LrField::Length
            | LrField::Warmup,
        ) => None,
        Field::Arm(_, ArmField::Name | ArmField::Optimizer(_) | ArmField::Lr(_)) => None,
        Field::Arm(_, ArmField::MatchUpdateOf) => None,
        Field::Name
        | Field::Description
        | Field::BatchSize
        | Field::TrainSize
        | Field::TestSize
        | Field::ValSize => None,
    }
}

/// A spec error as the command line says it: under the flag that set the value, else under the
/// experiment file's field.
pub fn flagged(error: SpecError) -> anyhow::Error {
    match flag_for(error.field) {
        Some(flag) => anyhow::anyhow!("{flag}: {}", error.message),
        None => anyhow::anyhow!("{error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_validates() {
        for (name, text) in PRESETS {
            let spec = parse(name, text).unwrap();
            assert_eq!(spec.name, name);
        }
    }

    #[test]
    fn flags_override_the_file_and_errors_name_the_flag() {
        let spec = load_with(None, Some("quick"), Some(&[3, 4]), Some(2)).unwrap();
        assert_eq!((spec.seeds, spec.epochs), (vec![3, 4], 2));
        let err = load_with(None, Some("quick"), Some(&[1, 1]), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--seeds: seed 1 is listed twice"),
            "{err}"
        );
        let err = load_with(None, Some("quick"), None, Some(0)).unwrap_err();
        assert_eq!(err.to_string(), "--epochs: must be at least 1, got 0");
        // A field no flag sets keeps the file's path.
        let field = Field::Arm(1, ArmField::Optimizer(OptimizerField::Beta2));
        assert_eq!(flag_for(field), None);
        assert_eq!(
            flagged(SpecError::new(field, "must be in [0, 1), got 1")).to_string(),
            "arms[1].optimizer.beta2: must be in [0, 1), got 1"
        );
        let p_end = Field::Optimizer(OptimizerField::P(ExponentField::End));
        assert_eq!(flag_for(p_end), Some("--p-end"));
    }

    #[test]
    fn arm_names_keep_commas_inside_a_name_and_split_lists() {
        let spec = load(None, Some("fashion-study")).unwrap();
        let names = arm_names(
            &spec,
            &[
                "Adam, lr linear → 0".to_owned(),
                "SGDM, Adam (p = 0.5)".to_owned(),
            ],
        );
        assert_eq!(names, ["Adam, lr linear → 0", "SGDM", "Adam (p = 0.5)"]);
        spec.select_arms(&names).unwrap();
    }

    #[test]
    fn errors_name_the_source_line_and_field() {
        let err = parse("x.toml", "name = \"a\"\nepochs = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml at line 2"), "{err}");
        let text = PRESETS[0].1.replace("batch_size = 64", "batch_size = 0");
        let err = parse("q.toml", &text).unwrap_err().to_string();
        assert_eq!(err, "q.toml: batch_size: must be at least 1, got 0");
        let text = PRESETS[0]
            .1
            .replace("kind = \"adam\"", "kind = \"adam\", beta2 = 1.5");
        let err = parse("q.toml", &text).unwrap_err().to_string();
        assert!(
            err.contains("arms[1].optimizer.beta2: must be in [0, 1)"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod never_panic {
    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::{config, mutated_text};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn experiment_toml(bytes in mutated_text(PRESETS[0].1)) {
            let _ = parse("x.toml", &String::from_utf8_lossy(&bytes));
        }
    }
}
