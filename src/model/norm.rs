//! Batch norm with the batch's statistics, optionally followed by ReLU, as one operation on the
//! CPU backend.
//!
//! Burn's own `batch_norm_train` (which the CPU backend does not override) swaps batch and
//! channels to reduce over them, so each layer copies its activation four times, and ReLU is
//! another pass each way. Here each channel's values are read where they lie (NCHW: one run of
//! H·W values per image): the forward pass reads the input once for the statistics and once
//! for the output, the backward pass once for its two sums and once for the gradient.
//! `bench layers` measures it; other backends keep Burn's operations.

use std::mem::MaybeUninit;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, Flex, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::activation::relu;
use burn::tensor::{Shape, Tensor, TensorData};

use super::flex::{f32s, from_vec, map_indices, on_flex, record, values};

/// The normalised output and the batch's statistics per channel, [2, C]: the means, then the
/// biased variances (as Burn's batch norm returns them for the running statistics).
#[derive(ExtensionType)]
pub struct NormOutput<B: Backend> {
    pub output: FloatTensor<B>,
    pub statistics: FloatTensor<B>,
}

#[backend_extension(Flex, Autodiff)]
pub trait NormReluBackend: Backend {
    /// Batch norm of `x` [B, C, H, W] with its own statistics, scaled by `gamma` and shifted by
    /// `beta` [C], then ReLU when `relu`.
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> NormOutput<Self>;
}

/// Per-channel statistics as the forward pass found them.
#[derive(Clone, Debug)]
struct Statistics {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

/// A buffer of `len` values made plane by plane (H·W values of one image's channel) by
/// `per_plane(plane index, plane)`, which writes every value of its plane; on the cores where
/// there are several, and without zeroing the buffer first (a pass of its own).
fn fill_planes(
    len: usize,
    plane: usize,
    per_plane: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut buffer = Vec::<f32>::with_capacity(len);
    let spare = &mut buffer.spare_capacity_mut()[..len];
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        spare
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(i, chunk)| per_plane(i, chunk));
    }
    #[cfg(target_arch = "wasm32")]
    spare
        .chunks_mut(plane)
        .enumerate()
        .for_each(|(i, chunk)| per_plane(i, chunk));
    // SAFETY: `per_plane` wrote each of the `len` values (its callers zip every value of the
    // plane with an input value of the same plane, which has as many).
    unsafe { buffer.set_len(len) };
    buffer
}

/// Σ f(values) in eight f32 lanes (which the compiler vectorises), the lanes then added in
/// f64: a plane has at most a few thousand values, and the planes are summed in f64.
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|&v| f64::from(f(v))).sum();
    lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + rest
}

/// [B, C, H·W] of a [B, C, …] shape.
fn planes(shape: &Shape) -> (usize, usize, usize) {
    let dims = shape.dims::<4>();
    (dims[0], dims[1], dims[2] * dims[3])
}

