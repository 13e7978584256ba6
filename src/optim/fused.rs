//! The adaptive step in one pass over the CPU backend's memory.
//!
//! Op by op, one step reads and writes each parameter-sized buffer a dozen times (two moments,
//! the denominator, the scaled momentum, the quotient, the new weights), and the general power
//! v^p is one more pass of its own. On the CPU (Burn's flex backend) those passes are the whole
//! cost, so there the step takes the buffers out of their tensors (no copy when the tensor is
//! the buffer's only owner) and computes every element once. Each element goes through the
//! same f32 operations in the same order as the tensor version (`adaexp.rs`), so at p = 0, ½
//! and 1 the results are bit for bit the same; only the number of passes changes.
//!
//! A general p is the exception: v^p is [`pow`] here, not the C library's `powf` (one call per
//! element, most of the step's time at mid-decay). It computes in f64 with basic arithmetic
//! only, so its f32 result is the correctly rounded x^p but for values within ~1e-13 of a
//! rounding boundary, and the same on every machine and C library.

/// How the denominator raises v̂ to p: the exact cases keep their exact kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Power {
    /// p = 0: no division at all.
    Zero,
    /// p = 0.5.
    Sqrt,
    /// p = 1.
    Identity,
    Powf(f32),
}

impl Power {
    pub fn of(p: f64) -> Power {
        if p == 0.0 {
            Power::Zero
        } else if p == 0.5 {
            Power::Sqrt
        } else if p == 1.0 {
            Power::Identity
        } else {
            Power::Powf(p as f32)
        }
    }
}

/// 1/(2k + 1), k = 0‥9: the series of atanh.
const ATANH: [f64; 10] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
];

/// 1/k!, k = 0‥13: the series of exp.
const EXP: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// 1.5·2^52: adding it rounds an f64 of magnitude < 2^51 to an integer, held in the low bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// x^p for f32 x and 0 < p ≤ 1 as 2^(p·log2 x), in f64 with basic operations only (no calls,
/// no FMA), so that the compiler can vectorise a loop of it and every machine gets the same
/// bits. Relative error of the f64 value below 1e-14: the f32 result is the correctly rounded
/// one except within that distance of a rounding boundary. x = 0 gives 0, +∞ gives +∞, NaN and
/// negative x give NaN (as `powf` for such p).
#[inline(always)]
pub fn pow(x: f32, p: f64) -> f32 {
    let wide = f64::from(x);
    // log2 x = e + log2 m, m in [√½, √2): ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| < 0.172.
    let bits = wide.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let high = mantissa > std::f64::consts::SQRT_2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let e = f64::from(biased - 1023 + i32::from(high));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    // 2·(s + s³/3 + … + s¹⁹/19): the next term is below 2e-16 of the sum.
    let mut series = ATANH[9];
    for c in ATANH[..9].iter().rev() {
        series = series * s2 + c;
    }
    let log2_x = e + 2.0 * s * series * std::f64::consts::LOG2_E;
    // 2^y = 2^n · e^(f·ln 2), n the nearest integer, |f| ≤ ½: Taylor to degree 13.
    let y = p * log2_x;
    let shifted = y + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (y - n) * std::f64::consts::LN_2;
    let mut taylor = EXP[13];
    for c in EXP[..13].iter().rev() {
        taylor = taylor * r + c;
    }
    let exponent = (shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i64 + 1023) as u64;
    let value = taylor * f64::from_bits(exponent << 52);
    let value = value as f32;
    // The cases the formula does not cover, as selects (no branch in the loop).
    let value = if x == 0.0 { 0.0 } else { value };
    let value = if x == f32::INFINITY || x.is_nan() {
        x
    } else {
        value
    };
    if x < 0.0 { f32::NAN } else { value }
}

/// The scalars of one step, each rounded to f32 as the tensor version rounds it.
#[derive(Clone, Copy, Debug)]
pub struct Coefficients {
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// Coupled L2: g ← g + λθ.
    pub l2: Option<f32>,
    /// The first step: the moments start from zero.
    pub first: bool,
    pub power: Power,
    pub rule: Rule,
    /// Decoupled decay: θ ← θ·(1 − ηλ) − step, with ηλ for the tracked update.
    pub decoupled: Option<(f32, f32)>,
}

/// How the step is formed from the moments.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// m·(η·b2^p/b1) / (v^p + ε·b2^p), both corrections folded into scalars; at p = 0,
    /// m·η/(b1·(1 + ε)).
    Folded { momentum: f32, eps: f32 },
    /// AMSGrad: v̂ = v/b2, v̂_max ← max(v̂_max, v̂), (m·η/b1) / (v̂_max^p + ε); at p = 0 the
    /// quotient is by 1 + ε.
    AmsGrad {
        bias2: f32,
        momentum: f32,
        eps: f32,
        one_plus_eps: f32,
        /// No running max yet: it starts at this step's v̂.
        fresh: bool,
    },
}

