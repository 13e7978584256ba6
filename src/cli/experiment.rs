//! Experiment files: TOML on disk, or a preset from `experiments/` built into the binary.

use std::path::Path;

use anyhow::{Context, bail};

use crate::train::ExperimentSpec;

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