fn forward(
    x: &FloatTensor<Flex>,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> (FloatTensor<Flex>, Statistics, Vec<f32>) {
    let shape = x.shape();
    let (batch, channels, plane) = planes(&shape);
    let (contiguous, range) = values(x);
    let x = &contiguous.storage::<f32>()[range];
    let n = (batch * plane) as f64;
    // Per plane in f32 lanes, across planes in f64; the variance around the mean (two passes)
    // rather than from the mean square, which cancels when the mean is large.
    let moments: Vec<(f64, f64)> = map_indices(channels, |c| {
        let runs = (0..batch).map(|b| &x[(b * channels + c) * plane..][..plane]);
        let mean = runs.clone().map(|run| lane_sum(run, |v| v)).sum::<f64>() / n;
        let centre = mean as f32;
        let variance = runs
            .map(|run| lane_sum(run, |v| (v - centre) * (v - centre)))
            .sum::<f64>()
            / n;
        (mean, variance)
    });
    let statistics = Statistics {
        mean: moments.iter().map(|&(m, _)| m as f32).collect(),
        inv_std: moments
            .iter()
            .map(|&(_, v)| (1.0 / (v + epsilon).sqrt()) as f32)
            .collect(),
    };
    let out = fill_planes(x.len(), plane, |i, chunk| {
        let c = i % channels;
        let scale = statistics.inv_std[c] * gamma[c];
        let (mean, shift) = (statistics.mean[c], beta[c]);
        let input = &x[i * plane..][..plane];
        for (o, &v) in chunk.iter_mut().zip(input) {
            let y = (v - mean) * scale + shift;
            o.write(if relu { y.max(0.0) } else { y });
        }
    });
    let mut stats = statistics.mean.clone();
    stats.extend(moments.iter().map(|&(_, v)| v as f32));
    (from_vec(out, shape), statistics, stats)
}

impl NormReluBackend for Flex {
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> NormOutput<Self> {
        let channels = gamma.shape()[0];
        let (output, _, stats) = forward(&x, &f32s(&gamma), &f32s(&beta), epsilon, relu);
        NormOutput {
            output,
            statistics: from_vec(stats, [2, channels]),
        }
    }
}

#[derive(Debug)]
struct NormBackward;

#[derive(Clone, Debug)]
struct NormState {
    x: FloatTensor<Flex>,
    output: FloatTensor<Flex>,
    gamma: Vec<f32>,
    statistics: Statistics,
    relu: bool,
}

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let state = ops.state;
        let shape = state.x.shape();
        let (batch, channels, plane) = planes(&shape);
        let (x, x_range) = values(&state.x);
        let x = &x.storage::<f32>()[x_range];
        let (y, y_range) = values(&state.output);
        let y = &y.storage::<f32>()[y_range];
        let (dy, dy_range) = values(&grad);
        let dy = &dy.storage::<f32>()[dy_range];
        let Statistics { mean, inv_std } = &state.statistics;
        let relu = state.relu;
        // The gradient at the normalised value: ReLU passes it where the output is positive.
        let passed = |dy: f32, y: f32| if relu && y <= 0.0 { 0.0 } else { dy };
        // Σ g and Σ g·x̂ per channel: the gradients of β and γ.
        let sums: Vec<(f64, f64)> = map_indices(channels, |c| {
            let (centre, scale) = (mean[c], inv_std[c]);
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for b in 0..batch {
                let start = (b * channels + c) * plane;
                let (mut lanes_g, mut lanes_gx) = ([0.0f32; 8], [0.0f32; 8]);
                let (xs, ys, dys) = (
                    &x[start..start + plane],
                    &y[start..start + plane],
                    &dy[start..start + plane],
                );
                let whole = plane - plane % 8;
                for ((xc, yc), dc) in xs[..whole]
                    .chunks_exact(8)
                    .zip(ys[..whole].chunks_exact(8))
                    .zip(dys[..whole].chunks_exact(8))
                {
                    for k in 0..8 {
                        let g = passed(dc[k], yc[k]);
                        lanes_g[k] += g;
                        lanes_gx[k] += g * ((xc[k] - centre) * scale);
                    }
                }
                for k in whole..plane {
                    let g = passed(dys[k], ys[k]);
                    sum_g += f64::from(g);
                    sum_gx += f64::from(g * ((xs[k] - centre) * scale));
                }
                sum_g += lanes_g.iter().map(|&l| f64::from(l)).sum::<f64>();
                sum_gx += lanes_gx.iter().map(|&l| f64::from(l)).sum::<f64>();
            }
            (sum_g, sum_gx)
        });
        let n = (batch * plane) as f64;
        if let Some(node) = node_x {
            let dx = fill_planes(x.len(), plane, |p, chunk| {
                let c = p % channels;
                let (sum_g, sum_gx) = sums[c];
                let (mean_g, mean_gx) = ((sum_g / n) as f32, (sum_gx / n) as f32);
                let (centre, inv) = (mean[c], inv_std[c]);
                let scale = state.gamma[c] * inv;
                let start = p * plane;
                let inputs = x[start..start + plane]
                    .iter()
                    .zip(&y[start..start + plane])
                    .zip(&dy[start..start + plane]);
                for (d, ((&xi, &yi), &dyi)) in chunk.iter_mut().zip(inputs) {
                    let normalised = (xi - centre) * inv;
                    d.write(scale * (passed(dyi, yi) - mean_g - normalised * mean_gx));
                }
            });
            grads.register::<Flex>(node.id, from_vec(dx, shape.clone()));
        }
        if let Some(node) = node_gamma {
            let d_gamma = sums.iter().map(|&(_, gx)| gx as f32).collect();
            grads.register::<Flex>(node.id, from_vec(d_gamma, [channels]));
        }
        if let Some(node) = node_beta {
            let d_beta = sums.iter().map(|&(g, _)| g as f32).collect();
            grads.register::<Flex>(node.id, from_vec(d_beta, [channels]));
        }
    }
}

