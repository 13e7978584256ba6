//! The page's settings as a table: each `Setting` is described once (its URL key, how it reads
//! and writes `LabSettings`, the spec field it feeds), and the URL codec, the mapping from a
//! validation error back to a setting and the page's controls all use that description.
//!
//! The query string is the whole state: `to_query` writes every setting, `from_query` reads one
//! back and replaces each missing, unparsable or out-of-range value by its default with a
//! notice. Ranges are not checked here: the settings become an `ExperimentSpec`, whose
//! validation (the one the CLI and the result files use) names the offending field.

use super::{ArmKind, LabSettings};
use crate::model::ModelSpec;
use crate::optim::Shape;
use crate::validation::{
    ArmField, ExponentField, Field, OptimizerField, SpecError, check_positive,
};

/// One control of an arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmSetting {
    Enabled,
    Lr,
    /// Padam's constant exponent.
    P,
    /// An AdaExp schedule's start, end, shape and length in epochs.
    PStart,
    PEnd,
    Shape,
    DecayEpochs,
}

impl ArmSetting {
    const ALL: [ArmSetting; 7] = [
        ArmSetting::Enabled,
        ArmSetting::Lr,
        ArmSetting::P,
        ArmSetting::PStart,
        ArmSetting::PEnd,
        ArmSetting::Shape,
        ArmSetting::DecayEpochs,
    ];

    fn applies_to(self, kind: ArmKind) -> bool {
        match self {
            ArmSetting::Enabled => true,
            ArmSetting::Lr => kind.has_lr(),
            ArmSetting::P => kind == ArmKind::Padam,
            ArmSetting::PStart | ArmSetting::PEnd | ArmSetting::Shape | ArmSetting::DecayEpochs => {
                kind.has_schedule()
            }
        }
    }

    /// The key's part after the arm's prefix.
    fn suffix(self) -> &'static str {
        match self {
            ArmSetting::Enabled => "",
            ArmSetting::Lr => ".lr",
            ArmSetting::P => ".p",
            ArmSetting::PStart => ".p0",
            ArmSetting::PEnd => ".p1",
            ArmSetting::Shape => ".shape",
            ArmSetting::DecayEpochs => ".len",
        }
    }
}

/// One setting of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Arm(ArmKind, ArmSetting),
    Momentum,
    Beta1,
    Beta2,
    Eps,
    WeightDecay,
    Model,
    BatchSize,
    TrainSize,
    TestSize,
    Epochs,
    Seed,
    LrDecay,
    TraceLrSgdm,
    TraceLrAdaptive,
}

const SHARED: [Setting; 14] = [
    Setting::Momentum,
    Setting::Beta1,
    Setting::Beta2,
    Setting::Eps,
    Setting::WeightDecay,
    Setting::Model,
    Setting::BatchSize,
    Setting::TrainSize,
    Setting::TestSize,
    Setting::Epochs,
    Setting::Seed,
    Setting::LrDecay,
    Setting::TraceLrSgdm,
    Setting::TraceLrAdaptive,
];

fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))
}

fn parse_finite(text: &str) -> Result<f64, String> {
    let value: f64 = parse_number(text)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("'{text}' is not a finite number"))
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(format!("'{text}' is not 0 or 1")),
    }
}

fn parse_shape(text: &str) -> Result<Shape, String> {
    Shape::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
        format!("'{text}' is not {}", names.join(", "))
    })
}

fn parse_model(text: &str) -> Result<ModelSpec, String> {
    ModelSpec::parse(text).ok_or_else(|| {
        let names: Vec<&str> = ModelSpec::ALL.iter().map(|m| m.name()).collect();
        format!("'{text}' is not {}", names.join(", "))
    })
}

/// A trajectory's rate: the trace's own validation would name a field the page lacks.
fn parse_trace_lr(text: &str) -> Result<f64, String> {
    let lr = parse_finite(text)?;
    check_positive((), lr).map_err(|e| e.message)?;
    Ok(lr)
}

impl Setting {
    /// Every setting, in the query string's order: each arm's, then the shared ones.
    pub fn all() -> Vec<Setting> {
        let arms = ArmKind::ALL.into_iter().flat_map(|kind| {
            ArmSetting::ALL
                .into_iter()
                .filter(move |s| s.applies_to(kind))
                .map(move |s| Setting::Arm(kind, s))
        });
        arms.chain(SHARED).collect()
    }

