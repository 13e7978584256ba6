//! 2-D convolution as our own operation on the CPU backend, forward and backward.
//!
//! Burn's CPU convolution copies the input to channels-last and reshuffles the kernel on every
//! call, in one thread, and builds and multiplies its patches in tiles that allocate; its
//! weight gradient is a convolution by the output gradient as a kernel. Here each image is one
//! matrix product on its own core, in the layout the network keeps (NCHW):
//! - forward: the image's patches as a [C_in·k_h·k_w, H_out·W_out] matrix (rows of shifted
//!   input rows, which the stride-1 case copies whole), then `weight [C_out, C_in·k_h·k_w] ×
//!   patches`, written straight into the image's output planes;
//! - input gradient: `weightᵀ × output gradient`, whose rows are added back where the patches
//!   came from;
//! - weight gradient: `output gradient × patchesᵀ`, summed over groups of [`IMAGES_PER_SUM`]
//!   images in parallel and then over the groups in a fixed order, so that a rerun on any
//!   number of cores gives the same bits.
//!
//! The products are the `gemm` crate's (the one Burn's CPU backend uses). Square strides and
//! paddings, one group and no dilation (every network here); anything else, and every other
//! backend, keeps Burn's convolution. `bench layers` times it against Burn's.

use std::mem::MaybeUninit;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::flex::{
    chunks_with_scratch, dims4, f32s, from_vec, map_indices, on_flex, record, values,
};

#[backend_extension(Flex, Autodiff)]
pub trait ConvBackend: Backend {
    /// `x` [B, C_in, H, W] convolved with `weight` [C_out, C_in, k_h, k_w], plus `bias` [C_out]
    /// (zeros for a layer without one: the extension macro takes no optional tensors), with the
    /// same `stride` and zero `padding` on both axes.
    fn conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self>;
}

/// Images whose weight gradients one task sums before the tasks' sums are added in order: small
/// enough that a batch of 64 gives every core work, large enough that the partial sums stay
/// few. A constant, not the number of cores, so that the bits never depend on the machine.
const IMAGES_PER_SUM: usize = 4;

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    channels_in: usize,
    height: usize,
    width: usize,
    channels_out: usize,
    kernel: [usize; 2],
    stride: usize,
    padding: usize,
    out: [usize; 2],
}

impl Geometry {
    fn new(x: [usize; 4], weight: [usize; 4], stride: usize, padding: usize) -> Geometry {
        let [batch, channels_in, height, width] = x;
        let [channels_out, weight_in, kernel_h, kernel_w] = weight;
        assert_eq!(channels_in, weight_in, "the kernel's input channels");
        assert!(stride > 0, "a stride of 0");
        let side = |input: usize, kernel: usize| {
            let padded = input + 2 * padding;
            assert!(padded >= kernel, "a kernel larger than the padded input");
            (padded - kernel) / stride + 1
        };
        Geometry {
            batch,
            channels_in,
            height,
            width,
            channels_out,
            kernel: [kernel_h, kernel_w],
            stride,
            padding,
            out: [side(height, kernel_h), side(width, kernel_w)],
        }
    }

    /// The input gradient's shapes as a convolution of the output gradient (stride 1, a square
    /// kernel no wider than padding allows), or `None`.
    fn input_grad_as_conv(&self) -> Option<Geometry> {
        let [kernel_h, kernel_w] = self.kernel;
        (self.stride == 1 && kernel_h == kernel_w && self.padding < kernel_h).then(|| {
            let transposed = Geometry::new(
                [self.batch, self.channels_out, self.out[0], self.out[1]],
                [self.channels_in, self.channels_out, kernel_h, kernel_w],
                1,
                kernel_h - 1 - self.padding,
            );
            debug_assert_eq!(transposed.out, [self.height, self.width]);
            transposed
        })
    }

    /// Values per patch: the inner dimension of the products.
    fn patch(&self) -> usize {
        self.channels_in * self.kernel[0] * self.kernel[1]
    }

