#!/usr/bin/python3
"""Writes a randomly initialised 13.8M-parameter Griffin checkpoint for CPU
throughput benchmarks (engine/models/model_benchmark).

Usage: /usr/bin/python3 tools/bench/make_medium_griffin.py OUT_DIR [--seed N]

Shape: hidden 512, lru_width 512, 8 heads x 64, 1 KV head, MLP width 768
(intermediate_size 1536: the engine reads half of it), conv width 4,
attention window 64, 6 layers (recurrent, recurrent, attention), vocab 4096,
f32, tied embeddings. Needs numpy only.
"""

import argparse

import numpy as np

from random_checkpoint import write_checkpoint

CONFIG = {
    "model_type": "recurrent_gemma",
    "architectures": ["RecurrentGemmaForCausalLM"],
    "hidden_size": 512,
    "lru_width": 512,
    "num_attention_heads": 8,
    "head_dim": 64,
    "num_key_value_heads": 1,
    "intermediate_size": 1536,
    "conv1d_width": 4,
    "attention_window_size": 64,
    "num_hidden_layers": 6,
    "block_types": ["recurrent", "recurrent", "attention"],
    "vocab_size": 4096,
    "attention_bias": False,
    "embeddings_scale_by_sqrt_dim": True,
    "hidden_activation": "gelu_pytorch_tanh",
    "logits_soft_cap": 30.0,
    "partial_rotary_factor": 0.5,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "bos_token_id": 2,
    "eos_token_id": 1,
    "pad_token_id": 0,
}


def make_tensors(rng):
    c = CONFIG
    d, r, v = c["hidden_size"], c["lru_width"], c["vocab_size"]
    heads, k = c["num_attention_heads"], c["conv1d_width"]
    f = c["intermediate_size"] // 2
    kv = c["num_key_value_heads"] * c["head_dim"]
    q = heads * c["head_dim"]
    bw = r // heads

    def linear(name, out, inp, bias=True):
        scale = 1.0 / np.sqrt(inp)
        t[name + ".weight"] = rng.uniform(-scale, scale, (out, inp))
        if bias:
            t[name + ".bias"] = rng.uniform(-scale, scale, (out,))

    t = {
        "model.embed_tokens.weight": rng.normal(0.0, 1.0 / np.sqrt(d), (v, d)),
        "model.final_norm.weight": rng.normal(0.0, 0.1, (d,)),
    }
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "temporal_pre_norm.weight"] = rng.normal(0.0, 0.1, (d,))
        t[p + "channel_pre_norm.weight"] = rng.normal(0.0, 0.1, (d,))
        b = p + "temporal_block."
        if c["block_types"][i % len(c["block_types"])] == "recurrent":
            linear(b + "linear_x", r, d)
            linear(b + "linear_y", r, d)
            linear(b + "linear_out", d, r)
            t[b + "conv_1d.weight"] = rng.uniform(-0.5, 0.5, (r, 1, k))
            t[b + "conv_1d.bias"] = rng.uniform(-0.1, 0.1, (r,))
            for gate in ("input_gate", "recurrent_gate"):
                scale = 1.0 / np.sqrt(bw)
                t[b + f"rg_lru.{gate}_weight"] = rng.uniform(-scale, scale, (heads, bw, bw))
                t[b + f"rg_lru.{gate}_bias"] = rng.uniform(-0.1, 0.1, (heads, bw))
            t[b + "rg_lru.recurrent_param"] = rng.uniform(-4.0, 1.0, (r,))
        else:
            linear(b + "q_proj", q, d, bias=False)
            linear(b + "k_proj", kv, d, bias=False)
            linear(b + "v_proj", kv, d, bias=False)
            linear(b + "o_proj", d, q)
        linear(p + "mlp_block.gate_proj", f, d)
        linear(p + "mlp_block.up_proj", f, d)
        linear(p + "mlp_block.down_proj", d, f)
    return {name: np.asarray(a, dtype="<f4") for name, a in t.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    tensors = make_tensors(np.random.default_rng(args.seed))
    params = write_checkpoint(args.out_dir, CONFIG, tensors)
    print(f"wrote {args.out_dir}: {params} parameters ({params / 1e6:.1f}M)")


if __name__ == "__main__":
    main()