    /// The setting a query key names.
    pub fn from_key(key: &str) -> Option<Setting> {
        Setting::all().into_iter().find(|s| s.key() == key)
    }

    /// Its key in the query string (and the name of its control).
    pub fn key(self) -> String {
        match self {
            Setting::Arm(kind, setting) => format!("{}{}", kind.key(), setting.suffix()),
            Setting::Momentum => "momentum".into(),
            Setting::Beta1 => "beta1".into(),
            Setting::Beta2 => "beta2".into(),
            Setting::Eps => "eps".into(),
            Setting::WeightDecay => "wd".into(),
            Setting::Model => "model".into(),
            Setting::BatchSize => "batch".into(),
            Setting::TrainSize => "train".into(),
            Setting::TestSize => "test".into(),
            Setting::Epochs => "epochs".into(),
            Setting::Seed => "seed".into(),
            Setting::LrDecay => "lr_decay".into(),
            Setting::TraceLrSgdm => "trace_lr_sgdm".into(),
            Setting::TraceLrAdaptive => "trace_lr_adaptive".into(),
        }
    }

    /// Its value as the query string writes it.
    pub fn get(self, s: &LabSettings) -> String {
        match self {
            Setting::Arm(kind, setting) => {
                let arm = s.arm(kind);
                match setting {
                    ArmSetting::Enabled => if arm.enabled { "1" } else { "0" }.to_owned(),
                    ArmSetting::Lr => arm.lr.to_string(),
                    ArmSetting::P | ArmSetting::PStart => arm.p_start.to_string(),
                    ArmSetting::PEnd => arm.p_end.to_string(),
                    ArmSetting::Shape => arm.shape.name().to_owned(),
                    ArmSetting::DecayEpochs => arm.decay_epochs.to_string(),
                }
            }
            Setting::Momentum => s.momentum.to_string(),
            Setting::Beta1 => s.beta1.to_string(),
            Setting::Beta2 => s.beta2.to_string(),
            Setting::Eps => s.eps.to_string(),
            Setting::WeightDecay => s.weight_decay.to_string(),
            Setting::Model => s.model.name().to_owned(),
            Setting::BatchSize => s.batch_size.to_string(),
            Setting::TrainSize => s.train_size.to_string(),
            Setting::TestSize => s.test_size.to_string(),
            Setting::Epochs => s.epochs.to_string(),
            Setting::Seed => s.seed.to_string(),
            Setting::LrDecay => s.lr_decay.name().to_owned(),
            Setting::TraceLrSgdm => s.trace_lr_sgdm.to_string(),
            Setting::TraceLrAdaptive => s.trace_lr_adaptive.to_string(),
        }
    }

    /// Sets it from its query-string text; the error says what was wrong with the text.
    pub fn set(self, s: &mut LabSettings, text: &str) -> Result<(), String> {
        match self {
            Setting::Arm(kind, setting) => {
                let arm = s.arm_mut(kind);
                match setting {
                    ArmSetting::Enabled => arm.enabled = parse_bool(text)?,
                    ArmSetting::Lr => arm.lr = parse_finite(text)?,
                    ArmSetting::P | ArmSetting::PStart => arm.p_start = parse_finite(text)?,
                    ArmSetting::PEnd => arm.p_end = parse_finite(text)?,
                    ArmSetting::Shape => arm.shape = parse_shape(text)?,
                    ArmSetting::DecayEpochs => arm.decay_epochs = parse_finite(text)?,
                }
            }
            Setting::Momentum => s.momentum = parse_finite(text)?,
            Setting::Beta1 => s.beta1 = parse_finite(text)?,
            Setting::Beta2 => s.beta2 = parse_finite(text)?,
            Setting::Eps => s.eps = parse_finite(text)?,
            Setting::WeightDecay => s.weight_decay = parse_finite(text)?,
            Setting::Model => s.model = parse_model(text)?,
            Setting::BatchSize => s.batch_size = parse_number(text)?,
            Setting::TrainSize => s.train_size = parse_number(text)?,
            Setting::TestSize => s.test_size = parse_number(text)?,
            Setting::Epochs => s.epochs = parse_number(text)?,
            Setting::Seed => s.seed = parse_number(text)?,
            Setting::LrDecay => s.lr_decay = parse_shape(text)?,
            Setting::TraceLrSgdm => s.trace_lr_sgdm = parse_trace_lr(text)?,
            Setting::TraceLrAdaptive => s.trace_lr_adaptive = parse_trace_lr(text)?,
        }
        Ok(())
    }

