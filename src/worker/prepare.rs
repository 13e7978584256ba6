//! Preparing the GPU before Start (`lab::prepare`): one throwaway step of each arm on the
//! loaded images, so that the run finds its kernels compiled. A run that starts meanwhile
//! takes over: the preparation stops at the next arm.

use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;

use super::{Worker, post};
use crate::lab::prepare::{KernelKey, throwaway_runs};
use crate::lab::protocol::Event;
use crate::train::{ExperimentSpec, Session};

pub fn start(worker: Rc<Worker>, experiment: ExperimentSpec) {
    let webgpu = worker
        .device
        .borrow()
        .as_ref()
        .is_some_and(|(_, info)| info.webgpu);
    let key = KernelKey::of(&experiment);
    // The CPU backend compiles nothing; the same kernels are compiled once.
    if !webgpu || worker.prepared.borrow().as_ref() == Some(&key) {
        return;
    }
    let generation = worker.preparing.get() + 1;
    worker.preparing.set(generation);
    spawn_local(async move {
        post(&Event::PreparingGpu { busy: true });
        let current = || worker.preparing.get() == generation;
        match prepare(&worker, &experiment, &current).await {
            Ok(true) => *worker.prepared.borrow_mut() = Some(key),
            Ok(false) => {}
            // The run will say it, with the context; a preparation only saves time.
            Err(why) => web_sys::console::warn_1(&format!("preparing the GPU: {why}").into()),
        }
        if current() {
            post(&Event::PreparingGpu { busy: false });
        }
    });
}

/// Gives up on the preparation under way, if any: a run starts.
pub fn abandon(worker: &Worker) {
    worker.preparing.set(worker.preparing.get() + 1);
}

/// Steps each throwaway run once; `Ok(false)` when it was abandoned first.
async fn prepare(
    worker: &Worker,
    experiment: &ExperimentSpec,
    current: &impl Fn() -> bool,
) -> Result<bool, String> {
    for run in throwaway_runs(experiment) {
        if !current() {
            return Ok(false);
        }
        let Some((device, _)) = worker.device.borrow().clone() else {
            return Ok(false);
        };
        let data = worker
            .data
            .borrow()
            .as_ref()
            .ok_or("no data is loaded")?
            .subset(run.subset_sizes(), run.subset_seed)?;
        let seed = run.seeds.first().copied().unwrap_or(0);
        let mut session = Session::new(run, seed, data, device).map_err(|e| e.to_string())?;
        session.step().await.map_err(|e| e.to_string())?;
    }
    Ok(current())
}
