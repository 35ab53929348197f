#!/usr/bin/env python3
"""Side-by-side CPU benchmark: layerlab's CLI against PyTorch, interleaved.

The method of ../shared/BENCHMARKS.md: one thread each, the same workload,
run one after the other in the same session so that both see the same
machine, and quoted as ratios. Each round runs, for every workload, the
layerlab CLI (`layerlab bench --model PRESET`) and then the PyTorch harness
(`../shared/bench/bench_torch.py --threads 1 --workloads W --epoch ""`).

Usage (from the repository root, after `cargo build --release --bin layerlab`):

    python3 scripts/bench_vs_torch.py [--workloads W1,W2,W3] [--rounds 2]
        [--steps 300] [--warmup 20] [--runs 3]

The Python with torch is `$LAYERLAB_PYTHON`, else the test venv
(`~/.cache/layerlab/venv`, made by `scripts/test.sh`). The table printed at
the end (markdown) is what the README quotes; `--json FILE` keeps the raw
figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS = {"W1": "seed-cnn", "W2": "seed-lstm", "W3": "tiny-vit"}


def torch_python():
    py = os.environ.get("LAYERLAB_PYTHON")
    if py:
        return py
    return str(Path.home() / ".cache/layerlab/venv/bin/python")


def run_layerlab(binary, workload, args):
    cmd = [
        str(binary), "bench", "--model", PRESETS[workload],
        "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--runs", str(args.runs),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return {
        "train": res["train_samples_per_s"],
        "infer1000": res["infer_samples_per_s"],
        "infer64": res["infer_bs64_samples_per_s"],
    }


def run_torch(workload, args, tmp):
    out = Path(tmp) / f"torch_{workload}.json"
    harness = ROOT.parent / "shared" / "bench" / "bench_torch.py"
    cmd = [
        torch_python(), str(harness), "--threads", "1", "--workloads", workload,
        "--epoch", "", "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--runs", str(args.runs), "--out", str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=harness.parent, env=env)
    res = json.loads(out.read_text())["workloads"][workload]
    return {
        "train": res["train"]["median_samples_per_s"],
        "infer1000": res["infer"]["bs1000"]["median_samples_per_s"],
        "infer64": res["infer"]["bs64"]["median_samples_per_s"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layerlab", default=str(ROOT / "target" / "release" / "layerlab"))
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in PRESETS:
            sys.exit(f"unknown workload {w!r}: choose from {', '.join(PRESETS)}")
    binary = Path(args.layerlab)
    if not binary.exists():
        sys.exit(f"{binary} not found: run `cargo build --release --bin layerlab` first")

    rows = []
    with tempfile.TemporaryDirectory(prefix="layerlab-bench-") as tmp:
        for r in range(args.rounds):
            for w in workloads:
                ours = run_layerlab(binary, w, args)
                theirs = run_torch(w, args, tmp)
                rows.append({"round": r + 1, "workload": w, "layerlab": ours, "pytorch": theirs})
                print(
                    f"round {r + 1} {w}: train {ours['train']:,.0f} vs {theirs['train']:,.0f} "
                    f"({ours['train'] / theirs['train']:.2f}x), infer bs1000 "
                    f"{ours['infer1000']:,.0f} vs {theirs['infer1000']:,.0f} "
                    f"({ours['infer1000'] / theirs['infer1000']:.2f}x)",
                    file=sys.stderr, flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))

    def cell(w, key):
        ours = [x["layerlab"][key] for x in rows if x["workload"] == w]
        theirs = [x["pytorch"][key] for x in rows if x["workload"] == w]
        ratios = " / ".join(f"{a / b:.2f}x" for a, b in zip(ours, theirs))
        figs = " / ".join(f"{a:,.0f}" for a in ours), " / ".join(f"{b:,.0f}" for b in theirs)
        return figs[0], figs[1], ratios

    print(f"layerlab against PyTorch, 1 thread each, "
          f"{args.rounds} interleaved round(s), samples/s")
    print()
    print("| | measure | layerlab | PyTorch | ratio |")
    print("|---|---|---|---|---|")
    for w in workloads:
        for key, label in (("train", "training"), ("infer1000", "inference, batch 1,000"),
                           ("infer64", "inference, batch 64")):
            ours, theirs, ratios = cell(w, key)
            print(f"| {w} {PRESETS[w]} | {label} | {ours} | {theirs} | {ratios} |")


if __name__ == "__main__":
    main()
