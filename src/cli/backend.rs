//! `--backend auto|gpu|cpu`: the one place the native runner names a backend.

use burn::tensor::Device;
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A wgpu GPU adapter when there is one, else the CPU.
    Auto,
    Gpu,
    Cpu,
}

/// An autodiff device and its description in words.
pub fn choose(backend: Backend) -> anyhow::Result<(Device, String)> {
    let cpu = || (Device::flex().autodiff(), "cpu (burn flex)".to_owned());
    match backend {
        Backend::Cpu => Ok(cpu()),
        Backend::Gpu => gpu().map_err(|why| anyhow::anyhow!("--backend gpu: {why}")),
        Backend::Auto => Ok(gpu().unwrap_or_else(|why| {
            eprintln!("no GPU ({why}); training on the CPU");
            cpu()
        })),
    }
}

#[cfg(feature = "gpu")]
fn gpu() -> Result<(Device, String), String> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| format!("no wgpu adapter: {e:?}"))?;
    let info = setup.adapter.get_info();
    Ok((
        device.autodiff(),
        format!(
            "gpu: {} ({:?}, wgpu {:?})",
            info.name, info.device_type, info.backend
        ),
    ))
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<(Device, String), String> {
    Err("this build has no GPU backend; rebuild with `--features gpu`".into())
}
