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
//! A general p is the exception: v^p is `log2` then `power_of` here, not the C library's `powf`
//! (one call per element, most of the step's time at mid-decay). They compute in f64 with basic
//! arithmetic only, so that the f32 result is the correctly rounded x^p but for values within
//! 2e-14 of a rounding boundary, and the same on every machine and C library.
//!
//! The loops are straight runs of arithmetic (the choices that do not change which buffers are
//! touched are selects), so the compiler vectorises them, and they are compiled for AVX-512 and
//! AVX2 besides the build's target and picked by the processor: 16 or 8 elements per f32
//! instruction, 8 or 4 in the power's f64 arithmetic, with every element's result unchanged.

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

/// 1/(2k + 1), k = 0‥8: the series of atanh.
const ATANH: [f64; 9] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
];

/// 1/k!, k = 0‥12: the series of exp.
const EXP: [f64; 13] = [
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
];

/// 1.5·2^52: adding it rounds an f64 of magnitude < 2^51 to an integer, held in the low bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// x^p, one element at a time, as the step's loops compute it (`powers`, in two loops).
#[cfg(test)]
fn pow(x: f32, p: f64) -> f32 {
    power_of(x, p * log2(x))
}

/// x^p for f32 x and 0 < p ≤ 1 is 2^(p·log2 x): this `log2`, then `power_of`, in f64 with basic
/// operations only (no calls, no FMA), so that the compiler can vectorise a loop of them and
/// every machine gets the same bits. Relative error of the f64 value below 2e-14: the f32
/// result is the correctly rounded one except within that distance of a rounding boundary.
/// x = 0 gives 0, +∞ gives +∞, NaN and negative x give NaN (as `powf` for such p).
///
/// Here: log2 x for positive, finite x (anything for the others: `power_of` replaces them).
#[inline(always)]
fn log2(x: f32) -> f64 {
    // log2 x = e + log2 m, m in [√½, √2): ln m = 2·atanh(s), s = (m − 1)/(m + 1), |s| < 0.172.
    let bits = f64::from(x).to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let high = mantissa > std::f64::consts::SQRT_2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let e = f64::from(biased - 1023 + i32::from(high));
    let s = (m - 1.0) / (m + 1.0);
    let u = s * s;
    // 2·(s + s³/3 + … + s¹⁷/17), the next term below 1e-15 of the sum (the error that counts
    // is y's rounding below, up to 2e-14): the series in u = s² by Estrin's scheme (pairs of
    // terms, then pairs of pairs), a chain of four multiply-adds where Horner's rule would be
    // a chain of eight. The loop's speed is set by such chains: the processor can only
    // overlap a few elements' chains.
    let u2 = u * u;
    let u4 = u2 * u2;
    let series = (ATANH[0] + ATANH[1] * u + (ATANH[2] + ATANH[3] * u) * u2)
        + (ATANH[4] + ATANH[5] * u + (ATANH[6] + ATANH[7] * u) * u2) * u4
        + ATANH[8] * (u4 * u4);
    e + 2.0 * s * series * std::f64::consts::LOG2_E
}

