//! SGD with momentum, PyTorch convention: buf ← μ·buf + g (buf = g at t = 1);
//! θ ← θ − η·buf, or θ ← θ − η·(g + μ·buf) with Nesterov.

use burn::optim::Optimizer;
use burn::tensor::{Device, Tensor};

use crate::RecordState;
use crate::optim::spec::{SgdmSpec, WeightDecay};
use crate::optim::{UpdateSize, apply_update, coupled_decay};

#[derive(Clone, Debug)]
pub struct Sgdm {
    momentum: f64,
    nesterov: bool,
    weight_decay: Option<WeightDecay>,
    update_size: UpdateSize,
}

impl Sgdm {
    pub fn new(spec: &SgdmSpec, update_size: UpdateSize) -> Self {
        Sgdm {
            momentum: spec.momentum,
            nesterov: spec.nesterov,
            weight_decay: spec.weight_decay,
            update_size,
        }
    }
}

#[derive(RecordState, Clone)]
pub struct SgdmState<const D: usize> {
    pub momentum_buffer: Tensor<D>,
}

impl Optimizer for Sgdm {
    type State<const D: usize> = SgdmState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = coupled_decay(self.weight_decay, grad, &tensor);
        let buffer = match state {
            Some(s) => s.momentum_buffer.mul_scalar(self.momentum) + grad.clone(),
            None => grad.clone(),
        };
        let direction = if self.nesterov {
            grad + buffer.clone().mul_scalar(self.momentum)
        } else {
            buffer.clone()
        };
        let step = direction.mul_scalar(lr);
        let tensor = apply_update(self.weight_decay, tensor, step, lr, &self.update_size);
        let state = SgdmState {
            momentum_buffer: buffer,
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum_buffer = state.momentum_buffer.to_device(device);
        state
    }
}