/// The buffers of one parameter tensor.
pub struct Buffers<'a> {
    pub theta: &'a mut [f32],
    pub grad: &'a [f32],
    pub moment_1: &'a mut [f32],
    pub moment_2: &'a mut [f32],
    /// AMSGrad's running max of v̂ (ignored otherwise).
    pub max_v_hat: &'a mut [f32],
    /// When the update size is tracked: each element's Δθ, to be summed as the tensor version
    /// sums it.
    pub update: Option<&'a mut [f32]>,
}

/// Elements per piece handed to a thread: large enough that splitting costs nothing.
#[cfg(not(target_arch = "wasm32"))]
const PIECE: usize = 1 << 13;

/// One step over every element of `buffers`; in pieces across the cores where there are
/// cores (each element's arithmetic is the same either way).
pub fn step(c: &Coefficients, buffers: Buffers<'_>) {
    #[cfg(not(target_arch = "wasm32"))]
    if buffers.theta.len() > PIECE {
        return step_in_pieces(c, buffers);
    }
    step_serial(c, buffers);
}

#[cfg(not(target_arch = "wasm32"))]
fn step_in_pieces(c: &Coefficients, b: Buffers<'_>) {
    use rayon::prelude::*;
    let amsgrad = matches!(c.rule, Rule::AmsGrad { .. });
    let n = b.theta.len();
    let pieces = n.div_ceil(PIECE);
    // Empty stand-ins keep one shape of the zip where a buffer is not used.
    fn split(buffer: &mut [f32], used: bool, pieces: usize) -> Vec<&mut [f32]> {
        if used {
            buffer.chunks_mut(PIECE).collect()
        } else {
            (0..pieces).map(|_| <&mut [f32]>::default()).collect()
        }
    }
    let max_v_hat = split(b.max_v_hat, amsgrad, pieces);
    let tracked = b.update.is_some();
    let update = split(b.update.unwrap_or_default(), tracked, pieces);
    b.theta
        .par_chunks_mut(PIECE)
        .zip(b.grad.par_chunks(PIECE))
        .zip(b.moment_1.par_chunks_mut(PIECE))
        .zip(b.moment_2.par_chunks_mut(PIECE))
        .zip(max_v_hat)
        .zip(update)
        .for_each(
            |(((((theta, grad), moment_1), moment_2), max_v_hat), update)| {
                step_serial(
                    c,
                    Buffers {
                        theta,
                        grad,
                        moment_1,
                        moment_2,
                        max_v_hat,
                        update: tracked.then_some(update),
                    },
                );
            },
        );
}

/// Elements per block of the general power's three passes: they stay in the first-level cache.
const BLOCK: usize = 512;

/// The moments (and AMSGrad's max) of element `i`; returns what the denominator raises to p.
#[inline(always)]
fn moments(c: &Coefficients, b: &mut Buffers<'_>, i: usize) -> f32 {
    let theta = b.theta[i];
    let mut g = b.grad[i];
    if let Some(lambda) = c.l2 {
        g += theta * lambda;
    }
    let (m, v) = if c.first {
        (g * c.one_minus_beta1, (g * g) * c.one_minus_beta2)
    } else {
        (
            b.moment_1[i] * c.beta1 + g * c.one_minus_beta1,
            b.moment_2[i] * c.beta2 + (g * g) * c.one_minus_beta2,
        )
    };
    b.moment_1[i] = m;
    b.moment_2[i] = v;
    match c.rule {
        Rule::Folded { .. } => v,
        Rule::AmsGrad { bias2, fresh, .. } => {
            let v_hat = v / bias2;
            let max = if fresh {
                v_hat
            } else {
                let previous = b.max_v_hat[i];
                // As `max_pair`: the new value only where the old one is lower.
                if previous < v_hat { v_hat } else { previous }
            };
            b.max_v_hat[i] = max;
            max
        }
    }
}

/// The update of element `i`, with `powered` the denominator's power (unused at p = 0).
#[inline(always)]
fn update(c: &Coefficients, b: &mut Buffers<'_>, i: usize, powered: f32) {
    let theta = b.theta[i];
    let m = b.moment_1[i];
    let step = match (c.rule, c.power) {
        (Rule::Folded { momentum, .. }, Power::Zero) => m * momentum,
        (Rule::Folded { momentum, eps }, _) => (m * momentum) / (powered + eps),
        (
            Rule::AmsGrad {
                momentum,
                one_plus_eps,
                ..
            },
            Power::Zero,
        ) => (m * momentum) / one_plus_eps,
        (Rule::AmsGrad { momentum, eps, .. }, _) => (m * momentum) / (powered + eps),
    };
    let (next, delta) = match c.decoupled {
        Some((keep, lr_lambda)) => (theta * keep - step, step + theta * lr_lambda),
        None => (theta - step, step),
    };
    b.theta[i] = next;
    if let Some(update) = b.update.as_deref_mut() {
        update[i] = delta;
    }
}

