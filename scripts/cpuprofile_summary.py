#!/usr/bin/env python3
"""Functions of a V8 CPU profile (`node --cpu-prof`, or Chromium DevTools'
Performance panel saved as .cpuprofile) by their share of the samples' time,
largest first: `python3 scripts/cpuprofile_summary.py FILE.cpuprofile [TOP]`.
Wasm functions appear under their Rust names (the name section), with the
hash suffix dropped. Used by scripts/wasm_profile.sh."""
import collections
import json
import re
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    profile = json.load(open(sys.argv[1]))
    nodes = {n["id"]: n for n in profile["nodes"]}
    by_name = collections.Counter()
    for sample, dt in zip(profile["samples"], profile["timeDeltas"]):
        frame = nodes[sample]["callFrame"]
        name = frame["functionName"] or "(anonymous) " + frame["url"][-40:]
        by_name[re.sub(r"::h[0-9a-f]{16}$", "", name)] += max(dt, 0)
    total = sum(by_name.values()) or 1
    print(f"{total / 1e6:.1f} s sampled")
    for name, t in by_name.most_common(top):
        print(f"{100 * t / total:5.1f} %  {name[:140]}")


if __name__ == "__main__":
    main()
