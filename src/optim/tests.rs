//! The optimizer family against hand-derived values and against Burn's own Adam.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Tensor};

use super::spec::{AdaExpSpec, AdamSpec, PadamSpec, SgdmSpec};
use super::{Length, OptimizerSpec, Schedule, WeightDecay};

#[derive(Module, Debug)]
struct Vector {
    value: Param<Tensor<1>>,
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// Applies `grads` (one slice per step) to θ₀ with a constant lr; returns θ after each step.
fn run_steps(
    mut optimizer: ModuleOptimizer,
    theta0: &[f32],
    grads: &[&[f32]],
    lr: f64,
) -> Vec<Vec<f64>> {
    let device = device();
    let mut vector = Vector {
        value: Param::from_tensor(Tensor::from_floats(theta0, &device)),
    };
    let mut trajectory = Vec::new();
    for g in grads {
        let mut params = GradientsParams::new();
        params.register(vector.value.id, Tensor::<1>::from_floats(*g, &device));
        vector = optimizer.step(lr, vector, params);
        let values = vector.value.val().into_data().try_to_vec::<f32>().unwrap();
        trajectory.push(values.into_iter().map(f64::from).collect());
    }
    trajectory
}

fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= tolerance, "{actual:?} != {expected:?}");
    }
}

fn adaexp(p: Schedule) -> OptimizerSpec {
    OptimizerSpec::AdaExp(AdaExpSpec::new(p))
}

#[test]
fn first_adam_step_moves_by_lr_times_sign() {
    let theta0 = [1.0, -2.0, 0.5, 3.0];
    let g = [0.3, -4.0, 1e-3, -25.0];
    let lr = 0.01;
    let after = run_steps(
        OptimizerSpec::Adam(AdamSpec::default()).build(1).optimizer,
        &theta0,
        &[&g],
        lr,
    );
    // m̂ = g and v̂ = g² at t = 1, so the step is lr·g/(|g| + ε) ≈ lr·sign(g).
    let expected: Vec<f64> = theta0
        .iter()
        .zip(g)
        .map(|(t, g)| f64::from(*t) - lr * f64::from(g).signum())
        .collect();
    assert_close(&after[0], &expected, 1e-6);
}

#[test]
fn first_step_at_p_zero_is_lr_times_gradient() {
    let theta0 = [1.0, -2.0, 0.5];
    let g = [0.3, -4.0, 2.5];
    let lr = 0.1;
    let after = run_steps(
        adaexp(Schedule::constant(0.0)).build(1).optimizer,
        &theta0,
        &[&g],
        lr,
    );
    let expected: Vec<f64> = theta0
        .iter()
        .zip(g)
        .map(|(t, g)| f64::from(*t) - lr * f64::from(g))
        .collect();
    assert_close(&after[0], &expected, 1e-6);
}

#[test]
fn two_steps_at_quarter_exponent_match_hand_derivation() {
    let lr = 0.1;
    let after = run_steps(
        adaexp(Schedule::constant(0.25)).build(1).optimizer,
        &[0.0],
        &[&[2.0], &[-1.0]],
        lr,
    );
    // t = 1: m̂ = 2, v̂ = 4, v̂^¼ = √2.
    let theta1 = -lr * 2.0 / (2f64.sqrt() + 1e-8);
    // t = 2: m = 0.9·0.2 + 0.1·(−1) = 0.08, v = 0.999·0.004 + 0.001·1 = 0.004996.
    let m_hat = 0.08 / (1.0 - 0.81);
    let v_hat: f64 = 0.004996 / (1.0 - 0.998001);
    let theta2 = theta1 - lr * m_hat / (v_hat.powf(0.25) + 1e-8);
    assert_close(&after[0], &[theta1], 1e-6);
    assert_close(&after[1], &[theta2], 1e-6);
}

#[test]
fn exponent_follows_the_schedule_step_by_step() {
    // Linear 0.5 → 0 over 2 steps: p = 0.5 at t = 1, 0.25 at t = 2, 0 from t = 3.
    let schedule = Schedule::Linear {
        start: 0.5,
        end: 0.0,
        length: Length::Steps(2),
    };
    let g: f64 = 3.0;
    let gf = [g as f32];
    let after = run_steps(
        adaexp(schedule).build(1).optimizer,
        &[0.0],
        &[&gf, &gf, &gf],
        1.0,
    );
    // A constant gradient keeps m̂ = g and v̂ = g², so each step is g/(g^(2p) + ε).
    let step = |p: f64| g / (g.powf(2.0 * p) + 1e-8);
    let expected = [
        -step(0.5),
        -step(0.5) - step(0.25),
        -step(0.5) - step(0.25) - step(0.0),
    ];
    for (t, e) in expected.iter().enumerate() {
        assert_close(&after[t], &[*e], 1e-5);
    }
}

