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

/// A training and a test split, and a validation split carved from the training set (see
/// `Splits::subset`).
#[derive(Clone, Debug, PartialEq)]
pub struct Splits {
    pub train: ImageSet,
    pub val: Option<ImageSet>,
    pub test: ImageSet,
}

/// How many images each split keeps (`None`: all; no validation split).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubsetSizes {
    pub train: Option<usize>,
    pub val: Option<usize>,
    pub test: Option<usize>,
}

/// The datasets the runner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    Cifar10,
    FashionMnist,
}

impl Dataset {
    /// The official training and test set sizes.
    pub fn official_sizes(self) -> (usize, usize) {
        match self {
            Dataset::Cifar10 => (50_000, 10_000),
            Dataset::FashionMnist => (60_000, 10_000),
        }
    }

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

    /// Two splits without a validation split.
    pub fn new(train: ImageSet, test: ImageSet) -> Self {
        Splits {
            train,
            val: None,
            test,
        }
    }

    /// Class-balanced subsets of both splits (`None`: keep the split whole), after carving a
    /// class-balanced validation split of `sizes.val` images out of the training set: the
    /// training subset is chosen from the images left, so the two never share an image.
    pub fn subset(&self, sizes: SubsetSizes, seed: u64) -> Result<Splits, String> {
        let pick = |set: &ImageSet, size: Option<usize>, what: &str| match size {
            Some(size) => {
                batch::balanced_subset(set, size, seed).map_err(|e| format!("{what} subset: {e}"))
            }
            None => Ok(set.clone()),
        };
        let (val, train) = match sizes.val {
            Some(size) => {
                let (val, rest) = batch::balanced_split(&self.train, size, seed)
                    .map_err(|e| format!("validation split: {e}"))?;
                (Some(val), rest)
            }
            None => (self.val.clone(), self.train.clone()),
        };
        Ok(Splits {
            train: pick(&train, sizes.train, "training")?,
            val,
            test: pick(&self.test, sizes.test, "test")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: ImageShape = ImageShape {
        channels: 1,
        height: 1,
        width: 2,
    };

    /// `n` images, 10 classes in turn, each image's two bytes its index: every image unique.
    fn numbered(n: usize) -> ImageSet {
        ImageSet {
            shape: SHAPE,
            images: (0..n)
                .flat_map(|i| [(i % 256) as u8, (i / 256) as u8])
                .collect(),
            labels: (0..n).map(|i| (i % CLASSES) as u8).collect(),
        }
    }

    fn ids(set: &ImageSet) -> Vec<usize> {
        (0..set.len())
            .map(|i| {
                let image = set.image(i);
                usize::from(image[0]) + 256 * usize::from(image[1])
            })
            .collect()
    }

    #[test]
    fn the_validation_split_is_balanced_and_disjoint_from_the_training_images() {
        let splits = Splits::new(numbered(600), numbered(50));
        let sizes = SubsetSizes {
            train: Some(300),
            val: Some(105),
            test: Some(20),
        };
        let subset = splits.subset(sizes, 3).unwrap();
        let val = subset.val.as_ref().unwrap();
        assert_eq!(val.len(), 105);
        // 105 over 10 classes: 11 for the first five, 10 for the rest.
        assert_eq!(val.class_counts(), [11, 11, 11, 11, 11, 10, 10, 10, 10, 10]);
        assert_eq!(subset.train.class_counts(), [30; CLASSES]);
        assert_eq!(subset.test.len(), 20);
        let (val_ids, train_ids) = (ids(val), ids(&subset.train));
        assert!(val_ids.iter().all(|id| !train_ids.contains(id)));
        // Each image keeps its own label: the split moved images, not bytes.
        for (set, ids) in [(val, &val_ids), (&subset.train, &train_ids)] {
            assert!(
                ids.iter()
                    .zip(&set.labels)
                    .all(|(id, &l)| id % CLASSES == usize::from(l))
            );
        }
        // The same seed, the same split; another seed, another one.
        assert_eq!(splits.subset(sizes, 3).unwrap(), subset);
        assert_ne!(
            ids(splits.subset(sizes, 4).unwrap().val.as_ref().unwrap()),
            val_ids
        );

        // The whole rest trains when no training size is given.
        let all_rest = splits
            .subset(
                SubsetSizes {
                    train: None,
                    ..sizes
                },
                3,
            )
            .unwrap();
        assert_eq!(all_rest.train.len(), 600 - 105);
        assert_eq!(all_rest.val, subset.val);

        // Without a validation split, the training subset is what it always was.
        let plain = splits
            .subset(SubsetSizes { val: None, ..sizes }, 3)
            .unwrap();
        assert_eq!(plain.val, None);
        assert_eq!(
            plain.train,
            batch::balanced_subset(&splits.train, 300, 3).unwrap()
        );
    }

    #[test]
    fn a_validation_split_too_large_is_refused() {
        let splits = Splits::new(numbered(100), numbered(10));
        let err = |val: usize| {
            splits
                .subset(
                    SubsetSizes {
                        val: Some(val),
                        ..SubsetSizes::default()
                    },
                    0,
                )
                .unwrap_err()
        };
        assert!(
            err(100).contains("leave none of the 100 for training"),
            "{}",
            err(100)
        );
        // 95 images leave one of each of classes 5–9; a training subset of 4 wants one of each
        // of classes 0–3.
        let short = splits
            .subset(
                SubsetSizes {
                    train: Some(4),
                    val: Some(95),
                    test: None,
                },
                0,
            )
            .unwrap_err();
        assert!(short.starts_with("training subset: class"), "{short}");
        assert!(err(1001).contains("validation split"), "{}", err(1001));
    }
}
