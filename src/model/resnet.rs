//! ResNet-20 for CIFAR (He et al. 2016, §4.2): a 3×3 stem, three stages of three basic blocks
//! with 16, 32 and 64 channels, global average pooling and a linear classifier. Shortcuts that
//! change shape subsample by 2 and zero-pad the new channels (option A: no parameters).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::common::{ConvBnRelu, ConvLayer, conv3x3, linear};

#[derive(Module, Debug)]
struct BasicBlock {
    first: ConvBnRelu,
    conv: Conv2d,
    norm: BatchNorm,
    /// Channels the shortcut pads with zeros (0 when the shape is kept).
    extra_channels: usize,
    /// Picks every second pixel when the block halves the resolution.
    subsample: Option<AvgPool2d>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        BasicBlock {
            first: ConvBnRelu::new(cin, cout, stride, false, device),
            conv: conv3x3(cout, cout, 1, false, device),
            norm: BatchNormConfig::new(cout).init(device),
            extra_channels: cout - cin,
            subsample: (stride > 1).then(|| {
                AvgPool2dConfig::new([1, 1])
                    .with_strides([stride, stride])
                    .init()
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = super::norm::batch_norm(
            &self.norm,
            super::conv::conv2d(&self.conv, self.first.forward(x.clone())),
            false,
        );
        let mut shortcut = match &self.subsample {
            Some(pool) => pool.forward(x),
            None => x,
        };
        if self.extra_channels > 0 {
            let [b, _, h, w] = shortcut.dims();
            let half = self.extra_channels / 2;
            let zeros = |c| Tensor::zeros([b, c, h, w], &shortcut.device());
            shortcut = Tensor::cat(
                vec![
                    zeros(half),
                    shortcut.clone(),
                    zeros(self.extra_channels - half),
                ],
                1,
            );
        }
        relu(out + shortcut)
    }
}

#[derive(Module, Debug)]
pub struct ResNet20 {
    stem: ConvBnRelu,
    blocks: Vec<BasicBlock>,
    global: AdaptiveAvgPool2d,
    head: Linear,
}

impl ResNet20 {
    pub fn new(channels: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut cin = 16;
        for (stage, width) in [16, 32, 64].into_iter().enumerate() {
            for block in 0..3 {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(cin, width, stride, device));
                cin = width;
            }
        }
        ResNet20 {
            stem: ConvBnRelu::new(channels, 16, 1, false, device),
            blocks,
            global: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: linear(64, 10, device),
        }
    }

    /// The 3×3 convolutions in the order the forward pass runs them, with the side of the
    /// square feature map each one reads (`image_side` at the stem): what `bench layers` times.
    pub fn convolutions(&self, image_side: usize) -> Vec<ConvLayer> {
        let mut side = image_side;
        let mut layers = Vec::new();
        let mut add = |conv: &Conv2d| {
            let layer = ConvLayer::of(conv, side);
            side = side.div_ceil(layer.stride);
            layers.push(layer);
        };
        add(&self.stem.conv);
        for block in &self.blocks {
            add(&block.first.conv);
            add(&block.conv);
        }
        layers
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self
            .blocks
            .iter()
            .fold(self.stem.forward(x), |x, block| block.forward(x));
        self.head.forward(self.global.forward(x).flatten(1, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // By hand: stem 3·16·9·32² = 442,368; stage 1 six 16·16·9·32² = 14,155,776; stages 2 and 3
    // each 16·32·9·16² (or 32·64·9·8²) = 1,179,648 plus five 2,359,296 = 12,976,128; in all
    // 40,550,400 multiply-adds, the figure usually quoted for ResNet-20 (41 M).
    #[test]
    fn the_convolutions_are_listed_in_order_with_their_feature_maps() {
        let net = ResNet20::new(3, &Device::flex());
        let layers = net.convolutions(32);
        assert_eq!(layers.len(), 19);
        let sides: Vec<usize> = layers.iter().map(|l| l.side_in).collect();
        // The stem and stage 1 (7) and stage 2's first, strided convolution read 32×32; the rest
        // of stage 2 and stage 3's first 16×16; the rest of stage 3 8×8.
        let expected: Vec<usize> = [(32, 8), (16, 6), (8, 5)]
            .into_iter()
            .flat_map(|(side, count)| std::iter::repeat_n(side, count))
            .collect();
        assert_eq!(sides, expected);
        assert_eq!(layers[7].stride, 2);
        assert_eq!((layers[7].channels_in, layers[7].channels_out), (16, 32));
        let macs: usize = layers.iter().map(ConvLayer::macs_per_image).sum();
        assert_eq!(macs, 40_550_400);
    }
}
