"""Exports the trained checkpoint as a Hugging Face RecurrentGemma folder.

Writes OUTDIR/config.json, OUTDIR/model.safetensors (F32, HF names, no
lm_head.weight since the head is tied) and OUTDIR/tokenizer.model.

Usage: /usr/bin/python3 tools/train/export.py [WORKDIR] [OUTDIR]
       (defaults out/train and models/default)
"""

import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import train  # noqa: E402


def main(workdir="out/train", outdir="models/default"):
    os.makedirs(outdir, exist_ok=True)
    ckpt = torch.load(os.path.join(workdir, "checkpoint.pt"))
    state = ckpt["model"]
    if "lm_head.weight" in state:
        raise ValueError("checkpoint has lm_head.weight; the head must be tied")
    safetensors_io.save(os.path.join(outdir, "model.safetensors"), state, dtype="F32")
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(train.HF_CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copyfile(os.path.join(workdir, "tokenizer.model"),
                    os.path.join(outdir, "tokenizer.model"))
    params = sum(t.numel() for t in state.values())
    print(f"exported step {ckpt['step']}: {len(state)} tensors, {params} params -> {outdir}")


if __name__ == "__main__":
    main(*sys.argv[1:])
