#!/usr/bin/env bash
# Installs what the build and the tests need, skipping whatever is already there.
# Sourced by serve.sh and test.sh; each `ensure_*` is idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# cargo and rustup live under HOME; some CI shells start without it.
export HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m[layerlab]\033[0m %s\n' "$*" >&2; }

# The wasm-bindgen version pinned in Cargo.lock (the CLI must match it exactly).
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || { log "adding the wasm32 target"; rustup target add wasm32-unknown-unknown; }
}

ensure_rustfmt() {
  cargo fmt --version >/dev/null 2>&1 || { log "adding rustfmt"; rustup component add rustfmt; }
}

ensure_clippy() {
  cargo clippy --version >/dev/null 2>&1 || { log "adding clippy"; rustup component add clippy; }
}

ensure_wasm_bindgen() {
  local want; want="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (about 3 minutes)"
    # Not --locked: the CLI's lock file pins a crate the registry no longer has.
    cargo install -q wasm-bindgen-cli --version "$want"
  fi
}

ensure_trunk() {
  if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "0.21.14" ]; then
    log "installing trunk 0.21.14 (about 12 minutes on 2 cores)"
    # 0.22 needs a newer rustc than this toolchain.
    cargo install -q --locked trunk --version 0.21.14
  fi
}

ensure_browser() {
  apt_install chromium chromium-driver
  export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
}

# A Vulkan driver for the native GPU tests: with no GPU, Mesa's software one
# (lavapipe). LAYERLAB_REQUIRE_GPU makes those tests fail instead of skipping
# when wgpu still finds no adapter.
ensure_vulkan() {
  apt_install mesa-vulkan-drivers
  export LAYERLAB_REQUIRE_GPU=1
  # wgpu's Vulkan loader warns without a runtime directory.
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
}

# A Python with torch, keras, numpy and safetensors for the export round-trip tests, in a
# virtual environment outside the clone (a few GB once, then reused). If it cannot
# be installed, say so: those tests then report themselves skipped.
ensure_torch_python() {
  local venv="${LAYERLAB_VENV:-$HOME/.cache/layerlab/venv}"
  if ! KERAS_BACKEND=torch "$venv/bin/python" -c "import torch, keras, numpy, safetensors" 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3
    python3 -c "import venv, ensurepip" 2>/dev/null || apt_install python3-venv
    log "installing torch, keras, numpy and safetensors into $venv (a few minutes, once)"
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q torch keras numpy safetensors; }; then
      log "SKIPPING the PyTorch and Keras round trips: they could not be installed into $venv (pip's message is above)"
      return 0
    fi
  fi
  export LAYERLAB_PYTHON="$venv/bin/python"
  export KERAS_BACKEND=torch
  log "export round trips run with $LAYERLAB_PYTHON ($(KERAS_BACKEND=torch "$LAYERLAB_PYTHON" -c 'import torch, keras; print("torch", torch.__version__, "keras", keras.__version__)' 2>/dev/null))"
}
