//! The wgpu backend against the CPU backend: the same tiny experiment from the same seed on
//! both, losses step by step and test accuracy per epoch. Needs a wgpu adapter: a GPU, or
//! Mesa's lavapipe (`mesa-vulkan-drivers`) on a machine without one. Run by `tests/gpu/run.sh`
//! (`cargo test --release --features gpu --test gpu`).
#![cfg(all(feature = "gpu", not(target_arch = "wasm32")))]

mod common;

use common::*;
use serde_json::Value;

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

#[test]
fn the_gpu_backend_trains_like_the_cpu_backend() {
    // 200 training images in batches of 25: 8 steps per epoch, 16 over the two epochs.
    let dir = tiny_fashion_dir(200, 50, 2);
    ok(&run_on_cpu(
        dir.path(),
        "f.toml",
        "fm",
        "cpu",
        &["--no-plot"],
    ));
    let printed = ok(&adaexp(
        &[
            "run",
            "f.toml",
            "--data",
            "fm",
            "--backend",
            "auto",
            "--out",
            "gpu",
            "--no-plot",
        ],
        dir.path(),
    ));
    // `auto` took the adapter and named it.
    assert!(printed.contains("backend gpu: "), "{printed}");
    assert!(
        printed.contains("compiling and autotuning GPU kernels"),
        "{printed}"
    );

    let (cpu, gpu) = (
        jsonl(&dir.path().join("cpu/seed-0.jsonl")),
        jsonl(&dir.path().join("gpu/seed-0.jsonl")),
    );
    let (cpu_steps, gpu_steps) = (of_type(&cpu, "step"), of_type(&gpu, "step"));
    assert_eq!(cpu_steps.len(), gpu_steps.len());
    // (relative difference, arm, step, cpu loss)
    let mut worst = (0.0, String::new(), 0, 0.0);
    for (c, g) in cpu_steps.iter().zip(&gpu_steps) {
        assert_eq!((&c["arm"], &c["step"]), (&g["arm"], &g["step"]));
        if c["step"].as_u64().unwrap() > 10 {
            continue;
        }
        let (c_loss, g_loss) = (c["loss"].as_f64().unwrap(), g["loss"].as_f64().unwrap());
        let relative = (c_loss - g_loss).abs() / c_loss.abs();
        if relative > worst.0 {
            worst = (
                relative,
                c["arm"].to_string(),
                c["step"].as_u64().unwrap(),
                c_loss,
            );
        }
        assert!(
            relative <= 1e-3,
            "{} step {}: cpu loss {c_loss}, gpu loss {g_loss}",
            c["arm"],
            c["step"]
        );
    }
    eprintln!(
        "largest relative loss difference over the first 10 steps: {:.2e} ({} step {}, loss {:.4})",
        worst.0, worst.1, worst.2, worst.3
    );
    let (cpu_epochs, gpu_epochs) = (of_type(&cpu, "epoch"), of_type(&gpu, "epoch"));
    assert_eq!(cpu_epochs.len(), 2 * 2);
    for (c, g) in cpu_epochs.iter().zip(&gpu_epochs) {
        let images = 50.0;
        let apart = (c["test_accuracy"].as_f64().unwrap() - g["test_accuracy"].as_f64().unwrap())
            .abs()
            * images;
        assert!(
            apart <= 1.0 + 1e-9,
            "{} epoch {}: test accuracy differs by {apart} images",
            c["arm"],
            c["epoch"]
        );
    }
}
