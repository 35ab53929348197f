#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml): builds the training worker a second
# time with WebAssembly's relaxed SIMD (`+relaxed-simd`, so the GEMM kernel's
# multiply-adds are fused: one FMA instruction, x86's FMA3 or Arm's FMLA,
# instead of a multiply and an add) as `layerlab-worker-fma_bg.wasm`, beside
# the plain `layerlab-worker_bg.wasm`. A worker loads it where the browser has
# relaxed SIMD (Chromium 114 and later), else the plain one
# (`spawn_worker` in src/worker/protocol.rs). Both share one JS glue, which
# this checks. A debug build copies the plain worker under the FMA name
# instead (a second build would double every rebuild of `trunk serve`).
set -euo pipefail
staging="${TRUNK_STAGING_DIR:?fma_worker.sh is run by trunk (see Trunk.toml)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
plain="$staging/layerlab-worker_bg.wasm"
fma="$staging/layerlab-worker-fma_bg.wasm"
[ -f "$plain" ] || { echo "fma_worker.sh: Trunk wrote no $plain" >&2; exit 1; }
if [ "${TRUNK_PROFILE:-debug}" != release ]; then
  cp "$plain" "$fma"
  exit 0
fi
# Its own target folder: other flags would rebuild the plain build's artifacts.
target="${CARGO_TARGET_DIR:-$root/target}/fma"
echo "fma_worker.sh: building the worker with relaxed SIMD (FMA) in $target"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" cargo build --quiet --release \
  --target wasm32-unknown-unknown --bin layerlab-worker \
  --manifest-path "$root/Cargo.toml" --target-dir "$target"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wasm-bindgen --target no-modules --no-typescript --out-dir "$tmp" --out-name layerlab-worker \
  "$target/wasm32-unknown-unknown/release/layerlab-worker.wasm"
# The same code, line for line; comments may differ (they give function
# table indices, which other code generation moves).
code() { grep -v '^[[:space:]]*//' "$1"; }
if ! cmp -s <(code "$tmp/layerlab-worker.js") <(code "$staging/layerlab-worker.js"); then
  echo "fma_worker.sh: the FMA worker's JS glue differs from Trunk's (other wasm-bindgen options?):" >&2
  diff <(code "$staging/layerlab-worker.js") <(code "$tmp/layerlab-worker.js") | head -20 >&2
  exit 1
fi
cp "$tmp/layerlab-worker_bg.wasm" "$fma"
