#!/usr/bin/env bash
# Profiles the page's engine as wasm32 (SIMD128, release) in Node.js, whose V8
# is Chromium's: `bash scripts/wasm_profile.sh [w1|w2|w3|gemm]` (default w1)
# builds tests/wasm_profile.rs, runs the one test with `node --cpu-prof`, and
# prints its speed and the functions by their share of the time.
# Needs what `scripts/test.sh` installs (the wasm32 target, wasm-bindgen-cli)
# and Node.js.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tools.sh
source "$ROOT/scripts/tools.sh"
ensure_wasm_target
ensure_wasm_bindgen
command -v node >/dev/null || { echo "wasm_profile.sh: needs Node.js (apt-get install nodejs)" >&2; exit 1; }
which_test="${1:-w1}"
cd "$ROOT"
wasm=$(cargo test --release --target wasm32-unknown-unknown --test wasm_profile --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "wasm_profile" and m.get("executable"):
        print(m["executable"])')
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# NODE_OPTIONS may not carry --cpu-prof: a `node` first on PATH adds it.
mkdir -p "$out/bin" "$out/profile"
printf '#!/bin/sh\nexec %s --cpu-prof --cpu-prof-dir=%s --cpu-prof-interval 500 "$@"\n' "$(command -v node)" "$out/profile" >"$out/bin/node"
chmod +x "$out/bin/node"
PATH="$out/bin:$PATH" wasm-bindgen-test-runner "$wasm" "$which_test" --include-ignored --exact --nocapture 2>&1 | grep -v '^$' | grep -v '^running\|^test result\|^Invoking\|\.\.\. ok$' || true
python3 "$ROOT/scripts/cpuprofile_summary.py" "$out"/profile/*.cpuprofile 20
