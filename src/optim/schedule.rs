//! Schedules as pure functions of the step: the exponent p(t) and the learning rate η(t).
//!
//! Convention (one place): step t = 1, 2, … reads progress s = (t − 1) / T clamped to [0, 1],
//! where T is the schedule length in steps. A length given in epochs becomes
//! epochs × batches-per-epoch steps.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

use crate::validation::{
    ExponentField, Invalid, LrField, check_fraction, check_positive, check_range,
};

/// How long a schedule runs: a number of optimizer steps or of epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Length {
    Steps(u64),
    Epochs(f64),
}

impl Length {
    /// The length in steps, given the number of batches in one epoch.
    pub fn steps(self, steps_per_epoch: u64) -> f64 {
        match self {
            Length::Steps(n) => n as f64,
            Length::Epochs(e) => e * steps_per_epoch as f64,
        }
    }

    pub fn validate<F>(&self, field: F) -> Result<(), Invalid<F>> {
        match *self {
            Length::Steps(0) => Err(Invalid::new(field, "must be at least 1 step, got 0")),
            Length::Steps(_) => Ok(()),
            Length::Epochs(e) => check_positive(field, e),
        }
    }
}

/// Progress s = (t − 1) / T clamped to [0, 1] for step t (t counts from 1).
pub fn progress(step: u64, length_steps: f64) -> f64 {
    if length_steps <= 0.0 {
        return 1.0;
    }
    (step.saturating_sub(1) as f64 / length_steps).clamp(0.0, 1.0)
}

/// Where step t sits on an epoch axis: at its start, (t − 1) / steps-per-epoch, so step 1 is at 0
/// and the value drawn at x is the one in use from x on. Every plot of p(t), η(t) or a per-step
/// record (the CLI's figures, the page's preview) uses this one convention.
pub fn step_position(step: u64, steps_per_epoch: u64) -> f64 {
    step.saturating_sub(1) as f64 / steps_per_epoch.max(1) as f64
}

/// A per-step value drawn over a run of `total_steps`: about `points` samples at
/// `step_position`, always with the first and the last step, each once, and the last value
/// held to the end of the run (the last step lasts until then). `None` when the value is not
/// defined (SGDM has no exponent).
pub fn sample_over_run(
    total_steps: u64,
    steps_per_epoch: u64,
    points: u64,
    value: impl Fn(u64) -> Option<f64>,
) -> Option<Vec<(f64, f64)>> {
    let stride = (total_steps / points.max(1)).max(1) as usize;
    let mut steps: Vec<u64> = (1..=total_steps).step_by(stride).collect();
    if total_steps > 0 && steps.last() != Some(&total_steps) {
        steps.push(total_steps);
    }
    let mut samples = steps
        .into_iter()
        .map(|t| Some((step_position(t, steps_per_epoch), value(t)?)))
        .collect::<Option<Vec<_>>>()?;
    if let Some(&(_, last)) = samples.last() {
        samples.push((step_position(total_steps + 1, steps_per_epoch), last));
    }
    Some(samples)
}

/// The exponent p(t) applied to v̂ in the adaptive update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// p(t) = value.
    Constant { value: f64 },
    /// p(t) = start + (end − start)·s.
    Linear {
        start: f64,
        end: f64,
        length: Length,
    },
    /// p(t) = end + (start − end)·(1 + cos πs)/2.
    Cosine {
        start: f64,
        end: f64,
        length: Length,
    },
    /// p(t) = start until s ≥ the first fraction, then each listed value from its fraction on.
    Step {
        start: f64,
        /// (fraction of the length, value from there on), fractions strictly increasing.
        steps: Vec<(f64, f64)>,
        length: Length,
    },
}

impl Schedule {
    pub fn constant(value: f64) -> Self {
        Schedule::Constant { value }
    }

    /// The value at step t (from 1), with `steps_per_epoch` converting epoch lengths.
    pub fn value(&self, step: u64, steps_per_epoch: u64) -> f64 {
        match self {
            Schedule::Constant { value } => *value,
            Schedule::Linear { start, end, length } => {
                let s = progress(step, length.steps(steps_per_epoch));
                start + (end - start) * s
            }
            Schedule::Cosine { start, end, length } => {
                let s = progress(step, length.steps(steps_per_epoch));
                end + (start - end) * (1.0 + (PI * s).cos()) / 2.0
            }
            Schedule::Step {
                start,
                steps,
                length,
            } => {
                let s = progress(step, length.steps(steps_per_epoch));
                steps
                    .iter()
                    .take_while(|(fraction, _)| s >= *fraction)
                    .last()
                    .map_or(*start, |(_, value)| *value)
            }
        }
    }

