#!/usr/bin/env bash
# The native GPU path end to end: installs Mesa's lavapipe (a software Vulkan device) when no
# Vulkan driver is present, then trains the same tiny experiment on the wgpu backend and on the
# CPU backend and compares them (tests/gpu.rs). On a machine with a GPU it uses the GPU.
# BENCH=1 also prints `bench train` on both backends (images/s and the first step's time).
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
step() { printf '\n== gpu test: %s (%s)\n' "$*" "$(date +%T)"; }

if ! compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null; then
  step installing mesa-vulkan-drivers
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# FEATURES picks the GPU configuration (e.g. gpu,gpu-fusion,gpu-autotune; default gpu);
# RELEASE=1 tests the release build (which BENCH's build then shares).
features="${FEATURES:-gpu}"
profile=()
[ "${RELEASE:-0}" = 1 ] && profile=(--release)
step cargo test "${profile[@]}" --features "$features" --test gpu
cargo test "${profile[@]}" --features "$features" --test gpu -- --nocapture

if [ "${BENCH:-0}" = 1 ]; then
  step bench train
  cargo build --release --features "$features" --quiet
  adaexp="${CARGO_TARGET_DIR:-target}/release/adaexp"
  for backend in cpu gpu; do
    "$adaexp" bench train --backend "$backend" --model "${BENCH_MODELS:-small-cnn}"
  done
fi
