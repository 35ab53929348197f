#!/usr/bin/env python3
"""The page's training speed beside native PyTorch's, in one go.

Each round runs, one after the other so that both see the same machine:
the PyTorch anchor for the workloads (`../shared/bench/bench_torch.py
--threads 1 --workloads W --epoch ""`, one thread), then the page in headless
Chromium (the e2e figures `page_speed`: every preset with 1 and 2 workers,
with the worker built with fused multiply-adds and without), then PyTorch
again. The table printed at the end (markdown) gives the page's samples/s
(steps over wall time, the evaluation every 100 steps included; and the
page's own figure, training only, as PyTorch's harness times it), its ratio
to PyTorch's (against the faster and the slower of the two PyTorch runs
around it) and two workers' scaling over one.

Usage (from the repository root, after `TRUNK_SKIP_VERSION_CHECK=true trunk
build --release`, with what `scripts/test.sh` installs):

    python3 scripts/page_vs_torch.py [--workloads W1,W2,W3] [--rounds 2]
        [--workers 1,2] [--builds fma,plain] [--json FILE]

The Python with torch is `$LAYERLAB_PYTHON`, else the test venv
(`~/.cache/layerlab/venv`).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_torch import PRESETS, ROOT, torch_python  # noqa: E402


def run_torch(workloads, tmp, tag):
    """PyTorch's training samples/s per workload (one thread, three 300-step windows)."""
    figures = {}
    harness = ROOT.parent / "shared" / "bench" / "bench_torch.py"
    for w in workloads:
        out = Path(tmp) / f"torch_{w}_{tag}.json"
        cmd = [torch_python(), str(harness), "--threads", "1", "--workloads", w, "--epoch", "", "--out", str(out)]
        env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=harness.parent, env=env)
        figures[w] = json.loads(out.read_text())["workloads"][w]["train"]["median_samples_per_s"]
    return figures


def run_page(workloads, workers, builds, tmp):
    """The page's figures: one dict per (build, preset, workers)."""
    env = dict(os.environ, E2E_ONLY="page_speed", E2E_SPEED_PRESETS=",".join(PRESETS[w] for w in workloads),
               E2E_SPEED_WORKERS=workers, E2E_SPEED_BUILDS=builds)
    env.setdefault("CHROMEDRIVER", "/usr/bin/chromedriver")
    p = subprocess.run([sys.executable, str(ROOT / "tests/e2e/e2e.py"), str(ROOT / "dist"), str(Path(tmp) / "e2e")],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [json.loads(l[len("e2e-speed "):]) for l in p.stdout.splitlines() if l.startswith("e2e-speed ")]
    if p.returncode != 0 or not lines:
        sys.exit(f"page_vs_torch.py: the page's run failed:\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    return lines


def shown(p):
    """The page's own samples/s ("2,857 samples/s"), or None."""
    m = re.search(r"([\d,]+) samples/s", p.get("shown") or "")
    return float(m.group(1).replace(",", "")) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--builds", default="fma,plain")
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    if not (ROOT / "dist" / "index.html").exists():
        sys.exit("page_vs_torch.py: no dist/: run `TRUNK_SKIP_VERSION_CHECK=true trunk build --release` first")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="layerlab-page-bench-") as tmp:
        for r in range(args.rounds):
            before = run_torch(workloads, tmp, f"{r}a")
            page = run_page(workloads, args.workers, args.builds, tmp)
            after = run_torch(workloads, tmp, f"{r}b")
            rounds.append({"torch_before": before, "page": page, "torch_after": after})
            for p in page:
                print(f"round {r + 1}: {p['preset']} {p['build']} {p['workers']} workers: {p['samples_per_s']:,.0f} samples/s ({p['threads']})", file=sys.stderr)
            print(f"round {r + 1}: PyTorch {before} then {after}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=1))

    by_preset = {v: k for k, v in PRESETS.items()}
    print("| round | workload | PyTorch, 1 thread (before / after) | page | samples/s (wall; shown) | / PyTorch (wall; shown) | / 1 worker (wall) |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(rounds):
        for p in r["page"]:
            w = by_preset[p["preset"]]
            lo, hi = sorted([r["torch_before"][w], r["torch_after"][w]])
            one = next((q["samples_per_s"] for q in r["page"] if q["preset"] == p["preset"] and q["build"] == p["build"] and q["workers"] == 1), None)
            scale = f"{p['samples_per_s'] / one:.2f}x" if one and p["workers"] > 1 else ""
            own = shown(p)
            own_text = f"{own:,.0f}" if own else "-"
            own_ratio = f"{own / hi:.2f}-{own / lo:.2f}x" if own else "-"
            print(f"| {i + 1} | {w} | {r['torch_before'][w]:,.0f} / {r['torch_after'][w]:,.0f} | {p['workers']} worker{'s' if p['workers'] > 1 else ''}, {p['kernels']} "
                  f"| {p['samples_per_s']:,.0f}; {own_text} | {p['samples_per_s'] / hi:.2f}-{p['samples_per_s'] / lo:.2f}x; {own_ratio} | {scale} |")

if __name__ == "__main__":
    main()
