//! Preparing the GPU before Start (`lab::prepare`): one throwaway step of each arm on the
//! loaded images, so that the run finds its kernels compiled. A run that starts meanwhile
//! takes over: the preparation stops at the next arm.

use std::rc::Rc;

use wasm_bindgen_futures::spawn_local;

use super::{Worker, post};
use crate::lab::prepare::{KernelKey, throwaway_runs};
use crate::lab::protocol::Event;
use crate::train::ExperimentSpec;

pub fn start(worker: Rc<Worker>, experiment: ExperimentSpec) {
    let webgpu = worker
        .device
        .borrow()
        .as_ref()
        .is_some_and(|(_, info)| info.webgpu);
    let key = KernelKey::of(&experiment);
    // The CPU backend compiles nothing; the same kernels are compiled (or being compiled) once.
    let known = worker.prepared.borrow().as_ref() == Some(&key)
        || worker
            .preparing
            .borrow()
            .as_ref()
            .is_some_and(|(_, under_way)| *under_way == key);
    if !webgpu || known {
        return;
    }
    let generation = worker.preparations.get() + 1;
    worker.preparations.set(generation);
    *worker.preparing.borrow_mut() = Some((generation, key));
    spawn_local(async move {
        post(&Event::PreparingGpu { busy: true });
        let current = || matches!(*worker.preparing.borrow(), Some((g, _)) if g == generation);
        let outcome = prepare(&worker, &experiment, &current).await;
        if !current() {
            return;
        }
        let (_, key) = worker.preparing.take().expect("current");
        match outcome {
            Ok(()) => *worker.prepared.borrow_mut() = Some(key),
            // The run will say it, with the context; a preparation only saves time.
            Err(why) => web_sys::console::warn_1(&format!("preparing the GPU: {why}").into()),
        }
        post(&Event::PreparingGpu { busy: false });
    });
}

/// Gives up on the preparation under way, if any: a run starts.
pub fn abandon(worker: &Worker) {
    worker.preparing.take();
}

/// Steps each throwaway run once, unless the preparation is abandoned first (`current`).
async fn prepare(
    worker: &Worker,
    experiment: &ExperimentSpec,
    current: &impl Fn() -> bool,
) -> Result<(), String> {
    for run in throwaway_runs(experiment) {
        if !current() {
            return Ok(());
        }
        let (mut session, _) = worker.session(run)?;
        session.step().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
