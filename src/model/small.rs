//! A small CNN for the browser: fast enough to train live on a laptop GPU or the CPU.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::common::{ConvBnRelu, linear};

#[derive(Module, Debug)]
pub struct SmallCnn {
    stages: Vec<ConvBnRelu>,
    pool: MaxPool2d,
    global: AdaptiveAvgPool2d,
    head: Linear,
}

impl SmallCnn {
    pub fn new(channels: usize, device: &Device) -> Self {
        let widths = [(channels, 32), (32, 64), (64, 64)];
        SmallCnn {
            stages: widths
                .iter()
                .map(|&(cin, cout)| ConvBnRelu::new(cin, cout, 1, false, device))
                .collect(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            global: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: linear(64, 10, device),
        }
    }

    #[cfg(test)]
    pub(crate) fn head_weight(&self) -> Tensor<2> {
        self.head.weight.val()
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self
            .stages
            .iter()
            .fold(x, |x, stage| self.pool.forward(stage.forward(x)));
        self.head.forward(self.global.forward(x).flatten(1, 3))
    }
}
