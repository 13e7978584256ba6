//! What our own kernels for Burn's CPU backend (flex) share: telling that a device is that
//! backend, reading a tensor's values where they lie, making a tensor of values, recording an
//! operation for autodiff, and running a loop over the cores (rayon natively, one thread in the
//! browser's worker).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{DispatchDevice, Flex, TensorMetadata};
use burn::tensor::{Device, Shape, TensorData};

/// Whether `device` computes on the CPU backend (with or without autodiff).
pub fn on_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// Contiguous f32 values of a CPU tensor, without a copy when they already are.
pub(super) fn values(tensor: &FloatTensor<Flex>) -> (FloatTensor<Flex>, std::ops::Range<usize>) {
    let contiguous = tensor.to_contiguous();
    let (start, end) = contiguous
        .layout()
        .contiguous_offsets()
        .expect("to_contiguous gives contiguous storage");
    (contiguous, start..end)
}

pub(super) fn f32s(tensor: &FloatTensor<Flex>) -> Vec<f32> {
    let (contiguous, range) = values(tensor);
    contiguous.storage::<f32>()[range].to_vec()
}

pub(super) fn from_vec(values: Vec<f32>, shape: impl Into<Shape>) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(values, shape), &Default::default())
}

/// `output`, computed by our kernel from three `inputs`, as autodiff's tensor: recorded with
/// `backward` as its backward step, whose state (which may copy what that step reads, the output
/// among it) is only made where a gradient is wanted.
pub(super) fn record<C: CheckpointStrategy, Step: Backward<Flex, 3>>(
    backward: Step,
    inputs: [&FloatTensor<Autodiff<Flex, C>>; 3],
    output: FloatTensor<Flex>,
    state: impl FnOnce(&FloatTensor<Flex>) -> Step::State,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = inputs.map(|input| input.node());
    match backward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state(&output), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The dimensions of a CPU tensor of rank 4.
pub(super) fn dims4(tensor: &FloatTensor<Flex>) -> [usize; 4] {
    tensor.shape().dims::<4>()
}

/// `f(i)` for `i` in `0..count`, on the cores where there are several, in order.
pub(super) fn map_indices<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..count).into_par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    (0..count).map(f).collect()
}

/// `f(i, chunk, scratch)` for each `chunk`-sized piece of `buffer` (the last may be shorter), on
/// the cores where there are several; `scratch` is a buffer of its own per worker, reused across
/// the pieces it takes (its contents are whatever the last piece left).
pub(super) fn chunks_with_scratch<T: Send>(
    buffer: &mut [T],
    chunk: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [T], &mut [f32]) + Sync + Send,
) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        buffer.par_chunks_mut(chunk).enumerate().for_each_init(
            || vec![0.0f32; scratch_len],
            |scratch, (i, piece)| f(i, piece, scratch),
        );
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut scratch = vec![0.0f32; scratch_len];
        for (i, piece) in buffer.chunks_mut(chunk).enumerate() {
            f(i, piece, &mut scratch);
        }
    }
}
