//! What is wrong with a spec, and where: a typed path to the offending field and a sentence.
//!
//! Every spec (optimizer, learning rate, experiment, trace) validates into `Invalid<F>`, `F` the
//! fields it has; the spec that holds it moves the error under its own path (`Invalid::at`). The
//! CLI turns a `Field` into the flag that sets it and the page into its URL key, each in one
//! exhaustive match, so that a new field nobody maps does not compile. `Display` writes the path
//! as the experiment file spells it: `arms[1].optimizer.p.start`.

use std::fmt;

/// A field of an experiment or a trace, the top of every path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Name,
    Description,
    Epochs,
    BatchSize,
    Seeds,
    TrainSize,
    TestSize,
    ValSize,
    /// The list of arms as a whole: empty, too large for a result header, a shard's choice.
    Arms,
    /// A field of the arm at this index of the experiment's arms.
    Arm(usize, ArmField),
    /// A trace's starting point.
    Start,
    /// A trace's number of steps.
    Steps,
    /// A trace's optimizer.
    Optimizer(OptimizerField),
    /// A trace's learning rate.
    Lr(LrField),
}

/// A field of one arm of an experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArmField {
    Name,
    Optimizer(OptimizerField),
    Lr(LrField),
    /// The arm a matched arm takes its step size from (`lr = { match_update_of = … }`).
    MatchUpdateOf,
}

/// A field of an optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerField {
    Momentum,
    Beta1,
    Beta2,
    Eps,
    WeightDecay,
    /// The exponent: Padam's constant, AdaExp's schedule.
    P(ExponentField),
}

/// A field of an exponent schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExponentField {
    /// The constant exponent (a constant schedule, or Padam's p).
    Value,
    Start,
    End,
    Length,
    /// The i-th (fraction, value) pair of a step schedule.
    Step(usize),
}

/// A field of a learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrField {
    Base,
    Gamma,
    Milestone(usize),
    Floor,
    Length,
    Warmup,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Name => f.write_str("name"),
            Field::Description => f.write_str("description"),
            Field::Epochs => f.write_str("epochs"),
            Field::BatchSize => f.write_str("batch_size"),
            Field::Seeds => f.write_str("seeds"),
            Field::TrainSize => f.write_str("train_size"),
            Field::TestSize => f.write_str("test_size"),
            Field::ValSize => f.write_str("val_size"),
            Field::Arms => f.write_str("arms"),
            Field::Arm(index, field) => write!(f, "arms[{index}].{field}"),
            Field::Start => f.write_str("start"),
            Field::Steps => f.write_str("steps"),
            Field::Optimizer(field) => field.fmt(f),
            Field::Lr(field) => field.fmt(f),
        }
    }
}

impl fmt::Display for ArmField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArmField::Name => f.write_str("name"),
            ArmField::Optimizer(field) => write!(f, "optimizer.{field}"),
            ArmField::Lr(field) => field.fmt(f),
            ArmField::MatchUpdateOf => f.write_str("lr.match_update_of"),
        }
    }
}

impl fmt::Display for OptimizerField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimizerField::Momentum => f.write_str("momentum"),
            OptimizerField::Beta1 => f.write_str("beta1"),
            OptimizerField::Beta2 => f.write_str("beta2"),
            OptimizerField::Eps => f.write_str("eps"),
            OptimizerField::WeightDecay => f.write_str("weight_decay"),
            OptimizerField::P(ExponentField::Value) => f.write_str("p"),
            OptimizerField::P(ExponentField::Start) => f.write_str("p.start"),
            OptimizerField::P(ExponentField::End) => f.write_str("p.end"),
            OptimizerField::P(ExponentField::Length) => f.write_str("p.length"),
            OptimizerField::P(ExponentField::Step(i)) => write!(f, "p.steps[{i}]"),
        }
    }
}

impl fmt::Display for ExponentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExponentField::Value => f.write_str("value"),
            ExponentField::Start => f.write_str("start"),
            ExponentField::End => f.write_str("end"),
            ExponentField::Length => f.write_str("length"),
            ExponentField::Step(i) => write!(f, "steps[{i}]"),
        }
    }
}

impl fmt::Display for LrField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LrField::Base => f.write_str("lr"),
            LrField::Gamma => f.write_str("lr.gamma"),
            LrField::Milestone(i) => write!(f, "lr.milestones[{i}]"),
            LrField::Floor => f.write_str("lr.floor"),
            LrField::Length => f.write_str("lr.length"),
            LrField::Warmup => f.write_str("lr.warmup"),
        }
    }
}

