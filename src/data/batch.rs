//! From bytes to training batches: per-channel normalisation, class-balanced subsets, seeded
//! batch order and seeded augmentation (random crop with padding, horizontal flip).
//!
//! Every random choice is drawn from a ChaCha stream keyed by (seed, purpose, epoch), so an
//! epoch's order and augmentation depend on nothing but the seed and the epoch number: a resumed
//! run sees exactly the batches an uninterrupted one would.

#[cfg(feature = "train")]
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{CLASSES, ImageSet, ImageShape};

/// What a random stream is used for; each gets its own stream per epoch.
#[derive(Clone, Copy)]
pub enum Purpose {
    Subset = 1,
    Order = 2,
    Augment = 3,
    Init = 4,
    Validation = 5,
}

/// The random stream for (seed, purpose, epoch).
pub fn rng(seed: u64, purpose: Purpose, epoch: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((purpose as u64) << 48) ^ epoch);
    rng
}

/// Per-channel mean and standard deviation, in units of the [0, 1] pixel scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Statistics of a (training) set.
    pub fn of(set: &ImageSet) -> Self {
        let ImageShape {
            channels,
            height,
            width,
        } = set.shape;
        let plane = height * width;
        let mut sum = vec![0f64; channels];
        let mut sum_sq = vec![0f64; channels];
        for image in set.images.chunks_exact(set.shape.pixels()) {
            for (c, pixels) in image.chunks_exact(plane).enumerate() {
                for &p in pixels {
                    let v = f64::from(p) / 255.0;
                    sum[c] += v;
                    sum_sq[c] += v * v;
                }
            }
        }
        let n = (set.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(sq, m)| ((sq / n - m * m).max(0.0).sqrt().max(1e-6)) as f32)
            .collect();
        Normalization {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }
}

/// A class-balanced subset of `size` images: ⌊size/10⌋ per class, the remainder to the first
/// classes, chosen by a seeded shuffle. Errors when a class has too few images.
pub fn balanced_subset(set: &ImageSet, size: usize, seed: u64) -> Result<ImageSet, String> {
    if size >= set.len() {
        return Ok(set.clone());
    }
    let chosen = balanced_indices(set, size, rng(seed, Purpose::Subset, 0))?;
    Ok(set.select(&chosen))
}

/// A class-balanced split of `size` images carved out of `set` (drawn as `balanced_subset`
/// draws, from a stream of its own), and the images left: (split, rest), both in the set's
/// order and disjoint. Errors when a class has too few images or nothing would be left.
pub fn balanced_split(
    set: &ImageSet,
    size: usize,
    seed: u64,
) -> Result<(ImageSet, ImageSet), String> {
    if size >= set.len() {
        return Err(format!(
            "{size} images would leave none of the {} for training",
            set.len()
        ));
    }
    let chosen = balanced_indices(set, size, rng(seed, Purpose::Validation, 0))?;
    let mut taken = vec![false; set.len()];
    for &i in &chosen {
        taken[i] = true;
    }
    let rest: Vec<usize> = (0..set.len()).filter(|&i| !taken[i]).collect();
    Ok((set.select(&chosen), set.select(&rest)))
}

/// The sorted indices of a class-balanced choice of `size` images of `set`.
fn balanced_indices(
    set: &ImageSet,
    size: usize,
    mut rng: ChaCha8Rng,
) -> Result<Vec<usize>, String> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); CLASSES];
    for (i, &label) in set.labels.iter().enumerate() {
        by_class[usize::from(label)].push(i);
    }
    let mut chosen = Vec::with_capacity(size);
    for (class, indices) in by_class.iter_mut().enumerate() {
        let want = size / CLASSES + usize::from(class < size % CLASSES);
        if indices.len() < want {
            return Err(format!(
                "class {class} has {} images, fewer than the {want} a balanced subset of {size} needs",
                indices.len()
            ));
        }
        indices.shuffle(&mut rng);
        chosen.extend_from_slice(&indices[..want]);
    }
    // Keep the original order so the subset does not depend on class order.
    chosen.sort_unstable();
    Ok(chosen)
}

/// The order in which an epoch visits the training set.
pub fn epoch_order(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut rng(seed, Purpose::Order, epoch));
    order
}

/// Standard CIFAR augmentation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Zero padding on each side before a random crop back to the original size (0: no crop).
    pub crop_padding: usize,
    pub horizontal_flip: bool,
}

impl Augmentation {
    pub const NONE: Augmentation = Augmentation {
        crop_padding: 0,
        horizontal_flip: false,
    };
    pub const CIFAR: Augmentation = Augmentation {
        crop_padding: 4,
        horizontal_flip: true,
    };

    /// Writes an augmented copy of `image` into `out` (same shape): a shift by (dy, dx) in
    /// [−padding, padding] with zeros coming in, and a flip with probability ½.
    pub fn apply(&self, image: &[u8], shape: ImageShape, rng: &mut impl Rng, out: &mut [u8]) {
        let pad = self.crop_padding as i32;
        let (dy, dx) = if pad > 0 {
            (
                rng.random_range(-pad..=pad) as isize,
                rng.random_range(-pad..=pad) as isize,
            )
        } else {
            (0, 0)
        };
        let flip = self.horizontal_flip && rng.random_bool(0.5);
        let (h, w) = (shape.height as isize, shape.width as isize);
        for c in 0..shape.channels {
            let plane = c * shape.height * shape.width;
            for y in 0..h {
                for x in 0..w {
                    let (sy, sx) = (y + dy, if flip { w - 1 - x } else { x } + dx);
                    let value = if (0..h).contains(&sy) && (0..w).contains(&sx) {
                        image[plane + (sy * w + sx) as usize]
                    } else {
                        0
                    };
                    out[plane + (y * w + x) as usize] = value;
                }
            }
        }
    }
}

