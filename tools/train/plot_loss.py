"""Plots the training curve (train loss per step, held-out loss) to a PNG.

Usage: /usr/bin/python3 tools/train/plot_loss.py [WORKDIR] [PNG]
       (defaults out/train and models/default/loss.png)
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(workdir="out/train", png="models/default/loss.png"):
    records = {}
    with open(os.path.join(workdir, "log.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            records[record["step"]] = record  # a resumed run rewrites later steps
    steps = sorted(records)
    held = [s for s in steps if "heldout_loss" in records[s]]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, [records[s]["loss"] for s in steps], lw=0.8, label="train (per step)")
    ax.plot(held, [records[s]["heldout_loss"] for s in held], "o-", label="held out")
    ax.set_xlabel("step (16 x 256 tokens)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_ylim(bottom=0, top=min(10, max(records[s]["loss"] for s in steps)))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Griffin 5.9M on the King James Bible")
    fig.tight_layout()
    fig.savefig(png)
    print(f"wrote {png}")


if __name__ == "__main__":
    main(*sys.argv[1:])