    /// Checks an exponent schedule: every level in [0, 1], a positive length, ordered fractions.
    pub fn validate_exponent(&self) -> Result<(), Invalid<ExponentField>> {
        match self {
            Schedule::Constant { value } => check_range(ExponentField::Value, *value, 0.0, 1.0)?,
            Schedule::Linear { start, end, length } | Schedule::Cosine { start, end, length } => {
                check_range(ExponentField::Start, *start, 0.0, 1.0)?;
                check_range(ExponentField::End, *end, 0.0, 1.0)?;
                length.validate(ExponentField::Length)?;
            }
            Schedule::Step {
                start,
                steps,
                length,
            } => {
                check_range(ExponentField::Start, *start, 0.0, 1.0)?;
                length.validate(ExponentField::Length)?;
                let mut previous = None;
                for (i, (fraction, value)) in steps.iter().enumerate() {
                    let field = ExponentField::Step(i);
                    check_fraction(field, *fraction)?;
                    check_range(field, *value, 0.0, 1.0)?;
                    if previous.is_some_and(|p| *fraction <= p) {
                        return Err(Invalid::new(
                            field,
                            format!(
                                "fractions must be strictly increasing, got {fraction} after {}",
                                previous.unwrap_or_default()
                            ),
                        ));
                    }
                    previous = Some(*fraction);
                }
            }
        }
        Ok(())
    }
}

/// The shapes of a two-level schedule from `start` to `end`: what the page's sliders and
/// `trace`'s flags pick (files write a `Schedule` out in full).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum Shape {
    Constant,
    Linear,
    Cosine,
    /// `start` for the first half of the length, then `end`.
    Step,
}

impl Shape {
    pub const ALL: [Shape; 4] = [Shape::Constant, Shape::Linear, Shape::Cosine, Shape::Step];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Constant => "constant",
            Shape::Linear => "linear",
            Shape::Cosine => "cosine",
            Shape::Step => "step",
        }
    }

    pub fn parse(text: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == text)
    }

    /// The schedule of this shape from `start` to `end` over `length` (constant: `start`).
    pub fn schedule(self, start: f64, end: f64, length: Length) -> Schedule {
        match self {
            Shape::Constant => Schedule::constant(start),
            Shape::Linear => Schedule::Linear { start, end, length },
            Shape::Cosine => Schedule::Cosine { start, end, length },
            Shape::Step => Schedule::Step {
                start,
                steps: vec![(0.5, end)],
                length,
            },
        }
    }
}

/// How the learning rate decays from its base value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "lowercase", deny_unknown_fields)]
pub enum LrDecay {
    /// η(t) = base.
    #[default]
    Constant,
    /// η(t) = base·gamma^k, k = the number of milestones already passed (t − 1 ≥ milestone).
    Step { milestones: Vec<Length>, gamma: f64 },
    /// η(t) = floor + (base − floor)·(1 − s): the control for an exponent decay that shrinks
    /// the steps (an lr decayed linearly to 0 over the run).
    Linear { floor: f64, length: Length },
    /// η(t) = floor + (base − floor)·(1 + cos πs)/2.
    Cosine { floor: f64, length: Length },
}

/// η(t): a base learning rate, its decay, and an optional linear warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    pub base: f64,
    #[serde(default)]
    pub decay: LrDecay,
    /// Linear warm-up: the rate is multiplied by min(1, t / warmup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Length>,
}

impl LrSchedule {
    pub fn constant(base: f64) -> Self {
        LrSchedule {
            base,
            decay: LrDecay::Constant,
            warmup: None,
        }
    }

    pub fn value(&self, step: u64, steps_per_epoch: u64) -> f64 {
        let decayed = match &self.decay {
            LrDecay::Constant => self.base,
            LrDecay::Step { milestones, gamma } => {
                let done = step.saturating_sub(1) as f64;
                let passed = milestones
                    .iter()
                    .filter(|m| done >= m.steps(steps_per_epoch))
                    .count();
                self.base * gamma.powi(passed as i32)
            }
            LrDecay::Linear { floor, length } => {
                let s = progress(step, length.steps(steps_per_epoch));
                floor + (self.base - floor) * (1.0 - s)
            }
            LrDecay::Cosine { floor, length } => {
                let s = progress(step, length.steps(steps_per_epoch));
                floor + (self.base - floor) * (1.0 + (PI * s).cos()) / 2.0
            }
        };
        let warm = self
            .warmup
            .map_or(1.0, |w| (step as f64 / w.steps(steps_per_epoch)).min(1.0));
        decayed * warm
    }

