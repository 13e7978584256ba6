//! The page's settings: every control's value and default.

use crate::model::ModelSpec;
use crate::optim::spec::{AdamSpec, SgdmSpec};
use crate::optim::{Family, Length, Schedule, Shape};
use crate::palette;

/// The arms the page offers: AdaExp twice so that two schedules can be compared, and the
/// control that gives Adam's direction AdaExp's step size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmKind {
    Sgdm,
    Adam,
    Padam,
    AdaExp,
    AdaExp2,
    /// Adam whose learning rate, at every step, makes its update as large as AdaExp's.
    AdamMatched,
}

impl ArmKind {
    pub const ALL: [ArmKind; 6] = [
        ArmKind::Sgdm,
        ArmKind::Adam,
        ArmKind::Padam,
        ArmKind::AdaExp,
        ArmKind::AdaExp2,
        ArmKind::AdamMatched,
    ];

    /// The arm's prefix in the query string.
    pub fn key(self) -> &'static str {
        match self {
            ArmKind::Sgdm => "sgdm",
            ArmKind::Adam => "adam",
            ArmKind::Padam => "padam",
            ArmKind::AdaExp => "ax",
            ArmKind::AdaExp2 => "ax2",
            ArmKind::AdamMatched => "adam_m",
        }
    }

    /// The arm's name in the run: its id in records, live edits and chart series. Fixed per
    /// kind, so that moving a slider never renames (or re-addresses) a running arm; `label`
    /// is the display text with the values.
    pub fn name(self) -> &'static str {
        match self {
            ArmKind::Sgdm => "SGDM",
            ArmKind::Adam => "Adam",
            ArmKind::Padam => "Padam",
            ArmKind::AdaExp => "AdaExp",
            ArmKind::AdaExp2 => "AdaExp #2",
            ArmKind::AdamMatched => "Adam matched to AdaExp",
        }
    }

    pub fn has_schedule(self) -> bool {
        matches!(self, ArmKind::AdaExp | ArmKind::AdaExp2)
    }

    /// The optimizer family the arm trains with.
    pub fn family(self) -> Family {
        match self {
            ArmKind::Sgdm => Family::Sgdm,
            ArmKind::Adam | ArmKind::AdamMatched => Family::Adam,
            ArmKind::Padam => Family::Padam,
            ArmKind::AdaExp | ArmKind::AdaExp2 => Family::Adaexp,
        }
    }

    /// Its colour: its palette slot among all the page's arms, as `adaexp plot` would give it.
    pub fn colour(self) -> &'static str {
        let slots = palette::slots(ArmKind::ALL.map(|k| k.family().kind()));
        let index = ArmKind::ALL.iter().position(|k| *k == self).unwrap_or(0);
        palette::css(slots[index])
    }

    /// Whether the arm has a learning rate of its own (the matched arm takes AdaExp's step).
    pub fn has_lr(self) -> bool {
        self != ArmKind::AdamMatched
    }
}

/// One arm's controls. `p_start` is Padam's constant exponent; AdaExp arms use all four.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmControls {
    pub kind: ArmKind,
    pub enabled: bool,
    pub lr: f64,
    pub p_start: f64,
    pub p_end: f64,
    pub shape: Shape,
    /// Length of the p schedule in epochs.
    pub decay_epochs: f64,
}

impl ArmControls {
    /// The exponent schedule of an AdaExp arm.
    pub fn schedule(&self) -> Schedule {
        self.shape
            .schedule(self.p_start, self.p_end, Length::Epochs(self.decay_epochs))
    }

