//! 2-D test functions driven through the same optimizer code the trainer uses: a 2-element
//! parameter tensor in a Burn module, gradients from Burn autodiff, a `ModuleOptimizer` step.

#[cfg(feature = "train")]
use burn::module::{Module, Param};
#[cfg(feature = "train")]
use burn::optim::GradientsParams;
#[cfg(feature = "train")]
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::optim::{LrSchedule, OptimizerSpec};
use crate::validation::{Field, SpecError};

/// A 2-D test function f(x, y).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum TestFunction {
    /// f = (1 − x)² + 100·(y − x²)², minimum 0 at (1, 1).
    Rosenbrock,
    /// f = ½·(x² + 100·y²), condition number 100, minimum 0 at (0, 0).
    Quadratic,
}

impl TestFunction {
    /// f on a [2] tensor (x, y), as a [1] tensor that autodiff can differentiate.
    #[cfg(feature = "train")]
    pub fn loss(self, xy: Tensor<1>) -> Tensor<1> {
        let x = xy.clone().slice(0..1);
        let y = xy.slice(1..2);
        match self {
            TestFunction::Rosenbrock => {
                let a = x.clone().neg().add_scalar(1.0);
                let b = y - x.square();
                a.square() + b.square().mul_scalar(100.0)
            }
            TestFunction::Quadratic => (x.square() + y.square().mul_scalar(100.0)).mul_scalar(0.5),
        }
    }

    /// f in closed form, in f64.
    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            TestFunction::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            TestFunction::Quadratic => 0.5 * (x * x + 100.0 * y * y),
        }
    }
}

/// Everything one trace needs; serialised into the JSON output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceSpec {
    pub function: TestFunction,
    pub start: [f64; 2],
    pub steps: u64,
    pub optimizer: OptimizerSpec,
    pub lr: LrSchedule,
}

/// The most steps one trace takes: its rows are kept in memory (a million rows is ~50 MB), and
/// no 2-D picture needs more.
pub const MAX_TRACE_STEPS: u64 = 1_000_000;

impl TraceSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.start.iter().any(|v| !v.is_finite()) {
            return Err(SpecError::new(
                Field::Start,
                format!("must be two finite numbers, got {:?}", self.start),
            ));
        }
        // The trace computes in f32: a start whose function value overflows it gives only NaN.
        let f = self.function.value(self.start[0], self.start[1]);
        if !f.is_finite() || f.abs() > f64::from(f32::MAX) {
            return Err(SpecError::new(
                Field::Start,
                format!(
                    "f({}, {}) = {f:e} exceeds the f32 range (±{:e}) the trace computes in; start closer to the minimum",
                    self.start[0],
                    self.start[1],
                    f32::MAX
                ),
            ));
        }
        if !(1..=MAX_TRACE_STEPS).contains(&self.steps) {
            return Err(SpecError::new(
                Field::Steps,
                format!("must be in 1..={MAX_TRACE_STEPS}, got {}", self.steps),
            ));
        }
        self.lr.validate()?;
        Ok(self.optimizer.validate()?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cannot read the point back from the device: {0}")]
    Read(String),
}

/// One row per step, taken after that step's update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    pub step: u64,
    pub x: f64,
    pub y: f64,
    pub loss: f64,
    /// The exponent used in this step's update; `None` for SGDM.
    pub p: Option<f64>,
}

#[cfg(feature = "train")]
#[derive(Module, Debug)]
struct Point {
    xy: Param<Tensor<1>>,
}

/// Runs the optimizer on the function. `device` must support autodiff; a trace is tiny, so a
/// CPU device is the natural choice even in the browser.
#[cfg(feature = "train")]
pub fn run_trace(spec: &TraceSpec, device: &Device) -> Result<Vec<TraceRow>, TraceError> {
    spec.validate()?;
    let start = [spec.start[0] as f32, spec.start[1] as f32];
    let mut point = Point {
        xy: Param::from_tensor(Tensor::from_floats(start, device)),
    };
    // One "epoch" is one step here: epoch lengths simply count steps.
    let mut optimizer = spec.optimizer.build(1).optimizer;
    let mut rows = Vec::with_capacity(spec.steps as usize);
    for step in 1..=spec.steps {
        let loss = spec.function.loss(point.xy.val());
        let grads = GradientsParams::from_grads(loss.backward(), &point);
        point = optimizer.step(spec.lr.value(step, 1), point, grads);
        let xy = point
            .xy
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TraceError::Read(format!("{e:?}")))?;
        let (x, y) = (f64::from(xy[0]), f64::from(xy[1]));
        rows.push(TraceRow {
            step,
            x,
            y,
            loss: spec.function.value(x, y),
            p: spec.optimizer.exponent_at(step, 1),
        });
    }
    Ok(rows)
}
