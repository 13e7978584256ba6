//! adaexp: does decaying Adam's second-moment exponent p from 0.5 toward 0 close the gap
//! between Adam and SGD with momentum?

pub mod data;
pub mod lab;
pub mod model;
pub mod optim;
pub mod trace;
pub mod train;

#[cfg(test)]
mod fuzz;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
#[cfg(target_arch = "wasm32")]
pub mod web;

// `#[derive(RecordState)]` expands to these crate-root paths.
pub use burn::optim::{RecordState, StateSink, StateSource, join_path};
