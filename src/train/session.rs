//! A training session: the arms, the data and where in the run we are.

use std::collections::VecDeque;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
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

/// An arm's sums over the current epoch so far: what its epoch record averages, and what a
/// checkpoint taken mid-epoch carries on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochTotals {
    pub loss_sum: f64,
    pub correct: f64,
    pub seen: usize,
    /// Seconds the arm's own steps took (a timing, not a result).
    pub busy_seconds: f64,
}

struct Arm {
    spec: ArmSpec,
    /// Taken out while the optimizer consumes it; always present between steps.
    model: Option<Model>,
    optimizer: ModuleOptimizer,
    exponent: Option<SharedSchedule>,
    update_size: UpdateSize,
    status: ArmStatus,
    /// Optimizer steps taken (queued included).
    step: u64,
    totals: EpochTotals,
    /// Steps queued on the device and not read yet: at most the previous and the current.
    pending: VecDeque<Pending>,
}

mod checkpoint;
mod evaluation;

pub use checkpoint::{ArmCheckpoint, ArmState, Checkpoint};
use evaluation::{evaluate, loss_and_correct};

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
    /// Told what each step is busy with (see `watch`).
    watcher: Option<Watcher>,
}

/// What a step is busy with: a page shows it while the device is slow (on WebGPU the run's
/// first step compiles every kernel, which can take a minute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// `arm`'s step on batch `step` of the run (from 1) is being queued: `position` of the
    /// `arms` still training.
    Stepping {
        arm: &'a str,
        position: usize,
        arms: usize,
        step: u64,
    },
    /// Waiting for the device to give back the queued steps' losses.
    Reading,
    /// `arm` is being evaluated on the test set at the end of `epoch` (from 1): `position` of
    /// the `arms` still training.
    Evaluating {
        arm: &'a str,
        position: usize,
        arms: usize,
        epoch: u64,
    },
}

