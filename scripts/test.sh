#!/usr/bin/env bash
# Runs every test: the engine natively, the wasm32 build, and the browser tests
# in headless Chromium (installs what is missing).
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
cd "$ROOT"
ensure_wasm_target
ensure_wasm_bindgen
ensure_browser

log "native tests (cargo test)"
cargo test --all-targets

log "the engine builds for wasm32"
cargo build --lib --target wasm32-unknown-unknown

log "browser tests (wasm-bindgen-test in headless Chromium)"
cargo test --target wasm32-unknown-unknown --test web

log "all tests passed"
