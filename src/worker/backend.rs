//! Picking the device in the worker: WebGPU when the browser offers an adapter, else the CPU
//! backend, with the reason.

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use wasm_bindgen::{JsCast, JsValue};

use super::scope;
use crate::lab::protocol::BackendInfo;

fn navigator_has_gpu() -> bool {
    js_sys::Reflect::get(&scope().navigator(), &JsValue::from_str("gpu"))
        .is_ok_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

/// What the browser says about its adapter (`GPUAdapter.info`): wgpu leaves the name empty on
/// the web. Asking for a second adapter handle is cheap and changes nothing for the first.
async fn adapter_description() -> Option<String> {
    let get =
        |target: &JsValue, key: &str| js_sys::Reflect::get(target, &JsValue::from_str(key)).ok();
    let gpu = get(&scope().navigator(), "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info")?;
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

/// What to try, and what the CPU costs (measured in headless Chromium on two cores: ~50
/// images/s per arm for the small CNN).
const CPU_ADVICE: &str = "It works, only slower: about 50 images/s per arm on two cores, where \
    a GPU usually trains many times faster. For the GPU, try a current Chrome or Edge, or \
    Firefox or Safari with WebGPU switched on (in Chrome, chrome://flags/#enable-unsafe-webgpu \
    helps on Linux), and reload.";

/// An autodiff device and what it is.
pub async fn choose() -> (Device, BackendInfo) {
    let cpu = |notice: String| {
        (
            Device::flex().autodiff(),
            BackendInfo {
                webgpu: false,
                name: "CPU".into(),
                notice: Some(notice),
            },
        )
    };
    if !navigator_has_gpu() {
        return cpu(format!(
            "This browser does not offer WebGPU, so the lab trains on the CPU. {CPU_ADVICE}"
        ));
    }
    match Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_with_setup_async()
        .await
    {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            let name = if info.name.is_empty() {
                adapter_description()
                    .await
                    .unwrap_or_else(|| "unnamed adapter".to_owned())
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
            web_sys::console::warn_1(&format!("no WebGPU adapter: {e:?}").into());
            cpu(format!(
                "This browser has WebGPU but gave the lab no GPU to use (the GPU or its driver \
                 may be blocked, or the GPU is busy), so the lab trains on the CPU. {CPU_ADVICE}"
            ))
        }
    }
}
