//! `OptimizerSpec`: the one description of an optimizer that CLI flags, TOML files, the page's
//! URL and result files all share, with validation that names the offending field.

use serde::{Deserialize, Serialize};

use crate::optim::schedule::{Length, Schedule};
use crate::validation::{Invalid, OptimizerField, check_decay_rate, check_positive};

/// Weight decay λ: coupled L2 (λθ added to the gradient) or decoupled (θ ← θ − η·λ·θ).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum WeightDecay {
    L2(f64),
    Decoupled(f64),
}

impl WeightDecay {
    pub fn lambda(self) -> f64 {
        match self {
            WeightDecay::L2(l) | WeightDecay::Decoupled(l) => l,
        }
    }

    fn validate(self) -> Result<(), Invalid<OptimizerField>> {
        let lambda = self.lambda();
        if lambda.is_finite() && lambda >= 0.0 {
            Ok(())
        } else {
            Err(Invalid::new(
                OptimizerField::WeightDecay,
                format!("must be a finite number >= 0, got {lambda}"),
            ))
        }
    }
}

fn default_momentum() -> f64 {
    0.9
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_padam_p() -> f64 {
    0.125
}
fn default_true() -> bool {
    true
}

/// SGD with momentum, PyTorch convention: buf ← μ·buf + g (buf = g at t = 1), θ ← θ − η·buf.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdmSpec {
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<WeightDecay>,
}

/// The adaptive family's shared hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamSpec {
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default)]
    pub amsgrad: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<WeightDecay>,
}

/// Padam: a constant partial exponent p with the AMSGrad max on by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadamSpec {
    #[serde(default = "default_padam_p")]
    pub p: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_true")]
    pub amsgrad: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<WeightDecay>,
}

/// AdaExp: the exponent p(t) follows a schedule (typically 0.5 → 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaExpSpec {
    pub p: Schedule,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default)]
    pub amsgrad: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<WeightDecay>,
}

impl AdaExpSpec {
    /// The exponent schedule with Adam's default β1, β2, ε, no AMSGrad and no weight decay.
    pub fn new(p: Schedule) -> Self {
        let adam = AdamSpec::default();
        AdaExpSpec {
            p,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            amsgrad: adam.amsgrad,
            weight_decay: adam.weight_decay,
        }
    }
}

/// The four families by name, for building a spec from flat controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum Family {
    Sgdm,
    Adam,
    Padam,
    Adaexp,
}

/// Flat controls for any family (the page's arm and shared settings, `trace`'s flags): each
/// family takes the values it has, and `None` means that family's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlatOptimizer {
    pub momentum: Option<f64>,
    pub nesterov: bool,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub amsgrad: Option<bool>,
    /// Padam's constant exponent.
    pub p: Option<f64>,
    /// AdaExp's exponent schedule [default: linear 0.5 → 0 over one epoch].
    pub exponent: Option<Schedule>,
    pub weight_decay: Option<WeightDecay>,
}

impl Family {
    /// The short name used in flags and files: `sgdm`, `adam`, `padam`, `adaexp`.
    pub fn kind(self) -> &'static str {
        match self {
            Family::Sgdm => "sgdm",
            Family::Adam => "adam",
            Family::Padam => "padam",
            Family::Adaexp => "adaexp",
        }
    }

    /// The one place flat controls become a spec.
    pub fn spec(self, flat: &FlatOptimizer) -> OptimizerSpec {
        let adam = AdamSpec::default();
        let (beta1, beta2, eps) = (
            flat.beta1.unwrap_or(adam.beta1),
            flat.beta2.unwrap_or(adam.beta2),
            flat.eps.unwrap_or(adam.eps),
        );
        let weight_decay = flat.weight_decay;
        match self {
            Family::Sgdm => OptimizerSpec::Sgdm(SgdmSpec {
                momentum: flat.momentum.unwrap_or(default_momentum()),
                nesterov: flat.nesterov,
                weight_decay,
            }),
            Family::Adam => OptimizerSpec::Adam(AdamSpec {
                beta1,
                beta2,
                eps,
                amsgrad: flat.amsgrad.unwrap_or(adam.amsgrad),
                weight_decay,
            }),
            Family::Padam => OptimizerSpec::Padam(PadamSpec {
                p: flat.p.unwrap_or(default_padam_p()),
                beta1,
                beta2,
                eps,
                amsgrad: flat.amsgrad.unwrap_or(default_true()),
                weight_decay,
            }),
            Family::Adaexp => OptimizerSpec::AdaExp(AdaExpSpec {
                p: flat.exponent.clone().unwrap_or(Schedule::Linear {
                    start: 0.5,
                    end: 0.0,
                    length: Length::Epochs(1.0),
                }),
                beta1,
                beta2,
                eps,
                amsgrad: flat.amsgrad.unwrap_or(adam.amsgrad),
                weight_decay,
            }),
        }
    }
}