    fn plane_out(&self) -> usize {
        self.out[0] * self.out[1]
    }

    fn image_in(&self) -> usize {
        self.channels_in * self.height * self.width
    }

    fn image_out(&self) -> usize {
        self.channels_out * self.plane_out()
    }

    /// The input row that output row `row` reads at kernel row `i`, if inside the image.
    fn source_row(&self, row: usize, i: usize) -> Option<usize> {
        (row * self.stride + i)
            .checked_sub(self.padding)
            .filter(|&r| r < self.height)
    }

    /// The output columns whose kernel column `j` falls inside the image: `lo..hi`, reading
    /// input column `column · stride + j − padding`.
    fn columns(&self, j: usize) -> (usize, usize) {
        let (s, p, w) = (self.stride, self.padding, self.width);
        let lo = p.saturating_sub(j).div_ceil(s);
        let hi = if w + p > j {
            ((w - 1 + p - j) / s + 1).min(self.out[1])
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Calls `f(run)` for every row of the patch matrix and every output row.
    fn for_each_run(&self, mut f: impl FnMut(Run)) {
        let [kernel_h, kernel_w] = self.kernel;
        for channel in 0..self.channels_in {
            for i in 0..kernel_h {
                for j in 0..kernel_w {
                    let (lo, hi) = self.columns(j);
                    for row in 0..self.out[0] {
                        f(Run {
                            channel,
                            patch_row: (channel * kernel_h + i) * kernel_w + j,
                            row,
                            source_row: self.source_row(row, i),
                            columns: lo..hi,
                            first_column: (lo < hi).then(|| lo * self.stride + j - self.padding),
                        });
                    }
                }
            }
        }
    }
}

/// What one output row of one patch row reads: input row `source_row` of `channel` (`None`
/// where the kernel reads padding), at output columns `columns` (the rest read padding), the
/// first of them reading input column `first_column`, the next ones a stride further each.
struct Run {
    channel: usize,
    patch_row: usize,
    row: usize,
    source_row: Option<usize>,
    columns: std::ops::Range<usize>,
    first_column: Option<usize>,
}

/// One image's patches from its input [C_in, H, W], as the columns `offset..offset + H_out·W_out`
/// of `out` [patch, row_length].
fn patches(image: &[f32], g: &Geometry, out: &mut [f32], row_length: usize, offset: usize) {
    let (plane_in, width_out) = (g.height * g.width, g.out[1]);
    g.for_each_run(|run| {
        let start = run.patch_row * row_length + offset + run.row * width_out;
        let values = &mut out[start..][..width_out];
        let (Some(source), Some(first)) = (run.source_row, run.first_column) else {
            values.fill(0.0);
            return;
        };
        let input = &image[run.channel * plane_in + source * g.width..][..g.width];
        let (lo, hi) = (run.columns.start, run.columns.end);
        values[..lo].fill(0.0);
        values[hi..].fill(0.0);
        if g.stride == 1 {
            values[lo..hi].copy_from_slice(&input[first..first + (hi - lo)]);
        } else {
            for (k, value) in values[lo..hi].iter_mut().enumerate() {
                *value = input[first + k * g.stride];
            }
        }
    });
}

/// Adds each patch value's gradient, columns `offset..offset + H_out·W_out` of `patch_grads`
/// [patch, row_length], to the input value it came from, in `image` [C_in, H, W].
fn add_back_patches(
    patch_grads: &[f32],
    row_length: usize,
    offset: usize,
    g: &Geometry,
    image: &mut [f32],
) {
    let (plane_in, width_out) = (g.height * g.width, g.out[1]);
    g.for_each_run(|run| {
        let (Some(source), Some(first)) = (run.source_row, run.first_column) else {
            return;
        };
        let start = run.patch_row * row_length + offset + run.row * width_out;
        let grads = &patch_grads[start..][..width_out][run.columns];
        let input = &mut image[run.channel * plane_in + source * g.width..][..g.width];
        if g.stride == 1 {
            for (value, &grad) in input[first..first + grads.len()].iter_mut().zip(grads) {
                *value += grad;
            }
        } else {
            for (k, &grad) in grads.iter().enumerate() {
                input[first + k * g.stride] += grad;
            }
        }
    });
}

/// Output pixels (images × pixels per image) one product should have at least: below that, a
/// product per image reads the whole kernel for a few columns (VGG's 512 channels at 2×2: 9 MB
/// of weights for 4 columns), so the images of a group share one product.
const MIN_COLUMNS: usize = 256;

/// Images per product for `g`'s output planes: one where a plane alone is wide enough.
fn images_per_product(g: &Geometry) -> usize {
    MIN_COLUMNS.div_ceil(g.plane_out()).clamp(1, g.batch.max(1))
}

/// The products' own threads: where the groups are fewer than the cores, each product takes
/// them all (its results do not depend on how many: each value is summed in the same order).
fn parallelism(tasks: usize) -> gemm::Parallelism {
    #[cfg(not(target_arch = "wasm32"))]
    if tasks < rayon::current_num_threads() {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = tasks;
    gemm::Parallelism::None
}

/// The planes [C, plane] of the images `images` of `batch` [B, C, plane] side by side:
/// [C, images·plane], into `out`.
fn side_by_side(
    batch: &[f32],
    channels: usize,
    plane: usize,
    images: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let row_length = images.len() * plane;
    for (n, b) in images.enumerate() {
        let image = &batch[b * channels * plane..][..channels * plane];
        for (c, values) in image.chunks(plane).enumerate() {
            out[c * row_length + n * plane..][..plane].copy_from_slice(values);
        }
    }
}

/// A strided matrix for [`product`]: its values, rows and row/column steps.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    values: &'a [f32],
    row_step: usize,
    column_step: usize,
}

impl<'a> Matrix<'a> {
    fn rows(values: &'a [f32], columns: usize) -> Matrix<'a> {
        Matrix {
            values,
            row_step: columns,
            column_step: 1,
        }
    }

    fn transposed(self) -> Matrix<'a> {
        Matrix {
            values: self.values,
            row_step: self.column_step,
            column_step: self.row_step,
        }
    }
}

/// `out` [m, n] (row-major, uninitialised or not) := `lhs` [m, k] × `rhs` [k, n], or += when
/// `accumulate`.
fn product(
    out: &mut [MaybeUninit<f32>],
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let last = |a: &Matrix, rows: usize, columns: usize| {
        (rows.max(1) - 1) * a.row_step + (columns.max(1) - 1) * a.column_step
    };
    assert!(out.len() >= m * n, "the product's output");
    assert!(m * k == 0 || last(&lhs, m, k) < lhs.values.len(), "lhs");
    assert!(k * n == 0 || last(&rhs, k, n) < rhs.values.len(), "rhs");
    let step = |s: usize| s as isize;
    // SAFETY: the asserts keep every index inside its slice; `gemm` writes each of the m·n
    // output values, and reads them first only when `accumulate` (then they were written).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr().cast::<f32>(),
            1,
            step(n),
            accumulate,
            lhs.values.as_ptr(),
            step(lhs.column_step),
            step(lhs.row_step),
            rhs.values.as_ptr(),
            step(rhs.column_step),
            step(rhs.row_step),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The images' convolution, [B, C_out, H_out, W_out], each output plane starting as `bias`
/// (else written by the product alone).
fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &Geometry) -> Vec<f32> {
    let (patch, plane_out, image_out) = (g.patch(), g.plane_out(), g.image_out());
    let per = images_per_product(g);
    let products = g.batch.div_ceil(per);
    let threads = parallelism(products);
    let (patch_len, product_len) = (patch * per * plane_out, g.channels_out * per * plane_out);
    let len = g.batch * image_out;
    let mut out = Vec::<f32>::with_capacity(len);
    chunks_with_scratch(
        &mut out.spare_capacity_mut()[..len],
        per * image_out,
        patch_len + if per > 1 { product_len } else { 0 },
        |group, outputs, scratch| {
            let images = outputs.len() / image_out;
            let columns = images * plane_out;
            let (patch_values, product_values) = scratch.split_at_mut(patch_len);
            for n in 0..images {
                let b = group * per + n;
                patches(
                    &x[b * g.image_in()..][..g.image_in()],
                    g,
                    patch_values,
                    columns,
                    n * plane_out,
                );
            }
            let patch_values = Matrix::rows(&patch_values[..patch * columns], columns);
            let weight = Matrix::rows(weight, patch);
            if images == 1 {
                // Straight into the image's planes.
                for (plane, &value) in outputs.chunks_mut(plane_out).zip(bias.unwrap_or_default()) {
                    plane.fill(MaybeUninit::new(value));
                }
                let shape = [g.channels_out, plane_out, patch];
                product(
                    outputs,
                    shape,
                    weight,
                    patch_values,
                    bias.is_some(),
                    threads,
                );
                return;
            }
            let product_values = as_uninit(&mut product_values[..g.channels_out * columns]);
            let shape = [g.channels_out, columns, patch];
            product(product_values, shape, weight, patch_values, false, threads);
            // SAFETY: the product wrote all C_out·columns values.
            let product_values = unsafe { assume_init(product_values) };
            for (n, image) in outputs.chunks_mut(image_out).enumerate() {
                for (c, plane) in image.chunks_mut(plane_out).enumerate() {
                    let shift = bias.map_or(0.0, |bias| bias[c]);
                    let values = &product_values[c * columns + n * plane_out..][..plane_out];
                    for (out, &value) in plane.iter_mut().zip(values) {
                        out.write(value + shift);
                    }
                }
            }
        },
    );
    // SAFETY: every image's C_out·H_out·W_out values were written.
    unsafe { out.set_len(len) };
    out
}

/// The gradients asked for, of the input, the weight and the bias.
struct Grads {
    x: Option<Vec<f32>>,
    weight: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
}

fn backward(
    x: &[f32],
    weight: &[f32],
    grad: &[f32],
    g: &Geometry,
    [want_x, want_weight, want_bias]: [bool; 3],
) -> Grads {
    let (patch, plane_out, image_out) = (g.patch(), g.plane_out(), g.image_out());
    let weight_len = g.channels_out * patch;
    let per = images_per_product(g);
    // A task sums the weight gradients of whole products, at least IMAGES_PER_SUM images.
    let per_sum = per * IMAGES_PER_SUM.div_ceil(per);
    let sums = g.batch.div_ceil(per_sum);
    let threads = parallelism(sums);
    let grad_of = |b: usize| &grad[b * image_out..][..image_out];
    // Each task's sums of the weight and bias gradients, in task order.
    let partial_sums: Vec<(Vec<f32>, Vec<f64>)> = if want_weight || want_bias {
        map_indices(sums, |task| {
            let first = task * per_sum;
            let mut weight_sum =
                Vec::<f32>::with_capacity(if want_weight { weight_len } else { 0 });
            let mut bias_sum = vec![0.0f64; if want_bias { g.channels_out } else { 0 }];
            let mut patch_values = Vec::new();
            let mut grads_buffer = Vec::new();
            for (k, start) in (first..(first + per_sum).min(g.batch))
                .step_by(per)
                .enumerate()
            {
                let images = start..(start + per).min(g.batch);
                for b in images.clone() {
                    let planes = grad_of(b).chunks(plane_out);
                    for (sum, plane) in bias_sum.iter_mut().zip(planes) {
                        *sum += plane.iter().map(|&v| f64::from(v)).sum::<f64>();
                    }
                }
                if !want_weight {
                    continue;
                }
                let columns = images.len() * plane_out;
                patch_values.resize(patch * columns, 0.0);
                for (n, b) in images.clone().enumerate() {
                    patches(
                        &x[b * g.image_in()..][..g.image_in()],
                        g,
                        &mut patch_values,
                        columns,
                        n * plane_out,
                    );
                }
                // The output gradients side by side, [C_out, columns] (as they lie for one image).
                let grads = if images.len() > 1 {
                    grads_buffer.resize(g.channels_out * columns, 0.0);
                    side_by_side(
                        grad,
                        g.channels_out,
                        plane_out,
                        images.clone(),
                        &mut grads_buffer,
                    );
                    &grads_buffer[..]
                } else {
                    grad_of(images.start)
                };
                product(
                    &mut weight_sum.spare_capacity_mut()[..weight_len],
                    [g.channels_out, patch, columns],
                    Matrix::rows(grads, columns),
                    Matrix::rows(&patch_values, columns).transposed(),
                    k > 0,
                    threads,
                );
            }
            if want_weight {
                // SAFETY: the task's first product wrote all C_out·patch values.
                unsafe { weight_sum.set_len(weight_len) };
            }
            (weight_sum, bias_sum)
        })
    } else {
        Vec::new()
    };
    let weight_grad = want_weight.then(|| {
        let parts = partial_sums
            .iter()
            .map(|(weight, _)| weight.iter().map(|&v| f64::from(v)));
        sum_in_order(parts, weight_len)
    });
    let bias_grad = want_bias.then(|| {
        sum_in_order(
            partial_sums.iter().map(|(_, bias)| bias.iter().copied()),
            g.channels_out,
        )
    });

    let x_grad = want_x.then(|| {
        // At stride 1, the input gradient is itself a convolution: of the output gradient by the
        // kernel flipped and with its channels swapped. That product's inner dimension is
        // C_out·k², where the patch gradients' below is C_out alone, too short for the products
        // to run at speed.
        if let Some(transposed) = g.input_grad_as_conv() {
            return forward(grad, &flipped_and_swapped(weight, g), None, &transposed);
        }
        let products = g.batch.div_ceil(per);
        let threads = parallelism(products);
        let patch_len = patch * per * plane_out;
        let mut x_grad = vec![0.0f32; g.batch * g.image_in()];
        chunks_with_scratch(
            &mut x_grad,
            per * g.image_in(),
            patch_len
                + if per > 1 {
                    g.channels_out * per * plane_out
                } else {
                    0
                },
            |group, images_in, scratch| {
                let images = group * per..group * per + images_in.len() / g.image_in();
                let columns = images.len() * plane_out;
                let (patch_grads, grads_buffer) = scratch.split_at_mut(patch_len);
                let grads = if images.len() > 1 {
                    side_by_side(
                        grad,
                        g.channels_out,
                        plane_out,
                        images.clone(),
                        grads_buffer,
                    );
                    &grads_buffer[..g.channels_out * columns]
                } else {
                    grad_of(images.start)
                };
                let patch_grads = as_uninit(&mut patch_grads[..patch * columns]);
                product(
                    patch_grads,
                    [patch, columns, g.channels_out],
                    Matrix::rows(weight, patch).transposed(),
                    Matrix::rows(grads, columns),
                    false,
                    threads,
                );
                // SAFETY: the product wrote every value.
                let patch_grads = unsafe { assume_init(patch_grads) };
                for (n, image) in images_in.chunks_mut(g.image_in()).enumerate() {
                    add_back_patches(patch_grads, columns, n * plane_out, g, image);
                }
            },
        );
        x_grad
    });
    Grads {
        x: x_grad,
        weight: weight_grad,
        bias: bias_grad,
    }
}

/// The element-wise sum of `parts` (each `len` long), added in their order, as f32.
fn sum_in_order(parts: impl Iterator<Item = impl Iterator<Item = f64>>, len: usize) -> Vec<f32> {
    let mut total = vec![0.0f64; len];
    for part in parts {
        total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
    }
    total.into_iter().map(|v| v as f32).collect()
}

/// The kernel [C_out, C_in, k, k] as the input gradient's: [C_in, C_out, k, k], each k×k
/// turned by half a turn.
fn flipped_and_swapped(weight: &[f32], g: &Geometry) -> Vec<f32> {
    let taps = g.kernel[0] * g.kernel[1];
    let mut out = vec![0.0; weight.len()];
    for (co, kernels) in weight.chunks(g.channels_in * taps).enumerate() {
        for (ci, kernel) in kernels.chunks(taps).enumerate() {
            let turned = &mut out[(ci * g.channels_out + co) * taps..][..taps];
            for (t, &value) in kernel.iter().enumerate() {
                turned[taps - 1 - t] = value;
            }
        }
    }
    out
}

fn as_uninit(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and initialised values are valid MaybeUninit.
    unsafe { &mut *(std::ptr::from_mut(values) as *mut [MaybeUninit<f32>]) }
}

/// # Safety
/// Every value of `values` must have been written.
unsafe fn assume_init(values: &mut [MaybeUninit<f32>]) -> &[f32] {
    // SAFETY: the caller's.
    unsafe { &*(std::ptr::from_mut(values) as *const [f32]) }
}

/// The convolution on the CPU backend, with the kernel's values and the shapes it read (what
/// the backward pass keeps).
fn convolve(
    x: &FloatTensor<Flex>,
    weight: &FloatTensor<Flex>,
    bias: &FloatTensor<Flex>,
    stride: usize,
    padding: usize,
) -> (FloatTensor<Flex>, Vec<f32>, Geometry) {
    let g = Geometry::new(dims4(x), dims4(weight), stride, padding);
    let weight = f32s(weight);
    let (x, range) = values(x);
    let out = forward(&x.storage::<f32>()[range], &weight, Some(&f32s(bias)), &g);
    let out = from_vec(out, [g.batch, g.channels_out, g.out[0], g.out[1]]);
    (out, weight, g)
}

impl ConvBackend for Flex {
    fn conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        convolve(&x, &weight, &bias, stride, padding).0
    }
}

#[derive(Debug)]
struct ConvBackward;

#[derive(Clone, Debug)]
struct ConvState {
    x: FloatTensor<Flex>,
    weight: Vec<f32>,
    geometry: Geometry,
}

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let ConvState {
            x,
            weight,
            geometry: g,
        } = ops.state;
        let parents = ops.parents;
        let wanted = parents.each_ref().map(Option::is_some);
        let (x, x_range) = values(&x);
        let (grad, grad_range) = values(&grad);
        let Grads {
            x: x_grad,
            weight: weight_grad,
            bias: bias_grad,
        } = backward(
            &x.storage::<f32>()[x_range],
            &weight,
            &grad.storage::<f32>()[grad_range],
            &g,
            wanted,
        );
        let [kernel_h, kernel_w] = g.kernel;
        let shapes = [
            vec![g.batch, g.channels_in, g.height, g.width],
            vec![g.channels_out, g.channels_in, kernel_h, kernel_w],
            vec![g.channels_out],
        ];
        for ((parent, values), shape) in parents
            .iter()
            .zip([x_grad, weight_grad, bias_grad])
            .zip(shapes)
        {
            if let (Some(node), Some(values)) = (parent, values) {
                grads.register::<Flex>(node.id, from_vec(values, shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> ConvBackend for Autodiff<Flex, C> {
    fn conv2d_nchw(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        let (output, weight_values, geometry) = convolve(
            x.primitive(),
            weight.primitive(),
            bias.primitive(),
            stride,
            padding,
        );
        record::<C, _>(ConvBackward, [&x, &weight, &bias], output, |_| ConvState {
            x: x.primitive().clone(),
            weight: weight_values,
            geometry,
        })
    }
}

/// The stride and padding of `conv` when our kernel computes it: one group, no dilation, the
/// same stride and the same explicit padding on every side.
fn own_geometry(conv: &Conv2d) -> Option<(usize, usize)> {
    let [stride_h, stride_w] = conv.stride;
    let padding = match conv.padding {
        PaddingConfig2d::Valid => 0,
        PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == left && left == bottom && bottom == right =>
        {
            top
        }
        _ => return None,
    };
    (conv.groups == 1 && conv.dilation == [1, 1] && stride_h == stride_w)
        .then_some((stride_h, padding))
}

/// `conv`'s forward pass: our kernel on the CPU backend, Burn's elsewhere.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let own = own_geometry(conv).filter(|_| on_flex(&x.device()));
    let Some((stride, padding)) = own else {
        return conv.forward(x);
    };
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([conv.weight.dims()[0]], &x.device()),
    };
    Tensor::from_dispatch(<Dispatch as ConvBackend>::conv2d_nchw(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.into_dispatch(),
        stride,
        padding,
    ))
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, TensorData};

    use super::*;

    fn close(ours: Tensor<4>, reference: Tensor<4>, tolerance: f32) {
        let (a, b) = (ours.into_data(), reference.into_data());
        assert_eq!(a.shape(), b.shape());
        let (a, b) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * (1.0 + y.abs()),
                "{i}: {x} vs {y}"
            );
        }
    }