/// At p = 0, ½ and 1 one loop; at a general p, block by block, the moments first, then the
/// power in a loop of its own that the compiler vectorises, then the update.
fn step_serial(c: &Coefficients, mut b: Buffers<'_>) {
    let n = b.theta.len();
    if !matches!(c.power, Power::Powf(_)) {
        for i in 0..n {
            let raised = moments(c, &mut b, i);
            let powered = if c.power == Power::Sqrt {
                raised.sqrt()
            } else {
                raised
            };
            update(c, &mut b, i, powered);
        }
        return;
    }
    let mut raised = [0f32; BLOCK];
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let raised = &mut raised[..end - start];
        for (i, r) in (start..end).zip(raised.iter_mut()) {
            *r = moments(c, &mut b, i);
        }
        powers(raised, c.power);
        for (i, &powered) in (start..end).zip(raised.iter()) {
            update(c, &mut b, i, powered);
        }
    }
}

/// Raises every value to `power` in place (p = 0 leaves them: they are not used).
fn powers(values: &mut [f32], power: Power) {
    match power {
        Power::Zero | Power::Identity => {}
        Power::Sqrt => values.iter_mut().for_each(|x| *x = x.sqrt()),
        Power::Powf(p) => {
            let p = f64::from(p);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor has AVX-512F, checked just above.
                return unsafe { powers_avx512(values, p) };
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2, checked just above.
                return unsafe { powers_avx2(values, p) };
            }
            powers_portable(values, p);
        }
    }
}

fn powers_portable(values: &mut [f32], p: f64) {
    values.iter_mut().for_each(|x| *x = pow(*x, p));
}

/// The same loop compiled for AVX2, four f64 lanes wide. Without FMA the arithmetic, and so
/// every result, is the portable loop's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn powers_avx2(values: &mut [f32], p: f64) {
    values.iter_mut().for_each(|x| *x = pow(*x, p));
}

