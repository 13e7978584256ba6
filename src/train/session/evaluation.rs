//! Evaluation: a model's mean loss and accuracy on a held-out set.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor};

use super::{TrainError, read, yield_to_browser};
use crate::data::ImageSet;
use crate::data::batch::{Normalization, make_batch};
use crate::model::Model;

/// Mean cross-entropy and the number of correct predictions, as one [2] tensor.
pub(super) fn loss_and_correct(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<1>) {
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits.clone(), labels.clone());
    let correct = logits
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(labels)
        .int()
        .sum()
        .float();
    let stats = Tensor::cat(vec![loss.clone().detach(), correct], 0);
    (loss, stats)
}

/// Mean test loss and accuracy, without gradients and with batch norm in inference mode.
pub(super) async fn evaluate(
    model: &Model,
    set: &ImageSet,
    normalization: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64), TrainError> {
    let model = model.valid();
    let inner = device.clone().without_autodiff();
    let indices: Vec<usize> = (0..set.len()).collect();
    let chunks: Vec<&[usize]> = indices.chunks(batch_size).collect();
    // Every batch queued, then one read of all their [loss, correct] pairs.
    let mut stats = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let batch = make_batch(set, chunk, normalization, None, &inner);
        stats.push(loss_and_correct(model.forward(batch.images), batch.labels).1);
        yield_to_browser().await;
    }
    let stats = read(Tensor::cat(stats, 0)).await?;
    let (mut loss_sum, mut correct) = (0.0, 0.0);
    for (chunk, pair) in chunks.iter().zip(stats.chunks(2)) {
        loss_sum += f64::from(pair[0]) * chunk.len() as f64;
        correct += f64::from(pair[1]);
    }
    let n = set.len().max(1) as f64;
    Ok((loss_sum / n, correct / n))
}
