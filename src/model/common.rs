//! Building blocks shared by the networks.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// 3×3 convolution (padding 1), batch norm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvBnRelu {
    pub fn new(cin: usize, cout: usize, stride: usize, bias: bool, device: &Device) -> Self {
        ConvBnRelu {
            conv: conv3x3(cin, cout, stride, bias, device),
            norm: BatchNormConfig::new(cout).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

pub fn conv3x3(cin: usize, cout: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .init(device)
}