#[test]
fn live_schedule_edit_applies_from_the_next_step() {
    let built = adaexp(Schedule::constant(0.5)).build(1);
    let handle = built.exponent.clone().unwrap();
    let device = device();
    let mut vector = Vector {
        value: Param::from_tensor(Tensor::from_floats([0.0], &device)),
    };
    let mut optimizer = built.optimizer;
    let mut step = |vector: Vector| {
        let mut grads = GradientsParams::new();
        grads.register(vector.value.id, Tensor::<1>::from_floats([4.0], &device));
        optimizer.step(1.0, vector, grads)
    };
    vector = step(vector);
    handle.set(Schedule::constant(0.0));
    vector = step(vector);
    let theta = f64::from(vector.value.val().into_scalar::<f32>());
    // Step 1 at p = 0.5: 4/(4 + ε) ≈ 1. Step 2 at p = 0: m̂ = 4, so 4/(1 + ε) ≈ 4.
    assert!((theta - (-5.0)).abs() < 1e-5, "{theta}");
}

#[test]
fn sgdm_buffer_recursion_over_three_steps() {
    let lr = 0.1;
    let grads: [&[f32]; 3] = [&[1.0], &[2.0], &[3.0]];
    let plain = run_steps(
        OptimizerSpec::Sgdm(SgdmSpec::default()).build(1).optimizer,
        &[0.0],
        &grads,
        lr,
    );
    // buf = 1, 0.9·1 + 2 = 2.9, 0.9·2.9 + 3 = 5.61.
    assert_close(&plain[0], &[-0.1], 1e-6);
    assert_close(&plain[1], &[-0.1 - 0.29], 1e-6);
    assert_close(&plain[2], &[-0.1 - 0.29 - 0.561], 1e-6);

    let nesterov = run_steps(
        OptimizerSpec::Sgdm(SgdmSpec {
            nesterov: true,
            ..SgdmSpec::default()
        })
        .build(1)
        .optimizer,
        &[0.0],
        &grads,
        lr,
    );
    // Direction g + μ·buf: 1 + 0.9, 2 + 2.61, 3 + 5.049.
    assert_close(&nesterov[2], &[-lr * (1.9 + 4.61 + 8.049)], 1e-6);
}

#[test]
fn amsgrad_keeps_the_running_max_of_v_hat() {
    let lr = 0.1;
    let spec = |amsgrad| {
        OptimizerSpec::Adam(AdamSpec {
            amsgrad,
            ..AdamSpec::default()
        })
        .build(1)
        .optimizer
    };
    let grads: [&[f32]; 2] = [&[10.0], &[0.1]];
    let with_max = run_steps(spec(true), &[0.0], &grads, lr);
    let without = run_steps(spec(false), &[0.0], &grads, lr);
    // t = 1: v̂ = 100. t = 2: v = 0.999·0.1 + 0.001·0.01, v̂ = v/0.001999 ≈ 49.98 < 100.
    let m_hat = (0.9 * 1.0 + 0.1 * 0.1) / (1.0 - 0.81);
    let v_hat: f64 = (0.999 * 0.1 + 0.001 * 0.01) / (1.0 - 0.998001);
    let first = -lr * 10.0 / (10.0 + 1e-8);
    assert_close(
        &with_max[1],
        &[first - lr * m_hat / (100f64.sqrt() + 1e-8)],
        1e-6,
    );
    assert_close(
        &without[1],
        &[first - lr * m_hat / (v_hat.sqrt() + 1e-8)],
        1e-6,
    );
}

