//! The run's records as files the user downloads: the result file `adaexp plot` reads, and the
//! per-epoch table (the formats live in `train::export`, tested natively).

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::run::Runner;
use crate::train::export::{epochs_csv, result_file};

/// Downloads `text` as a file.
fn download(name: &str, mime: &str, text: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("a").ok())
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// The run so far as an `adaexp run` result file.
pub fn export_json(runner: Runner) {
    let Some(info) = runner.info.get_value() else {
        return;
    };
    let text = runner
        .records
        .with_untracked(|all| result_file(&info, all))
        .unwrap_or_default();
    download("browser-lab-seed.jsonl", "application/x-ndjson", &text);
}

/// The epoch records as CSV.
pub fn export_csv(runner: Runner) {
    let text = runner
        .records
        .with_untracked(|all| epochs_csv(all))
        .unwrap_or_default();
    download("browser-lab-epochs.csv", "text/csv", &text);
}