/// 2^y rounded to f32, where y = p·log2 x, and the cases the formula does not cover by x.
#[inline(always)]
fn power_of(x: f32, y: f64) -> f32 {
    // 2^y = 2^n · e^(f·ln 2), n the nearest integer, |f| ≤ ½: Taylor to degree 12 (the next
    // term below 2e-16), by Estrin's scheme again.
    let shifted = y + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (y - n) * std::f64::consts::LN_2;
    let r2 = r * r;
    let r4 = r2 * r2;
    let taylor = ((EXP[0] + EXP[1] * r + (EXP[2] + EXP[3] * r) * r2)
        + (EXP[4] + EXP[5] * r + (EXP[6] + EXP[7] * r) * r2) * r4)
        + ((EXP[8] + EXP[9] * r + (EXP[10] + EXP[11] * r) * r2) + EXP[12] * r4) * (r4 * r4);
    let exponent = (shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i64 + 1023) as u64;
    let value = taylor * f64::from_bits(exponent << 52);
    let value = value as f32;
    // As selects (no branch in the loop).
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

/// The fewest elements worth a piece of their own on another thread. Handing work to the
/// thread pool from outside it costs tens of µs (the caller waits while pool threads wake), so
/// a piece must hold more than that: measured on two cores over ResNet-20's tensors, splitting
/// at 8,192 elements made the step at p = ½ twice as slow as one thread (0.39 against 0.20 ms),
/// at 65,536 it costs nothing; the general power, about six times dearer per element, gained
/// most with pieces of 16,384 (0.86 against 1.16 ms; 8,192: 0.98).
#[cfg(not(target_arch = "wasm32"))]
fn shortest_piece(power: Power) -> usize {
    match power {
        Power::Powf(_) => 1 << 14,
        _ => 1 << 16,
    }
}

/// How long each piece of a tensor of `n` elements is (the last may be shorter), or `None`
/// where one piece does: pieces of equal length, a multiple of the threads' count where there
/// are more pieces than threads, so that no thread is left with a remainder the others wait
/// for (a 36,864-element tensor in fixed pieces of 16,384 would leave one of two threads
/// 20,480 elements to the other's 16,384).
#[cfg(not(target_arch = "wasm32"))]
fn piece_length(n: usize, power: Power, threads: usize) -> Option<usize> {
    let pieces = n / shortest_piece(power);
    let pieces = if pieces >= threads {
        pieces / threads * threads
    } else {
        pieces
    };
    // Whole vectors per piece: 64 f32 are four AVX-512 registers.
    (threads > 1 && pieces > 1).then(|| n.div_ceil(pieces).next_multiple_of(64))
}

/// `buffer` in pieces of `length`, or `pieces` empty stand-ins where it is not used (so that the
/// zip of every buffer's pieces keeps one shape).
#[cfg(not(target_arch = "wasm32"))]
fn split_unless_unused(
    buffer: &mut [f32],
    used: bool,
    length: usize,
    pieces: usize,
) -> Vec<&mut [f32]> {
    if used {
        buffer.chunks_mut(length).collect()
    } else {
        (0..pieces).map(|_| <&mut [f32]>::default()).collect()
    }
}

/// One step over every element of `buffers`; in pieces across the cores where there are
/// cores (each element's arithmetic is the same either way).
pub fn step(c: &Coefficients, buffers: Buffers<'_>) {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(length) = piece_length(buffers.theta.len(), c.power, rayon::current_num_threads()) {
        return step_in_pieces(c, buffers, length);
    }
    step_serial(c, buffers);
}