    fn floats<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().unwrap()
    }

    // Burn's own convolution (its forward and its autodiff gradients) is the reference: odd
    // planes (5×7, so strided outputs lose a column) whose batch of 6 shares one product, and
    // 16×16 ones, one product per image at stride 1, four images per product at stride 2
    // (groups of 4 and 2); strides 1 to 3, paddings 0 to 2, kernels
    // 3×3, 1×1 and 2×3, with and without a bias, and a batch that leaves a short last group.
    // The input gradient takes both of its ways: as a convolution (stride 1, square kernel,
    // padding under the kernel's side) and as patch gradients added back (the others).
    #[test]
    fn our_convolution_is_burns() {
        let device = Device::flex().autodiff();
        let normal = Distribution::Normal(0.0, 1.0);
        for (kernel, stride, padding, bias) in [
            ([3, 3], 1, 1, false),
            ([3, 3], 2, 1, true),
            ([3, 3], 1, 0, true),
            ([1, 1], 2, 0, false),
            ([2, 3], 1, 2, true),
            ([3, 3], 3, 2, false),
            ([1, 1], 1, 0, true),
            ([1, 1], 1, 1, false),
        ] {
            let case = format!("kernel {kernel:?}, stride {stride}, padding {padding}");
            let conv = Conv2dConfig::new([3, 4], kernel)
                .with_stride([stride; 2])
                .with_padding(PaddingConfig2d::Explicit(
                    padding, padding, padding, padding,
                ))
                .with_bias(bias)
                .init(&device);
            let weight = Tensor::<4>::random([4, 3, kernel[0], kernel[1]], normal, &device);
            let conv = Conv2d {
                weight: conv.weight.map(|_| weight.clone().require_grad()),
                bias: conv
                    .bias
                    .map(|b| b.map(|_| Tensor::<1>::random([4], normal, &device).require_grad())),
                ..conv
            };
            for (height, width) in [(5, 7), (16, 16)] {
                let case = format!("{case}, {height}×{width}");
                let x = Tensor::<4>::random([6, 3, height, width], normal, &device);
                let x_ours = x.clone().require_grad();
                let x_burns = x.require_grad();
                let ours = conv2d(&conv, x_ours.clone());
                let burns = conv.forward(x_burns.clone());
                let upstream = Tensor::<4>::random(burns.dims(), normal, &device);
                close(ours.clone(), burns.clone(), 1e-5);

                let grads_ours = (ours * upstream.clone()).sum().backward();
                let grads_burns = (burns * upstream).sum().backward();
                close(
                    x_ours.grad(&grads_ours).unwrap(),
                    x_burns.grad(&grads_burns).unwrap(),
                    1e-4,
                );
                let weight_grads = [&grads_ours, &grads_burns].map(|g| conv.weight.val().grad(g));
                let [w_ours, w_burns] = weight_grads.map(Option::unwrap);
                close(w_ours, w_burns, 1e-4);
                if let Some(bias) = &conv.bias {
                    let [b_ours, b_burns] =
                        [&grads_ours, &grads_burns].map(|g| floats(bias.val().grad(g).unwrap()));
                    for (a, b) in b_ours.iter().zip(&b_burns) {
                        assert!(
                            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                            "{case}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    // By hand: x = 1…9 in a 3×3 plane, an all-ones 3×3 kernel, stride 2, padding 1, so the
    // four outputs sum the 2×2 corners: 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28
    // (plus the bias 0.5). For the loss Σ out, each input's gradient counts the windows that
    // read it (rows 0, 1 | 1, 2, columns likewise): 1 2 1 / 2 4 2 / 1 2 1. Kernel value (a, b)
    // reads rows R(a) = {1}, {0, 2}, {1} and columns R(b): its gradient is Σ x over R(a)×R(b),
    // 5 10 5 / 10 20 10 / 5 10 5; the bias's is the 4 outputs.
    #[test]
    fn a_strided_padded_convolution_by_hand() {
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([1, 1], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let conv = Conv2d {
            weight: conv
                .weight
                .map(|_| Tensor::<4>::ones([1, 1, 3, 3], &device).require_grad()),
            bias: conv
                .bias
                .map(|b| b.map(|_| Tensor::<1>::from_floats([0.5], &device).require_grad())),
            ..conv
        };
        let values: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let x =
            Tensor::<4>::from_data(TensorData::new(values, [1, 1, 3, 3]), &device).require_grad();
        let out = conv2d(&conv, x.clone());
        assert_eq!(floats(out.clone()), [12.5, 16.5, 24.5, 28.5]);
        let grads = out.sum().backward();
        assert_eq!(
            floats(x.grad(&grads).unwrap()),
            [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]
        );
        assert_eq!(
            floats(conv.weight.val().grad(&grads).unwrap()),
            [5.0, 10.0, 5.0, 10.0, 20.0, 10.0, 5.0, 10.0, 5.0]
        );
        let bias = conv.bias.as_ref().unwrap().val();
        assert_eq!(floats(bias.grad(&grads).unwrap()), [4.0]);
    }

    // The weight gradient sums the batch in fixed groups, and where the groups are fewer than
    // the cores the products take the cores themselves: neither may change a bit with the
    // number of threads. Output, input and weight gradients on a pool of one thread and on the
    // default, for several groups of 32×32 planes (2 → 3 channels) and for one product over a
    // whole batch of 4×4 planes (32 → 32 channels, large enough for gemm to split it).
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_results_are_the_same_on_any_number_of_cores() {
        let device = Device::flex().autodiff();
        let normal = Distribution::Normal(0.0, 1.0);
        for (batch, channels, side) in [(9, [2, 3], 32), (16, [32, 32], 4)] {
            let conv = Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device);
            let weight = Tensor::<4>::random([channels[1], channels[0], 3, 3], normal, &device);
            let conv = Conv2d {
                weight: conv.weight.map(|_| weight.require_grad()),
                ..conv
            };
            let x = Tensor::<4>::random([batch, channels[0], side, side], normal, &device);
            let run = || {
                let x = x.clone().require_grad();
                let out = conv2d(&conv, x.clone());
                let grads = (out.clone() * out.clone()).sum().backward();
                [
                    floats(out),
                    floats(x.grad(&grads).unwrap()),
                    floats(conv.weight.val().grad(&grads).unwrap()),
                ]
            };
            let pooled = run();
            let one_thread = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(run);
            assert!(pooled == one_thread, "batch {batch}, channels {channels:?}");
        }
    }
}
