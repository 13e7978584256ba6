//! The page's handle on a lab worker (`crate::worker`, built by trunk as `lab-worker`): typed
//! requests one way, typed events the other. Requests wait until the worker says it listens.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::lab::protocol::{Event, Request};

/// The loader trunk writes for the worker binary (`data-loader-shim` in index.html), beside
/// the page.
const LOADER: &str = "./lab-worker_loader.js";

pub struct LabWorker {
    worker: Worker,
    ready: Rc<Cell<bool>>,
    /// Messages posted before the worker listened.
    waiting: Rc<RefCell<Vec<JsValue>>>,
    // Kept alive with the worker.
    _on_message: Closure<dyn Fn(MessageEvent)>,
    _on_error: Closure<dyn Fn(web_sys::Event)>,
}

impl LabWorker {
    /// Starts a worker whose events go to `on_event`; a worker that fails to load or breaks
    /// comes as `Event::Fatal`. Errs when the browser cannot start one at all.
    pub fn spawn(on_event: impl Fn(Event) + 'static) -> Result<Rc<Self>, String> {
        let worker = Worker::new(LOADER).map_err(|e| describe_js_error(&e))?;
        let on_event = Rc::new(on_event);
        let ready = Rc::new(Cell::new(false));
        let waiting = Rc::new(RefCell::new(Vec::<JsValue>::new()));
        let on_message = {
            let (on_event, ready, waiting, worker) = (
                on_event.clone(),
                ready.clone(),
                waiting.clone(),
                worker.clone(),
            );
            Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
                let Some(text) = message.data().as_string() else {
                    return;
                };
                let event = Event::from_json(&text).unwrap_or_else(|why| Event::Fatal { why });
                if event == Event::Ready {
                    ready.set(true);
                    for held in waiting.take() {
                        post(&worker, &held);
                    }
                }
                on_event(event);
            })
        };
        let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
            // An ErrorEvent when its script threw; a plain Event when it could not be loaded.
            let why = match event.dyn_ref::<ErrorEvent>() {
                Some(error) => error.message(),
                None => format!("its script ({LOADER}) could not be loaded"),
            };
            on_event(Event::Fatal { why });
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Rc::new(LabWorker {
            worker,
            ready,
            waiting,
            _on_message: on_message,
            _on_error: on_error,
        }))
    }

    pub fn send(&self, request: &Request) {
        self.post(JsValue::from_str(&request.to_json()));
    }

    /// Hands the user's files to the worker, which reads and parses them.
    pub fn send_files(&self, files: &web_sys::FileList) {
        self.post(files.into());
    }

    fn post(&self, message: JsValue) {
        if self.ready.get() {
            post(&self.worker, &message);
        } else {
            self.waiting.borrow_mut().push(message);
        }
    }
}

impl Drop for LabWorker {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

fn post(worker: &Worker, message: &JsValue) {
    if let Err(e) = worker.post_message(message) {
        web_sys::console::error_1(&e);
    }
}

/// A thrown JS value in words: an Error's message, else its text.
fn describe_js_error(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
