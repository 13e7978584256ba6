//! The networks: a browser-sized CNN, ResNet-20 and VGG-16 (CIFAR variants). Each takes
//! [B, C, H, W] images (C = 3 for CIFAR-10, 1 for Fashion-MNIST) and returns [B, 10] logits.

mod common;
mod resnet;
mod small;
mod vgg;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::ImageShape;

pub use resnet::ResNet20;
pub use small::SmallCnn;
pub use vgg::Vgg16;

/// Which network to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum ModelSpec {
    /// Three conv–BN–ReLU–pool stages (32/64/64 channels) and a linear head: 57,130 parameters
    /// on RGB input. Sized for the browser.
    SmallCnn,
    /// He et al.'s CIFAR ResNet-20: 3 stages × 3 basic blocks, 16/32/64 channels,
    /// parameter-free (option A) shortcuts: 269,722 parameters.
    Resnet20,
    /// VGG-16 with batch norm and one 512 → 10 classifier: 14,728,266 parameters.
    Vgg16,
}

impl ModelSpec {
    pub fn name(self) -> &'static str {
        match self {
            ModelSpec::SmallCnn => "small-cnn",
            ModelSpec::Resnet20 => "resnet20",
            ModelSpec::Vgg16 => "vgg16",
        }
    }

    /// The smallest image side the network can take: below it the poolings (or strides) shrink
    /// the feature maps to nothing and the network only learns its bias.
    pub fn min_image_side(self) -> usize {
        match self {
            // Three 2×2 max-poolings.
            ModelSpec::SmallCnn => 8,
            // Two stride-2 stages; the network was designed for 32×32.
            ModelSpec::Resnet20 => 8,
            // Five 2×2 max-poolings.
            ModelSpec::Vgg16 => 32,
        }
    }

    /// Whether images of `shape` fit the network; the error says the limit.
    pub fn check_input(self, shape: ImageShape) -> Result<(), String> {
        let side = self.min_image_side();
        if shape.height < side || shape.width < side {
            return Err(format!(
                "images of {}×{} pixels are too small for {}, which needs at least {side}×{side}",
                shape.height,
                shape.width,
                self.name()
            ));
        }
        Ok(())
    }

    /// A freshly initialised network for `channels`-channel images; the same seed gives the
    /// same weights on every device and platform.
    pub fn init(self, channels: usize, device: &Device, seed: u64) -> Model {
        let model = match self {
            ModelSpec::SmallCnn => Model::SmallCnn(SmallCnn::new(channels, device)),
            ModelSpec::Resnet20 => Model::Resnet20(ResNet20::new(channels, device)),
            ModelSpec::Vgg16 => Model::Vgg16(Vgg16::new(channels, device)),
        };
        common::seeded_weights(model, seed)
    }
}

// One value per arm, so the variants' sizes do not matter; the derive needs them unboxed.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    SmallCnn(SmallCnn),
    Resnet20(ResNet20),
    Vgg16(Vgg16),
}

/// Sums the elements of tensors that take gradients (batch-norm running statistics do not).
struct TrainableCount(usize);

impl ModuleVisitor for TrainableCount {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.val().is_require_grad() {
            self.0 += param.lazy_shape().num_elements();
        }
    }
}

impl Model {
    /// The number of trained parameters. Only an autodiff device tells parameters from
    /// buffers; elsewhere (and in `num_params`) batch-norm running statistics count too.
    pub fn trainable_params(&self) -> usize {
        let mut count = TrainableCount(0);
        self.visit(&mut count);
        count.0
    }

    /// Class logits [B, 10].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Model::SmallCnn(m) => m.forward(images),
            Model::Resnet20(m) => m.forward(images),
            Model::Vgg16(m) => m.forward(images),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_depend_on_the_seed_alone() {
        let device = Device::flex();
        let weights = |seed| {
            let Model::SmallCnn(m) = ModelSpec::SmallCnn.init(3, &device, seed) else {
                unreachable!()
            };
            m.head_weight().into_data().try_to_vec::<f32>().unwrap()
        };
        let (a, b, c) = (weights(1), weights(1), weights(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // U(−1/√64, 1/√64) for the 64 → 10 head: inside the bound, and not degenerate.
        assert!(a.iter().all(|w| w.abs() < 0.125));
        let mean_square = a.iter().map(|w| w * w).sum::<f32>() / a.len() as f32;
        // The variance of U(−b, b) is b²/3 = 0.0052; 640 draws land well within ±40 %.
        assert!((0.0031..0.0073).contains(&mean_square), "{mean_square}");
    }

    fn check(spec: ModelSpec, channels: usize, size: usize, params: usize) {
        let device = Device::flex().autodiff();
        let model = spec.init(channels, &device, 0);
        assert_eq!(
            model.trainable_params(),
            params,
            "{spec:?} on {channels} channels"
        );
        let logits = model.forward(Tensor::zeros([2, channels, size, size], &device));
        assert_eq!(logits.dims(), [2, 10]);
    }

    // Counts by hand (BN running statistics are buffers, not parameters):
    // small CNN: 3·32·9 + 2·32 + 32·64·9 + 2·64 + 64·64·9 + 2·64 + 64·10 + 10 = 57,130.
    #[test]
    fn small_cnn() {
        check(ModelSpec::SmallCnn, 3, 32, 57_130);
        check(ModelSpec::SmallCnn, 1, 28, 57_130 - 2 * 32 * 9);
    }

    // ResNet-20: stem 3·16·9 + 32; per stage six 3×3 convs with BN; fc 64·10 + 10 = 269,722.
    #[test]
    fn resnet20() {
        check(ModelSpec::Resnet20, 3, 32, 269_722);
        check(ModelSpec::Resnet20, 1, 28, 269_722 - 2 * 16 * 9);
    }

    // VGG-16: 13 convs with bias (14,710,464 weights + 4,224 biases) + BN (8,448) + 5,130.
    #[test]
    fn vgg16() {
        check(ModelSpec::Vgg16, 3, 32, 14_728_266);
        check(ModelSpec::Vgg16, 1, 28, 14_728_266 - 2 * 64 * 9);
    }
}