/// A batch on a device: normalised images [B, C, H, W] and class labels [B].
#[cfg(feature = "train")]
#[derive(Clone, Debug)]
pub struct Batch {
    pub images: Tensor<4>,
    pub labels: Tensor<1, Int>,
}

/// Builds the batch of `indices` from `set`, augmenting when an RNG is given.
#[cfg(feature = "train")]
pub fn make_batch(
    set: &ImageSet,
    indices: &[usize],
    normalization: &Normalization,
    augment: Option<(Augmentation, &mut ChaCha8Rng)>,
    device: &Device,
) -> Batch {
    let shape = set.shape;
    let n = shape.pixels();
    let plane = shape.height * shape.width;
    let mut floats = Vec::with_capacity(indices.len() * n);
    let mut scratch = vec![0u8; n];
    let mut augment = augment;
    for &i in indices {
        let image = match augment.as_mut() {
            Some((aug, rng)) => {
                aug.apply(set.image(i), shape, *rng, &mut scratch);
                &scratch[..]
            }
            None => set.image(i),
        };
        for (c, pixels) in image.chunks_exact(plane).enumerate() {
            let (mean, std) = (normalization.mean[c], normalization.std[c]);
            floats.extend(pixels.iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
        }
    }
    let labels: Vec<i64> = indices.iter().map(|&i| i64::from(set.labels[i])).collect();
    let b = indices.len();
    Batch {
        images: Tensor::from_data(
            TensorData::new(floats, [b, shape.channels, shape.height, shape.width]),
            device,
        ),
        labels: Tensor::from_data(TensorData::new(labels, [b]), device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(labels: &[u8], shape: ImageShape) -> ImageSet {
        let images = (0..labels.len() * shape.pixels())
            .map(|i| (i % 251) as u8)
            .collect();
        ImageSet {
            shape,
            images,
            labels: labels.to_vec(),
        }
    }

    const TINY: ImageShape = ImageShape {
        channels: 2,
        height: 3,
        width: 3,
    };

    #[test]
    fn normalization_matches_hand_computed_stats() {
        // Channel 0 all 0 and 255 alternating images → mean ½, std ½; channel 1 constant 51.
        let mut set = ImageSet::empty(ImageShape {
            channels: 2,
            height: 1,
            width: 2,
        });
        set.images = vec![0, 0, 51, 51, 255, 255, 51, 51];
        set.labels = vec![0, 1];
        let norm = Normalization::of(&set);
        assert!((norm.mean[0] - 0.5).abs() < 1e-6 && (norm.std[0] - 0.5).abs() < 1e-6);
        assert!((norm.mean[1] - 0.2).abs() < 1e-6, "{norm:?}");
    }

    #[test]
    fn balanced_subset_takes_equal_shares() {
        let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
        let set = set_of(&labels, TINY);
        let sub = balanced_subset(&set, 43, 7).unwrap();
        assert_eq!(sub.len(), 43);
        let counts = sub.class_counts();
        assert_eq!(&counts[..3], &[5, 5, 5]);
        assert_eq!(&counts[3..], &[4; 7]);
        assert_eq!(sub, balanced_subset(&set, 43, 7).unwrap());
        assert_ne!(sub, balanced_subset(&set, 43, 8).unwrap());
        // Three images from classes 0, 1 and 2: class 2 has none.
        let err = balanced_subset(&set_of(&[0, 0, 0, 1], TINY), 3, 0).unwrap_err();
        assert!(err.contains("class 2"), "{err}");
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 3, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(100, 3, 0));
        assert_ne!(a, epoch_order(100, 3, 1));
    }

    #[test]
    fn augmentation_shifts_with_zero_fill_and_flips() {
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 3,
        };
        let image = [1, 2, 3, 4, 5, 6];
        let mut out = [0u8; 6];
        let flip_only = Augmentation {
            crop_padding: 0,
            horizontal_flip: true,
        };
        // Over a few draws both the identity and the mirror image must appear, nothing else.
        let mut rng = rng(0, Purpose::Augment, 0);
        let (mut same, mut mirrored) = (false, false);
        for _ in 0..32 {
            flip_only.apply(&image, shape, &mut rng, &mut out);
            same |= out == image;
            mirrored |= out == [3, 2, 1, 6, 5, 4];
            assert!(out == image || out == [3, 2, 1, 6, 5, 4], "{out:?}");
        }
        assert!(same && mirrored);

        let crop = Augmentation {
            crop_padding: 1,
            horizontal_flip: false,
        };
        for _ in 0..32 {
            crop.apply(&image, shape, &mut rng, &mut out);
            // Every output pixel is either 0 (padding) or the source pixel shifted uniformly.
            let nonzero: Vec<u8> = out.iter().copied().filter(|&v| v != 0).collect();
            assert!(!nonzero.is_empty());
            assert!(nonzero.windows(2).all(|w| w[0] < w[1]), "{out:?}");
        }
    }
}