#[test]
fn padam_is_constant_exponent_with_amsgrad() {
    let lr = 0.1;
    let grads: [&[f32]; 2] = [&[10.0], &[0.1]];
    let padam = run_steps(
        OptimizerSpec::Padam(PadamSpec::default())
            .build(1)
            .optimizer,
        &[0.0],
        &grads,
        lr,
    );
    // As above but with v̂_max^(1/8): 100^(1/8) = 10^(1/4).
    let m_hat = (0.9 * 1.0 + 0.1 * 0.1) / (1.0 - 0.81);
    let first = -lr * 10.0 / (10f64.powf(0.25) + 1e-8);
    assert_close(&padam[0], &[first], 1e-6);
    assert_close(
        &padam[1],
        &[first - lr * m_hat / (10f64.powf(0.25) + 1e-8)],
        1e-6,
    );
}

#[test]
fn weight_decay_coupled_and_decoupled() {
    let lr = 0.1;
    let sgd = |weight_decay| {
        OptimizerSpec::Sgdm(SgdmSpec {
            momentum: 0.0,
            nesterov: false,
            weight_decay: Some(weight_decay),
        })
        .build(1)
        .optimizer
    };
    // L2: θ ← θ − η(g + λθ) = 2 − 0.1·(1 + 0.5·2) = 1.8.
    let l2 = run_steps(sgd(WeightDecay::L2(0.5)), &[2.0], &[&[1.0]], lr);
    assert_close(&l2[0], &[1.8], 1e-6);
    // Decoupled: θ ← θ(1 − ηλ) − ηg = 2·0.95 − 0.1 = 1.8 as well for SGD ...
    let decoupled = run_steps(sgd(WeightDecay::Decoupled(0.5)), &[2.0], &[&[1.0]], lr);
    assert_close(&decoupled[0], &[1.8], 1e-6);
    // ... but differs for Adam, where the L2 term passes through the normalisation.
    let adam = |weight_decay| {
        OptimizerSpec::Adam(AdamSpec {
            weight_decay: Some(weight_decay),
            ..AdamSpec::default()
        })
        .build(1)
        .optimizer
    };
    let adam_l2 = run_steps(adam(WeightDecay::L2(0.5)), &[2.0], &[&[1.0]], lr);
    assert_close(&adam_l2[0], &[2.0 - lr], 1e-6); // sign(1 + 0.5·2) = 1
    let adam_dec = run_steps(adam(WeightDecay::Decoupled(0.5)), &[2.0], &[&[1.0]], lr);
    assert_close(&adam_dec[0], &[2.0 * 0.95 - lr], 1e-6);
}

#[derive(Module, Debug)]
struct TinyNet {
    first: Linear,
    second: Linear,
}

impl TinyNet {
    fn loss(&self, input: Tensor<2>) -> Tensor<1> {
        let hidden = self.first.forward(input).tanh();
        self.second.forward(hidden).square().mean()
    }

    /// Every weight and bias, in one list.
    fn flat(&self) -> Vec<f32> {
        [
            self.first.weight.val().flatten::<1>(0, 1),
            self.second.weight.val().flatten::<1>(0, 1),
            self.first.bias.as_ref().unwrap().val(),
            self.second.bias.as_ref().unwrap().val(),
        ]
        .into_iter()
        .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
        .collect()
    }
}

#[test]
fn adaexp_at_half_equals_burn_adam_over_twenty_steps() {
    let device = device();
    let net = TinyNet {
        first: LinearConfig::new(5, 8).init(&device),
        second: LinearConfig::new(8, 3).init(&device),
    };
    let mut ours_net = net.clone();
    let mut burn_net = net;
    let mut ours = adaexp(Schedule::constant(0.5)).build(1).optimizer;
    let mut burn_adam = AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init();
    let lr = 0.01;
    for _ in 0..20 {
        let input = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &device);
        let grads = GradientsParams::from_grads(ours_net.loss(input.clone()).backward(), &ours_net);
        ours_net = ours.step(lr, ours_net, grads);
        let grads = GradientsParams::from_grads(burn_net.loss(input).backward(), &burn_net);
        burn_net = burn_adam.step(lr, burn_net, grads);
    }
    let (a, b) = (ours_net.flat(), burn_net.flat());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "max |Δθ| = {worst}");
}

