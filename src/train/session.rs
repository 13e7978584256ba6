//! A training session: the arms, the data and where in the run we are.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use web_time::{Duration, Instant};

use super::{
    ArmLr, ArmSpec, DivergedRecord, EpochRecord, ExperimentSpec, Record, RunInfo, StepRecord,
    StoppedRecord,
};
use crate::data::batch::{
    Augmentation, Batch, Normalization, Purpose, epoch_order, make_batch, rng,
};
use crate::data::{ImageSet, Splits};
use crate::model::Model;
use crate::optim::{Schedule, SharedSchedule, UpdateSize, scale_update};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("the device failed: {0}")]
    Device(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Data(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ArmStatus {
    Running,
    /// Stopped at this step because its loss was not finite.
    Diverged {
        step: u64,
    },
    /// Stopped before this step although its own loss was finite: a matched arm whose target
    /// stopped, or whose unscaled update was not finite.
    Stopped {
        step: u64,
    },
}

/// Sums over the current epoch.
#[derive(Clone, Debug, Default)]
struct EpochTotals {
    loss_sum: f64,
    correct: f64,
    seen: usize,
    busy: Duration,
}

struct Arm {
    spec: ArmSpec,
    /// Taken out while the optimizer consumes it; always present between steps.
    model: Option<Model>,
    optimizer: ModuleOptimizer,
    exponent: Option<SharedSchedule>,
    update_size: UpdateSize,
    status: ArmStatus,
    step: u64,
    totals: EpochTotals,
}

/// Everything needed to continue a run from an epoch boundary.
#[derive(Debug)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: u64,
    pub arms: Vec<ArmCheckpoint>,
}

#[derive(Debug)]
pub struct ArmCheckpoint {
    pub name: String,
    pub status: ArmStatus,
    pub step: u64,
    /// Burnpack bytes of the model and of the optimizer state.
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
}

pub struct Session {
    spec: ExperimentSpec,
    seed: u64,
    data: Splits,
    normalization: Normalization,
    device: Device,
    arms: Vec<Arm>,
    /// The order arms step in within a batch: every matched arm after the arm it matches.
    step_order: Vec<usize>,
    steps_per_epoch: u64,
    /// Epochs completed.
    epoch: u64,
    /// Batches done in the current epoch.
    batch: u64,
    order: Vec<usize>,
    augment_rng: ChaCha8Rng,
    epoch_started: Instant,
}

fn device_error(e: impl std::fmt::Debug) -> TrainError {
    TrainError::Device(format!("{e:?}"))
}

/// Reads a small float tensor back, asynchronously (synchronous reads panic on WebGPU).
async fn read(tensor: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data_async()
        .await
        .map_err(device_error)?
        .try_to_vec::<f32>()
        .map_err(device_error)
}

/// Mean cross-entropy and the number of correct predictions, as one [2] tensor.
fn loss_and_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> (Tensor<1>, Tensor<1>) {
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

impl Session {
    /// A new run of `spec` with `seed`, on `data` (already subset). `device` must support autodiff.
    pub fn new(
        spec: ExperimentSpec,
        seed: u64,
        data: Splits,
        device: Device,
    ) -> Result<Self, TrainError> {
        spec.validate()
            .map_err(|e| TrainError::Data(format!("experiment: {e}")))?;
        if data.train.is_empty() || data.test.is_empty() {
            return Err(TrainError::Data(
                "the training and test sets must both hold images".into(),
            ));
        }
        data.check_shapes().map_err(TrainError::Data)?;
        spec.model
            .check_input(data.train.shape)
            .map_err(TrainError::Data)?;
        let steps_per_epoch = data.train.len().div_ceil(spec.batch_size) as u64;
        let arms = spec
            .arms
            .iter()
            .map(|arm_spec| {
                let built = arm_spec.optimizer.build(steps_per_epoch);
                built.update_size.track();
                // The seed fixes the weights: every arm starts from the very same values.
                let model = spec.model.init(data.train.shape.channels, &device, seed);
                Arm {
                    spec: arm_spec.clone(),
                    model: Some(model),
                    optimizer: built.optimizer,
                    exponent: built.exponent,
                    update_size: built.update_size,
                    status: ArmStatus::Running,
                    step: 0,
                    totals: EpochTotals::default(),
                }
            })
            .collect();
        let normalization = Normalization::of(&data.train);
        // Validation allows no chains, so unmatched arms first, then matched ones, suffices.
        let (mut step_order, matched): (Vec<usize>, Vec<usize>) =
            (0..spec.arms.len()).partition(|&i| spec.arms[i].lr.target().is_none());
        step_order.extend(matched);
        Ok(Session {
            step_order,
            augment_rng: rng(seed, Purpose::Augment, 0),
            order: Vec::new(),
            spec,
            seed,
            data,
            normalization,
            device,
            arms,
            steps_per_epoch,
            epoch: 0,
            batch: 0,
            epoch_started: Instant::now(),
        })
    }

    /// The header record of this run's result file.
    pub fn run_info(&self, backend: &str) -> RunInfo {
        RunInfo {
            experiment: self.spec.clone(),
            seed: self.seed,
            backend: backend.to_owned(),
            steps_per_epoch: self.steps_per_epoch,
            train_images: self.data.train.len(),
            test_images: self.data.test.len(),
        }
    }

    pub fn spec(&self) -> &ExperimentSpec {
        &self.spec
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> u64 {
        self.epoch
    }

    /// Optimizer steps done by the session (per arm, for arms still running).
    pub fn steps_done(&self) -> u64 {
        self.epoch * self.steps_per_epoch + self.batch
    }

    pub fn total_steps(&self) -> u64 {
        self.spec.epochs * self.steps_per_epoch
    }

    pub fn is_finished(&self) -> bool {
        self.epoch >= self.spec.epochs || self.arms.iter().all(|a| a.status != ArmStatus::Running)
    }

    pub fn arm_names(&self) -> Vec<&str> {
        self.arms.iter().map(|a| a.spec.name.as_str()).collect()
    }

    pub fn arm_status(&self, arm: usize) -> Option<ArmStatus> {
        self.arms.get(arm).map(|a| a.status)
    }

    /// Replaces the exponent schedule of the arm named `arm` from the next step on (the page's
    /// sliders). Arms are addressed by name, which is unique and fixed for the run, never by
    /// position. Returns false when the arm has no exponent (SGDM) or does not exist.
    pub fn set_exponent(&mut self, arm: &str, schedule: Schedule) -> bool {
        match self
            .arms
            .iter()
            .find(|a| a.spec.name == arm)
            .and_then(|a| a.exponent.as_ref())
        {
            Some(handle) => {
                handle.set(schedule);
                true
            }
            None => false,
        }
    }

    /// Every trained parameter of the arm named `arm`, flattened in visiting order.
    #[cfg(test)]
    pub(crate) fn flat_parameters(&self, arm: &str) -> Vec<f32> {
        use burn::module::{ModuleVisitor, Param};
        struct Flatten(Vec<f32>);
        impl ModuleVisitor for Flatten {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val();
                if value.is_require_grad() {
                    self.0.extend(value.into_data().iter::<f32>());
                }
            }
        }
        let arm = self.arms.iter().find(|a| a.spec.name == arm).unwrap();
        let mut flatten = Flatten(Vec::new());
        arm.model.as_ref().unwrap().visit(&mut flatten);
        flatten.0
    }

    fn batch_indices(&self) -> std::ops::Range<usize> {
        let start = self.batch as usize * self.spec.batch_size;
        start..(start + self.spec.batch_size).min(self.data.train.len())
    }

    /// One batch for every running arm; at the end of an epoch also the evaluation.
    pub async fn step(&mut self) -> Result<Vec<Record>, TrainError> {
        if self.is_finished() {
            return Ok(Vec::new());
        }
        if self.batch == 0 {
            self.order = epoch_order(self.data.train.len(), self.seed, self.epoch);
            self.augment_rng = rng(self.seed, Purpose::Augment, self.epoch);
            self.epoch_started = Instant::now();
            for arm in &mut self.arms {
                arm.totals = EpochTotals::default();
            }
        }
        let indices: Vec<usize> = self.order[self.batch_indices()].to_vec();
        let augmentation = self.spec.augment.then_some(Augmentation::CIFAR);
        let batch = make_batch(
            &self.data.train,
            &indices,
            &self.normalization,
            augmentation.map(|a| (a, &mut self.augment_rng)),
            &self.device,
        );
        let epoch = self.epoch + 1;
        let mut records: Vec<Record> = Vec::new();
        for &i in &self.step_order {
            let arm = &mut self.arms[i];
            if arm.status != ArmStatus::Running {
                continue;
            }
            let rate = match &arm.spec.lr {
                ArmLr::Schedule(schedule) => {
                    Rate::Scheduled(schedule.value(arm.step + 1, self.steps_per_epoch))
                }
                ArmLr::Matched { match_update_of } => {
                    // The target stepped earlier in this batch: its record of this step holds
                    // the size to match; no record means it has stopped.
                    let target_rms = records.iter().find_map(|r| match r {
                        Record::Step(s) if &s.arm == match_update_of => s.update_rms,
                        _ => None,
                    });
                    match target_rms {
                        Some(rms) => Rate::Matched(rms),
                        None => {
                            records.push(arm.stop(
                                epoch,
                                format!(
                                    "the arm it matches, '{match_update_of}', stopped training, \
                                     so there is no update size to match"
                                ),
                            ));
                            continue;
                        }
                    }
                }
            };
            records.push(arm.train_step(&batch, epoch, rate).await?);
            yield_to_browser().await;
        }
        self.batch += 1;
        if self.batch == self.steps_per_epoch {
            records.extend(self.finish_epoch().await?);
        }
        Ok(records)
    }

    async fn finish_epoch(&mut self) -> Result<Vec<Record>, TrainError> {
        let mut evaluated = Vec::new();
        for arm in &self.arms {
            // A diverged arm reports nothing more.
            if arm.status != ArmStatus::Running {
                evaluated.push(None);
                continue;
            }
            let model = arm.model.as_ref().expect("model present between steps");
            let (loss, accuracy) = evaluate(
                model,
                &self.data.test,
                &self.normalization,
                self.spec.batch_size,
                &self.device,
            )
            .await?;
            evaluated.push(Some((loss, accuracy)));
        }
        let wall = self.epoch_started.elapsed().as_secs_f64();
        self.epoch += 1;
        self.batch = 0;
        Ok(self
            .arms
            .iter()
            .zip(evaluated)
            .filter_map(|(arm, eval)| {
                let (test_loss, test_accuracy) = eval?;
                let t = &arm.totals;
                let seen = t.seen.max(1) as f64;
                Some(Record::Epoch(EpochRecord {
                    arm: arm.spec.name.clone(),
                    epoch: self.epoch,
                    step: arm.step,
                    train_loss: t.loss_sum / seen,
                    train_accuracy: t.correct / seen,
                    test_loss,
                    test_accuracy,
                    wall_seconds: wall,
                    images_per_second: t.seen as f64 / t.busy.as_secs_f64().max(1e-9),
                }))
            })
            .collect())
    }

    /// The state at an epoch boundary; `None` mid-epoch.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, TrainError> {
        if self.batch != 0 {
            return Ok(None);
        }
        let arms = self
            .arms
            .iter()
            .map(|arm| {
                let model = arm.model.as_ref().expect("model present between steps");
                let model_bytes = model
                    .clone()
                    .into_record()
                    .into_bytes()
                    .map_err(|e| TrainError::Checkpoint(format!("{e:?}")))?;
                let optimizer_bytes = arm
                    .optimizer
                    .into_bytes()
                    .map_err(|e| TrainError::Checkpoint(format!("{e:?}")))?;
                Ok(ArmCheckpoint {
                    name: arm.spec.name.clone(),
                    status: arm.status,
                    step: arm.step,
                    model: model_bytes.to_vec(),
                    optimizer: optimizer_bytes.to_vec(),
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(Some(Checkpoint {
            epoch: self.epoch,
            arms,
        }))
    }

    /// Continues from a checkpoint taken by a session of the same spec, seed and data.
    pub fn restore(&mut self, checkpoint: Checkpoint) -> Result<(), TrainError> {
        if checkpoint.arms.len() != self.arms.len() {
            return Err(TrainError::Checkpoint(format!(
                "it holds {} arms, the experiment has {}",
                checkpoint.arms.len(),
                self.arms.len()
            )));
        }
        for (arm, saved) in self.arms.iter_mut().zip(checkpoint.arms) {
            if saved.name != arm.spec.name {
                return Err(TrainError::Checkpoint(format!(
                    "arm '{}' found where the experiment has '{}'",
                    saved.name, arm.spec.name
                )));
            }
            let bad = |what: &str, e: &dyn std::fmt::Debug| {
                TrainError::Checkpoint(format!("arm '{}': unreadable {what}: {e:?}", saved.name))
            };
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(saved.model))
                .map_err(|e| bad("model", &e))?;
            // Load into the arm's own (freshly built) model; a clone shares its tensors, so a
            // failed load leaves the arm as it was.
            let model = arm
                .model
                .clone()
                .expect("model present between steps")
                .try_load_record(record)
                .map_err(|e| bad("model", &e))?;
            let built = arm.spec.optimizer.build(self.steps_per_epoch);
            built.update_size.track();
            arm.update_size = built.update_size;
            arm.optimizer = built
                .optimizer
                .from_bytes(Bytes::from_bytes_vec(saved.optimizer))
                .map_err(|e| bad("optimizer state", &e))?;
            arm.exponent = built.exponent;
            arm.model = Some(model);
            arm.status = saved.status;
            arm.step = saved.step;
        }
        self.epoch = checkpoint.epoch;
        self.batch = 0;
        Ok(())
    }
}

/// Where an arm's learning rate for a step comes from.
#[derive(Clone, Copy, Debug)]
enum Rate {
    Scheduled(f64),
    /// Whatever rate gives an update of this RMS (the target arm's, at the same step).
    Matched(f64),
}

impl Arm {
    /// Stops the arm before its next step, saying why.
    fn stop(&mut self, epoch: u64, reason: String) -> Record {
        let step = self.step + 1;
        self.status = ArmStatus::Stopped { step };
        Record::Stopped(StoppedRecord {
            arm: self.spec.name.clone(),
            epoch,
            step,
            reason,
        })
    }

    async fn train_step(
        &mut self,
        batch: &Batch,
        epoch: u64,
        rate: Rate,
    ) -> Result<Record, TrainError> {
        let started = Instant::now();
        let step = self.step + 1;
        let model = self.model.take().expect("model present between steps");
        let logits = model.forward(batch.images.clone());
        let (loss, stats) = loss_and_correct(logits, batch.labels.clone());
        // A matched arm steps at lr 1 and is then scaled to the target's size, which takes its
        // own unscaled size: known after the one read below.
        let lr = match rate {
            Rate::Scheduled(lr) => lr,
            Rate::Matched(_) => 1.0,
        };
        let p = self.exponent.as_ref().map(|e| e.value(step));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // The weights before the update stay the arm's if the step turns out to have diverged
        // (a clone shares the tensors).
        let before = model.clone();
        let updated = self.optimizer.step(lr, model, grads);
        // One read per step: loss, correct count and Σ(Δθ)² together, after the update is queued.
        let update = self.update_size.take();
        let mut values = vec![stats.without_autodiff()];
        values.extend(update.as_ref().map(|(squares, _)| squares.clone()));
        let values = match read(Tensor::cat(values, 0)).await {
            Ok(values) => values,
            Err(e) => {
                self.model = Some(before);
                return Err(e);
            }
        };
        let (loss_value, correct) = (f64::from(values[0]), f64::from(values[1]));
        if !loss_value.is_finite() {
            self.model = Some(before);
            self.status = ArmStatus::Diverged { step };
            return Ok(Record::Diverged(DivergedRecord {
                arm: self.spec.name.clone(),
                epoch,
                step,
                loss: loss_value.to_string(),
            }));
        }
        let mut update_rms =
            update.map(|(_, elements)| (f64::from(values[2]) / elements.max(1) as f64).sqrt());
        let (updated, lr) = match (rate, update_rms) {
            (Rate::Scheduled(_), _) => (updated, lr),
            (Rate::Matched(target), Some(unscaled)) if unscaled.is_finite() => {
                // No update of its own (a zero gradient) cannot be scaled to any size.
                let scale = if unscaled > 0.0 {
                    target / unscaled
                } else {
                    0.0
                };
                update_rms = Some(unscaled * scale);
                (scale_update(&before, updated, scale), scale)
            }
            (Rate::Matched(_), unscaled) => {
                self.model = Some(before);
                return Ok(self.stop(
                    epoch,
                    format!("its update at lr 1 has no finite size ({unscaled:?}) to scale"),
                ));
            }
        };
        self.model = Some(updated);
        self.step = step;
        let n = batch.labels.dims()[0];
        self.totals.loss_sum += loss_value * n as f64;
        self.totals.correct += correct;
        self.totals.seen += n;
        self.totals.busy += started.elapsed();
        Ok(Record::Step(StepRecord {
            arm: self.spec.name.clone(),
            step,
            epoch,
            loss: loss_value,
            p,
            lr,
            update_rms,
        }))
    }
}

/// In the browser, lets the page paint and handle input between pieces of work: on the CPU
/// backend one arm's step is synchronous work of up to a second. Natively it does nothing.
async fn yield_to_browser() {
    #[cfg(target_arch = "wasm32")]
    gloo_timers::future::sleep(Duration::ZERO).await;
}

/// Mean test loss and accuracy, without gradients and with batch norm in inference mode.
async fn evaluate(
    model: &Model,
    set: &ImageSet,
    normalization: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64), TrainError> {
    let model = model.valid();
    let inner = device.clone().without_autodiff();
    let (mut loss_sum, mut correct) = (0.0, 0.0);
    let indices: Vec<usize> = (0..set.len()).collect();
    for chunk in indices.chunks(batch_size) {
        let batch = make_batch(set, chunk, normalization, None, &inner);
        let (_, stats) = loss_and_correct(model.forward(batch.images), batch.labels);
        let stats = read(stats).await?;
        loss_sum += f64::from(stats[0]) * chunk.len() as f64;
        correct += f64::from(stats[1]);
        yield_to_browser().await;
    }
    let n = set.len().max(1) as f64;
    Ok((loss_sum / n, correct / n))
}
