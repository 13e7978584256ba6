//! `adaexp bench layers`: where a ResNet-20 training step spends its time, piece by piece —
//! each convolution's forward pass, its input and weight gradients, batch norm + ReLU forward
//! and backward, as the network runs them (our own kernels on the CPU backend, next to Burn's
//! for the convolutions) — against the whole step, so that a gap to another framework can be
//! traced to the kernel that holds it.

use std::time::{Duration, Instant};

use burn::nn::BatchNormConfig;
use burn::nn::conv::Conv2d;
use burn::tensor::module::{conv_transpose2d, conv2d as burn_conv2d, conv2d_weight_backward};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};

use super::median;
use crate::model::{ConvLayer, Model, ModelSpec, batch_norm, conv2d, on_flex};

/// Median wall time of `run` over `repeats` calls after two warm-up calls; `run` returns a
/// tensor whose first element is read back, so that the work has been done on any device.
fn median_time<const D: usize>(repeats: usize, mut run: impl FnMut() -> Tensor<D>) -> Duration {
    let mut times = Vec::with_capacity(repeats);
    for i in 0..repeats + 2 {
        let start = Instant::now();
        let out = run();
        let _ = out.flatten::<1>(0, D - 1).slice(0..1).into_data();
        if i >= 2 {
            times.push(start.elapsed());
        }
    }
    median(times)
}

/// Times of one convolution's pieces, for a batch.
struct ConvTimes {
    /// The network's own convolution (ours on the CPU backend), forward, with autodiff
    /// recording it as in training.
    forward: Duration,
    /// Its backward pass for the input gradient alone, then the weight gradient alone.
    /// `None` for the stem, which reads the images: training never asks for their gradient.
    input_grad: Option<Duration>,
    weight_grad: Duration,
    /// Burn's own kernels for the same three, where ours replace them (the CPU backend): its
    /// convolution, the transposed convolution its autodiff takes for the input gradient, and
    /// its weight gradient.
    burns: Option<[Duration; 3]>,
    /// Batch norm (batch statistics) and ReLU on the output as the networks run them, forward.
    norm_forward: Duration,
    /// Its backward pass.
    norm_backward: Duration,
}

/// Median time of the backward pass of what `forward` records, seeded by a gradient of ones
/// (no sum before it), the forward pass left out.
fn median_backward(repeats: usize, forward: impl Fn() -> (Tensor<4>, Tensor<4>)) -> Duration {
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats + 2 {
        let (input, out) = forward();
        let start = Instant::now();
        let grads = out.backward();
        let grad = input
            .grad(&grads)
            .expect("the input takes part in the loss");
        let _ = grad.flatten::<1>(0, 3).slice(0..1).into_data();
        times.push(start.elapsed());
    }
    median(times.split_off(2))
}

fn time_conv(
    layer: &ConvLayer,
    stem: bool,
    batch: usize,
    repeats: usize,
    device: &Device,
) -> ConvTimes {
    let ConvLayer {
        channels_in,
        channels_out,
        kernel,
        stride,
        side_in,
    } = *layer;
    let side_out = layer.side_out();
    let padding = kernel / 2;
    let normal = Distribution::Normal(0.0, 1.0);
    let base = device;
    let x = Tensor::<4>::random([batch, channels_in, side_in, side_in], normal, base);
    let w = Tensor::<4>::random([channels_out, channels_in, kernel, kernel], normal, base);

    let autodiff = base.clone().autodiff();
    let x_tracked = Tensor::<4>::random(x.dims(), normal, &autodiff);
    let w_tracked = Tensor::<4>::random(w.dims(), normal, &autodiff);
    let conv_with = |weight: Tensor<4>| {
        let conv = layer.init(&autodiff);
        Conv2d {
            weight: conv.weight.map(|_| weight),
            ..conv
        }
    };
    let (fixed, learnt) = (
        conv_with(w_tracked.clone()),
        conv_with(w_tracked.clone().require_grad()),
    );
    let forward = median_time(repeats, || {
        conv2d(&learnt, x_tracked.clone().require_grad())
    });
    let input_grad = (!stem).then(|| {
        median_backward(repeats, || {
            let input = x_tracked.clone().require_grad();
            (input.clone(), conv2d(&fixed, input))
        })
    });
    let weight_grad = median_backward(repeats, || {
        let weight = learnt.weight.val();
        (weight, conv2d(&learnt, x_tracked.clone()))
    });

    let burns = on_flex(device).then(|| {
        let grad = Tensor::<4>::random([batch, channels_out, side_out, side_out], normal, base);
        let options = || ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
        // The rows the transposed convolution must add at the end to give back `side_in`.
        let padding_out = side_in + 2 * padding - ((side_out - 1) * stride + kernel);
        let transpose =
            ConvTransposeOptions::new([stride; 2], [padding; 2], [padding_out; 2], [1, 1], 1);
        [
            median_time(repeats, || {
                burn_conv2d(x.clone(), w.clone(), None, options())
            }),
            median_time(repeats, || {
                conv_transpose2d(grad.clone(), w.clone(), None, transpose.clone())
            }),
            median_time(repeats, || {
                conv2d_weight_backward(x.clone(), w.clone(), grad.clone(), options())
            }),
        ]
    });

    let activation =
        Tensor::<4>::random([batch, channels_out, side_out, side_out], normal, &autodiff);
    // The model's own batch norm + ReLU (fused on the CPU backend).
    let layer = BatchNormConfig::new(channels_out).init(&autodiff);
    let norm = || {
        let input = activation.clone().require_grad();
        (input.clone(), batch_norm(&layer, input, true))
    };
    ConvTimes {
        forward,
        input_grad,
        weight_grad,
        burns,
        norm_forward: median_time(repeats, || norm().1),
        norm_backward: median_backward(repeats, norm),
    }
}

