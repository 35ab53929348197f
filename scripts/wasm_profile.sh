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
log "building tests/wasm_profile.rs for wasm32 (release; minutes the first time)"
wasm=$(cargo test --release --target wasm32-unknown-unknown --test wasm_profile --no-run \
  --message-format=json-render-diagnostics |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "wasm_profile" and m.get("executable"):
        print(m["executable"])')
[ -n "$wasm" ] || { echo "wasm_profile.sh: cargo built no tests/wasm_profile.rs" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# The runner passes NODE_ARGS (comma-separated) to node.
NODE_ARGS="--cpu-prof,--cpu-prof-dir=$out,--cpu-prof-interval=500" \
  wasm-bindgen-test-runner "$wasm" "$which_test" --include-ignored --exact --nocapture >"$out/log" 2>&1 ||
  { cat "$out/log" >&2; echo "wasm_profile.sh: the test failed" >&2; exit 1; }
grep -v '^$\|^running\|^test result\|^Invoking\|\.\.\. ok$' "$out/log" || true
profiles=("$out"/*.cpuprofile)
[ -f "${profiles[0]}" ] || { echo "wasm_profile.sh: node wrote no profile (is '$which_test' one of w1, w2, w3, gemm?)" >&2; exit 1; }
python3 "$ROOT/scripts/cpuprofile_summary.py" "${profiles[0]}" 20