impl<C: CheckpointStrategy> NormReluBackend for Autodiff<Flex, C> {
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> NormOutput<Self> {
        let channels = gamma.primitive().shape()[0];
        let gamma_values = f32s(gamma.primitive());
        let (output, statistics, stats) = forward(
            x.primitive(),
            &gamma_values,
            &f32s(beta.primitive()),
            epsilon,
            relu,
        );
        // Statistics leave the graph: the running averages take them detached.
        let statistics_tensor =
            Self::float_from_data(TensorData::new(stats, [2, channels]), &Default::default());
        let state = |output: &FloatTensor<Flex>| NormState {
            x: x.primitive().clone(),
            output: output.clone(),
            gamma: gamma_values,
            statistics,
            relu,
        };
        let output = record::<C, _>(NormBackward, [&x, &gamma, &beta], output, state);
        NormOutput {
            output,
            statistics: statistics_tensor,
        }
    }
}

/// `norm`'s training-mode forward pass (batch statistics, running statistics updated as Burn's
/// `BatchNorm` updates them), then ReLU when `relu`: fused on the CPU backend, Burn's own
/// operations elsewhere and outside training.
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>, relu_after: bool) -> Tensor<4> {
    let device = x.device();
    let training = device.is_autodiff() && norm.training.is_enabled();
    if !(training && on_flex(&device)) {
        let out = norm.forward(x);
        return if relu_after { relu(out) } else { out };
    }
    let result = <Dispatch as NormReluBackend>::norm_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
        relu_after,
    );
    let statistics = Tensor::<2>::from_dispatch(result.statistics).detach();
    let channels = statistics.dims()[1];
    let mean = statistics.clone().narrow(0, 0, 1).reshape([channels]);
    let variance = statistics.narrow(0, 1, 1).reshape([channels]);
    let momentum = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    norm.running_mean.update(
        running_mean
            .mul_scalar(1.0 - momentum)
            .add(mean.mul_scalar(momentum))
            .detach(),
    );
    norm.running_var.update(
        running_var
            .mul_scalar(1.0 - momentum)
            .add(variance.mul_scalar(momentum))
            .detach(),
    );
    Tensor::from_dispatch(result.output)
}