impl Default for SgdmSpec {
    fn default() -> Self {
        SgdmSpec {
            momentum: default_momentum(),
            nesterov: false,
            weight_decay: None,
        }
    }
}

impl Default for AdamSpec {
    fn default() -> Self {
        AdamSpec {
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            amsgrad: false,
            weight_decay: None,
        }
    }
}

impl Default for PadamSpec {
    fn default() -> Self {
        PadamSpec {
            p: default_padam_p(),
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            amsgrad: true,
            weight_decay: None,
        }
    }
}

/// One optimizer of the family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerSpec {
    Sgdm(SgdmSpec),
    Adam(AdamSpec),
    Padam(PadamSpec),
    AdaExp(AdaExpSpec),
}

/// The adaptive rule's parameters, whichever family member they came from:
/// Adam is p ≡ 0.5, Padam a constant p, AdaExp a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub amsgrad: bool,
    pub exponent: Schedule,
    pub weight_decay: Option<WeightDecay>,
}

impl OptimizerSpec {
    pub fn family(&self) -> Family {
        match self {
            OptimizerSpec::Sgdm(_) => Family::Sgdm,
            OptimizerSpec::Adam(_) => Family::Adam,
            OptimizerSpec::Padam(_) => Family::Padam,
            OptimizerSpec::AdaExp(_) => Family::Adaexp,
        }
    }

