#!/usr/bin/python3
"""The engine against a plain PyTorch loop on one Griffin checkpoint, in one
run on one machine, with the CPU throughput targets checked.

Usage: /usr/bin/python3 tools/bench/compare_torch.py MODEL_DIR
           [--batches 1,64,256,1024] [--lengths 128,1024] [--workload 256x32x32]
           [--rounds 2] [--min-seconds 1] [--json FILE] [--plot PNG]
           [--openblas-coretype NAME] [--bin .bazel/bin/engine/models/model_benchmark]

Each round runs PyTorch (tools/bench/torch_griffin_decode.py), then the
engine with F32 and with BF16 projections (engine/models/model_benchmark);
rounds interleave, and each cell keeps its best tok/s, since other load on
the machine only ever slows a run down. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are removed from PyTorch's environment (they force older
OpenBLAS kernels) unless --openblas-coretype names the kernel to use, for
CPUs that OpenBLAS does not recognise; the BLAS library and kernel PyTorch
loaded are printed and recorded. --plot draws tok/s against batch with
gnuplot.
"""

import argparse
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env=None):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(cmd + [f"--json={out.name}"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        with open(out.name) as f:
            return json.load(f)


def keep_best(best, run, label):
    for r in run["results"]:
        key = (label, r["kind"], r["size"])
        if key not in best or r["tokens_per_s"] > best[key]["tokens_per_s"]:
            best[key] = r


def torch_env(coretype):
    env = dict(os.environ)
    env.pop("OPENBLAS_L2_SIZE", None)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def targets(best, batches, lengths, triad):
    def get(label, kind, size, field="tokens_per_s"):
        r = best.get((label, kind, size))
        return r[field] if r else None

    checks = []
    for label in ("f32", "bf16"):
        for b in (b for b in batches if b >= 256):
            frac = get(label, "decode", b, "kernel_fraction")
            checks.append((f"{label} decode {b}: kernel fraction >= 0.70", frac, frac and frac >= 0.7))
            ratio = (get(label, "decode", b) or 0) / (get("torch", "decode", b) or float("inf"))
            checks.append((f"{label} decode {b}: >= 2x PyTorch", ratio, ratio >= 2))
        if 256 in batches and lengths:
            longest = max(lengths)
            ratio = (get(label, "prefill", longest) or 0) / (get(label, "decode", 256) or float("inf"))
            checks.append((f"{label} prefill {longest} per token >= decode 256", ratio, ratio >= 1))
    if 1 in batches:
        bw = get("bf16", "decode", 1, "bandwidth_fraction")
        checks.append(("bf16 decode 1: >= 60% of triad bandwidth", bw, bw is not None and bw >= 0.6))
        ratio = (get("bf16", "decode", 1) or 0) / (get("torch", "decode", 1) or float("inf"))
        checks.append(("bf16 decode 1: >= 3x PyTorch", ratio, ratio >= 3))
    return checks


def plot(best, batches, png):
    rows = []
    for b in batches:
        cells = [best.get((label, "decode", b)) for label in ("torch", "f32", "bf16")]
        rows.append(f"{b} " + " ".join(f"{c['tokens_per_s']:.1f}" if c else "NaN" for c in cells))
    script = f"""set terminal pngcairo size 800,480
set output '{png}'
set logscale x 2
set xlabel 'batch (sequences per decode step)'
set ylabel 'decode tokens/s'
set key top left
set grid
plot '-' using 1:2 with linespoints title 'PyTorch (f32)', \\
     '-' using 1:3 with linespoints title 'slabserve f32', \\
     '-' using 1:4 with linespoints title 'slabserve bf16'
"""
    data = "\n".join(rows) + "\ne\n"
    subprocess.run(["gnuplot"], input=script + data * 3, text=True, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--batches", default="1,64,256,1024")
    p.add_argument("--lengths", default="128,1024")
    p.add_argument("--workload", default="256x32x32")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--min-seconds", default="1")
    p.add_argument("--openblas-coretype", default="")
    p.add_argument("--bin", default=".bazel/bin/engine/models/model_benchmark")
    p.add_argument("--json")
    p.add_argument("--plot")
    a = p.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    lengths = [int(n) for n in a.lengths.split(",") if n]
    # Debian's torch belongs to /usr/bin/python3.
    torch_cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_griffin_decode.py"),
                 a.model_dir, "--batches", a.batches, "--min-seconds", a.min_seconds,
                 "--workload", a.workload]
    best, runs = {}, {}
    for _ in range(a.rounds):
        runs["torch"] = run_json(torch_cmd, torch_env(a.openblas_coretype))
        keep_best(best, runs["torch"], "torch")
        for w in ("f32", "bf16"):
            runs[w] = run_json([a.bin, f"--model={a.model_dir}", f"--weights={w}",
                                f"--batches={a.batches}", f"--lengths={a.lengths}",
                                f"--workload={a.workload}", f"--min_seconds={a.min_seconds}"])
            keep_best(best, runs[w], w)
    triad = runs["bf16"]["triad_gbps"]
    print(f"PyTorch {runs['torch']['torch']}, BLAS {runs['torch']['blas']}")
    print(f"engine: f32 tiles {runs['f32']['matmul_isa']}, bf16 tiles {runs['bf16']['matmul_isa']}, "
          f"element-wise {runs['f32']['vector_math_isa']}, triad {triad:.1f} GB/s")
    print("| kind | size | PyTorch tok/s | f32 tok/s | f32 / PyTorch | f32 kernel fraction "
          "| bf16 tok/s | bf16 / PyTorch | bf16 kernel fraction |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({(k[1], k[2]) for k in best}, key=lambda k: (k[0] != "decode", k[0], k[1]))
    for kind, size in keys:
        t, f, b = (best.get((l, kind, size)) for l in ("torch", "f32", "bf16"))
        tt = t["tokens_per_s"] if t else None
        cell = lambda r: f"{r['tokens_per_s']:,.0f}" if r else "–"
        ratio = lambda r: f"{r['tokens_per_s'] / tt:.2f}" if r and tt else "–"
        frac = lambda r: f"{r['kernel_fraction']:.2f}" if r else "–"
        print(f"| {kind} | {size} | {cell(t)} | {cell(f)} | {ratio(f)} | {frac(f)} "
              f"| {cell(b)} | {ratio(b)} | {frac(b)} |")
    checks = targets(best, batches, lengths, triad)
    for name, value, ok in checks:
        shown = "–" if value is None else f"{value:.2f}"
        print(f"{'met    ' if ok else 'NOT met'}  {name}: {shown}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": runs, "best": [dict(v, label=k[0]) for k, v in best.items()],
                       "targets": [{"name": n, "value": v, "met": bool(ok)} for n, v, ok in checks]},
                      f, indent=1)
    if a.plot:
        plot(best, batches, a.plot)


if __name__ == "__main__":
    main()