#[cfg(test)]
mod tests {
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    fn close(ours: Tensor<4>, reference: Tensor<4>, tolerance: f32) {
        let (a, b) = (ours.into_data(), reference.into_data());
        let (a, b) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * (1.0 + y.abs()),
                "{i}: {x} vs {y}"
            );
        }
    }

    fn values(tensor: Tensor<1>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    // Burn's own batch norm (its separate reductions and broadcasts, autodiff through them) is
    // the reference: forward, running statistics, and the gradients of x, γ and β, with planes
    // of 5×7 (not a multiple of the 8 lanes) and a ReLU that cuts about half the values.
    #[test]
    fn the_fused_batch_norm_is_burns_batch_norm_and_relu() {
        let device = Device::flex().autodiff();
        for relu_after in [true, false] {
            let x = Tensor::<4>::random([4, 3, 5, 7], Distribution::Normal(0.7, 2.0), &device);
            let upstream =
                Tensor::<4>::random([4, 3, 5, 7], Distribution::Normal(0.0, 1.0), &device);
            let mut ours = BatchNormConfig::new(3).init(&device);
            let reference = BatchNormConfig::new(3).init(&device);
            // γ and β away from 1 and 0, the same in both.
            let gamma = Tensor::<1>::from_floats([0.5, 1.5, -2.0], &device);
            let beta = Tensor::<1>::from_floats([0.1, -0.3, 0.2], &device);
            ours.gamma = ours.gamma.map(|_| gamma.clone().require_grad());
            ours.beta = ours.beta.map(|_| beta.clone().require_grad());
            let mut reference = reference;
            reference.gamma = reference.gamma.map(|_| gamma.clone().require_grad());
            reference.beta = reference.beta.map(|_| beta.clone().require_grad());

            let x_ours = x.clone().require_grad();
            let out_ours = batch_norm(&ours, x_ours.clone(), relu_after);
            let x_reference = x.clone().require_grad();
            let out_reference = {
                let out = reference.forward(x_reference.clone());
                if relu_after { relu(out) } else { out }
            };
            close(out_ours.clone(), out_reference.clone(), 1e-5);
            for (a, b) in [
                (ours.running_mean.value(), reference.running_mean.value()),
                (ours.running_var.value(), reference.running_var.value()),
            ] {
                for (x, y) in values(a).iter().zip(values(b)) {
                    assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
                }
            }

            let grads_ours = (out_ours * upstream.clone()).sum().backward();
            let grads_reference = (out_reference * upstream).sum().backward();
            close(
                x_ours.grad(&grads_ours).unwrap(),
                x_reference.grad(&grads_reference).unwrap(),
                1e-4,
            );
            for (a, b) in [
                (ours.gamma.val(), reference.gamma.val()),
                (ours.beta.val(), reference.beta.val()),
            ] {
                let (a, b) = (
                    values(a.grad(&grads_ours).unwrap()),
                    values(b.grad(&grads_reference).unwrap()),
                );
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
                }
            }
        }
    }

    // By hand, one channel of 1, 2, 3, 4 (mean 2.5, variance 1.25), ε = 0, γ = 1, β = 0:
    // x̂ = ±0.4472, ±1.3416; after ReLU 0, 0, 0.4472, 1.3416. For the loss Σ out the ReLU passes
    // g = 0, 0, 1, 1: Σg = 2, Σg·x̂ = 1.7889, and dx = (g − Σg/4 − x̂·Σg·x̂/4)/√1.25
    // = (0 − 0.5 + 0.6)/1.118, (0 − 0.5 + 0.2)/1.118, (1 − 0.5 − 0.2)/1.118, (1 − 0.5 − 0.6)/1.118.
    #[test]
    fn one_channel_by_hand() {
        let device = Device::flex().autodiff();
        let mut layer = BatchNormConfig::new(1).init(&device);
        layer.epsilon = 0.0;
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device).require_grad();
        let out = batch_norm(&layer, x.clone(), true);
        let expected = [0.0, 0.0, 0.447_213_6, 1.341_640_8];
        let got: Vec<f32> = out.clone().into_data().try_to_vec::<f32>().unwrap();
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{got:?}");
        }
        let grads = out.sum().backward();
        let dx: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let root = 1.25f32.sqrt();
        for (d, e) in dx
            .iter()
            .zip([0.1 / root, -0.3 / root, 0.3 / root, -0.1 / root])
        {
            assert!((d - e).abs() < 1e-6, "{dx:?}");
        }
        let d_gamma: Vec<f32> = layer
            .gamma
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((d_gamma[0] - 1.788_854_4).abs() < 1e-6, "{d_gamma:?}");
    }
}
