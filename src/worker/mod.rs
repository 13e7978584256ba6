//! The lab's worker (wasm32; the `lab-worker` binary, run by the page as a dedicated Web
//! Worker): the device, the data, the training session and the trajectories, so that the page's
//! main thread only draws. It answers `lab::protocol` requests with events.

mod backend;
mod files;
mod prepare;
mod training;
mod trajectories;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::tensor::Device;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::data::Splits;
use crate::lab::prepare::KernelKey;
use crate::lab::protocol::{BackendInfo, DataStatus, Event, Request};
use crate::train::{ExperimentSpec, Session};

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Sends `event` to the page.
fn post(event: &Event) {
    // Fails only once the worker is closing: nobody is listening then.
    let _ = scope().post_message(&JsValue::from_str(&event.to_json()));
}

/// What the worker holds between requests.
#[derive(Default)]
struct Worker {
    device: RefCell<Option<(Device, BackendInfo)>>,
    data: RefCell<Option<Splits>>,
    run: RefCell<training::Control>,
    trajectories: RefCell<trajectories::Cache>,
    /// The kernels compiled for the page's settings before Start; the preparation under way
    /// (its number and kernels: one that is no longer under way gives up); how many began.
    prepared: RefCell<Option<KernelKey>>,
    preparing: RefCell<Option<(u64, KernelKey)>>,
    preparations: Cell<u64>,
}

impl Worker {
    /// A session of `experiment`'s first seed on the chosen device and the data loaded last,
    /// and the device it trains on.
    fn session(&self, experiment: ExperimentSpec) -> Result<(Session, BackendInfo), String> {
        let (device, backend) = self
            .device
            .borrow()
            .clone()
            .ok_or("the device is not chosen yet")?;
        let subset = self
            .data
            .borrow()
            .as_ref()
            .ok_or("no data is loaded")?
            .subset(experiment.subset_sizes(), experiment.subset_seed)?;
        let seed = experiment.seeds.first().copied().unwrap_or(0);
        let session = Session::new(experiment, seed, subset, device).map_err(|e| e.to_string())?;
        Ok((session, backend))
    }
}

/// Listens for the page's requests and says so.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // A panic leaves the module unusable: the page says so instead of waiting forever.
        post(&Event::Fatal {
            why: info.to_string(),
        });
    }));
    let worker = Rc::new(Worker::default());
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
        handle(&worker, message.data());
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(&Event::Ready);
}

fn handle(worker: &Rc<Worker>, data: JsValue) {
    if let Ok(files) = data.clone().dyn_into::<web_sys::FileList>() {
        spawn_local(load_files(worker.clone(), files));
        return;
    }
    let request = match data.as_string() {
        Some(text) => Request::from_json(&text),
        None => Err("a request the worker cannot read: neither text nor files".to_owned()),
    };
    match request {
        Ok(Request::Setup) => spawn_local(setup(worker.clone())),
        Ok(Request::Start { run, experiment }) => {
            prepare::abandon(worker);
            training::start(worker.clone(), run, experiment);
        }
        Ok(Request::PrepareGpu { experiment }) => prepare::start(worker.clone(), experiment),
        Ok(Request::Pause) => worker.run.borrow_mut().paused = true,
        Ok(Request::Resume) => worker.run.borrow_mut().paused = false,
        Ok(Request::Reset) => worker.run.borrow_mut().reset(),
        Ok(Request::SetExponent { arm, schedule }) => {
            worker.run.borrow_mut().edits.push((arm, schedule));
        }
        Ok(Request::Trace { id, specs }) => {
            let paths = worker.trajectories.borrow_mut().paths(&specs);
            post(&Event::Traced { id, paths });
        }
        Err(why) => web_sys::console::error_1(&why.into()),
    }
}

/// Chooses the device, then loads the subset served with the page.
async fn setup(worker: Rc<Worker>) {
    let (device, info) = backend::choose().await;
    post(&Event::Backend(info.clone()));
    *worker.device.borrow_mut() = Some((device, info));
    let status = match files::load_subset().await {
        Ok(splits) => accept(
            &worker,
            splits,
            format!(
                "The CIFAR-10 subset served with the page ({}/)",
                files::SUBSET_URL
            ),
        ),
        Err(why) => DataStatus::NoSubset { why },
    };
    post(&Event::Data(status));
}

/// The user's files replace the data for the next run, or are refused with the reason.
async fn load_files(worker: Rc<Worker>, files: web_sys::FileList) {
    post(&Event::Data(DataStatus::Reading));
    let status = match files::load_files(files).await {
        Ok((splits, names)) => accept(&worker, splits, format!("Your files ({names})")),
        Err(why) => DataStatus::Unusable {
            why,
            kept: worker.data.borrow().is_some(),
        },
    };
    post(&Event::Data(status));
}

fn accept(worker: &Worker, splits: Splits, source: String) -> DataStatus {
    let status = DataStatus::Loaded {
        source,
        train: splits.train.len(),
        test: splits.test.len(),
    };
    *worker.data.borrow_mut() = Some(splits);
    // Images of another shape need kernels of their own.
    *worker.prepared.borrow_mut() = None;
    worker.preparing.take();
    status
}