    /// The short name used in flags and files: `sgdm`, `adam`, `padam`, `adaexp`.
    pub fn kind(&self) -> &'static str {
        self.family().kind()
    }

    pub fn weight_decay(&self) -> Option<WeightDecay> {
        match self {
            OptimizerSpec::Sgdm(s) => s.weight_decay,
            OptimizerSpec::Adam(s) => s.weight_decay,
            OptimizerSpec::Padam(s) => s.weight_decay,
            OptimizerSpec::AdaExp(s) => s.weight_decay,
        }
    }

    /// The adaptive rule this spec denotes, or `None` for SGDM.
    pub fn adaptive(&self) -> Option<AdaptiveParams> {
        let (beta1, beta2, eps, amsgrad, exponent) = match self {
            OptimizerSpec::Sgdm(_) => return None,
            OptimizerSpec::Adam(s) => (s.beta1, s.beta2, s.eps, s.amsgrad, Schedule::constant(0.5)),
            OptimizerSpec::Padam(s) => {
                (s.beta1, s.beta2, s.eps, s.amsgrad, Schedule::constant(s.p))
            }
            OptimizerSpec::AdaExp(s) => (s.beta1, s.beta2, s.eps, s.amsgrad, s.p.clone()),
        };
        Some(AdaptiveParams {
            beta1,
            beta2,
            eps,
            amsgrad,
            exponent,
            weight_decay: self.weight_decay(),
        })
    }

    /// The exponent used at step t (from 1); `None` for SGDM, which has none.
    pub fn exponent_at(&self, step: u64, steps_per_epoch: u64) -> Option<f64> {
        self.adaptive()
            .map(|a| a.exponent.value(step, steps_per_epoch))
    }

    pub fn validate(&self) -> Result<(), Invalid<OptimizerField>> {
        if let Some(wd) = self.weight_decay() {
            wd.validate()?;
        }
        match self {
            OptimizerSpec::Sgdm(s) => check_decay_rate(OptimizerField::Momentum, s.momentum),
            _ => {
                let Some(a) = self.adaptive() else {
                    unreachable!("every non-SGDM spec is adaptive")
                };
                check_decay_rate(OptimizerField::Beta1, a.beta1)?;
                check_decay_rate(OptimizerField::Beta2, a.beta2)?;
                check_positive(OptimizerField::Eps, a.eps)?;
                a.exponent
                    .validate_exponent()
                    .map_err(|e| e.at(OptimizerField::P))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::schedule::Length;

    #[test]
    fn toml_round_trip_with_defaults() {
        let spec: OptimizerSpec = toml::from_str(
            r#"
            kind = "adaexp"
            beta2 = 0.99
            weight_decay = { decoupled = 5e-4 }
            p = { shape = "linear", start = 0.5, end = 0.0, length = { epochs = 100 } }
            "#,
        )
        .unwrap();
        let OptimizerSpec::AdaExp(a) = &spec else {
            panic!("expected adaexp, got {spec:?}")
        };
        assert_eq!(a.beta1, 0.9);
        assert_eq!(a.beta2, 0.99);
        assert_eq!(a.eps, 1e-8);
        assert_eq!(a.weight_decay, Some(WeightDecay::Decoupled(5e-4)));
        assert_eq!(
            a.p,
            Schedule::Linear {
                start: 0.5,
                end: 0.0,
                length: Length::Epochs(100.0)
            }
        );
        spec.validate().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<OptimizerSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn padam_defaults_follow_chen_and_gu() {
        let spec: OptimizerSpec = serde_json::from_str(r#"{"kind":"padam"}"#).unwrap();
        assert_eq!(spec, OptimizerSpec::Padam(PadamSpec::default()));
        let a = spec.adaptive().unwrap();
        assert!(a.amsgrad);
        assert_eq!(a.exponent, Schedule::constant(0.125));
        assert_eq!(spec.exponent_at(1000, 1), Some(0.125));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<OptimizerSpec>(r#"{"kind":"adam","beta3":0.5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("beta3"), "{err}");
    }

    #[test]
    fn invalid_values_name_field_and_range() {
        use crate::validation::ExponentField;
        let cases: Vec<(OptimizerSpec, OptimizerField, &str)> = vec![
            (
                OptimizerSpec::Adam(AdamSpec {
                    beta1: 1.0,
                    ..AdamSpec::default()
                }),
                OptimizerField::Beta1,
                "[0, 1)",
            ),
            (
                OptimizerSpec::Adam(AdamSpec {
                    beta2: f64::NAN,
                    ..AdamSpec::default()
                }),
                OptimizerField::Beta2,
                "[0, 1)",
            ),
            (
                OptimizerSpec::Adam(AdamSpec {
                    eps: 0.0,
                    ..AdamSpec::default()
                }),
                OptimizerField::Eps,
                "> 0",
            ),
            (
                OptimizerSpec::Padam(PadamSpec {
                    p: -0.1,
                    ..PadamSpec::default()
                }),
                OptimizerField::P(ExponentField::Value),
                "[0, 1]",
            ),
            (
                OptimizerSpec::Sgdm(SgdmSpec {
                    momentum: -0.5,
                    ..SgdmSpec::default()
                }),
                OptimizerField::Momentum,
                "[0, 1)",
            ),
            (
                OptimizerSpec::Sgdm(SgdmSpec {
                    weight_decay: Some(WeightDecay::L2(f64::INFINITY)),
                    ..SgdmSpec::default()
                }),
                OptimizerField::WeightDecay,
                ">= 0",
            ),
        ];
        for (spec, field, range) in cases {
            let err = spec.validate().unwrap_err();
            assert_eq!(err.field, field, "{spec:?}");
            assert!(err.to_string().contains(range), "{err}");
        }
    }
}
