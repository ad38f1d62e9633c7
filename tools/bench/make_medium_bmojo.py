#!/usr/bin/python3
"""Writes a randomly initialised hybrid Qwen3 / B'MOJO-F checkpoint
(model_type hybrid_qwen3) for CPU throughput benchmarks
(engine/models/bmojo_benchmark).

Usage: /usr/bin/python3 tools/bench/make_medium_bmojo.py OUT_DIR [--seed N]

Shape: a scaled-down B'MOJO-F hybrid in the released 8B's proportions (half
the layers B'MOJO-F, alternating with full attention, GQA 4:1, SSM heads =
attention heads, state size = head_dim): hidden 512, 8 query heads x 64,
2 KV heads, SwiGLU width 1536, 8 layers "*-BMF-*-BMF-*-BMF-*-BMF", window
W = 64, conv width 4, vocab 4096, untied head, f32 (about 32M parameters).
Needs numpy only.
"""

import argparse

import numpy as np

from random_checkpoint import write_checkpoint

HIDDEN, HEADS, KV_HEADS, HEAD_DIM = 512, 8, 2, 64
LAYERS, WINDOW, VOCAB, INTERMEDIATE = 8, 64, 4096, 1536
PATTERN = "-".join("*" if i % 2 == 0 else "BMF" for i in range(LAYERS))
D_IN, D_XB = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM

CONFIG = {
    "architectures": ["HybridQwen3ForCausalLM"],
    "model_type": "hybrid_qwen3",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": INTERMEDIATE,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "head_dim": HEAD_DIM,
    "hidden_act": "silu",
    "max_position_embeddings": 65536,
    "rms_norm_eps": 1e-06,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "attention_bias": False,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "hybrid_override_pattern": PATTERN,
    "bmojo_config": {
        "hidden_size": HIDDEN, "num_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "rms_norm_eps": 1e-06, "window_size": WINDOW,
        "tie_attn_weights": True, "ssm_mixer": "mamba2",
    },
    "mamba2_config": {
        "d_model": HIDDEN, "d_inner": D_IN, "d_xb": D_XB,
        "intermediate_size": INTERMEDIATE, "hidden_act": "silu",
        "rms_norm_eps": 1e-06, "n_layer": LAYERS,
        "ssm_cfg": {"expand": 1, "ngroups": HEADS, "d_state": HEAD_DIM},
        "use_qk_norm": True, "use_pos_emb": False,
    },
}


def make_tensors(rng):
    t = {}

    def linear(name, out, inp):
        scale = 1.0 / np.sqrt(inp)
        t[name + ".weight"] = rng.uniform(-scale, scale, (out, inp))

    def norm(name, size):
        t[name + ".weight"] = rng.normal(1.0, 0.1, (size,))

    def attention(p):
        linear(p + "q_proj", D_IN, HIDDEN)
        linear(p + "k_proj", D_XB, HIDDEN)
        linear(p + "v_proj", D_XB, HIDDEN)
        linear(p + "o_proj", HIDDEN, D_IN)
        norm(p + "q_norm", HEAD_DIM)
        norm(p + "k_norm", HEAD_DIM)

    t["model.embed_tokens.weight"] = rng.normal(0.0, 1.0, (VOCAB, HIDDEN))
    norm("model.norm", HIDDEN)
    linear("lm_head", VOCAB, HIDDEN)
    conv = 2 * D_XB + D_IN
    for i, kind in enumerate(PATTERN.split("-")):
        p = f"model.layers.{i}."
        norm(p + "input_layernorm", HIDDEN)
        norm(p + "post_attention_layernorm", HIDDEN)
        if kind == "*":
            attention(p + "self_attn.")
        else:
            attention(p + "bmojo_f.bmojo_attn.")
            m = p + "bmojo_f.mamba."
            linear(m + "in_proj", 2 * D_IN + 2 * D_XB + HEADS, HIDDEN)
            linear(m + "out_proj", HIDDEN, D_IN)
            t[m + "conv1d.weight"] = rng.uniform(-0.5, 0.5, (conv, 1, 4))
            t[m + "conv1d.bias"] = rng.uniform(-0.1, 0.1, (conv,))
            t[m + "dt_bias"] = np.log(np.expm1(rng.uniform(0.001, 0.1, HEADS)))
            t[m + "A_log"] = np.log(rng.uniform(1.0, 16.0, HEADS))
            t[m + "D"] = rng.uniform(0.5, 1.5, HEADS)
            norm(m + "B_norm", HEAD_DIM)
            norm(m + "C_norm", HEAD_DIM)
            norm(m + "norm", D_IN)
        linear(p + "mlp.gate_proj", INTERMEDIATE, HIDDEN)
        linear(p + "mlp.up_proj", INTERMEDIATE, HIDDEN)
        linear(p + "mlp.down_proj", HIDDEN, INTERMEDIATE)
    return {name: np.asarray(a, dtype="<f4") for name, a in t.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    tensors = make_tensors(np.random.default_rng(args.seed))
    params = write_checkpoint(args.out_dir, CONFIG, tensors)
    print(f"{args.out_dir}: {len(tensors)} tensors, {params:,} parameters")


if __name__ == "__main__":
    main()
