//! The trained networks as one Burn module, and building them from a `ModelSpec`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

use super::{ModelSpec, ResNet20, SmallCnn, Vgg16, common};

impl ModelSpec {
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
