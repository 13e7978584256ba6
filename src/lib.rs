//! adaexp: does decaying Adam's second-moment exponent p from 0.5 toward 0 close the gap
//! between Adam and SGD with momentum?

pub mod data;
pub mod lab;
pub mod model;
pub mod optim;
pub mod palette;
pub mod trace;
pub mod train;
pub mod validation;

#[cfg(test)]
mod fuzz;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
#[cfg(all(not(target_arch = "wasm32"), not(feature = "train")))]
compile_error!(
    "the native runner trains: build it with the `train` feature (on by default); only the \
     browser lab's page builds without it"
);
// The browser lab: the page's UI (the `adaexp` binary's wasm build, which links no Burn) and
// the worker that trains (the `lab-worker` binary).
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(all(target_arch = "wasm32", feature = "train"))]
pub mod worker;

// `#[derive(RecordState)]` expands to these crate-root paths.
#[cfg(feature = "train")]
pub use burn::optim::{RecordState, StateSink, StateSource, join_path};