    /// The setting behind a validation error of `settings.experiment()`: `None` for a field no
    /// control sets (the page's experiment fixes it).
    pub fn for_error(settings: &LabSettings, error: &SpecError) -> Option<Setting> {
        use ExponentField as P;
        use OptimizerField as O;
        match error.field {
            Field::Arm(index, field) => {
                let kind = settings.arms.iter().filter(|a| a.enabled).nth(index)?.kind;
                let arm = |setting| Some(Setting::Arm(kind, setting));
                match field {
                    // The matched arm without AdaExp: it is switched off again.
                    ArmField::MatchUpdateOf => arm(ArmSetting::Enabled),
                    ArmField::Name => None,
                    ArmField::Lr(_) => arm(ArmSetting::Lr),
                    ArmField::Optimizer(optimizer) => match optimizer {
                        O::Momentum => Some(Setting::Momentum),
                        O::Beta1 => Some(Setting::Beta1),
                        O::Beta2 => Some(Setting::Beta2),
                        O::Eps => Some(Setting::Eps),
                        O::WeightDecay => Some(Setting::WeightDecay),
                        O::P(P::Value) if kind == ArmKind::Padam => arm(ArmSetting::P),
                        // AdaExp's constant shape holds its start.
                        O::P(P::Value | P::Start) => arm(ArmSetting::PStart),
                        // A step schedule's one step goes to the end value.
                        O::P(P::End | P::Step(_)) => arm(ArmSetting::PEnd),
                        O::P(P::Length) => arm(ArmSetting::DecayEpochs),
                    },
                }
            }
            Field::Epochs => Some(Setting::Epochs),
            Field::BatchSize => Some(Setting::BatchSize),
            Field::TrainSize => Some(Setting::TrainSize),
            Field::TestSize => Some(Setting::TestSize),
            Field::Seeds => Some(Setting::Seed),
            Field::Name
            | Field::Description
            | Field::ValSize
            | Field::Arms
            | Field::Start
            | Field::Steps
            | Field::Optimizer(_)
            | Field::Lr(_) => None,
        }
    }
}

impl LabSettings {
    /// Every query key, in a stable order.
    pub fn keys() -> Vec<String> {
        Setting::all().into_iter().map(Setting::key).collect()
    }

    /// The value of one key as the query string writes it.
    pub fn get(&self, key: &str) -> Option<String> {
        Setting::from_key(key).map(|s| s.get(self))
    }