#[test]
fn state_survives_a_byte_round_trip() {
    let spec = adaexp(Schedule::Linear {
        start: 0.5,
        end: 0.0,
        length: Length::Steps(4),
    });
    let device = device();
    let start = Vector {
        value: Param::from_tensor(Tensor::from_floats([1.0, -1.0], &device)),
    };
    let grad = |v: &Vector, g: [f32; 2]| {
        let mut grads = GradientsParams::new();
        grads.register(v.value.id, Tensor::<1>::from_floats(g, &device));
        grads
    };
    let mut original = spec.build(1).optimizer;
    let mut v = start;
    for g in [[1.0, 2.0], [0.5, -1.0]] {
        let grads = grad(&v, g);
        v = original.step(0.1, v, grads);
    }
    let bytes = original.into_bytes().unwrap();
    let mut restored = spec.build(1).optimizer.from_bytes(bytes).unwrap();
    let expected = original.step(0.1, v.clone(), grad(&v, [-0.3, 0.2]));
    let actual = restored.step(0.1, v.clone(), grad(&v, [-0.3, 0.2]));
    assert_eq!(
        expected
            .value
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        actual.value.val().into_data().try_to_vec::<f32>().unwrap()
    );
}

/// The update size each step records: √(Σ(Δθ)²/n), read from the tracking handle.
fn update_rms(spec: OptimizerSpec, theta0: &[f32], grads: &[&[f32]], lr: f64) -> Vec<f64> {
    let built = spec.build(1);
    built.update_size.track();
    let device = device();
    let mut vector = Vector {
        value: Param::from_tensor(Tensor::from_floats(theta0, &device)),
    };
    let mut optimizer = built.optimizer;
    grads
        .iter()
        .map(|g| {
            let mut params = GradientsParams::new();
            params.register(vector.value.id, Tensor::<1>::from_floats(*g, &device));
            vector = optimizer.step(lr, vector.clone(), params);
            let (squares, n) = built.update_size.take().unwrap();
            let sum = squares.into_data().try_to_vec::<f32>().unwrap()[0];
            (f64::from(sum) / n as f64).sqrt()
        })
        .collect()
}

#[test]
fn update_rms_matches_hand_computed_steps() {
    // SGDM: Δθ = lr·buf with buf = g₁, then buf = 0.9·g₁ + g₂ = (0.39, 0.08):
    // lr·√((0.1² + 0.2²)/2), then lr·√((0.39² + 0.08²)/2).
    let lr = 0.5;
    let sgdm = update_rms(
        OptimizerSpec::Sgdm(SgdmSpec::default()),
        &[1.0, 2.0],
        &[&[0.1, 0.2], &[0.3, -0.1]],
        lr,
    );
    assert!(
        (sgdm[0] - lr * ((0.01f64 + 0.04) / 2.0).sqrt()).abs() < 1e-7,
        "{sgdm:?}"
    );
    let buf = [0.9 * 0.1 + 0.3, 0.9 * 0.2 - 0.1];
    let second = lr * ((buf[0] * buf[0] + buf[1] * buf[1]) / 2.0f64).sqrt();
    assert!((sgdm[1] - second).abs() < 1e-7, "{sgdm:?} vs {second}");

    // Adam's first step moves every coordinate by lr·|g|/(|g| + ε) ≈ lr, whatever g is.
    let g = [0.3f32, -4.0, 1e-3, -25.0];
    let adam = update_rms(
        OptimizerSpec::Adam(AdamSpec::default()),
        &[1.0, -2.0, 0.5, 3.0],
        &[&g],
        0.01,
    );
    let expected = (g
        .iter()
        .map(|&g| {
            let g = f64::from(g).abs();
            (0.01 * g / (g + 1e-8)).powi(2)
        })
        .sum::<f64>()
        / 4.0)
        .sqrt();
    assert!((adam[0] - expected).abs() < 1e-9, "{adam:?} vs {expected}");
    assert!((adam[0] - 0.01).abs() < 1e-7);

    // Decoupled weight decay moves θ too: Δθ = lr·g + lr·λ·θ for SGDM's first step.
    let decayed = update_rms(
        OptimizerSpec::Sgdm(SgdmSpec {
            weight_decay: Some(WeightDecay::Decoupled(0.1)),
            ..SgdmSpec::default()
        }),
        &[2.0],
        &[&[1.0]],
        0.1,
    );
    assert!(
        (decayed[0] - (0.1 * 1.0 + 0.1 * 0.1 * 2.0)).abs() < 1e-7,
        "{decayed:?}"
    );
}

