//! Datasets in their official binary formats, held as raw bytes until a batch is made:
//! CIFAR-10 (binary batches, or the official .tar.gz) and IDX (Fashion-MNIST).

pub mod batch;
pub mod cifar;
pub mod idx;

use serde::{Deserialize, Serialize};

/// What went wrong reading a dataset, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl DataError {
    pub fn invalid(file: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::Invalid {
            file: file.into(),
            message: message.into(),
        }
    }

    pub fn io(file: impl Into<String>, source: std::io::Error) -> Self {
        DataError::Io {
            file: file.into(),
            source,
        }
    }
}

/// Channels × height × width of every image in a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub const CIFAR: ImageShape = ImageShape {
        channels: 3,
        height: 32,
        width: 32,
    };

    pub fn pixels(self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Images as bytes in channel planes (C × H × W each, CIFAR's own layout) with their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pub shape: ImageShape,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

/// The number of classes of every dataset here (CIFAR-10, Fashion-MNIST).
pub const CLASSES: usize = 10;

impl ImageSet {
    pub fn empty(shape: ImageShape) -> Self {
        ImageSet {
            shape,
            images: Vec::new(),
            labels: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.shape.pixels();
        &self.images[index * n..(index + 1) * n]
    }

    pub fn extend(&mut self, other: &ImageSet) {
        debug_assert_eq!(self.shape, other.shape);
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut out = ImageSet::empty(self.shape);
        out.images.reserve(indices.len() * self.shape.pixels());
        for &i in indices {
            out.images.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        out
    }

    /// How many images of each class.
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }
}

/// A training and a test split.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    pub train: ImageSet,
    pub test: ImageSet,
}

/// The datasets the runner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Cifar10,
    FashionMnist,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }
}

impl Splits {
    /// Both splits hold images of one shape (a model takes one input size).
    pub fn check_shapes(&self) -> Result<(), String> {
        let (train, test) = (self.train.shape, self.test.shape);
        if train != test {
            return Err(format!(
                "test images are {}×{}×{} but training images are {}×{}×{} (channels × height × width); both splits must match",
                test.channels, test.height, test.width, train.channels, train.height, train.width
            ));
        }
        Ok(())
    }

    /// Class-balanced subsets of both splits (`None`: keep the split whole).
    pub fn subset(
        &self,
        train_size: Option<usize>,
        test_size: Option<usize>,
        seed: u64,
    ) -> Result<Splits, String> {
        let pick = |set: &ImageSet, size: Option<usize>, what: &str| match size {
            Some(size) => {
                batch::balanced_subset(set, size, seed).map_err(|e| format!("{what} subset: {e}"))
            }
            None => Ok(set.clone()),
        };
        Ok(Splits {
            train: pick(&self.train, train_size, "training")?,
            test: pick(&self.test, test_size, "test")?,
        })
    }
}
