//! One Burn optimizer for the whole adaptive family: Adam with exponent p(t) on v̂.
//!
//! For each parameter tensor at step t with gradient g (plus λθ under coupled L2):
//! m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; m̂ = m/(1−β1^t); v̂ = v/(1−β2^t);
//! optional AMSGrad v̂ ← max(v̂_max, v̂); θ ← θ − η·m̂/(v̂^p(t) + ε) (− η·λ·θ when decoupled).
//! Adam is p ≡ 0.5, Padam a constant p, AdaExp a schedule.

use std::sync::{Arc, RwLock};

use burn::optim::Optimizer;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::fused::{self, Buffers, Coefficients, Power, Rule};
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
    /// Whether the CPU backend takes the one-pass step (`fused.rs`); off only to test it against
    /// the tensor version.
    one_pass_on_cpu: bool,
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
            one_pass_on_cpu: true,
        }
    }

    /// The tensor version everywhere, the CPU included.
    #[cfg(test)]
    pub(crate) fn tensor_ops_only(mut self) -> Self {
        self.one_pass_on_cpu = false;
        self
    }

    /// The step's scalars, each rounded to f32 where the tensor version rounds it.
    /// `fresh_max`: AMSGrad has no running max yet.
    fn coefficients(&self, lr: f64, time: usize, p: f64, fresh_max: bool) -> Coefficients {
        let bias1 = 1.0 - self.beta1.powi(time as i32);
        let bias2 = 1.0 - self.beta2.powi(time as i32);
        let power = Power::of(p);
        let rule = if self.amsgrad {
            Rule::AmsGrad {
                bias2: bias2 as f32,
                momentum: (lr / bias1) as f32,
                eps: self.eps as f32,
                one_plus_eps: (1.0 + self.eps) as f32,
                fresh: fresh_max,
            }
        } else {
            let scale = bias2.powf(p);
            match power {
                Power::Zero => Rule::Folded {
                    momentum: (lr / (bias1 * (1.0 + self.eps))) as f32,
                    eps: 0.0,
                },
                _ => Rule::Folded {
                    momentum: (lr * scale / bias1) as f32,
                    eps: (self.eps * scale) as f32,
                },
            }
        };
        Coefficients {
            beta1: self.beta1 as f32,
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            l2: match self.weight_decay {
                Some(WeightDecay::L2(lambda)) if lambda > 0.0 => Some(lambda as f32),
                _ => None,
            },
            first: time == 1,
            power,
            rule,
            decoupled: match self.weight_decay {
                Some(WeightDecay::Decoupled(lambda)) if lambda > 0.0 => {
                    Some(((1.0 - lr * lambda) as f32, (lr * lambda) as f32))
                }
                _ => None,
            },
        }
    }

    /// Whether this step can take the one-pass version: the CPU backend, every tensor f32.
    fn one_pass_applies<const D: usize>(
        &self,
        tensor: &Tensor<D>,
        grad: &Tensor<D>,
        state: &Option<AdaptiveExponentState<D>>,
    ) -> bool {
        let f32 = |t: &Tensor<D>| t.dtype() == DType::F32;
        self.one_pass_on_cpu
            && tensor.device() == Device::flex()
            && f32(tensor)
            && f32(grad)
            && state.as_ref().is_none_or(|s| {
                f32(&s.moment_1) && f32(&s.moment_2) && s.max_v_hat.as_ref().is_none_or(f32)
            })
    }

    /// The whole step in one pass over the buffers (`one_pass_applies` said it can).
    fn step_in_one_pass<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdaptiveExponentState<D>>,
    ) -> (Tensor<D>, AdaptiveExponentState<D>) {
        let time = state.as_ref().map_or(1, |s| s.time + 1);
        let fresh_max = state.as_ref().is_none_or(|s| s.max_v_hat.is_none());
        let c = self.coefficients(lr, time, self.exponent.value(time as u64), fresh_max);
        let (device, shape) = (tensor.device(), tensor.shape());
        let n = shape.num_elements();
        let zeros = |used: bool| {
            if used {
                TensorData::new(vec![0.0f32; n], shape.clone())
            } else {
                TensorData::new(Vec::<f32>::new(), [0])
            }
        };
        // A tensor's data moves out without a copy when the tensor is its only owner.
        let mut theta = tensor.into_data();
        let grad = grad.into_data();
        let (mut moment_1, mut moment_2, mut max_v_hat) = match state {
            Some(s) => (
                s.moment_1.into_data(),
                s.moment_2.into_data(),
                s.max_v_hat
                    .map_or_else(|| zeros(self.amsgrad), Tensor::into_data),
            ),
            None => (zeros(true), zeros(true), zeros(self.amsgrad)),
        };
        let mut update = self.update_size.tracking().then(|| zeros(true));
        let f32s = "f32, as one_pass_applies checked";
        fused::step(
            &c,
            Buffers {
                theta: theta.as_mut_slice().expect(f32s),
                grad: grad.as_slice().expect(f32s),
                moment_1: moment_1.as_mut_slice().expect(f32s),
                moment_2: moment_2.as_mut_slice().expect(f32s),
                max_v_hat: max_v_hat.as_mut_slice().expect(f32s),
                update: update.as_mut().map(|u| u.as_mut_slice().expect(f32s)),
            },
        );
        let back = |data: TensorData| Tensor::<D>::from_data(data, &device);
        if let Some(update) = update {
            // Summed by the backend, as the tensor version sums it.
            self.update_size.add(&back(update));
        }
        let state = AdaptiveExponentState {
            time,
            moment_1: back(moment_1),
            moment_2: back(moment_2),
            max_v_hat: self.amsgrad.then(|| back(max_v_hat)),
        };
        (back(theta), state)
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
        if self.one_pass_applies(&tensor, &grad, &state) {
            let (tensor, state) = self.step_in_one_pass(lr, tensor, grad, state);
            return (tensor, Some(state));
        }
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