#[test]
fn update_size_is_not_summed_unless_tracked() {
    let built = OptimizerSpec::Adam(AdamSpec::default()).build(1);
    let mut optimizer = built.optimizer;
    let device = device();
    let vector = Vector {
        value: Param::from_tensor(Tensor::from_floats([1.0, 2.0], &device)),
    };
    let mut params = GradientsParams::new();
    params.register(
        vector.value.id,
        Tensor::<1>::from_floats([0.1, 0.2], &device),
    );
    let _ = optimizer.step(0.01, vector, params);
    assert!(built.update_size.take().is_none());
}

/// The one-pass CPU step (`fused.rs`) against the tensor version over ten steps of a tiny
/// network: every rule (p = 0, ½, 1, a decaying p, AMSGrad), both weight decays, and the
/// tracked update size. Bit for bit at p = 0, ½ and 1; at other p within what one ULP of v^p
/// can make of ten steps (its power is not the C library's `powf`).
#[test]
fn the_one_pass_cpu_step_is_bit_for_bit_the_tensor_version() {
    use super::{AdaptiveExponent, SharedSchedule, UpdateSize};
    let decaying = Schedule::Linear {
        start: 0.5,
        end: 0.0,
        length: Length::Steps(8),
    };
    // (name, spec, whether every p it takes is 0, ½ or 1)
    let mut cases: Vec<(&str, OptimizerSpec, bool)> = vec![
        ("adam", OptimizerSpec::Adam(AdamSpec::default()), true),
        ("p = 0", adaexp(Schedule::constant(0.0)), true),
        ("p = 1", adaexp(Schedule::constant(1.0)), true),
        ("p decaying", adaexp(decaying.clone()), false),
        (
            "padam (amsgrad)",
            OptimizerSpec::Padam(PadamSpec::default()),
            false,
        ),
    ];
    let mut amsgrad_at_zero = AdaExpSpec::new(Schedule::constant(0.0));
    amsgrad_at_zero.amsgrad = true;
    cases.push((
        "amsgrad, p = 0",
        OptimizerSpec::AdaExp(amsgrad_at_zero),
        true,
    ));
    for decay in [WeightDecay::L2(1e-2), WeightDecay::Decoupled(1e-2)] {
        let mut spec = AdaExpSpec::new(Schedule::constant(0.5));
        spec.weight_decay = Some(decay);
        cases.push((
            "decayed weights, p = ½",
            OptimizerSpec::AdaExp(spec.clone()),
            true,
        ));
        spec.p = decaying.clone();
        cases.push((
            "decayed weights, p decaying",
            OptimizerSpec::AdaExp(spec),
            false,
        ));
    }
    let device = device();
    let start = TinyNet {
        first: LinearConfig::new(5, 8).init(&device),
        second: LinearConfig::new(8, 3).init(&device),
    };
    let inputs: Vec<Tensor<2>> = (0..10)
        .map(|_| Tensor::random([4, 5], Distribution::Normal(0.0, 1.0), &device))
        .collect();
    for (name, spec, exact_powers) in cases {
        let params = spec.adaptive().unwrap();
        let run = |one_pass: bool| {
            let update_size = UpdateSize::default();
            update_size.track();
            let schedule = SharedSchedule::new(params.exponent.clone(), 1);
            let mut optimizer =
                AdaptiveExponent::new(params.clone(), schedule, update_size.clone());
            if !one_pass {
                optimizer = optimizer.tensor_ops_only();
            }
            let mut optimizer: ModuleOptimizer = optimizer.into();
            let mut net = start.clone();
            let mut sizes = Vec::new();
            for input in inputs.iter().cloned() {
                let grads = GradientsParams::from_grads(net.loss(input).backward(), &net);
                net = optimizer.step(0.01, net, grads);
                let (squares, _) = update_size.take().unwrap();
                sizes.push(squares.into_data().try_to_vec::<f32>().unwrap()[0]);
            }
            (net.flat(), sizes)
        };
        let (one_pass, tensor_ops) = (run(true), run(false));
        if exact_powers {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&one_pass.0) == bits(&tensor_ops.0),
                "{name}: the weights differ"
            );
            assert!(
                bits(&one_pass.1) == bits(&tensor_ops.1),
                "{name}: the update sizes differ"
            );
        } else {
            let worst = one_pass
                .0
                .iter()
                .zip(&tensor_ops.0)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3))
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-6, "{name}: weights {worst:e} apart");
        }
    }
}
