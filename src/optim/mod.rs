//! The science, backend-generic: schedules, the optimizer family and its spec.

pub mod adaexp;
pub mod schedule;
pub mod sgdm;
pub mod spec;

use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

pub use adaexp::{AdaptiveExponent, SharedSchedule};
pub use schedule::{Length, LrDecay, LrSchedule, Schedule, Shape};
pub use sgdm::Sgdm;
pub use spec::{Family, FlatOptimizer, OptimizerSpec, SpecError, WeightDecay};

/// Coupled L2: g ← g + λθ.
fn coupled_decay<const D: usize>(
    decay: Option<WeightDecay>,
    grad: Tensor<D>,
    tensor: &Tensor<D>,
) -> Tensor<D> {
    match decay {
        Some(WeightDecay::L2(lambda)) if lambda > 0.0 => grad + tensor.clone().mul_scalar(lambda),
        _ => grad,
    }
}

/// Decoupled: θ ← θ − η·λ·θ, applied beside the gradient update.
fn decoupled_decay<const D: usize>(
    decay: Option<WeightDecay>,
    tensor: Tensor<D>,
    lr: f64,
) -> Tensor<D> {
    match decay {
        Some(WeightDecay::Decoupled(lambda)) if lambda > 0.0 => {
            tensor.mul_scalar(1.0 - lr * lambda)
        }
        _ => tensor,
    }
}

/// A ready optimizer plus, for the adaptive family, the live handle on its exponent schedule.
pub struct BuiltOptimizer {
    pub optimizer: ModuleOptimizer,
    pub exponent: Option<SharedSchedule>,
}

impl OptimizerSpec {
    /// Builds the optimizer; `steps_per_epoch` converts schedule lengths given in epochs.
    pub fn build(&self, steps_per_epoch: u64) -> BuiltOptimizer {
        match (self, self.adaptive()) {
            (OptimizerSpec::Sgdm(spec), _) => BuiltOptimizer {
                optimizer: Sgdm::new(spec).into(),
                exponent: None,
            },
            (_, Some(params)) => {
                let exponent = SharedSchedule::new(params.exponent.clone(), steps_per_epoch);
                BuiltOptimizer {
                    optimizer: AdaptiveExponent::new(params, exponent.clone()).into(),
                    exponent: Some(exponent),
                }
            }
            (_, None) => unreachable!("every non-SGDM spec is adaptive"),
        }
    }
}

#[cfg(test)]
mod tests;
