"""Checks the training model against the golden Griffin fixture.

Loads tests/golden/griffin_tiny into griffin.Griffin (float64) and compares
each case's last-prompt logits (max |diff| <= 1e-4) and 16 greedy tokens.
Run from the repository root: /usr/bin/python3 tools/train/check_golden.py
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import griffin  # noqa: E402

TOLERANCE = 1e-4


def main(folder="tests/golden/griffin_tiny"):
    model = griffin.load_pretrained(
        os.path.join(folder, "config.json"), os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "golden.json")) as f:
        golden = json.load(f)
    failures = 0
    for case in golden["cases"]:
        steps, ids = griffin.greedy(model, case["prompt_ids"], golden["greedy_new_tokens"])
        expected = torch.tensor(case["last_logits"], dtype=torch.float64)
        diff = (steps[0] - expected).abs().max().item()
        ok = diff <= TOLERANCE and ids == case["greedy_ids"]
        failures += not ok
        verdict = "ok" if ids == case["greedy_ids"] else "MISMATCH"
        print(f"{case['name']:16s} max|dlogit| {diff:.2e}  greedy {verdict}")
    print("PASS" if failures == 0 else f"FAIL ({failures} cases)")
    return failures == 0


if __name__ == "__main__":
    sys.exit(0 if main(*sys.argv[1:]) else 1)