type Watcher = Box<dyn FnMut(Progress<'_>) + Send>;

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
                    pending: VecDeque::new(),
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
            watcher: None,
        })
    }

    /// Calls `watcher` as each step and evaluation goes on (nothing else happens meanwhile).
    pub fn watch(&mut self, watcher: impl FnMut(Progress<'_>) + Send + 'static) {
        self.watcher = Some(Box::new(watcher));
    }

    fn tell(&mut self, progress: impl FnOnce(&Self) -> Progress<'_>) {
        if let Some(mut watcher) = self.watcher.take() {
            watcher(progress(self));
            self.watcher = Some(watcher);
        }
    }

    /// The 1-based position of arm `i` among the arms still training, and their number.
    fn running_position(&self, i: usize) -> (usize, usize) {
        let running: Vec<usize> = self
            .step_order
            .iter()
            .copied()
            .filter(|&j| self.arms[j].status == ArmStatus::Running)
            .collect();
        let position = running.iter().position(|&j| j == i).map_or(0, |p| p + 1);
        (position, running.len())
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
            val_images: self.data.val.as_ref().map_or(0, ImageSet::len),
            processor: None,
            arms: None,
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
        use burn::module::{Module, ModuleVisitor, Param};
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
        let mut all = Vec::new();
        self.step_reporting(|records| all.extend(records)).await?;
        Ok(all)
    }

    /// `step`, handing its records to `report` as soon as each is read rather than all at the
    /// end: on a slow device the run's first step gives its first arm's loss before the other
    /// arms have stepped (in the browser, the first sign of life comes sooner).
    pub async fn step_reporting(
        &mut self,
        mut report: impl FnMut(Vec<Record>),
    ) -> Result<(), TrainError> {
        if self.is_finished() {
            return Ok(());
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
        // The run's very first step is read at once, arm by arm: it holds the kernel
        // compilation, and each arm's loss is a sign of life (on a slow device a step later, or
        // after every arm, would be a long wait). An arm that a later one matches is read with
        // it: the matched arm scales by its update, in one read.
        let first = self.epoch == 0 && self.batch == 0;
        let mut records = Vec::new();
        let step_order = self.step_order.clone();
        for (position, &i) in step_order.iter().enumerate() {
            if self.arms[i].status != ArmStatus::Running {
                continue;
            }
            // A matched arm scales its update on the device by its target's size at this very
            // step: the target stepped earlier in this batch and its sum is still on the device.
            let rate = match &self.arms[i].spec.lr.clone() {
                ArmLr::Schedule(schedule) => {
                    Rate::Scheduled(schedule.value(self.arms[i].step + 1, self.steps_per_epoch))
                }
                ArmLr::Matched { match_update_of } => {
                    let target = self
                        .arms
                        .iter()
                        .position(|a| &a.spec.name == match_update_of)
                        .expect("validated: the target exists");
                    match self.arms[target].newest_update() {
                        Some(update) => Rate::Matched {
                            target,
                            update: Box::new(update),
                        },
                        None => {
                            records.push(self.arms[i].stop_before_next(
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
            self.tell(|s| {
                let (position, arms) = s.running_position(i);
                Progress::Stepping {
                    arm: &s.arms[i].spec.name,
                    position,
                    arms,
                    step: s.epoch * s.steps_per_epoch + s.batch + 1,
                }
            });
            self.arms[i].queue_step(&batch, epoch, rate);
            yield_to_browser().await;
            if first && !self.matched_later(&step_order[position + 1..]) {
                records.extend(self.settle(Settle::All).await?);
                report(std::mem::take(&mut records));
            }
        }
        // Reading the previous step's values only now lets the device work on this one
        // meanwhile: no arm waits on a read of its own step.
        records.extend(
            self.settle(if first {
                Settle::All
            } else {
                Settle::AllButNewest
            })
            .await?,
        );
        self.batch += 1;
        if self.batch == self.steps_per_epoch {
            records.extend(self.settle(Settle::All).await?);
            records.extend(self.finish_epoch().await?);
        }
        report(records);
        Ok(())
    }

    /// Whether one of the running arms `later` in this batch matches the update of an arm with
    /// a step not read yet.
    fn matched_later(&self, later: &[usize]) -> bool {
        later.iter().any(|&j| match &self.arms[j].spec.lr {
            _ if self.arms[j].status != ArmStatus::Running => false,
            ArmLr::Matched { match_update_of } => self
                .arms
                .iter()
                .any(|a| &a.spec.name == match_update_of && !a.pending.is_empty()),
            ArmLr::Schedule(_) => false,
        })
    }

    /// Reads the values of queued steps, for every arm in one read, and turns them into
    /// records in step order: a finite loss is a step record; a non-finite one stops the arm
    /// at that step, back on the weights before it, and drops its later queued step.
    async fn settle(&mut self, which: Settle) -> Result<Vec<Record>, TrainError> {
        let keep = match which {
            Settle::All => 0,
            Settle::AllButNewest => 1,
        };
        // (arm, offset of its values); one queued step per arm is settled per call.
        let mut layout = Vec::new();
        let mut parts = Vec::new();
        let mut offset = 0;
        for &i in &self.step_order {
            let arm = &self.arms[i];
            if arm.pending.len() > keep {
                let pending = &arm.pending[0];
                layout.push((i, offset));
                offset += pending.values_len;
                parts.push(pending.values.clone());
            }
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        self.tell(|_| Progress::Reading);
        let waited = Instant::now();
        let values = read(Tensor::cat(parts, 0)).await?;
        let share = waited.elapsed() / layout.len() as u32;
        let mut records: Vec<Record> = Vec::new();
        // Each arm's update size at the step settled here (`None`: it took no step), by arm
        // index. A matched arm's target comes earlier in step order, so its entry is in by then.
        let mut update_rms: Vec<Option<f64>> = vec![None; self.arms.len()];
        for (i, offset) in layout {
            let pending = self.arms[i].pending.pop_front().expect("laid out above");
            let mine = &values[offset..offset + pending.values_len];
            let rate = match pending.rate {
                StepRate::Scheduled(lr) => SettledRate::Scheduled(lr),
                StepRate::Matched { target } => SettledRate::Matched(MatchedTo {
                    name: self.arms[target].spec.name.clone(),
                    update_rms: update_rms[target],
                }),
            };
            let record = self.arms[i].settle_step(pending, mine, rate, share);
            update_rms[i] = match &record {
                Record::Step(step) => step.update_rms,
                _ => None,
            };
            records.push(record);
        }
        Ok(records)
    }

    async fn finish_epoch(&mut self) -> Result<Vec<Record>, TrainError> {
        let mut evaluated = Vec::new();
        let running = self
            .arms
            .iter()
            .filter(|a| a.status == ArmStatus::Running)
            .count();
        for i in 0..self.arms.len() {
            // A diverged arm reports nothing more.
            if self.arms[i].status != ArmStatus::Running {
                evaluated.push(None);
                continue;
            }
            let position = evaluated.iter().filter(|e| e.is_some()).count() + 1;
            self.tell(|s| Progress::Evaluating {
                arm: &s.arms[i].spec.name,
                position,
                arms: running,
                epoch: s.epoch + 1,
            });
            let model = self.arms[i]
                .model
                .as_ref()
                .expect("model present between steps");
            let test = evaluate(
                model,
                &self.data.test,
                &self.normalization,
                self.spec.batch_size,
                &self.device,
            )
            .await?;
            let val = match &self.data.val {
                Some(val) => Some(
                    evaluate(
                        model,
                        val,
                        &self.normalization,
                        self.spec.batch_size,
                        &self.device,
                    )
                    .await?,
                ),
                None => None,
            };
            evaluated.push(Some((test, val)));
        }
        let wall = self.epoch_started.elapsed().as_secs_f64();
        self.epoch += 1;
        self.batch = 0;
        Ok(self
            .arms
            .iter()
            .zip(evaluated)
            .filter_map(|(arm, eval)| {
                let ((test_loss, test_accuracy), val) = eval?;
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
                    val_loss: val.map(|(loss, _)| loss),
                    val_accuracy: val.map(|(_, accuracy)| accuracy),
                    wall_seconds: wall,
                    images_per_second: t.seen as f64 / t.busy_seconds.max(1e-9),
                }))
            })
            .collect())
    }

    /// Whether the session stands at an epoch boundary (where the runner checkpoints).
    pub fn at_epoch_boundary(&self) -> bool {
        self.batch == 0
    }

    /// Reads every step still queued on the device and returns its records: after it the
    /// session can be checkpointed mid-epoch. The next `step` carries on as if nothing happened.
    pub async fn settle_all(&mut self) -> Result<Vec<Record>, TrainError> {
        let mut records = Vec::new();
        while self.arms.iter().any(|a| !a.pending.is_empty()) {
            records.extend(self.settle(Settle::All).await?);
        }
        Ok(records)
    }
}

/// Where an arm's learning rate for a step comes from.
enum Rate {
    Scheduled(f64),
    /// Whatever rate makes the update as large as the target arm's at the same step: its
    /// Σ(Δθ)² on the device and the number of elements it covers.
    Matched {
        target: usize,
        update: Box<(Tensor<1>, usize)>,
    },
}

/// Which queued steps `settle` reads.
#[derive(Clone, Copy)]
enum Settle {
    All,
    AllButNewest,
}

/// What sets a queued step's learning rate.
#[derive(Clone, Copy)]
enum StepRate {
    /// Its schedule's value at the step.
    Scheduled(f64),
    /// Whatever rate makes the update as large as arm `target`'s at the same step: known once
    /// both steps are read.
    Matched { target: usize },
}

/// A settled step's rate: its schedule's, or the update size it matches.
enum SettledRate {
    Scheduled(f64),
    Matched(MatchedTo),
}

/// How the arm a matched step follows came out of the same step.
struct MatchedTo {
    name: String,
    /// RMS of its update at that step; `None` when it took no step (it stopped).
    update_rms: Option<f64>,
}

/// A step queued on the device whose values have not been read yet.
struct Pending {
    step: u64,
    epoch: u64,
    rate: StepRate,
    p: Option<f64>,
    /// Loss, correct count and (when any parameter was updated) Σ(Δθ)² of the step at the
    /// rate it took (a matched arm: at lr 1, before scaling).
    values: Tensor<1>,
    values_len: usize,
    /// Elements Σ(Δθ)² covers, and the same sum on the device for an arm matching this one.
    update: Option<(Tensor<1>, usize)>,
    /// The weights before the step: the arm's again if it turns out to have diverged.
    before: Model,
    images: usize,
    queued: Duration,
}

impl Arm {
    /// Σ(Δθ)² of the step queued last, for an arm matching this one.
    fn newest_update(&self) -> Option<(Tensor<1>, usize)> {
        self.pending.back().and_then(|p| p.update.clone())
    }

    /// Stops the arm before its next step, saying why.
    fn stop_before_next(&mut self, epoch: u64, reason: String) -> Record {
        let step = self.step + 1;
        self.status = ArmStatus::Stopped { step };
        Record::Stopped(StoppedRecord {
            arm: self.spec.name.clone(),
            epoch,
            step,
            reason,
        })
    }

    /// Stops the arm at a queued step: back on the weights before it, later steps dropped.
    fn stop_at(&mut self, pending: Pending, status: ArmStatus) {
        self.model = Some(pending.before);
        self.pending.clear();
        self.step = pending.step - 1;
        self.status = status;
    }

    /// Queues one optimizer step on the device; nothing is read back.
    fn queue_step(&mut self, batch: &Batch, epoch: u64, rate: Rate) {
        let started = Instant::now();
        let step = self.step + 1;
        let model = self.model.take().expect("model present between steps");
        let logits = model.forward(batch.images.clone());
        let (loss, stats) = loss_and_correct(logits, batch.labels.clone());
        // A matched arm steps at lr 1 and scales the update to its target's size: every update
        // here is linear in the rate.
        let lr = match rate {
            Rate::Scheduled(lr) => lr,
            Rate::Matched { .. } => 1.0,
        };
        let p = self.exponent.as_ref().map(|e| e.value(step));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        // A clone shares the tensors.
        let before = model.clone();
        let mut updated = self.optimizer.step(lr, model, grads);
        let update = self.update_size.take();
        let mut values = vec![stats.without_autodiff()];
        values.extend(update.as_ref().map(|(squares, _)| squares.clone()));
        let values_len = 2 + usize::from(update.is_some());
        let mut step_rate = StepRate::Scheduled(lr);
        if let (Rate::Matched { target, update }, Some((own, own_n))) = (rate, &update) {
            let (target_squares, target_n) = *update;
            // scale = √(target mean square / own mean square); no update of its own (a zero
            // gradient) cannot be scaled to any size and stays put.
            let own_mean = own.clone().div_scalar(*own_n as f64);
            let scale = (target_squares.div_scalar(target_n as f64) / own_mean.clone())
                .sqrt()
                .mask_fill(own_mean.equal_elem(0.0), 0.0);
            updated = scale_update(&before, updated, &scale);
            step_rate = StepRate::Matched { target };
        }
        self.model = Some(updated);
        self.step = step;
        self.pending.push_back(Pending {
            step,
            epoch,
            rate: step_rate,
            p,
            values: Tensor::cat(values, 0),
            values_len,
            update,
            before,
            images: batch.labels.dims()[0],
            queued: started.elapsed(),
        });
    }

    /// Turns a queued step's values into its record, at the rate `rate` settles on.
    fn settle_step(
        &mut self,
        pending: Pending,
        values: &[f32],
        rate: SettledRate,
        read_share: Duration,
    ) -> Record {
        let (step, epoch) = (pending.step, pending.epoch);
        let (loss, correct) = (f64::from(values[0]), f64::from(values[1]));
        let own_rms = pending
            .update
            .as_ref()
            .map(|(_, elements)| (f64::from(values[2]) / (*elements).max(1) as f64).sqrt());
        let stopped = |reason: String| (ArmStatus::Stopped { step }, reason);
        // What stops a matched step comes first: its target's fate decides whether it had a
        // step to take at all.
        let stop = match (&rate, own_rms) {
            (SettledRate::Matched(target), _) if !target.update_rms.is_some_and(f64::is_finite) => {
                Some(stopped(format!(
                    "the arm it matches, '{}', {} at this step, so there is no update size to match",
                    target.name,
                    if target.update_rms.is_some() {
                        "took a step of no finite size"
                    } else {
                        "stopped training"
                    }
                )))
            }
            _ if !loss.is_finite() => Some((ArmStatus::Diverged { step }, loss.to_string())),
            (SettledRate::Matched(_), unscaled) if !unscaled.is_some_and(f64::is_finite) => {
                Some(stopped(format!(
                    "its update at lr 1 has no finite size ({unscaled:?}) to scale"
                )))
            }
            _ => None,
        };
        if let Some((status, why)) = stop {
            let arm = self.spec.name.clone();
            self.stop_at(pending, status);
            return match status {
                ArmStatus::Diverged { .. } => Record::Diverged(DivergedRecord {
                    arm,
                    epoch,
                    step,
                    loss: why,
                }),
                _ => Record::Stopped(StoppedRecord {
                    arm,
                    epoch,
                    step,
                    reason: why,
                }),
            };
        }
        let (lr, update_rms) = match (rate, own_rms) {
            // Both sizes are finite here (checked above).
            (SettledRate::Matched(target), Some(unscaled)) => {
                let target = target.update_rms.unwrap_or_default();
                let scale = if unscaled > 0.0 {
                    target / unscaled
                } else {
                    0.0
                };
                (scale, Some(unscaled * scale))
            }
            // Stopped above: no finite size of its own.
            (SettledRate::Matched(_), None) => (0.0, None),
            (SettledRate::Scheduled(lr), own) => (lr, own),
        };
        self.totals.loss_sum += loss * pending.images as f64;
        self.totals.correct += correct;
        self.totals.seen += pending.images;
        self.totals.busy_seconds += (pending.queued + read_share).as_secs_f64();
        Record::Step(StepRecord {
            arm: self.spec.name.clone(),
            step,
            epoch,
            loss,
            p: pending.p,
            lr,
            update_rms,
        })
    }
}

/// In the browser, lets the page paint and handle input between pieces of work: on the CPU
/// backend one arm's step is synchronous work of up to a second. Natively it does nothing.
async fn yield_to_browser() {
    #[cfg(target_arch = "wasm32")]
    gloo_timers::future::sleep(Duration::ZERO).await;
}