#[cfg(not(target_arch = "wasm32"))]
fn step_in_pieces(c: &Coefficients, b: Buffers<'_>, length: usize) {
    use rayon::prelude::*;
    let amsgrad = matches!(c.rule, Rule::AmsGrad { .. });
    let n = b.theta.len();
    let pieces = n.div_ceil(length);
    let split = |buffer, used| split_unless_unused(buffer, used, length, pieces);
    let max_v_hat = split(b.max_v_hat, amsgrad);
    let tracked = b.update.is_some();
    let update = split(b.update.unwrap_or_default(), tracked);
    b.theta
        .par_chunks_mut(length)
        .zip(b.grad.par_chunks(length))
        .zip(b.moment_1.par_chunks_mut(length))
        .zip(b.moment_2.par_chunks_mut(length))
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

/// Elements per block: the moments, the power and the update each take a loop of their own
/// over a block, which stays in the first-level cache.
const BLOCK: usize = 512;

/// One piece of the step on this processor's widest vectors (the loops have no branches, so
/// the compiler vectorises them): AVX-512 or AVX2 where there is one, else the build's target
/// (SSE2, or wasm's SIMD128). Every element goes through the same f32 operations whichever
/// runs (no FMA: Rust never contracts a multiply and an add), so the bits are the same.
fn step_serial(c: &Coefficients, b: Buffers<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has AVX-512F, checked just above.
        return unsafe { step_avx512(c, b) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        return unsafe { step_avx2(c, b) };
    }
    step_portable(c, b);
}

fn step_portable(c: &Coefficients, b: Buffers<'_>) {
    step_blocks(c, b);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn step_avx2(c: &Coefficients, b: Buffers<'_>) {
    step_blocks(c, b);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn step_avx512(c: &Coefficients, b: Buffers<'_>) {
    step_blocks(c, b);
}

/// The two choices that decide which buffers a step touches, made at compile time.
#[inline(always)]
fn step_blocks(c: &Coefficients, b: Buffers<'_>) {
    match (matches!(c.rule, Rule::AmsGrad { .. }), b.update.is_some()) {
        (false, false) => blocks::<false, false>(c, b),
        (false, true) => blocks::<false, true>(c, b),
        (true, false) => blocks::<true, false>(c, b),
        (true, true) => blocks::<true, true>(c, b),
    }
}

/// Block by block: the moments (and AMSGrad's max), the power of what the denominator raises,
/// the update. Every other choice is a select between values both computed, so that each
/// loop is one straight run of arithmetic; the discarded side never reaches a buffer.
#[inline(always)]
fn blocks<const AMSGRAD: bool, const TRACKED: bool>(c: &Coefficients, b: Buffers<'_>) {
    let n = b.theta.len();
    let (weights, grad) = (b.theta, &b.grad[..n]);
    let (moment_1, moment_2) = (&mut b.moment_1[..n], &mut b.moment_2[..n]);
    let max_v_hat: &mut [f32] = if AMSGRAD {
        &mut b.max_v_hat[..n]
    } else {
        &mut []
    };
    let update: &mut [f32] = match b.update {
        Some(update) if TRACKED => &mut update[..n],
        _ => &mut [],
    };
    let (l2, lambda) = (c.l2.is_some(), c.l2.unwrap_or(0.0));
    let (decoupled, (keep, lr_lambda)) = (c.decoupled.is_some(), c.decoupled.unwrap_or((1.0, 0.0)));
    let no_division = c.power == Power::Zero;
    let (momentum, eps, one_plus_eps, bias2, fresh) = match c.rule {
        Rule::Folded { momentum, eps } => (momentum, eps, 1.0, 1.0, false),
        Rule::AmsGrad {
            bias2,
            momentum,
            eps,
            one_plus_eps,
            fresh,
        } => (momentum, eps, one_plus_eps, bias2, fresh),
    };
    let mut raised = [0f32; BLOCK];
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let raised = &mut raised[..end - start];
        let max_v_hat = if AMSGRAD {
            &mut max_v_hat[start..end]
        } else {
            &mut []
        };
        for (i, r) in raised.iter_mut().enumerate() {
            let at = start + i;
            let theta = weights[at];
            let g = grad[at];
            let g = if l2 { g + theta * lambda } else { g };
            let new_1 = g * c.one_minus_beta1;
            let new_2 = (g * g) * c.one_minus_beta2;
            let m = if c.first {
                new_1
            } else {
                moment_1[at] * c.beta1 + new_1
            };
            let v = if c.first {
                new_2
            } else {
                moment_2[at] * c.beta2 + new_2
            };
            moment_1[at] = m;
            moment_2[at] = v;
            *r = if AMSGRAD {
                let v_hat = v / bias2;
                let previous = max_v_hat[i];
                // As `max_pair`: the new value only where the old one is lower.
                let max = if fresh || previous < v_hat {
                    v_hat
                } else {
                    previous
                };
                max_v_hat[i] = max;
                max
            } else {
                v
            };
        }
        powers(raised, c.power);
        for (i, &powered) in raised.iter().enumerate() {
            let at = start + i;
            let theta = weights[at];
            let scaled = moment_1[at] * momentum;
            let step = if !no_division {
                scaled / (powered + eps)
            } else if AMSGRAD {
                scaled / one_plus_eps
            } else {
                scaled
            };
            weights[at] = if decoupled {
                theta * keep - step
            } else {
                theta - step
            };
            if TRACKED {
                update[at] = if decoupled {
                    step + theta * lr_lambda
                } else {
                    step
                };
            }
        }
    }
}

/// Raises every value to `power` in place (p = 0 and 1 leave them: unused, or already v̂).
#[inline(always)]
fn powers(values: &mut [f32], power: Power) {
    match power {
        Power::Zero | Power::Identity => {}
        // `for` loops, not `for_each`: a call the compiler declines to inline would run the
        // loop outside the vector-compiled step.
        Power::Sqrt => {
            for x in values {
                *x = x.sqrt();
            }
        }
        // Two loops, the logarithms then the powers (through f64s in the first-level cache):
        // each loop's body fits the registers, and its elements' chains overlap more. Measured
        // alone on AVX2: 3.5 against 4.1 ns per element in one loop; the same operations on each
        // element.
        Power::Powf(p) => {
            let p = f64::from(p);
            let mut exponents = [0f64; BLOCK];
            for chunk in values.chunks_mut(BLOCK) {
                let exponents = &mut exponents[..chunk.len()];
                for (y, &x) in exponents.iter_mut().zip(chunk.iter()) {
                    *y = p * log2(x);
                }
                for (x, &y) in chunk.iter_mut().zip(exponents.iter()) {
                    *x = power_of(*x, y);
                }
            }
        }
    }
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

    /// `powers` compiled for a processor's vectors (as the step compiles it there).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn powers_avx2(values: &mut [f32], p: f32) {
        powers(values, Power::Powf(p));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn powers_avx512(values: &mut [f32], p: f32) {
        powers(values, Power::Powf(p));
    }

    /// The power as the vector loops compute it, AVX2 and AVX-512 where the processor has them,
    /// gives `pow`'s bits, element by element, over every 4093rd f32 and the special values.
    #[test]
    fn the_vector_loops_give_the_scalar_bits() {
        let values: Vec<f32> = (1..f32::MAX.to_bits())
            .step_by(4093)
            .map(f32::from_bits)
            .chain([0.0, f32::INFINITY, f32::MIN_POSITIVE, 1.0, f32::NAN, -2.0])
            .collect();
        for p in [0.01f32, 0.125, 1.0 / 3.0, 0.49, 0.99] {
            let scalar: Vec<u32> = values
                .iter()
                .map(|&x| pow(std::hint::black_box(x), f64::from(p)).to_bits())
                .collect();
            let mut portable = values.clone();
            powers(&mut portable, Power::Powf(p));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&portable) == scalar,
                "the build's own vectors at p = {p}"
            );
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
                assert!(bits(&vector) == scalar, "{feature} at p = {p}");
            }
        }
    }

    /// Against the C library's f64 pow, rounded to f32, over every 1021st f32 from the
    /// smallest subnormal to the largest finite value, at the exponents a decay passes
    /// through: never more than one ULP off, and off at all only where the exact value lies
    /// next to a rounding boundary (none of these 21 million, measured).
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

    /// Every kind of step (both rules, each power, first or later, each weight decay, tracked
    /// or not) on this processor's vectors gives the bits of the build target's own loops.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_step_on_any_vectors_gives_the_same_bits() {
        let n = BLOCK + 77;
        let special = [0.0, -0.0, 1e-30, -3e-39, 1e30, f32::MIN_POSITIVE];
        let grad: Vec<f32> = (0..n)
            .map(|i| special.get(i).copied())
            .map(|s| s.unwrap_or(0.0))
            .enumerate()
            .map(|(i, s)| {
                if i < 6 {
                    s
                } else {
                    ((i * 7919) % 1000) as f32 / 300.0 - 1.7
                }
            })
            .collect();
        let rules = [
            Rule::Folded {
                momentum: 0.3,
                eps: 1e-8,
            },
            Rule::AmsGrad {
                bias2: 0.3,
                momentum: 1e-2,
                eps: 1e-8,
                one_plus_eps: 1.0,
                fresh: false,
            },
            Rule::AmsGrad {
                bias2: 0.3,
                momentum: 1e-2,
                eps: 1e-8,
                one_plus_eps: 1.0,
                fresh: true,
            },
        ];
        let powers = [Power::Zero, Power::Sqrt, Power::Identity, Power::Powf(0.37)];
        let decays = [
            (None, None),
            (Some(1e-3), None),
            (None, Some((0.999, 1e-3))),
        ];
        for rule in rules {
            for power in powers {
                for first in [false, true] {
                    for (l2, decoupled) in decays {
                        for tracked in [false, true] {
                            let c = Coefficients {
                                l2,
                                rule,
                                decoupled,
                                ..coefficients(first, power)
                            };
                            let run = |how: &str| {
                                let mut theta: Vec<f32> =
                                    (0..n).map(|i| (i % 13) as f32 / 13.0 - 0.4).collect();
                                let mut m = vec![0.01f32; n];
                                let mut v: Vec<f32> =
                                    (0..n).map(|i| (i % 7) as f32 * 0.003).collect();
                                let mut max_v_hat = vec![0.015f32; n];
                                let mut update = vec![0.0f32; n];
                                let b = Buffers {
                                    theta: &mut theta,
                                    grad: &grad,
                                    moment_1: &mut m,
                                    moment_2: &mut v,
                                    max_v_hat: &mut max_v_hat,
                                    update: tracked.then_some(&mut update[..]),
                                };
                                // SAFETY: only called where the processor has the feature.
                                match how {
                                    "avx2" => unsafe { step_avx2(&c, b) },
                                    "avx512f" => unsafe { step_avx512(&c, b) },
                                    _ => step_portable(&c, b),
                                }
                                [theta, m, v, max_v_hat, update]
                                    .map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
                            };
                            let portable = run("portable");
                            for (feature, available) in [
                                ("avx2", std::arch::is_x86_feature_detected!("avx2")),
                                ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
                            ] {
                                if available {
                                    assert!(
                                        run(feature) == portable,
                                        "{feature}: {c:?}, tracked: {tracked}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn pieces_are_equal_whole_vectors_in_a_multiple_of_the_threads() {
        // Two pieces of 65,536 (the shortest), for two threads or more.
        assert_eq!(piece_length(131_072, Power::Sqrt, 2), Some(65_536));
        assert_eq!(piece_length(131_072, Power::Zero, 16), Some(65_536));
        // 200,000 holds three: two for two threads, of 100,000 rounded up to whole vectors
        // (1,563·64); three for three threads, of 66,667 → 66,688 (1,042·64).
        assert_eq!(piece_length(200_000, Power::Sqrt, 2), Some(100_032));
        assert_eq!(piece_length(200_000, Power::Identity, 3), Some(66_688));
        // Five for four threads: four.
        assert_eq!(piece_length(5 * 65_536, Power::Sqrt, 4), Some(81_920));
        // Too little work to hand over, or no other thread to take it.
        assert_eq!(piece_length(131_071, Power::Sqrt, 2), None);
        assert_eq!(piece_length(1 << 20, Power::Sqrt, 1), None);
        // The general power: pieces of 16,384 and more. ResNet-20's largest tensors (36,864)
        // in two halves, not 16,384 + 16,384 + 4,096.
        assert_eq!(piece_length(36_864, Power::Powf(0.3), 2), Some(18_432));
        assert_eq!(piece_length(36_864, Power::Powf(0.3), 16), Some(18_432));
        assert_eq!(piece_length(32_767, Power::Powf(0.3), 2), None);
    }

    #[test]
    fn pieces_across_threads_compute_what_one_pass_does() {
        let n = 3 * 8_192 + 17;
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
                // Uneven on purpose: pieces that end mid-vector and a short last one.
                step_in_pieces(&c, buffers, 5_000);
            } else {
                step_serial(&c, buffers);
            }
            (theta, m, v, max_v_hat, update)
        };
        assert!(run(true) == run(false));
    }
}
