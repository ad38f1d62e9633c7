#!/usr/bin/python3
"""Compares model_benchmark JSON runs of two builds on a shared machine.

Usage: /usr/bin/python3 tools/bench/compare_runs.py BEFORE.json[,...] AFTER.json[,...]

Each side may list several runs (comma-separated, best interleaved with the
other side's); for every measurement the best tok/s of each side is kept,
since other load on the machine only ever slows a run down. Prints a Markdown
table: tok/s before and after, their ratio, the kernel fraction (achieved
GFLOP/s over cpu::MatMulPacked's own GFLOP/s on the same shapes, from the run
with the best tok/s) and decode page faults per step.
"""

import json
import sys


def best(paths):
    rows = {}
    for path in paths.split(","):
        with open(path) as f:
            run = json.load(f)
        for r in run["results"]:
            key = (r["kind"], r["size"])
            if key not in rows or r["tokens_per_s"] > rows[key]["tokens_per_s"]:
                rows[key] = r
    return run, rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    _, before = best(sys.argv[1])
    run, after = best(sys.argv[2])
    print(f"{run['architecture']}, {run['threads']} threads, matmul tiles {run['matmul_isa']}, "
          f"element-wise {run.get('vector_math_isa', '-')}\n")
    print("| kind | size | tok/s before | tok/s after | ratio | kernel fraction before | after | faults/step before | after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in sorted(after, key=lambda k: (k[0] != "decode", k[1])):
        if key not in before:
            continue
        b, a = before[key], after[key]
        faults = lambda r: f"{r['faults_per_step']:.1f}" if "faults_per_step" in r else "-"
        print(f"| {key[0]} | {key[1]} | {b['tokens_per_s']:.0f} | {a['tokens_per_s']:.0f} | "
              f"{a['tokens_per_s'] / b['tokens_per_s']:.2f} | {b['kernel_fraction']:.2f} | "
              f"{a['kernel_fraction']:.2f} | {faults(b)} | {faults(a)} |")


if __name__ == "__main__":
    main()
