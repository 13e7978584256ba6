//! `adaexp bench layers`: where a ResNet-20 training step spends its time, piece by piece —
//! each convolution's forward pass, its input and weight gradients (as Burn's autodiff computes
//! them), batch norm + ReLU forward and backward — next to the whole step, so that a gap to
//! another framework can be traced to the kernel that holds it.

use std::time::{Duration, Instant};

use burn::nn::BatchNormConfig;
use burn::tensor::module::{conv_transpose2d, conv2d, conv2d_weight_backward};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Distribution, Tensor};

use super::median;
use crate::model::{ConvLayer, Model, ModelSpec, batch_norm};

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
    forward: Duration,
    /// The input gradient as Burn's autodiff takes it: a transposed convolution.
    input_grad: Duration,
    /// The same gradient as a plain convolution of the output gradient with the kernel
    /// transposed and flipped (stride 1 only): what a workaround in our code could use.
    input_grad_as_conv: Option<Duration>,
    weight_grad: Duration,
    /// Batch norm (batch statistics) and ReLU on the output as the networks run them, forward.
    norm_forward: Duration,
    /// Its backward pass (through autodiff, with the sum that seeds it).
    norm_backward: Duration,
}

fn time_conv(layer: &ConvLayer, batch: usize, repeats: usize, device: &Device) -> ConvTimes {
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
    let x = Tensor::<4>::random([batch, channels_in, side_in, side_in], normal, device);
    let w = Tensor::<4>::random([channels_out, channels_in, kernel, kernel], normal, device);
    let grad = Tensor::<4>::random([batch, channels_out, side_out, side_out], normal, device);
    let options = || ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
    // The rows the transposed convolution must add at the end to give back `side_in`.
    let padding_out = side_in + 2 * padding - ((side_out - 1) * stride + kernel);
    let transpose =
        ConvTransposeOptions::new([stride; 2], [padding; 2], [padding_out; 2], [1, 1], 1);

    let forward = median_time(repeats, || conv2d(x.clone(), w.clone(), None, options()));
    let input_grad = median_time(repeats, || {
        conv_transpose2d(grad.clone(), w.clone(), None, transpose.clone())
    });
    let input_grad_as_conv = (stride == 1).then(|| {
        median_time(repeats, || {
            let flipped = w.clone().swap_dims(0, 1).flip([2, 3]);
            conv2d(grad.clone(), flipped, None, options())
        })
    });
    let weight_grad = median_time(repeats, || {
        conv2d_weight_backward(x.clone(), w.clone(), grad.clone(), options())
    });

    let autodiff = device.clone().autodiff();
    let activation =
        Tensor::<4>::random([batch, channels_out, side_out, side_out], normal, &autodiff);
    // The model's own batch norm + ReLU (fused on the CPU backend).
    let layer = BatchNormConfig::new(channels_out).init(&autodiff);
    let norm = || {
        let input = activation.clone().require_grad();
        (input.clone(), batch_norm(&layer, input, true))
    };
    let norm_forward = median_time(repeats, || norm().1);
    let mut backward_times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let (input, out) = norm();
        let start = Instant::now();
        let grads = out.sum().backward();
        let input_grad = input
            .grad(&grads)
            .expect("the input takes part in the loss");
        let _ = input_grad.flatten::<1>(0, 3).slice(0..1).into_data();
        backward_times.push(start.elapsed());
    }
    ConvTimes {
        forward,
        input_grad,
        input_grad_as_conv,
        weight_grad,
        norm_forward,
        norm_backward: median(backward_times),
    }
}

/// Prints the table: one row per distinct convolution (with how often the network runs it),
/// then the pieces summed over a step, against the step's own time (`step`, measured by the
/// caller on the same device and batch).
pub fn report(
    batch: usize,
    repeats: usize,
    device: &Device,
    device_name: &str,
    step: Duration,
) -> anyhow::Result<()> {
    let Model::Resnet20(network) = ModelSpec::Resnet20.init(3, device, 0) else {
        unreachable!("ResNet-20 builds a ResNet-20")
    };
    // Distinct shapes in the order they first run, with their counts.
    let mut layers: Vec<(ConvLayer, usize)> = Vec::new();
    for layer in network.convolutions(32) {
        match layers.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, count)) => *count += 1,
            None => layers.push((layer, 1)),
        }
    }
    let base = device.clone().inner();
    println!(
        "resnet20 pieces on {device_name}, batch {batch}, median of {repeats}; ms per call \
         (GFLOP/s of the forward convolution)"
    );
    println!(
        "{:<18} {:>3} {:>15} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "conv", "×", "forward", "dx", "dx conv", "dw", "bn+relu", "bn bwd"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut totals = [0.0f64; 5];
    for (layer, count) in &layers {
        let times = time_conv(layer, batch, repeats, &base);
        let gflops =
            2.0 * (layer.macs_per_image() * batch) as f64 / times.forward.as_secs_f64() / 1e9;
        println!(
            "{:<18} {:>3} {:>7.2} ({:>5.1}) {:>9.2} {:>9} {:>9.2} {:>9.2} {:>9.2}",
            format!(
                "{}→{} s{} {}²",
                layer.channels_in, layer.channels_out, layer.stride, layer.side_in
            ),
            count,
            ms(times.forward),
            gflops,
            ms(times.input_grad),
            times
                .input_grad_as_conv
                .map_or("—".to_owned(), |d| format!("{:.2}", ms(d))),
            ms(times.weight_grad),
            ms(times.norm_forward),
            ms(times.norm_backward),
        );
        let n = *count as f64;
        for (total, time) in totals.iter_mut().zip([
            times.forward,
            times.input_grad,
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
