//! Getting CIFAR-10 into the worker: the subset written by `adaexp data fetch` (served from
//! `data/` beside the page), or official files the user picks or drops on the page, read and
//! parsed here by the same loader as natively.

use std::collections::HashMap;

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::scope;
use crate::data::{Splits, cifar};

/// Where the subset is, beside the worker's script (Trunk copies `www/data/` there).
pub const SUBSET_URL: &str = "data";

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response = JsFuture::from(scope().fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: {e:?}"))?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let buffer = JsFuture::from(
        response
            .array_buffer()
            .map_err(|e| format!("{url}: {e:?}"))?,
    )
    .await
    .map_err(|e| format!("{url}: {e:?}"))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// The subset in `data/` (train_batch.bin, test_batch.bin).
pub async fn load_subset() -> Result<Splits, String> {
    let mut files = HashMap::new();
    for name in [cifar::SUBSET_TRAIN_FILE, cifar::TEST_FILE] {
        files.insert(
            name.to_owned(),
            fetch_bytes(&format!("{SUBSET_URL}/{name}")).await?,
        );
    }
    cifar::splits_from_files(SUBSET_URL, &files).map_err(|e| e.to_string())
}

async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("{}: cannot be read ({e:?})", file.name()))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Official files chosen by the user: the `.bin` batches, or `cifar-10-binary.tar.gz`; with the
/// splits, the files' names in words (for the page's data box).
pub async fn load_files(list: web_sys::FileList) -> Result<(Splits, String), String> {
    let mut files = HashMap::new();
    let mut names = Vec::new();
    let mut source = String::from("the chosen files");
    for i in 0..list.length() {
        let Some(file) = list.item(i) else { continue };
        let name = file.name();
        let archive = name.ends_with(".tar.gz") || name.ends_with(".tgz");
        // Refuse an oversized batch before reading it into memory (archives are capped per
        // member as they inflate).
        let limit = cifar::max_bytes(&name);
        if !archive && file.size() > limit as f64 {
            return Err(cifar::too_large(&name, limit).to_string());
        }
        let bytes = file_bytes(&file).await?;
        names.push(name.clone());
        if archive {
            source = name.clone();
            files.extend(cifar::read_archive(&name, bytes.as_slice()).map_err(|e| e.to_string())?);
        } else {
            // Parse each batch now so that a bad file is named as soon as it is dropped.
            cifar::parse_batch(&name, &bytes).map_err(|e| e.to_string())?;
            files.insert(name, bytes);
        }
    }
    let splits = cifar::splits_from_files(&source, &files).map_err(|e| e.to_string())?;
    Ok((splits, named_files(&names)))
}

/// "a.bin", "a.bin and b.bin", "a.bin, b.bin and 4 more files".
fn named_files(names: &[String]) -> String {
    match names {
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more files", rest.len()),
        [] => "no files".into(),
    }
}