/// Eight lanes (AVX-512F): at mid-decay the power is most of the step, and this halves it.
/// Still no FMA (Rust never contracts a multiply and an add), so the same bits again.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn powers_avx512(values: &mut [f32], p: f64) {
    values.iter_mut().for_each(|x| *x = pow(*x, p));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coefficients(first: bool, power: Power) -> Coefficients {
        Coefficients {
            beta1: 0.9,
            one_minus_beta1: 0.1,
            beta2: 0.99,
            one_minus_beta2: 0.01,
            l2: None,
            first,
            power,
            rule: Rule::Folded {
                momentum: 0.5,
                eps: 0.0,
            },
            decoupled: None,
        }
    }

    /// ULPs between two finite f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn pow_of_exact_cases_by_hand() {
        assert_eq!(pow(0.0625, 0.25), 0.5);
        assert_eq!(pow(4.0, 0.25), std::f32::consts::SQRT_2);
        assert_eq!(pow(1.0, 0.37), 1.0);
        assert_eq!(pow(1024.0, 0.1), 2.0);
        // 2^-149, the smallest subnormal, to the ½ is 2^-74.5.
        assert_eq!(pow(f32::from_bits(1), 0.5), (2f64.powf(-74.5)) as f32);
        assert_eq!(pow(0.0, 0.3), 0.0);
        assert_eq!(pow(f32::INFINITY, 0.3), f32::INFINITY);
        assert!(pow(f32::NAN, 0.3).is_nan());
        assert!(pow(-1.0, 0.3).is_nan());
    }

    /// Against the C library's f64 pow, rounded to f32, over every 1021st f32 from the
    /// smallest subnormal to the largest finite value, at the exponents a decay passes
    /// through: never more than one ULP off, and off at all only where the exact value lies
    /// next to a rounding boundary (a few in a million).
    #[test]
    fn the_vector_loops_give_the_portable_loops_bits() {
        let values: Vec<f32> = (1..f32::MAX.to_bits())
            .step_by(4093)
            .map(f32::from_bits)
            .chain([0.0, f32::INFINITY, f32::MIN_POSITIVE, 1.0])
            .collect();
        for p in [0.01, 0.125, 1.0 / 3.0, 0.49, 0.99] {
            let mut portable = values.clone();
            powers_portable(&mut portable, p);
            #[cfg(target_arch = "x86_64")]
            for (feature, available) in [
                ("avx2", std::arch::is_x86_feature_detected!("avx2")),
                ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ] {
                if !available {
                    continue;
                }
                let mut vector = values.clone();
                // SAFETY: only run where the processor has the feature.
                unsafe {
                    match feature {
                        "avx2" => powers_avx2(&mut vector, p),
                        _ => powers_avx512(&mut vector, p),
                    }
                }
                let same = portable
                    .iter()
                    .zip(&vector)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{feature} at p = {p}");
            }
        }
    }

    #[test]
    fn pow_is_the_correctly_rounded_power_but_at_rounding_boundaries() {
        let (mut checked, mut off) = (0u64, 0u64);
        for p in [
            0.01f32,
            0.125,
            0.2,
            0.25,
            1.0 / 3.0,
            0.37,
            0.45,
            0.49,
            0.75,
            0.99,
        ] {
            let p = f64::from(p);
            for bits in (1..f32::MAX.to_bits()).step_by(1021) {
                let x = f32::from_bits(bits);
                let exact = f64::from(x).powf(p) as f32;
                let ours = pow(x, p);
                assert!(
                    ulps(ours, exact) <= 1,
                    "{x:e}^{p}: {ours:e} against {exact:e}"
                );
                checked += 1;
                off += u64::from(ours != exact);
            }
        }
        assert!(off * 100_000 < checked, "{off} of {checked} off by one ULP");
    }

    /// The dispatched loop (AVX2 where there is one) gives the portable loop's bits.
    #[test]
    fn the_vector_loop_is_the_scalar_one() {
        let values: Vec<f32> = (1..f32::MAX.to_bits())
            .step_by(7919)
            .map(f32::from_bits)
            .chain([0.0, f32::INFINITY, f32::NAN, -2.0])
            .collect();
        for p in [0.1f32, 0.37, 0.49] {
            let mut dispatched = values.clone();
            powers(&mut dispatched, Power::Powf(p));
            let mut portable = values.clone();
            powers_portable(&mut portable, f64::from(p));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&dispatched) == bits(&portable), "p = {p}");
        }
    }

    #[test]
    fn one_element_by_hand() {
        // g = 2, first step: m = 0.2, v = 0.04; p = 0.5: step = 0.2·0.5 / 0.2 = 0.5.
        let (mut theta, mut m, mut v) = ([1.0f32], [0.0f32], [0.0f32]);
        let mut update = [0.0f32];
        step(
            &coefficients(true, Power::Sqrt),
            Buffers {
                theta: &mut theta,
                grad: &[2.0],
                moment_1: &mut m,
                moment_2: &mut v,
                max_v_hat: &mut [],
                update: Some(&mut update),
            },
        );
        assert_eq!((m[0], v[0]), (0.2, 0.04));
        assert!((theta[0] - 0.5).abs() < 1e-6 && (update[0] - 0.5).abs() < 1e-6);
        // Second step, g = 0: m = 0.18, v = 0.0396; p = 0: step = 0.18·0.5 = 0.09.
        step(
            &coefficients(false, Power::Zero),
            Buffers {
                theta: &mut theta,
                grad: &[0.0],
                moment_1: &mut m,
                moment_2: &mut v,
                max_v_hat: &mut [],
                update: None,
            },
        );
        assert!((m[0] - 0.18).abs() < 1e-7 && (v[0] - 0.0396).abs() < 1e-7);
        assert!((theta[0] - 0.41).abs() < 1e-6, "{}", theta[0]);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn pieces_across_threads_compute_what_one_pass_does() {
        let n = 3 * PIECE + 17;
        let grad: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let run = |pieces: bool| {
            let mut theta: Vec<f32> = (0..n).map(|i| (i % 13) as f32 / 13.0).collect();
            let (mut m, mut v) = (vec![0.01f32; n], vec![0.02f32; n]);
            let mut max_v_hat = vec![0.015f32; n];
            let mut update = vec![0.0f32; n];
            let c = Coefficients {
                l2: Some(1e-3),
                rule: Rule::AmsGrad {
                    bias2: 0.3,
                    momentum: 1e-2,
                    eps: 1e-8,
                    one_plus_eps: 1.0,
                    fresh: false,
                },
                decoupled: Some((0.999, 1e-3)),
                ..coefficients(false, Power::Powf(0.3))
            };
            let buffers = Buffers {
                theta: &mut theta,
                grad: &grad,
                moment_1: &mut m,
                moment_2: &mut v,
                max_v_hat: &mut max_v_hat,
                update: Some(&mut update),
            };
            if pieces {
                step_in_pieces(&c, buffers);
            } else {
                step_serial(&c, buffers);
            }
            (theta, m, v, max_v_hat, update)
        };
        assert!(run(true) == run(false));
    }
}
