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

/// The cargo features of this build that change how fast it trains, by name (`bench train`
/// reports them beside its figures).
pub fn build_configuration() -> Vec<&'static str> {
    [
        ("cpu-simd", cfg!(feature = "cpu-simd")),
        ("gpu", cfg!(feature = "gpu")),
        ("cuda", cfg!(feature = "cuda")),
        ("gpu-fusion", cfg!(feature = "gpu-fusion")),
        ("gpu-autotune", cfg!(feature = "gpu-autotune")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The processor this machine computes on, with the SIMD level the CPU backend's kernels pick
/// at run time (its float results depend on it: the same build gives other bits on a CPU with
/// AVX-512 than on one with AVX2), e.g. "AMD EPYC 7B13 (x86-64-v3: AVX2, FMA)".
pub fn processor() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu_model(&cpuinfo).unwrap_or(std::env::consts::ARCH);
    format!("{model} ({})", simd_level())
}

/// The first model name a `/proc/cpuinfo` lists (x86: `model name`; Arm: `Model`, or
/// `Hardware`).
fn cpu_model(cpuinfo: &str) -> Option<&str> {
    ["model name", "Model", "Hardware"]
        .into_iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                (name.trim() == key && !value.trim().is_empty()).then(|| value.trim())
            })
        })
}

/// The SIMD level Burn's CPU kernels compute with here. Its element-wise kernels (macerator,
/// with the `cpu-simd` feature) pick x86-64-v4, v3 or v2 by the features below; without that
/// feature they are plain code for the build's target. Its matrix products (gemm) pick FMA or
/// scalar code either way.
fn simd_level() -> String {
    let elementwise = simd_dispatch();
    if cfg!(feature = "cpu-simd") {
        return elementwise.to_owned();
    }
    #[cfg(target_arch = "x86_64")]
    let products = if std::arch::is_x86_feature_detected!("fma") {
        "matrix products AVX2, FMA"
    } else {
        "matrix products scalar"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let products = "matrix products as gemm picks";
    format!("element-wise kernels without SIMD dispatch (built without `cpu-simd`); {products}")
}

/// The level macerator's run-time dispatch picks on this processor.
fn simd_dispatch() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl")
        {
            return "x86-64-v4: AVX-512; matrix products AVX2, FMA";
        }
        if has!("avx2") && has!("fma") && has!("bmi2") && has!("f16c") && has!("lzcnt") {
            return "x86-64-v3: AVX2, FMA";
        }
        if has!("sse4.2") && has!("popcnt") {
            return "x86-64-v2: SSE4.2";
        }
        "x86-64: no SIMD dispatch"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "aarch64: NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "no SIMD dispatch known"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_name_comes_from_cpuinfo_and_the_simd_level_is_named() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu\n";
        assert_eq!(cpu_model(x86), Some("AMD EPYC 7B13 64-Core Processor"));
        let arm =
            "processor\t: 0\nBogoMIPS\t: 48.00\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(cpu_model(arm), Some("Raspberry Pi 4 Model B Rev 1.4"));
        assert_eq!(cpu_model("model name\t:   \n"), None);
        assert_eq!(cpu_model(""), None);
        let here = processor();
        assert!(here.ends_with(&format!("({})", simd_level())), "{here}");
        #[cfg(all(target_arch = "x86_64", feature = "cpu-simd"))]
        assert!(here.contains("x86-64"), "{here}");
        #[cfg(not(feature = "cpu-simd"))]
        assert!(here.contains("built without `cpu-simd`"), "{here}");
    }
}