    pub fn validate(&self) -> Result<(), Invalid<LrField>> {
        check_positive(LrField::Base, self.base)?;
        match &self.decay {
            LrDecay::Constant => {}
            LrDecay::Step { milestones, gamma } => {
                check_range(LrField::Gamma, *gamma, 0.0, 1.0)?;
                let mut previous: Option<&Length> = None;
                for (i, m) in milestones.iter().enumerate() {
                    let field = LrField::Milestone(i);
                    m.validate(field)?;
                    if let Some(p) = previous
                        && std::mem::discriminant(p) == std::mem::discriminant(m)
                        && m.steps(1) <= p.steps(1)
                    {
                        return Err(Invalid::new(field, "milestones must be increasing"));
                    }
                    previous = Some(m);
                }
            }
            LrDecay::Linear { floor, length } | LrDecay::Cosine { floor, length } => {
                if !floor.is_finite() || *floor < 0.0 || *floor > self.base {
                    return Err(Invalid::new(
                        LrField::Floor,
                        format!("must be in [0, lr = {}], got {floor}", self.base),
                    ));
                }
                length.validate(LrField::Length)?;
            }
        }
        if let Some(w) = &self.warmup {
            w.validate(LrField::Warmup)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: Length = Length::Steps(100);

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn progress_starts_at_zero_and_clamps() {
        close(progress(1, 100.0), 0.0);
        close(progress(51, 100.0), 0.5);
        close(progress(101, 100.0), 1.0);
        close(progress(500, 100.0), 1.0);
    }

    #[test]
    fn linear_at_zero_half_one() {
        let p = Schedule::Linear {
            start: 0.5,
            end: 0.0,
            length: STEPS,
        };
        close(p.value(1, 1), 0.5);
        close(p.value(51, 1), 0.25);
        close(p.value(101, 1), 0.0);
        close(p.value(1000, 1), 0.0);
    }

    #[test]
    fn cosine_at_zero_half_one() {
        let p = Schedule::Cosine {
            start: 0.5,
            end: 0.1,
            length: STEPS,
        };
        close(p.value(1, 1), 0.5);
        // cos(π/2) = 0: halfway between the ends.
        close(p.value(51, 1), 0.3);
        close(p.value(101, 1), 0.1);
    }

    #[test]
    fn constant_everywhere() {
        let p = Schedule::constant(0.125);
        for t in [1, 51, 101] {
            close(p.value(t, 1), 0.125);
        }
    }

    #[test]
    fn step_switches_exactly_at_fraction_boundaries() {
        let p = Schedule::Step {
            start: 0.5,
            steps: vec![(0.5, 0.25), (0.75, 0.0)],
            length: STEPS,
        };
        close(p.value(1, 1), 0.5);
        close(p.value(50, 1), 0.5); // s = 0.49
        close(p.value(51, 1), 0.25); // s = 0.50
        close(p.value(75, 1), 0.25); // s = 0.74
        close(p.value(76, 1), 0.0); // s = 0.75
        close(p.value(101, 1), 0.0);
    }

    #[test]
    fn epoch_lengths_use_batches_per_epoch() {
        let p = Schedule::Linear {
            start: 0.5,
            end: 0.0,
            length: Length::Epochs(2.0),
        };
        // 2 epochs × 10 batches = 20 steps; step 11 is halfway.
        close(p.value(11, 10), 0.25);
        close(p.value(21, 10), 0.0);
    }

    #[test]
    fn lr_step_decay_at_milestones() {
        let lr = LrSchedule {
            base: 0.1,
            decay: LrDecay::Step {
                milestones: vec![Length::Epochs(1.0), Length::Epochs(2.0)],
                gamma: 0.1,
            },
            warmup: None,
        };
        close(lr.value(1, 10), 0.1);
        close(lr.value(10, 10), 0.1); // last step of epoch 1
        close(lr.value(11, 10), 0.01); // first step of epoch 2
        close(lr.value(21, 10), 0.001);
    }

    #[test]
    fn lr_cosine_to_floor_and_warmup() {
        let lr = LrSchedule {
            base: 1.0,
            decay: LrDecay::Cosine {
                floor: 0.2,
                length: STEPS,
            },
            warmup: Some(Length::Steps(4)),
        };
        close(lr.value(1, 1), 1.0 * 0.25); // warm-up 1/4, s = 0
        close(
            lr.value(4, 1),
            (0.2 + 0.8 * (1.0 + (PI * 0.03).cos()) / 2.0) * 1.0,
        );
        close(lr.value(51, 1), 0.6);
        close(lr.value(101, 1), 0.2);
    }

    #[test]
    fn lr_linear_to_floor_at_zero_half_one_and_the_boundaries() {
        let lr = LrSchedule {
            base: 1e-3,
            decay: LrDecay::Linear {
                floor: 1e-4,
                length: STEPS,
            },
            warmup: None,
        };
        close(lr.value(1, 1), 1e-3); // s = 0
        close(lr.value(2, 1), 1e-4 + 9e-4 * 0.99); // s = 1/100
        close(lr.value(51, 1), 5.5e-4); // s = ½: halfway between base and floor
        close(lr.value(100, 1), 1e-4 + 9e-4 * 0.01); // the last step of the length
        close(lr.value(101, 1), 1e-4); // s = 1
        close(lr.value(10_000, 1), 1e-4); // clamped past the end
        // To 0 over 2 epochs of 10 batches, with a 5-step warm-up on top.
        let to_zero = LrSchedule {
            base: 0.1,
            decay: LrDecay::Linear {
                floor: 0.0,
                length: Length::Epochs(2.0),
            },
            warmup: Some(Length::Steps(5)),
        };
        close(to_zero.value(1, 10), 0.1 * 0.2); // warm-up 1/5, s = 0
        close(to_zero.value(11, 10), 0.05); // s = ½, warm-up done
        close(to_zero.value(21, 10), 0.0);
        // TOML, as an experiment file writes it.
        let parsed: LrSchedule = toml::from_str(
            "base = 1e-3\ndecay = { shape = \"linear\", floor = 0.0, length = { epochs = 100 } }",
        )
        .unwrap();
        assert_eq!(
            parsed.decay,
            LrDecay::Linear {
                floor: 0.0,
                length: Length::Epochs(100.0)
            }
        );
        let above = LrSchedule {
            base: 1e-3,
            decay: LrDecay::Linear {
                floor: 2e-3,
                length: STEPS,
            },
            warmup: None,
        };
        assert_eq!(above.validate().unwrap_err().field, LrField::Floor);
    }

    #[test]
    fn samples_start_at_zero_and_end_at_the_last_step() {
        // 2 epochs of 10 steps: step 1 at 0, step 11 at epoch 1, step 20 at 1.9.
        assert_eq!(step_position(1, 10), 0.0);
        assert_eq!(step_position(11, 10), 1.0);
        let p = Schedule::Linear {
            start: 0.5,
            end: 0.0,
            length: Length::Epochs(2.0),
        };
        let all = sample_over_run(20, 10, 100, |t| Some(p.value(t, 10))).unwrap();
        assert_eq!(all.len(), 21);
        assert_eq!(all[0], (0.0, 0.5));
        close(all[10].0, 1.0);
        close(all[10].1, 0.25);
        // The last step's value (s = 19/20) holds to the end of the run, epoch 2.
        assert_eq!(all[20], (2.0, all[19].1));
        close(all[19].1, 0.5 * (1.0 - 19.0 / 20.0));
        let thinned = sample_over_run(20, 10, 3, |t| Some(p.value(t, 10))).unwrap();
        let xs: Vec<f64> = thinned.iter().map(|(x, _)| *x).collect();
        assert_eq!(xs, vec![0.0, 0.6, 1.2, 1.8, 1.9, 2.0]);
        assert!(sample_over_run(20, 10, 3, |_| None).is_none());
    }

    #[test]
    fn validation_names_the_field() {
        let bad = Schedule::Linear {
            start: 0.5,
            end: 1.5,
            length: STEPS,
        };
        let err = bad.validate_exponent().unwrap_err();
        assert_eq!(err.field, ExponentField::End);
        assert!(err.to_string().contains("[0, 1]"), "{err}");

        let zero = Schedule::Linear {
            start: 0.5,
            end: 0.0,
            length: Length::Steps(0),
        };
        assert_eq!(
            zero.validate_exponent().unwrap_err().field,
            ExponentField::Length
        );

        let unordered = Schedule::Step {
            start: 0.5,
            steps: vec![(0.6, 0.2), (0.4, 0.1)],
            length: STEPS,
        };
        let err = unordered.validate_exponent().unwrap_err();
        assert_eq!(err.field, ExponentField::Step(1));
        assert!(err.to_string().contains("increasing"));

        let nan = Schedule::constant(f64::NAN);
        assert_eq!(
            nan.validate_exponent().unwrap_err().field,
            ExponentField::Value
        );

        assert_eq!(
            LrSchedule::constant(0.0).validate().unwrap_err().field,
            LrField::Base
        );
    }
}
