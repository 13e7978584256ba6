//! One Burn optimizer for the whole adaptive family: Adam with exponent p(t) on v̂.
//!
//! For each parameter tensor at step t with gradient g (plus λθ under coupled L2):
//! m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; m̂ = m/(1−β1^t); v̂ = v/(1−β2^t);
//! optional AMSGrad v̂ ← max(v̂_max, v̂); θ ← θ − η·m̂/(v̂^p(t) + ε) (− η·λ·θ when decoupled).
//! Adam is p ≡ 0.5, Padam a constant p, AdaExp a schedule.

use std::sync::{Arc, RwLock};

use burn::optim::Optimizer;
use burn::tensor::{Device, Tensor};

use crate::RecordState;
use crate::optim::schedule::Schedule;
use crate::optim::spec::{AdaptiveParams, WeightDecay};
use crate::optim::{UpdateSize, apply_update, coupled_decay};

/// A schedule shared between the optimizer and whoever may edit it while training runs
/// (the page's sliders): edits take effect from the next step, and no state is rebuilt.
#[derive(Clone, Debug)]
pub struct SharedSchedule {
    schedule: Arc<RwLock<Schedule>>,
    steps_per_epoch: u64,
}

impl SharedSchedule {
    pub fn new(schedule: Schedule, steps_per_epoch: u64) -> Self {
        SharedSchedule {
            schedule: Arc::new(RwLock::new(schedule)),
            steps_per_epoch: steps_per_epoch.max(1),
        }
    }

    pub fn value(&self, step: u64) -> f64 {
        self.read().value(step, self.steps_per_epoch)
    }

    pub fn get(&self) -> Schedule {
        self.read().clone()
    }

    pub fn set(&self, schedule: Schedule) {
        // A poisoned lock only means a reader panicked; the schedule itself is plain data.
        *self
            .schedule
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = schedule;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Schedule> {
        self.schedule
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The adaptive optimizer; build it with [`AdaptiveExponent::new`] and convert it into a
/// `ModuleOptimizer` with `.into()`.
#[derive(Clone, Debug)]
pub struct AdaptiveExponent {
    beta1: f64,
    beta2: f64,
    eps: f64,
    amsgrad: bool,
    weight_decay: Option<WeightDecay>,
    exponent: SharedSchedule,
    update_size: UpdateSize,
}

impl AdaptiveExponent {
    pub fn new(params: AdaptiveParams, exponent: SharedSchedule, update_size: UpdateSize) -> Self {
        AdaptiveExponent {
            beta1: params.beta1,
            beta2: params.beta2,
            eps: params.eps,
            amsgrad: params.amsgrad,
            weight_decay: params.weight_decay,
            exponent,
            update_size,
        }
    }
}

/// Per-parameter state. The step counter lives here so that p(t) is a function of the state
/// alone: deterministic, and restored on resume.
#[derive(RecordState, Clone)]
pub struct AdaptiveExponentState<const D: usize> {
    pub time: usize,
    pub moment_1: Tensor<D>,
    pub moment_2: Tensor<D>,
    /// Running max of the bias-corrected v̂ (AMSGrad only).
    pub max_v_hat: Option<Tensor<D>>,
}

/// x^p, routing the exact cases to cheaper and bit-exact kernels; `None` means the constant 1
/// (x^0 = 1 even at x = 0).
fn pow_exponent<const D: usize>(x: Tensor<D>, p: f64) -> Option<Tensor<D>> {
    if p == 0.0 {
        None
    } else if p == 0.5 {
        Some(x.sqrt())
    } else if p == 1.0 {
        Some(x)
    } else {
        Some(x.powf_scalar(p))
    }
}

impl Optimizer for AdaptiveExponent {
    type State<const D: usize> = AdaptiveExponentState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = coupled_decay(self.weight_decay, grad, &tensor);
        let (time, moment_1, moment_2, max_v_hat) = match state {
            Some(s) => (
                s.time + 1,
                s.moment_1.mul_scalar(self.beta1) + grad.clone().mul_scalar(1.0 - self.beta1),
                s.moment_2.mul_scalar(self.beta2) + grad.square().mul_scalar(1.0 - self.beta2),
                s.max_v_hat,
            ),
            None => (
                1,
                grad.clone().mul_scalar(1.0 - self.beta1),
                grad.square().mul_scalar(1.0 - self.beta2),
                None,
            ),
        };
        let p = self.exponent.value(time as u64);
        let bias1 = 1.0 - self.beta1.powi(time as i32);
        let bias2 = 1.0 - self.beta2.powi(time as i32);

        // The step η·m̂/(v̂^p + ε), with every scalar factor folded into one multiplication.
        let (step, max_v_hat) = if self.amsgrad {
            let v_hat = moment_2.clone().div_scalar(bias2);
            let max_v_hat = match max_v_hat {
                Some(previous) => previous.max_pair(v_hat),
                None => v_hat,
            };
            let scaled_m = moment_1.clone().mul_scalar(lr / bias1);
            let step = match pow_exponent(max_v_hat.clone(), p) {
                Some(denominator) => scaled_m.div(denominator.add_scalar(self.eps)),
                None => scaled_m.div_scalar(1.0 + self.eps),
            };
            (step, Some(max_v_hat))
        } else {
            // v̂^p = v^p / bias2^p, so both corrections fold into scalars (as Burn's Adam does):
            // m̂/(v̂^p + ε) = m·(bias2^p/bias1) / (v^p + ε·bias2^p).
            let scale = bias2.powf(p);
            let step = match pow_exponent(moment_2.clone(), p) {
                Some(denominator) => moment_1
                    .clone()
                    .mul_scalar(lr * scale / bias1)
                    .div(denominator.add_scalar(self.eps * scale)),
                None => moment_1.clone().mul_scalar(lr / (bias1 * (1.0 + self.eps))),
            };
            (step, None)
        };

        let tensor = apply_update(self.weight_decay, tensor, step, lr, &self.update_size);
        let state = AdaptiveExponentState {
            time,
            moment_1,
            moment_2,
            max_v_hat,
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.moment_1 = state.moment_1.to_device(device);
        state.moment_2 = state.moment_2.to_device(device);
        state.max_v_hat = state.max_v_hat.map(|t| t.to_device(device));
        state
    }
}