    /// Sets one key from its query-string text; the error says what was wrong with it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let setting = Setting::from_key(key).ok_or_else(|| format!("unknown setting '{key}'"))?;
        setting.set(self, value)
    }

    /// The whole state as a query string (without the leading `?`).
    pub fn to_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for setting in Setting::all() {
            query.append_pair(&setting.key(), &setting.get(self));
        }
        query.finish()
    }

    /// Reads a query string (with or without `?`). Missing keys keep their defaults; each bad
    /// value is replaced by its default and reported in the notices.
    pub fn from_query(query: &str) -> (LabSettings, Vec<String>) {
        let defaults = LabSettings::default();
        let mut settings = defaults.clone();
        let mut notices = Vec::new();
        let query = query.strip_prefix('?').unwrap_or(query);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if let Err(why) = settings.set(&key, &value) {
                notices.push(format!("{key}: {why}; using the default"));
            }
        }
        // Out-of-range values: the spec's validation names the field; reset its setting and try
        // again. Each round resets one setting, so there are at most as many rounds as settings.
        for _ in 0..Setting::all().len() {
            let Err(error) = settings.experiment().validate() else {
                break;
            };
            let Some(setting) = Setting::for_error(&settings, &error) else {
                notices.push(format!("{error}; using the defaults"));
                return (defaults, notices);
            };
            let default = setting.get(&defaults);
            // Where its default is what fails, nothing is left to reset one at a time.
            if setting.get(&settings) == default || setting.set(&mut settings, &default).is_err() {
                notices.push(format!("{error}; using the defaults"));
                return (defaults, notices);
            }
            notices.push(format!(
                "{}: {}; using {default}",
                setting.key(),
                error.message
            ));
        }
        (settings, notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_round_trips_every_setting() {
        let mut settings = LabSettings::default();
        settings.set("ax2", "1").unwrap();
        settings.set("ax2.shape", "step").unwrap();
        settings.set("ax.p1", "0.1").unwrap();
        settings.set("model", "resnet20").unwrap();
        settings.set("seed", "7").unwrap();
        settings.set("trace_lr_sgdm", "0.01").unwrap();
        settings.set("trace_lr_adaptive", "0.03").unwrap();
        settings.set("lr_decay", "linear").unwrap();
        let query = settings.to_query();
        assert!(
            query.contains("ax.p1=0.1") && query.contains("ax2.shape=step"),
            "{query}"
        );
        let (back, notices) = LabSettings::from_query(&format!("?{query}"));
        assert_eq!(back, settings);
        assert!(notices.is_empty(), "{notices:?}");
        // Six on/off keys, five learning rates (not the matched arm's), Padam's p, two schedules.
        assert_eq!(LabSettings::keys().len(), 6 + 5 + 1 + 2 * 4 + 14);
    }

    #[test]
    fn the_matched_arm_follows_adaexp_and_needs_it() {
        let (settings, notices) = LabSettings::from_query("adam_m=1");
        assert!(notices.is_empty(), "{notices:?}");
        let spec = settings.experiment();
        let matched = spec.arms.last().unwrap();
        assert_eq!(matched.name, "Adam matched to AdaExp");
        assert_eq!(matched.lr.target(), Some("AdaExp"));
        assert_eq!(matched.optimizer.exponent_at(1, 1), Some(0.5));
        spec.validate().unwrap();
        // Without AdaExp there is nothing to match: the arm is switched off, with a notice.
        let (settings, notices) = LabSettings::from_query("adam_m=1&ax=0");
        assert!(!settings.arms[5].enabled);
        assert!(
            notices
                .iter()
                .any(|n| n.starts_with("adam_m:") && n.contains("AdaExp")),
            "{notices:?}"
        );
        // It has no learning rate of its own.
        let (_, notices) = LabSettings::from_query("adam_m.lr=0.1");
        assert!(notices[0].contains("unknown setting"), "{notices:?}");
    }

    #[test]
    fn bad_values_fall_back_to_defaults_with_notices() {
        let (settings, notices) = LabSettings::from_query(
            "ax.p1=1.5&adam.lr=abc&beta2=1&epochs=0&nope=3&ax.shape=zigzag&trace_lr_adaptive=-1",
        );
        let defaults = LabSettings::default();
        assert_eq!(settings, defaults);
        let text = notices.join("\n");
        for key in [
            "ax.p1",
            "adam.lr",
            "beta2",
            "epochs",
            "nope",
            "ax.shape",
            "trace_lr_adaptive",
        ] {
            assert!(
                notices.iter().any(|n| n.starts_with(&format!("{key}:"))),
                "{key} missing from {text}"
            );
        }
        assert!(
            text.contains("ax.p1: must be in [0, 1], got 1.5; using 0"),
            "{text}"
        );
    }

    #[test]
    fn out_of_range_values_of_later_arms_map_to_their_keys() {
        // With SGDM off, AdaExp #2 is a later index in the experiment's arms.
        let (settings, notices) = LabSettings::from_query("sgdm=0&ax2=1&ax2.len=0&padam.p=-1");
        assert!(!settings.arms[0].enabled && settings.arms[4].enabled);
        assert_eq!(settings.arms[4].decay_epochs, 6.0);
        assert_eq!(settings.arms[2].p_start, 0.125);
        assert!(
            notices.iter().any(|n| n.starts_with("ax2.len:")),
            "{notices:?}"
        );
        assert!(
            notices.iter().any(|n| n.starts_with("padam.p:")),
            "{notices:?}"
        );
    }

    mod never_panic {
        use proptest::prelude::*;

        use super::*;
        use crate::fuzz::{config, mutated_text};

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn query_string(bytes in mutated_text(&LabSettings::default().to_query())) {
                let (settings, _) = LabSettings::from_query(&String::from_utf8_lossy(&bytes));
                // Whatever came in, what comes out is a valid experiment.
                prop_assert!(settings.experiment().validate().is_ok());
            }
        }
    }
}