    pub fn label(&self) -> String {
        match self.kind {
            ArmKind::Sgdm => "SGDM".into(),
            ArmKind::Adam => "Adam".into(),
            ArmKind::AdamMatched => "Adam at AdaExp's step size".into(),
            ArmKind::Padam => format!("Padam p={}", self.p_start),
            ArmKind::AdaExp | ArmKind::AdaExp2 => {
                let n = if self.kind == ArmKind::AdaExp2 {
                    " #2"
                } else {
                    ""
                };
                match self.shape {
                    Shape::Constant => format!("AdaExp{n} p={}", self.p_start),
                    shape => format!("AdaExp{n} {}→{} {}", self.p_start, self.p_end, shape.name()),
                }
            }
        }
    }
}

/// Every setting of the page.
#[derive(Clone, Debug, PartialEq)]
pub struct LabSettings {
    pub arms: Vec<ArmControls>,
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay λ (0: none).
    pub weight_decay: f64,
    pub model: ModelSpec,
    pub batch_size: usize,
    pub train_size: usize,
    pub test_size: usize,
    pub epochs: u64,
    pub seed: u64,
    /// How every arm's learning rate decays over the run: constant, linear or cosine to 0, or
    /// step (×0.1 at half the run). Linear to 0 is the control for a decaying exponent.
    pub lr_decay: Shape,
    /// The Rosenbrock trajectories' learning rates, one per family: an SGD step is lr × the
    /// gradient, an adaptive one about lr per coordinate, so no one rate lets both move without
    /// SGDM blowing up or Adam crawling. Every adaptive arm (Adam, Padam, AdaExp) shares one,
    /// so that among them only the exponent differs.
    pub trace_lr_sgdm: f64,
    pub trace_lr_adaptive: f64,
}

impl Default for LabSettings {
    /// Defaults that show the effect within minutes on a laptop GPU: the small CNN on 5,000
    /// images for 6 epochs, p decaying to 0 over the run.
    fn default() -> Self {
        let arm = |kind, enabled, lr, p_start, p_end, shape| ArmControls {
            kind,
            enabled,
            lr,
            p_start,
            p_end,
            shape,
            decay_epochs: 6.0,
        };
        let adam = AdamSpec::default();
        LabSettings {
            arms: vec![
                arm(ArmKind::Sgdm, true, 0.05, 0.0, 0.0, Shape::Constant),
                arm(ArmKind::Adam, true, 1e-3, 0.5, 0.5, Shape::Constant),
                arm(ArmKind::Padam, true, 0.1, 0.125, 0.125, Shape::Constant),
                arm(ArmKind::AdaExp, true, 1e-3, 0.5, 0.0, Shape::Linear),
                arm(ArmKind::AdaExp2, false, 1e-3, 0.5, 0.0, Shape::Cosine),
                arm(ArmKind::AdamMatched, false, 1e-3, 0.5, 0.5, Shape::Constant),
            ],
            momentum: SgdmSpec::default().momentum,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            weight_decay: 0.0,
            model: ModelSpec::SmallCnn,
            batch_size: 64,
            train_size: 5000,
            test_size: 1000,
            epochs: 6,
            seed: 0,
            lr_decay: Shape::Constant,
            trace_lr_sgdm: 0.002,
            trace_lr_adaptive: 0.02,
        }
    }
}

impl LabSettings {
    /// The controls of the arm of `kind` (every kind has its own).
    pub fn arm(&self, kind: ArmKind) -> &ArmControls {
        self.arms
            .iter()
            .find(|a| a.kind == kind)
            .expect("the settings hold every kind of arm")
    }

    pub fn arm_mut(&mut self, kind: ArmKind) -> &mut ArmControls {
        self.arms
            .iter_mut()
            .find(|a| a.kind == kind)
            .expect("the settings hold every kind of arm")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_shape_switches_at_half_the_length() {
        let arm = ArmControls {
            shape: Shape::Step,
            ..LabSettings::default().arms[3].clone()
        };
        let schedule = arm.schedule();
        // 6 epochs of 10 steps: p = 0.5 through step 30, then 0.
        assert_eq!(schedule.value(30, 10), 0.5);
        assert_eq!(schedule.value(31, 10), 0.0);
    }
}
