#!/usr/bin/env python3
"""Where a CPU profile's time goes, by kind: GEMM, elementwise and fused
kernels, copies and allocation, autograd bookkeeping, data loading.

Usage (after `cargo build --release --bin layerlab`; `perf` is in Debian's
`linux-perf`):

    perf record -F 2000 -g -o w2.data target/release/layerlab bench \\
        --model seed-lstm --steps 100 --warmup 5 --runs 1 --limit-test 100
    python3 scripts/perf_summary.py w2.data

Prints a markdown row per kind with its share of the samples, and the top
symbols of each.
"""

import re
import subprocess
import sys
from collections import defaultdict

# First match wins; patterns are searched in the demangled symbol.
KINDS = [
    ("GEMM (kernels and packing: gemm, matrixmultiply, wasm_gemm)", r"matrixmultiply|wasm_gemm|gemm|pulp"),
    ("copies, fills and allocation", r"memmove|memcpy|memset|malloc|free|_int_|unlink_chunk|page|clear_page|"
                                     r"to_vec_mapped|to_owned|standard|concatenate|Baseiter|default_strides|mmap|munmap"),
    ("data loading (MNIST gunzip)", r"miniz|inflate|Mnist::batch"),
    ("autograd bookkeeping", r"autograd|topological|HashMap|hash|Rc<|drop_in_place|Tensor::"),
    ("elementwise and fused kernels", r"cpu::|Zip|zip|for_each|exp|tanh|sum|fold|map|cell|lanes|norm|attention|pool|im2col|col2im"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = subprocess.run(
        ["perf", "report", "-i", sys.argv[1], "--stdio", "--no-children", "--sort", "symbol", "-g", "none"],
        check=True, capture_output=True, text=True,
    ).stdout
    shares = defaultdict(float)
    tops = defaultdict(list)
    for line in out.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+\[[.k]\]\s+(.*?)\s*$", line)
        if not m:
            continue
        share, sym = float(m.group(1)), re.sub(r"(\s+-)+\s*$", "", m.group(2)).strip()
        kind = next((k for k, pat in KINDS if re.search(pat, sym)), "other")
        shares[kind] += share
        if len(tops[kind]) < 3 and share >= 0.5:
            tops[kind].append(f"{sym.split('::')[-1][:40]} {share:.1f} %")
    print("| kind | share of samples | largest |")
    print("|---|---|---|")
    for kind, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {share:.0f} % | {', '.join(tops[kind])} |")


if __name__ == "__main__":
    main()
