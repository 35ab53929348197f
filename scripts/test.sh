#!/usr/bin/env bash
# Runs every test: the engine natively, the wasm32 build, the browser tests in
# headless Chromium and the page's end-to-end test (installs what is missing).
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
cd "$ROOT"
ensure_wasm_target
ensure_wasm_bindgen
ensure_browser
ensure_vulkan
ensure_torch_python

log "formatting (cargo fmt --check, rustfmt.toml)"
ensure_rustfmt
cargo fmt --check

log "lints (cargo clippy -D warnings, native and wasm32; clippy.toml)"
ensure_clippy
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib --bins --test web --test web_ui --test web_bench --test wasm_profile -- -D warnings

log "native tests (cargo test)"
cargo test --all-targets

log "the engine builds for wasm32"
cargo build --lib --target wasm32-unknown-unknown

log "browser tests (wasm-bindgen-test in headless Chromium)"
cargo test --target wasm32-unknown-unknown --test web --test web_ui

log "page end-to-end test (Trunk build, chromedriver)"
ensure_trunk
command -v python3 >/dev/null || apt_install python3
TRUNK_SKIP_VERSION_CHECK=true trunk build --release
log "the GEMM kernel with fused multiply-adds (relaxed SIMD, the page's FMA worker), in headless Chromium"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" cargo test --release --target wasm32-unknown-unknown \
  --target-dir "${CARGO_TARGET_DIR:-target}/fma" --test web simd_gemm
python3 tests/e2e/e2e.py dist target/e2e

log "all tests passed"