/// Prints the table: one row per distinct convolution (with how often the network runs it),
/// then the pieces summed over a step, against the step's own time (`step`, measured by the
/// caller on the same device and batch).
/// The convolutions of `model` on CIFAR-sized images, in the order they run.
pub fn convolutions(model: ModelSpec, device: &Device) -> anyhow::Result<Vec<ConvLayer>> {
    match model.init(3, device, 0) {
        Model::Resnet20(network) => Ok(network.convolutions(32)),
        Model::Vgg16(network) => Ok(network.convolutions(32)),
        Model::SmallCnn(_) => anyhow::bail!("--model: bench layers takes resnet20 or vgg16"),
    }
}

pub fn report(
    model: ModelSpec,
    convolutions: Vec<ConvLayer>,
    batch: usize,
    repeats: usize,
    device: &Device,
    device_name: &str,
    step: Duration,
) -> anyhow::Result<()> {
    // Distinct shapes in the order they first run, with their counts.
    let mut layers: Vec<(ConvLayer, usize)> = Vec::new();
    for layer in convolutions {
        match layers.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, count)) => *count += 1,
            None => layers.push((layer, 1)),
        }
    }
    let base = device.clone().inner();
    println!(
        "{} pieces on {device_name}, batch {batch}, median of {repeats}; ms per call \
         (GFLOP/s of the forward convolution)",
        model.name()
    );
    println!(
        "{:<18} {:>3} {:>15} {:>9} {:>9} {:>9} {:>9}   Burn's: {:>7} {:>7} {:>7}",
        "conv", "×", "forward", "dx", "dw", "bn+relu", "bn bwd", "forward", "dx", "dw"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut totals = [0.0f64; 5];
    for (i, (layer, count)) in layers.iter().enumerate() {
        let times = time_conv(layer, i == 0, batch, repeats, &base);
        let gflops =
            2.0 * (layer.macs_per_image() * batch) as f64 / times.forward.as_secs_f64() / 1e9;
        let burns = times.burns.map_or_else(
            || format!("{:>7} {:>7} {:>7}", "—", "—", "—"),
            |[f, dx, dw]| format!("{:>7.2} {:>7.2} {:>7.2}", ms(f), ms(dx), ms(dw)),
        );
        println!(
            "{:<18} {:>3} {:>7.2} ({:>5.1}) {:>9} {:>9.2} {:>9.2} {:>9.2}           {burns}",
            format!(
                "{}→{} s{} {}²",
                layer.channels_in, layer.channels_out, layer.stride, layer.side_in
            ),
            count,
            ms(times.forward),
            gflops,
            times
                .input_grad
                .map_or("—".to_owned(), |d| format!("{:.2}", ms(d))),
            ms(times.weight_grad),
            ms(times.norm_forward),
            ms(times.norm_backward),
        );
        let n = *count as f64;
        for (total, time) in totals.iter_mut().zip([
            times.forward,
            times.input_grad.unwrap_or_default(),
            times.weight_grad,
            times.norm_forward,
            times.norm_backward,
        ]) {
            *total += n * ms(time);
        }
    }
    let pieces: f64 = totals.iter().sum();
    let step_ms = ms(step);
    println!("per step, ms (share of the measured step, {step_ms:.1} ms):");
    for (name, total) in [
        "conv forward",
        "conv input gradient",
        "conv weight gradient",
        "bn + relu forward",
        "bn + relu backward",
    ]
    .iter()
    .zip(totals)
    {
        println!(
            "  {name:<22} {total:>8.1} {:>6.1} %",
            100.0 * total / step_ms
        );
    }
    println!(
        "  {:<22} {:>8.1} {:>6.1} %",
        "everything else",
        step_ms - pieces,
        100.0 * (step_ms - pieces) / step_ms
    );
    Ok(())
}
