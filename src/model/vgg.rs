//! VGG-16 for CIFAR with batch norm (the layout of Padam's experiments): thirteen 3×3 convs in
//! five blocks separated by 2×2 max pools, then one 512 → 10 linear classifier.

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::common::{ConvBnRelu, ConvLayer, linear};

/// Channels of each block's convs.
const BLOCKS: [&[usize]; 5] = [
    &[64, 64],
    &[128, 128],
    &[256, 256, 256],
    &[512, 512, 512],
    &[512, 512, 512],
];

#[derive(Module, Debug)]
pub struct Vgg16 {
    blocks: Vec<Vec<ConvBnRelu>>,
    pool: MaxPool2d,
    head: Linear,
}

impl Vgg16 {
    pub fn new(channels: usize, device: &Device) -> Self {
        let mut cin = channels;
        let blocks = BLOCKS
            .iter()
            .map(|widths| {
                widths
                    .iter()
                    .map(|&cout| {
                        let layer = ConvBnRelu::new(cin, cout, 1, true, device);
                        cin = cout;
                        layer
                    })
                    .collect()
            })
            .collect();
        Vgg16 {
            blocks,
            // Ceil mode lets 28×28 inputs (Fashion-MNIST) reach 1×1 as 32×32 ones do.
            pool: MaxPool2dConfig::new([2, 2]).with_ceil_mode(true).init(),
            head: linear(512, 10, device),
        }
    }

    /// The 3×3 convolutions in the order the forward pass runs them, with the side of the
    /// square feature map each one reads (`image_side` at the first): what `bench layers`
    /// times.
    pub fn convolutions(&self, image_side: usize) -> Vec<ConvLayer> {
        let mut side = image_side;
        let mut layers = Vec::new();
        for block in &self.blocks {
            layers.extend(block.iter().map(|layer| ConvLayer::of(&layer.conv, side)));
            // The pool's ceil mode.
            side = side.div_ceil(2);
        }
        layers
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.iter().fold(x, |x, block| {
            let x = block.iter().fold(x, |x, layer| layer.forward(x));
            self.pool.forward(x)
        });
        self.head.forward(x.flatten(1, 3))
    }
}
