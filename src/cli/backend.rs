//! `--backend auto|cuda|gpu|cpu`: the one place the native runner names a backend.

use burn::tensor::Device;
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// CUDA when built with `--features cuda` and an NVIDIA device answers, else a wgpu GPU
    /// adapter (`--features gpu`), else the CPU.
    Auto,
    /// Burn's CUDA backend (NVIDIA; `--features cuda`).
    Cuda,
    /// Burn's wgpu backend: Vulkan, Metal or DX12 (`--features gpu`).
    Gpu,
    Cpu,
}

/// The device training runs on.
pub struct Chosen {
    /// An autodiff device.
    pub device: Device,
    /// What it is, in words (result files record it).
    pub name: String,
    /// Whether its first steps compile (and autotune) kernels, which can take minutes.
    pub compiles_kernels: bool,
}

pub fn choose(backend: Backend) -> anyhow::Result<Chosen> {
    let cpu = || Chosen {
        device: Device::flex().autodiff(),
        name: "cpu (burn flex)".to_owned(),
        compiles_kernels: false,
    };
    match backend {
        Backend::Cpu => Ok(cpu()),
        Backend::Cuda => cuda().map_err(|why| anyhow::anyhow!("--backend cuda: {why}")),
        Backend::Gpu => wgpu().map_err(|why| anyhow::anyhow!("--backend gpu: {why}")),
        Backend::Auto => Ok(cuda()
            .or_else(|no_cuda| {
                wgpu().map_err(|no_wgpu| {
                    format!("no CUDA device ({no_cuda}); no wgpu GPU ({no_wgpu})")
                })
            })
            .unwrap_or_else(|why| {
                eprintln!("{why}; training on the CPU");
                cpu()
            })),
    }
}

#[cfg(feature = "gpu")]
fn wgpu() -> Result<Chosen, String> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| format!("no wgpu adapter: {e:?}"))?;
    let info = setup.adapter.get_info();
    Ok(Chosen {
        device: device.autodiff(),
        name: format!(
            "gpu: {} ({:?}, wgpu {:?})",
            info.name, info.device_type, info.backend
        ),
        compiles_kernels: true,
    })
}

#[cfg(not(feature = "gpu"))]
fn wgpu() -> Result<Chosen, String> {
    Err("this build has no wgpu backend; rebuild with `--features gpu`".into())
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Chosen, String> {
    use burn::tensor::Tensor;
    let device = Device::cuda(0);
    // The CUDA runtime loads the driver on first use and panics when there is none (or no
    // device): probe with one tiny read, quietly.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| {
        Tensor::<1>::zeros([1], &device)
            .into_data()
            .try_to_vec::<f32>()
            .ok()
    });
    std::panic::set_hook(hook);
    match probe {
        Ok(Some(_)) => Ok(Chosen {
            device: device.autodiff(),
            name: "cuda: NVIDIA device 0 (burn cuda)".to_owned(),
            compiles_kernels: true,
        }),
        _ => Err("no usable NVIDIA driver or device".into()),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Chosen, String> {
    Err("this build has no CUDA backend; rebuild with `--features cuda`".into())
}