/// An invalid value: which field of the spec that checked it, and what was expected.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid<F> {
    pub field: F,
    pub message: String,
}

/// An invalid experiment or trace.
pub type SpecError = Invalid<Field>;

impl<F> Invalid<F> {
    pub fn new(field: F, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
        }
    }

    /// The same error under the path of the spec that holds this one.
    pub fn at<G>(self, path: impl FnOnce(F) -> G) -> Invalid<G> {
        Invalid {
            field: path(self.field),
            message: self.message,
        }
    }
}

impl<F: fmt::Display> fmt::Display for Invalid<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl<F: fmt::Debug + fmt::Display> std::error::Error for Invalid<F> {}

/// A trace's optimizer and learning rate sit at the top of its path.
impl From<Invalid<OptimizerField>> for SpecError {
    fn from(e: Invalid<OptimizerField>) -> Self {
        e.at(Field::Optimizer)
    }
}

impl From<Invalid<LrField>> for SpecError {
    fn from(e: Invalid<LrField>) -> Self {
        e.at(Field::Lr)
    }
}

/// A finite number > 0.
pub fn check_positive<F>(field: F, value: f64) -> Result<(), Invalid<F>> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("must be a finite number > 0, got {value}"),
        ))
    }
}

/// A finite number in the closed range [lo, hi].
pub fn check_range<F>(field: F, value: f64, lo: f64, hi: f64) -> Result<(), Invalid<F>> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("must be in [{lo}, {hi}], got {value}"),
        ))
    }
}

/// A fraction of a schedule's length: [0, 1].
pub fn check_fraction<F>(field: F, value: f64) -> Result<(), Invalid<F>> {
    check_range(field, value, 0.0, 1.0)
}

/// A decay rate such as β or momentum: [0, 1).
pub fn check_decay_rate<F>(field: F, value: f64) -> Result<(), Invalid<F>> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("must be in [0, 1), got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_the_experiment_file_spells_them() {
        let cases = [
            (Field::BatchSize, "batch_size"),
            (Field::Arm(0, ArmField::Name), "arms[0].name"),
            (
                Field::Arm(
                    2,
                    ArmField::Optimizer(OptimizerField::P(ExponentField::Start)),
                ),
                "arms[2].optimizer.p.start",
            ),
            (
                Field::Arm(1, ArmField::Optimizer(OptimizerField::WeightDecay)),
                "arms[1].optimizer.weight_decay",
            ),
            (Field::Arm(3, ArmField::Lr(LrField::Base)), "arms[3].lr"),
            (
                Field::Arm(3, ArmField::Lr(LrField::Milestone(1))),
                "arms[3].lr.milestones[1]",
            ),
            (
                Field::Arm(4, ArmField::MatchUpdateOf),
                "arms[4].lr.match_update_of",
            ),
            (
                Field::Optimizer(OptimizerField::P(ExponentField::Step(2))),
                "p.steps[2]",
            ),
            (
                Field::Optimizer(OptimizerField::P(ExponentField::Value)),
                "p",
            ),
            (Field::Lr(LrField::Floor), "lr.floor"),
        ];
        for (field, text) in cases {
            assert_eq!(field.to_string(), text);
        }
    }

    #[test]
    fn an_error_moves_under_the_path_of_the_spec_that_holds_it() {
        let inner = Invalid::new(OptimizerField::Beta2, "must be in [0, 1), got 1");
        let outer = inner.at(|f| Field::Arm(1, ArmField::Optimizer(f)));
        assert_eq!(
            outer.to_string(),
            "arms[1].optimizer.beta2: must be in [0, 1), got 1"
        );
        let trace: SpecError = Invalid::new(LrField::Gamma, "x").into();
        assert_eq!(trace.field, Field::Lr(LrField::Gamma));
    }

    #[test]
    fn checks_give_the_bounds_and_the_value() {
        assert_eq!(check_positive("lr", 0.1), Ok(()));
        assert_eq!(
            check_positive("lr", f64::NAN).unwrap_err().message,
            "must be a finite number > 0, got NaN"
        );
        assert_eq!(check_range("x", 1.0, 0.0, 1.0), Ok(()));
        assert_eq!(
            check_range("x", 1.5, 0.0, 1.0).unwrap_err().message,
            "must be in [0, 1], got 1.5"
        );
        assert_eq!(check_decay_rate("beta", 0.0), Ok(()));
        assert!(check_decay_rate("beta", 1.0).is_err());
        assert!(check_fraction("s", -0.1).is_err());
    }
}
