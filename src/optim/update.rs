//! The Burn side of the optimizer family: applying an update (and measuring it), scaling one to
//! another's size, and building a ready optimizer from its spec.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use super::{AdaptiveExponent, OptimizerSpec, Sgdm, SharedSchedule, WeightDecay};

/// Coupled L2: g ← g + λθ.
pub(super) fn coupled_decay<const D: usize>(
    decay: Option<WeightDecay>,
    grad: Tensor<D>,
    tensor: &Tensor<D>,
) -> Tensor<D> {
    match decay {
        Some(WeightDecay::L2(lambda)) if lambda > 0.0 => grad + tensor.clone().mul_scalar(lambda),
        _ => grad,
    }
}

/// Decoupled: θ ← θ − η·λ·θ, applied beside the gradient update `step` (θ ← θ − step); the
/// whole update, step plus decay, goes into `update_size`.
pub(super) fn apply_update<const D: usize>(
    decay: Option<WeightDecay>,
    tensor: Tensor<D>,
    step: Tensor<D>,
    lr: f64,
    update_size: &UpdateSize,
) -> Tensor<D> {
    let tracking = update_size.tracking();
    match decay {
        Some(WeightDecay::Decoupled(lambda)) if lambda > 0.0 => {
            if tracking {
                update_size.add(&(step.clone() + tensor.clone().mul_scalar(lr * lambda)));
            }
            tensor.mul_scalar(1.0 - lr * lambda) - step
        }
        _ => {
            if tracking {
                update_size.add(&step);
            }
            tensor - step
        }
    }
}

/// Σ(Δθ)² of an optimizer step over every parameter it updates, kept on the device: each
/// parameter's update adds its share, and the trainer reads the total together with the loss,
/// so the update size costs no blocking read of its own. Off until `track` turns it on (the
/// trainer does; traces and `bench optim` pay nothing for it).
#[derive(Clone, Default)]
pub struct UpdateSize(Arc<Mutex<UpdateSum>>);

#[derive(Default)]
struct UpdateSum {
    tracking: bool,
    squares: Option<Tensor<1>>,
    elements: usize,
}

impl std::fmt::Debug for UpdateSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpdateSize")
    }
}

impl UpdateSize {
    fn lock(&self) -> std::sync::MutexGuard<'_, UpdateSum> {
        // A poisoned lock only means a panic elsewhere; the sum is plain data.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sums from the next step on.
    pub fn track(&self) {
        self.lock().tracking = true;
    }

    pub(super) fn tracking(&self) -> bool {
        self.lock().tracking
    }

    /// Adds one parameter's update Δθ (the amount the step moves it by).
    pub(super) fn add<const D: usize>(&self, update: &Tensor<D>) {
        let elements = update.shape().num_elements();
        let squares = update.clone().square().sum();
        let mut sum = self.lock();
        sum.squares = Some(match sum.squares.take() {
            Some(before) => before + squares,
            None => squares,
        });
        sum.elements += elements;
    }

    /// Σ(Δθ)² as a [1] tensor and the number of elements it covers, since the last call;
    /// `None` when no parameter was updated.
    pub fn take(&self) -> Option<(Tensor<1>, usize)> {
        let mut sum = self.lock();
        let elements = std::mem::take(&mut sum.elements);
        sum.squares.take().map(|squares| (squares, elements))
    }
}

/// θ_before + scale·(θ_after − θ_before) for every trained parameter: an optimizer step taken
/// at lr 1 becomes the step at lr `scale`, because every update here (momentum, the adaptive
/// direction, decoupled decay) is linear in the learning rate and the optimizer state does not
/// depend on it. `scale` is a [1] tensor, so that it can stay on the device. Buffers
/// (batch-norm statistics) are left as `after` has them.
pub fn scale_update<M: Module>(before: &M, after: M, scale: &Tensor<1>) -> M {
    struct Collect(HashMap<ParamId, Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            if value.is_require_grad() {
                self.0.insert(param.id, value.inner().reshape([-1]));
            }
        }
    }
    struct Scale {
        before: HashMap<ParamId, Tensor<1>>,
        scale: Tensor<1>,
    }
    impl ModuleMapper for Scale {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(before) = self.before.remove(&param.id) else {
                return param;
            };
            let scale = self.scale.clone().reshape([1; D]);
            param.map(|after| {
                let after_inner = after.clone().inner();
                let before = before.reshape(after_inner.shape());
                let scaled = before.clone() + (after_inner - before) * scale;
                let mut lifted = Tensor::from_inner(scaled);
                if let Some(strategy) = after.gradient_checkpointing_strategy() {
                    lifted = lifted.with_gradient_checkpointing_strategy(strategy);
                }
                lifted.require_grad()
            })
        }
    }
    let mut collect = Collect(HashMap::new());
    before.visit(&mut collect);
    after.map(&mut Scale {
        before: collect.0,
        scale: scale.clone(),
    })
}

/// A ready optimizer plus, for the adaptive family, the live handle on its exponent schedule,
/// and the handle on each step's update size.
pub struct BuiltOptimizer {
    pub optimizer: ModuleOptimizer,
    pub exponent: Option<SharedSchedule>,
    pub update_size: UpdateSize,
}

impl OptimizerSpec {
    /// Builds the optimizer; `steps_per_epoch` converts schedule lengths given in epochs.
    pub fn build(&self, steps_per_epoch: u64) -> BuiltOptimizer {
        let update_size = UpdateSize::default();
        match (self, self.adaptive()) {
            (OptimizerSpec::Sgdm(spec), _) => BuiltOptimizer {
                optimizer: Sgdm::new(spec, update_size.clone()).into(),
                exponent: None,
                update_size,
            },
            (_, Some(params)) => {
                let exponent = SharedSchedule::new(params.exponent.clone(), steps_per_epoch);
                BuiltOptimizer {
                    optimizer: AdaptiveExponent::new(params, exponent.clone(), update_size.clone())
                        .into(),
                    exponent: Some(exponent),
                    update_size,
                }
            }
            (_, None) => unreachable!("every non-SGDM spec is adaptive"),
        }
    }
}
