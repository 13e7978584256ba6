//! The networks: a browser-sized CNN, ResNet-20 and VGG-16 (CIFAR variants). Each takes
//! [B, C, H, W] images (C = 3 for CIFAR-10, 1 for Fashion-MNIST) and returns [B, 10] logits.
//! `ModelSpec` is plain data (in every build, the lab page's included); the networks are Burn
//! modules (the `train` feature).

#[cfg(feature = "train")]
mod common;
#[cfg(feature = "train")]
mod conv;
#[cfg(feature = "train")]
mod flex;
#[cfg(feature = "train")]
mod network;
#[cfg(feature = "train")]
mod norm;
#[cfg(feature = "train")]
mod resnet;
#[cfg(feature = "train")]
mod small;
#[cfg(feature = "train")]
mod vgg;

use serde::{Deserialize, Serialize};

use crate::data::ImageShape;

#[cfg(feature = "train")]
pub use common::ConvLayer;
#[cfg(feature = "train")]
pub use conv::conv2d;
#[cfg(feature = "train")]
pub use flex::on_flex;
#[cfg(feature = "train")]
pub use network::Model;
#[cfg(feature = "train")]
pub use norm::batch_norm;
#[cfg(feature = "train")]
pub use resnet::ResNet20;
#[cfg(feature = "train")]
pub use small::SmallCnn;
#[cfg(feature = "train")]
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
    pub const ALL: [ModelSpec; 3] = [ModelSpec::SmallCnn, ModelSpec::Resnet20, ModelSpec::Vgg16];

    /// The name files, flags and the page's URL use.
    pub fn name(self) -> &'static str {
        match self {
            ModelSpec::SmallCnn => "small-cnn",
            ModelSpec::Resnet20 => "resnet20",
            ModelSpec::Vgg16 => "vgg16",
        }
    }

    pub fn parse(name: &str) -> Option<ModelSpec> {
        ModelSpec::ALL.into_iter().find(|m| m.name() == name)
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
}
