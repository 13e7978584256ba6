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

step cargo test --features gpu --test gpu
cargo test --features gpu --test gpu -- --nocapture

if [ "${BENCH:-0}" = 1 ]; then
  step bench train
  cargo build --release --features gpu --quiet
  adaexp="${CARGO_TARGET_DIR:-target}/release/adaexp"
  for backend in cpu gpu; do
    "$adaexp" bench train --backend "$backend" --model "${BENCH_MODELS:-small-cnn}"
  done
fi
