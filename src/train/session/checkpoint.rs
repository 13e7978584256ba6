//! Checkpoints of a session: everything needed to continue a run after the steps taken so far,
//! and continuing from one.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use super::{ArmStatus, EpochTotals, Session, TrainError};
use crate::data::batch::{Purpose, epoch_order, rng};

/// Everything needed to continue a run after the steps taken so far, at an epoch boundary or
/// within an epoch (a preempted run): the epoch's batch order follows from the seed and epoch,
/// so the batches done and the augmentation stream's position are all the position there is.
#[derive(Debug)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: u64,
    /// Batches done in the current epoch (0 at an epoch boundary).
    pub batch: u64,
    /// Words drawn so far from the current epoch's augmentation stream.
    pub augment_position: u128,
    pub arms: Vec<ArmCheckpoint>,
}

/// Where one arm stands: what a checkpoint file's index lists of it, beside its blobs' checksums.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmState {
    pub name: String,
    pub status: ArmStatus,
    pub step: u64,
    /// The current epoch's sums so far (zero at an epoch boundary).
    #[serde(default)]
    pub totals: EpochTotals,
}

#[derive(Debug)]
pub struct ArmCheckpoint {
    pub state: ArmState,
    /// Burnpack bytes of the model and of the optimizer state.
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
}

impl Session {
    /// The state after the steps taken so far. Steps still queued (not yet turned into records)
    /// would be lost from the records, so they must be settled first (`settle_all`).
    pub fn checkpoint(&self) -> Result<Checkpoint, TrainError> {
        if self.arms.iter().any(|a| !a.pending.is_empty()) {
            return Err(TrainError::Checkpoint(
                "steps are still queued on the device; settle them before checkpointing".into(),
            ));
        }
        let arms = self
            .arms
            .iter()
            .map(|arm| {
                let model = arm.model.as_ref().expect("model present between steps");
                // Batch norm's running statistics hold their latest update aside until the next
                // one or an evaluation (Burn's `RunningState`); a record taken mid-epoch would
                // miss it. `valid()` folds it in (exactly: a mean of one) and is otherwise unused.
                let _ = model.valid();
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
                    state: ArmState {
                        name: arm.spec.name.clone(),
                        status: arm.status,
                        step: arm.step,
                        totals: arm.totals.clone(),
                    },
                    model: model_bytes.to_vec(),
                    optimizer: optimizer_bytes.to_vec(),
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(Checkpoint {
            epoch: self.epoch,
            batch: self.batch,
            augment_position: if self.batch == 0 {
                0
            } else {
                self.augment_rng.get_word_pos()
            },
            arms,
        })
    }

    /// Continues from a checkpoint taken by a session of the same spec, seed and data.
    pub fn restore(&mut self, checkpoint: Checkpoint) -> Result<(), TrainError> {
        if checkpoint.batch >= self.steps_per_epoch {
            return Err(TrainError::Checkpoint(format!(
                "it stands at batch {} of an epoch of {} batches",
                checkpoint.batch, self.steps_per_epoch
            )));
        }
        if checkpoint.arms.len() != self.arms.len() {
            return Err(TrainError::Checkpoint(format!(
                "it holds {} arms, the experiment has {}",
                checkpoint.arms.len(),
                self.arms.len()
            )));
        }
        for (arm, saved) in self.arms.iter_mut().zip(checkpoint.arms) {
            let ArmCheckpoint {
                state,
                model,
                optimizer,
            } = saved;
            if state.name != arm.spec.name {
                return Err(TrainError::Checkpoint(format!(
                    "arm '{}' found where the experiment has '{}'",
                    state.name, arm.spec.name
                )));
            }
            let bad = |what: &str, e: &dyn std::fmt::Debug| {
                TrainError::Checkpoint(format!("arm '{}': unreadable {what}: {e:?}", state.name))
            };
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(model))
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
                .from_bytes(Bytes::from_bytes_vec(optimizer))
                .map_err(|e| bad("optimizer state", &e))?;
            arm.exponent = built.exponent;
            arm.model = Some(model);
            arm.status = state.status;
            arm.step = state.step;
            arm.totals = state.totals;
        }
        self.epoch = checkpoint.epoch;
        self.batch = checkpoint.batch;
        if self.batch > 0 {
            // Mid-epoch: the same order and augmentation stream `step` starts an epoch with,
            // the stream moved on to where the checkpoint left it.
            self.order = epoch_order(self.data.train.len(), self.seed, self.epoch);
            self.augment_rng = rng(self.seed, Purpose::Augment, self.epoch);
            self.augment_rng.set_word_pos(checkpoint.augment_position);
            self.epoch_started = Instant::now();
        }
        Ok(())
    }
}
