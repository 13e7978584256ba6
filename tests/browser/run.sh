#!/usr/bin/env bash
# The lab page in a real browser: installs what is missing (Debian's chromium, npm
# playwright-core, the pinned trunk and wasm-bindgen-cli), builds the page with `trunk build`,
# gives it a tiny generated CIFAR-10 subset through `adaexp data subset`, and runs lab.mjs.
# Screenshots, the exported run and its plots land in $BROWSER_TEST_DIR/artifacts.
set -euo pipefail
cd "$(dirname "$0")/../.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
work="${BROWSER_TEST_DIR:-$target_dir/browser-test}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
step() { printf '\n== browser test: %s (%s)\n' "$*" "$(date +%T)"; }

missing=()
command -v chromium >/dev/null || missing+=(chromium chromium-driver)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  step installing "${missing[@]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  step installing playwright-core
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# The versions DESIGN.md pins (Trunk.toml asks for the same wasm-bindgen; newer trunk needs a
# newer rustc). trunk is built without its TLS and update-check features: it never downloads.
if ! trunk --version 2>/dev/null | grep -q ' 0\.21\.14'; then
  step installing trunk
  cargo install trunk --version 0.21.14 --locked --no-default-features
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q ' 0\.2\.130'; then
  step installing wasm-bindgen-cli
  # Not --locked: its lock file asks for a crate version this registry lacks.
  cargo install wasm-bindgen-cli --version 0.2.130
fi

step building the page
rm -rf "$work"
mkdir -p "$work"
cargo build --quiet
adaexp="$target_dir/debug/adaexp"
cargo fetch --quiet --target wasm32-unknown-unknown
TRUNK_SKIP_VERSION_CHECK=true trunk build --dist "$work/dist"

step making a tiny CIFAR-10 subset
node tests/browser/make-cifar.mjs "$work/cifar" 100 200
# Into the built page only: the user's own www/data is left alone.
"$adaexp" data subset --data "$work/cifar" --train 400 --test 200 --out "$work/dist/data"

step running lab.mjs
ADAEXP="$adaexp" node tests/browser/lab.mjs "$work/dist" "$work/artifacts"
