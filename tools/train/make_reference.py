"""Writes reference logits for the exported model (fixture for engine tests).

Runs griffin.Griffin in float64 on the exported weights and stores, per
prompt, the logits at the last prompt position and 16 greedy tokens, in the
schema of tests/golden/griffin_tiny/golden.json (essential fields).

Usage: /usr/bin/python3 tools/train/make_reference.py [MODELDIR]
       (default models/default; writes MODELDIR/reference.json)
"""

import json
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import griffin  # noqa: E402

GREEDY_NEW_TOKENS = 16
BOS = 2
GENESIS = (
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep. "
    "And the Spirit of God moved upon the face of the waters.\n"
    "And God said, Let there be light: and there was light.\n"
    "And God saw the light, that it was good: and God divided the light from the darkness.\n"
    "And God called the light Day, and the darkness he called Night. "
    "And the evening and the morning were the first day.\n"
    "And God said, Let there be a firmament in the midst of the waters, "
    "and let it divide the waters from the waters.\n"
    "And God made the firmament, and divided the waters which were under the firmament "
    "from the waters which were above the firmament: and it was so.\n"
    "And God called the firmament Heaven. And the evening and the morning were the second day.\n"
)
PROMPTS = [
    ("in_the_beginning", "In the beginning"),
    ("and_god_said", "And God said"),
    ("lord_shepherd", "The LORD is my shepherd"),
    ("genesis_beyond_window", GENESIS),
]


def top1_margin(logits):
    top2 = torch.topk(logits, 2).values
    return float(top2[0] - top2[1])


def main(modeldir="models/default"):
    model = griffin.load_pretrained(
        os.path.join(modeldir, "config.json"), os.path.join(modeldir, "model.safetensors"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(modeldir, "tokenizer.model"))
    window = model.cfg.attention_window_size
    cases = []
    for name, text in PROMPTS:
        prompt = [BOS] + sp.encode(text)
        steps, greedy_ids = griffin.greedy(model, prompt, GREEDY_NEW_TOKENS)
        margin = min(top1_margin(logits) for logits in steps)
        last_logits = steps[0]
        cases.append({
            "name": name,
            "prompt_text": text,
            "prompt_len": len(prompt),
            "regime": "within_window" if len(prompt) <= window else "beyond_window",
            "prompt_ids": prompt,
            "last_logits": [float(f"{x:.8g}") for x in last_logits.tolist()],
            "greedy_ids": greedy_ids,
            "greedy_text": sp.decode(greedy_ids),
            "min_top1_margin": round(margin, 6),
        })
        print(f"{name}: {len(prompt)} prompt tokens, margin {margin:.4f}, "
              f"greedy {sp.decode(greedy_ids)!r}")
    reference = {
        "format": "slabserve-golden/1",
        "model": "default",
        "variant": "f32",
        "files": {"config": "config.json", "weights": "model.safetensors",
                  "tokenizer": "tokenizer.model"},
        "computed_by": "tools/train/griffin.py in float64 from the exported F32 weights",
        "attention_window_size": window,
        "greedy_new_tokens": GREEDY_NEW_TOKENS,
        "greedy_rule": "argmax of soft-capped logits (lowest id on ties), EOS does not stop, "
                       "16 tokens, each fed back; prompt_ids start with BOS",
        "tolerance": {"last_logits_max_abs": 1e-4, "greedy_ids": "exact"},
        "cases": cases,
    }
    with open(os.path.join(modeldir, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
