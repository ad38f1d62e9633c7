"""Trains the default Griffin on the KJV corpus built by prepare_data.py.

Seeded and reproducible: the weights come from Griffin.init_weights(seed) and
the whole batch order is drawn up front from the seed. Each example is BOS
followed by SEQ_LEN - 1 tokens that start at a verse boundary. A checkpoint
(model, optimizer, step) is written every CHECKPOINT_EVERY steps and the run
resumes from it when restarted.

Usage: /usr/bin/python3 tools/train/train.py [WORKDIR]   (default out/train)
"""

import json
import math
import os
import sys
import time

import numpy as np

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine a
# spinning thread starves the busy one and steps get several times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import griffin  # noqa: E402

SEED = 1234
STEPS = 700
BATCH = 16
SEQ_LEN = 256
PEAK_LR = 3e-3
MIN_LR = 3e-4
WARMUP = 50
WEIGHT_DECAY = 0.1
CLIP = 1.0
LOG_EVERY = 10
EVAL_EVERY = 200
CHECKPOINT_EVERY = 100
BOS = 2

# Hugging Face config of the model (written verbatim by export.py).
HF_CONFIG = {
    "architectures": ["RecurrentGemmaForCausalLM"],
    "model_type": "recurrent_gemma",
    "vocab_size": 4096,
    "hidden_size": 256,
    "lru_width": 256,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "intermediate_size": 1536,
    "num_hidden_layers": 6,
    "attention_window_size": 128,
    "block_types": ["recurrent", "recurrent", "attention"],
    "_block_types": ["recurrent", "recurrent", "attention"],
    "conv1d_width": 4,
    "hidden_activation": "gelu_pytorch_tanh",
    "partial_rotary_factor": 0.5,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "logits_soft_cap": 30.0,
    "embeddings_scale_by_sqrt_dim": True,
    "attention_bias": False,
    "tie_word_embeddings": True,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
    "torch_dtype": "float32",
    "use_cache": True,
}


def learning_rate(step):
    if step < WARMUP:
        return PEAK_LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, STEPS - WARMUP)
    return MIN_LR + 0.5 * (PEAK_LR - MIN_LR) * (1 + math.cos(math.pi * progress))


def make_batches(ids, starts):
    """All training batches, [STEPS, BATCH, SEQ_LEN], in a fixed seeded order."""
    valid = starts[starts + SEQ_LEN - 1 <= len(ids)]
    rng = np.random.RandomState(SEED)
    picks = rng.choice(valid, size=(STEPS, BATCH))
    offsets = np.arange(SEQ_LEN - 1)
    body = ids[picks[..., None] + offsets]
    bos = np.full(body.shape[:2] + (1,), BOS, dtype=body.dtype)
    return torch.from_numpy(np.concatenate([bos, body], axis=-1).astype(np.int64))


def heldout_chunks(ids):
    """Non-overlapping BOS-prefixed chunks covering the held-out text."""
    n = SEQ_LEN - 1
    chunks = [ids[i : i + n] for i in range(0, len(ids) - n + 1, n)]
    return torch.from_numpy(np.stack([np.concatenate([[BOS], c]) for c in chunks]).astype(np.int64))


def lm_loss(model, batch):
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


@torch.no_grad()
def evaluate(model, chunks):
    model.eval()
    total = sum(lm_loss(model, chunks[i : i + BATCH]).item() * len(chunks[i : i + BATCH])
                for i in range(0, len(chunks), BATCH))
    model.train()
    return total / len(chunks)


def make_optimizer(model):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=PEAK_LR, betas=(0.9, 0.95), eps=1e-8)


def main(workdir="out/train"):
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    data = np.load(os.path.join(workdir, "tokens.npz"))
    batches = make_batches(data["train_ids"], data["train_starts"])
    held = heldout_chunks(data["heldout_ids"])

    model = griffin.Griffin(griffin.GriffinConfig.from_hf(HF_CONFIG))
    model.init_weights(SEED)
    optimizer = make_optimizer(model)
    ckpt_path = os.path.join(workdir, "checkpoint.pt")
    start, elapsed = 0, 0.0
    if os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start, elapsed = ckpt["step"], ckpt["elapsed_s"]
        print(f"resumed at step {start}", flush=True)
    params = sum(p.numel() for p in model.parameters())
    print(f"params {params}, {STEPS} steps x {BATCH} x {SEQ_LEN} tokens", flush=True)

    log = open(os.path.join(workdir, "log.jsonl"), "a")
    model.train()
    t0 = time.time() - elapsed
    for step in range(start, STEPS):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step)
        loss = lm_loss(model, batches[step])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()

        done = step + 1
        record = {"step": done, "loss": loss.item(), "lr": learning_rate(step),
                  "elapsed_s": round(time.time() - t0, 1)}
        if done % EVAL_EVERY == 0 or done == STEPS:
            record["heldout_loss"] = evaluate(model, held)
        if done % LOG_EVERY == 0 or "heldout_loss" in record:
            print(json.dumps(record), flush=True)
        log.write(json.dumps(record) + "\n")
        log.flush()
        if done % CHECKPOINT_EVERY == 0 or done == STEPS:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": done, "elapsed_s": time.time() - t0}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
    print(f"done: {STEPS} steps in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
