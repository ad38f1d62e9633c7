"""Prints continuations from an exported model (greedy and seeded sampling).

Usage: /usr/bin/python3 tools/train/sample.py [MODELDIR] [PROMPT]
       (defaults models/default and "In the beginning")
"""

import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import griffin  # noqa: E402

NEW_TOKENS = 60
TEMPERATURE = 0.7
TOP_K = 40
SEED = 0


@torch.no_grad()
def generate(model, ids, sample, gen):
    ids = list(ids)
    for _ in range(NEW_TOKENS):
        logits = model(torch.tensor([ids]))[0, -1]
        if sample:
            top = torch.topk(logits / TEMPERATURE, TOP_K)
            pick = torch.multinomial(torch.softmax(top.values, -1), 1, generator=gen)
            ids.append(int(top.indices[pick]))
        else:
            ids.append(int(torch.argmax(logits)))
    return ids


def main(modeldir="models/default", prompt="In the beginning"):
    model = griffin.load_pretrained(os.path.join(modeldir, "config.json"),
                                    os.path.join(modeldir, "model.safetensors"), torch.float32)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(modeldir, "tokenizer.model"))
    prompt_ids = [sp.bos_id()] + sp.encode(prompt)
    gen = torch.Generator().manual_seed(SEED)
    for label, sample in (("greedy", False), (f"T={TEMPERATURE} top-{TOP_K} seed {SEED}", True)):
        ids = generate(model, prompt_ids, sample, gen)
        print(f"--- {label}\n{sp.decode(ids[1:])}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
