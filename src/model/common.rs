//! Building blocks shared by the networks.

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

use crate::data::batch::{Purpose, rng};

/// Layers are built with zero weights and then filled by [`seeded_weights`], so initial weights
/// depend on the seed alone, never on a global RNG shared with whatever else draws from it.
const BUILD_INIT: Initializer = Initializer::Zeros;

/// Fills every weight matrix and convolution kernel with U(−1/√fan_in, 1/√fan_in) (the default
/// of Burn and PyTorch for these layers) from a ChaCha stream of `seed`, in module order. Biases
/// stay 0 and batch norm keeps γ = 1, β = 0.
pub fn seeded_weights<M: Module>(module: M, seed: u64) -> M {
    struct Fill(rand_chacha::ChaCha8Rng);
    impl ModuleMapper for Fill {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dims = param.lazy_shape().dims::<D>().to_vec();
            // Convolution kernels are [out, in, kh, kw]; linear weights [in, out].
            let fan_in = match dims.len() {
                4 => dims[1] * dims[2] * dims[3],
                2 => dims[0],
                _ => return param,
            };
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            let count = dims.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| self.0.random_range(-bound..bound))
                .collect();
            param.map(|t| {
                let filled = Tensor::from_data(TensorData::new(values, dims), &t.device());
                if t.is_require_grad() {
                    filled.require_grad()
                } else {
                    filled
                }
            })
        }
    }
    module.map(&mut Fill(rng(seed, Purpose::Init, 0)))
}

pub fn linear(d_input: usize, d_output: usize, device: &Device) -> burn::nn::Linear {
    LinearConfig::new(d_input, d_output)
        .with_initializer(BUILD_INIT)
        .init(device)
}

/// 3×3 convolution (padding 1), batch norm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub(super) conv: Conv2d,
    norm: BatchNorm,
}

/// One square convolution as a network runs it: channels, stride and the side of the feature
/// map it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    pub channels_in: usize,
    pub channels_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub side_in: usize,
}

impl ConvLayer {
    pub fn of(conv: &Conv2d, side_in: usize) -> ConvLayer {
        let [channels_out, channels_in, kernel, _] = conv.weight.lazy_shape().dims();
        ConvLayer {
            channels_in,
            channels_out,
            kernel,
            stride: conv.stride[0],
            side_in,
        }
    }

    /// The side of the feature map it writes ("same" padding).
    pub fn side_out(&self) -> usize {
        self.side_in.div_ceil(self.stride)
    }

    /// The layer itself, weights zero ("same" padding, no bias), as [`conv3x3`] builds it.
    pub fn init(&self, device: &Device) -> Conv2d {
        let padding = self.kernel / 2;
        Conv2dConfig::new([self.channels_in, self.channels_out], [self.kernel; 2])
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .with_bias(false)
            .with_initializer(BUILD_INIT)
            .init(device)
    }

    /// Multiply-adds of its forward pass on one image.
    pub fn macs_per_image(&self) -> usize {
        self.channels_out * self.channels_in * self.kernel * self.kernel * self.side_out().pow(2)
    }
}

impl ConvBnRelu {
    pub fn new(cin: usize, cout: usize, stride: usize, bias: bool, device: &Device) -> Self {
        ConvBnRelu {
            conv: conv3x3(cin, cout, stride, bias, device),
            norm: BatchNormConfig::new(cout).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        super::norm::batch_norm(&self.norm, super::conv::conv2d(&self.conv, x), true)
    }
}

pub fn conv3x3(cin: usize, cout: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .with_initializer(BUILD_INIT)
        .init(device)
}
