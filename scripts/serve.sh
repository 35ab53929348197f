#!/usr/bin/env bash
# Builds the page and serves it on http://127.0.0.1:8080 (installs what is missing).
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
cd "$ROOT"
ensure_wasm_target
ensure_wasm_bindgen
ensure_trunk
cargo fetch -q
export TRUNK_SKIP_VERSION_CHECK=true
log "serving on http://127.0.0.1:8080"
exec trunk serve --release "$@"
