//! The science, backend-generic: schedules, the optimizer family and its spec (plain data, in
//! every build, the lab page's included), and the Burn optimizers that carry them out (the
//! `train` feature).

#[cfg(feature = "train")]
pub mod adaexp;
#[cfg(feature = "train")]
mod fused;
pub mod schedule;
#[cfg(feature = "train")]
pub mod sgdm;
pub mod spec;
#[cfg(feature = "train")]
mod update;

#[cfg(feature = "train")]
pub use adaexp::{AdaptiveExponent, SharedSchedule};
pub use schedule::{Length, LrDecay, LrSchedule, Schedule, Shape};
#[cfg(feature = "train")]
pub use sgdm::Sgdm;
pub use spec::{Family, FlatOptimizer, OptimizerSpec, WeightDecay};
#[cfg(feature = "train")]
pub use update::{BuiltOptimizer, UpdateSize, scale_update};
#[cfg(feature = "train")]
use update::{apply_update, coupled_decay};

#[cfg(test)]
mod tests;
