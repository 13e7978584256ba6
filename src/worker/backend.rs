//! Picking the device in the worker: WebGPU when the browser offers an adapter that Burn can
//! use, else the CPU backend, with the reason.

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::scope;
use crate::lab::protocol::BackendInfo;

/// The adapter features Burn's WebGPU runtime cannot do without: cubecl-wgpu 0.11.3 times its
/// kernels with timestamp queries on the web (where it cannot block) and panics when the
/// adapter lacks them.
const REQUIRED_FEATURES: [&str; 1] = ["timestamp-query"];

/// Why the browser's WebGPU cannot serve the lab.
enum Unusable {
    NoWebGpu,
    NoAdapter(String),
    MissingFeatures {
        description: Option<String>,
        missing: Vec<&'static str>,
    },
    DeviceRefused {
        description: Option<String>,
        why: String,
    },
}

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key))
        .ok()
        .filter(|value| !value.is_undefined() && !value.is_null())
}

/// Calls `target[method](args…)` and awaits the promise it returns.
async fn call_async(target: &JsValue, method: &str, args: &Array) -> Result<JsValue, String> {
    let function: Function = get(target, method)
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("{method} is not a function"))?;
    let promise: Promise = function
        .apply(target, args)
        .map_err(describe_error)?
        .dyn_into()
        .map_err(|_| format!("{method} returned no promise"))?;
    JsFuture::from(promise).await.map_err(describe_error)
}

/// A thrown JavaScript value in words (an `Error`'s or `DOMException`'s message).
fn describe_error(error: JsValue) -> String {
    get(&error, "message")
        .and_then(|m| m.as_string())
        .filter(|m| !m.is_empty())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// What the browser says about its adapter (`GPUAdapter.info`): wgpu leaves the name empty on
/// the web.
fn adapter_description(adapter: &JsValue) -> Option<String> {
    let info = get(adapter, "info")?;
    let mut parts: Vec<String> = ["vendor", "architecture", "device", "description"]
        .into_iter()
        .filter_map(|key| get(&info, key)?.as_string())
        .filter(|text| !text.is_empty())
        .collect();
    parts.dedup();
    if get(&info, "isFallbackAdapter").and_then(|v| v.as_bool()) == Some(true) {
        parts.push("(software fallback)".into());
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Asks the browser for an adapter and a device the way Burn will, before Burn does: what Burn
/// cannot use makes it panic or fail deep inside, where the reason is lost. Asking for a second
/// adapter and a throwaway device changes nothing for the ones Burn gets. Gives the adapter's
/// description when it is usable.
async fn probe() -> Result<Option<String>, Unusable> {
    let Some(gpu) = get(&scope().navigator(), "gpu") else {
        return Err(Unusable::NoWebGpu);
    };
    let adapter = match call_async(&gpu, "requestAdapter", &Array::new()).await {
        Ok(adapter) if !adapter.is_null() && !adapter.is_undefined() => adapter,
        Ok(_) => {
            return Err(Unusable::NoAdapter(
                "requestAdapter() gave no adapter".into(),
            ));
        }
        Err(why) => return Err(Unusable::NoAdapter(why)),
    };
    let description = adapter_description(&adapter);
    let has = |feature: &str| {
        get(&adapter, "features").is_some_and(|features| {
            call_sync(&features, "has", &Array::of1(&JsValue::from_str(feature)))
                .is_some_and(|v| v.is_truthy())
        })
    };
    let missing: Vec<&'static str> = REQUIRED_FEATURES
        .into_iter()
        .filter(|feature| !has(feature))
        .collect();
    if !missing.is_empty() {
        return Err(Unusable::MissingFeatures {
            description,
            missing,
        });
    }
    let descriptor = js_sys::Object::new();
    let features: Array = REQUIRED_FEATURES
        .iter()
        .map(|f| JsValue::from_str(f))
        .collect();
    let _ = Reflect::set(&descriptor, &"requiredFeatures".into(), &features);
    match call_async(&adapter, "requestDevice", &Array::of1(&descriptor)).await {
        Ok(device) => {
            let _ = call_sync(&device, "destroy", &Array::new());
            Ok(description)
        }
        Err(why) => Err(Unusable::DeviceRefused { description, why }),
    }
}

fn call_sync(target: &JsValue, method: &str, args: &Array) -> Option<JsValue> {
    let function: Function = get(target, method)?.dyn_into().ok()?;
    function.apply(target, args).ok()
}

/// What to try, and what the CPU costs (measured in headless Chromium on two cores: ~50
/// images/s per arm for the small CNN).
const CPU_ADVICE: &str = "It works, only slower: about 50 images/s per arm on two cores, where \
    a GPU usually trains many times faster. For the GPU, try a current Chrome or Edge, or \
    Firefox or Safari with WebGPU switched on (in Chrome, chrome://flags/#enable-unsafe-webgpu \
    helps on Linux), and reload.";

/// The browser has WebGPU but no device for the lab.
const NO_GPU: &str = "This browser has WebGPU but gave the lab no GPU to use (the GPU or its \
    driver may be blocked, or the GPU is busy)";

impl Unusable {
    /// Why the lab trains on the CPU, as the page says it.
    fn reason(&self) -> String {
        let adapter = |description: &Option<String>| match description {
            Some(description) => format!("WebGPU adapter ({description})"),
            None => "WebGPU adapter".to_owned(),
        };
        match self {
            Unusable::NoWebGpu => "This browser does not offer WebGPU".into(),
            Unusable::NoAdapter(why) => {
                web_sys::console::warn_1(&format!("no WebGPU adapter: {why}").into());
                NO_GPU.into()
            }
            Unusable::MissingFeatures {
                description,
                missing,
            } => format!(
                "This browser's {} lacks the feature {}, which Burn's WebGPU runtime needs (it \
                 times its kernels with it)",
                adapter(description),
                missing
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Unusable::DeviceRefused { description, why } => format!(
                "This browser's {} refused to open a device ({why})",
                adapter(description)
            ),
        }
    }
}

/// An autodiff device and what it is.
pub async fn choose() -> (Device, BackendInfo) {
    let cpu = |reason: String| {
        (
            Device::flex().autodiff(),
            BackendInfo {
                webgpu: false,
                name: "CPU".into(),
                notice: Some(format!(
                    "{reason}, so the lab trains on the CPU. {CPU_ADVICE}"
                )),
            },
        )
    };
    let description = match probe().await {
        Ok(description) => description,
        Err(unusable) => return cpu(unusable.reason()),
    };
    match Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_with_setup_async()
        .await
    {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let name = if info.name.is_empty() {
                description.unwrap_or_else(|| "unnamed adapter".to_owned())
            } else {
                info.name
            };
            (
                device.autodiff(),
                BackendInfo {
                    webgpu: true,
                    name,
                    notice: None,
                },
            )
        }
        Err(e) => {
            // The details are for a bug report, not for the page.
            web_sys::console::warn_1(&format!("WebGPU init failed: {e:?}").into());
            cpu(NO_GPU.into())
        }
    }
}
