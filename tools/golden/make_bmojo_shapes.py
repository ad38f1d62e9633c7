#!/usr/bin/python3
"""Writes B'MOJO-F golden fixtures of shapes other than bmojo_tiny's.

A float64, token-by-token reference of the hybrid Qwen3 / B'MOJO-F math
(Qwen3 attention layers with a growing cache; B'MOJO-F layers: Mamba2 fading
mixer, in-context window of W keys, fading window of the W positions before
it, one softmax), written from the spec independently of the engine. Run on
tests/golden/bmojo_tiny with --check it reproduces that fixture's golden
last logits to about 1e-14.

Usage:
  /usr/bin/python3 tools/golden/make_bmojo_shapes.py OUT_DIR   # every shape
  /usr/bin/python3 tools/golden/make_bmojo_shapes.py --check tests/golden/bmojo_tiny
  /usr/bin/python3 tools/golden/make_bmojo_shapes.py tests/golden/bmojo_tiny \
      --eidetic=6,0.3,0 --out=/tmp/eidetic.json

--eidetic recomputes DIR's prompts with the long-term eidetic memory of the
spec's section 9 (capacity, threshold, top-k per window), for
`slabeval --eidetic_capacity=... --eidetic_threshold=...
--eidetic_topk_per_window=...` to compare against.

Each shape gets OUT_DIR/<name>/{config.json, model.safetensors, golden.json}
(schema bmojo-golden/1: prompt cases of 1, 5, 17 and 30 tokens, 8 greedy
tokens, each winning by at least 0.01, per-position logit sums, states after
the prompt). Needs numpy only.
"""

import argparse
import json
import os
import struct

import numpy as np

MIN_MARGIN = 1e-2

# name -> shape overrides of make(); each differs from bmojo_tiny.
SHAPES = {
    # GQA 2:1, head_dim 8 (d_inner 32 < hidden 48), conv width 3, W 6,
    # tied embeddings, five layers starting with B'MOJO-F.
    "gqa_tied_conv3": {},
    # Multi-head (Hkv = H = 3), head_dim 10, no B/C norms, untied head, odd
    # window_size 5 (served as W = 6), default conv width 4.
    "mha_untied_nonorm_oddw": {"bc": False, "tied": False, "H": 3, "Hkv": 3,
                               "D": 10, "W": 5, "K": 4},
    # Only B'MOJO-F layers (no per-token state), W 2, GQA 4:1.
    "all_bmojo_w2": {"pattern": "BMF-BMF-BMF", "W": 2, "H": 8, "Hkv": 2,
                     "D": 4, "d": 32},
}


def make(out, V=97, d=48, H=4, Hkv=2, D=8, I=80, pattern="BMF-*-BMF-BMF-*",
         W=6, K=3, bc=True, tied=True, seed=5, theta=5000.0):
    """Writes config.json and seeded random F32 weights; returns both."""
    rng = np.random.default_rng(seed)
    din, dxb = H * D, Hkv * D
    channels = 2 * dxb + din
    symbols = pattern.split("-")
    config = {
        "model_type": "hybrid_qwen3", "vocab_size": V, "hidden_size": d,
        "intermediate_size": I, "num_hidden_layers": len(symbols),
        "num_attention_heads": H, "num_key_value_heads": Hkv, "head_dim": D,
        "hidden_act": "silu", "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6, "rope_theta": theta, "attention_bias": False,
        "tie_word_embeddings": tied, "hybrid_override_pattern": pattern,
        "bmojo_config": {"window_size": W, "tie_attn_weights": True,
                         "ssm_mixer": "mamba2"},
        "mamba2_config": {"d_model": d, "d_inner": din, "d_xb": dxb,
                          "d_conv": K, "use_qk_norm": bc, "use_pos_emb": False,
                          "ssm_cfg": {"expand": 1, "ngroups": H, "d_state": D}},
    }
    t = {}

    def linear(name, rows, cols, scale=2.0):
        t[name] = rng.uniform(-scale, scale, (rows, cols)) / np.sqrt(cols)

    def norm(name, size):
        t[name] = rng.normal(1.0, 0.3, (size,))

    t["model.embed_tokens.weight"] = rng.normal(0.0, 1.0, (V, d))
    if not tied:
        linear("lm_head.weight", V, d, 1.0)
    norm("model.norm.weight", d)
    for l, symbol in enumerate(symbols):
        p = f"model.layers.{l}."
        norm(p + "input_layernorm.weight", d)
        norm(p + "post_attention_layernorm.weight", d)
        a = p + ("self_attn." if symbol == "*" else "bmojo_f.bmojo_attn.")
        linear(a + "q_proj.weight", din, d)
        linear(a + "k_proj.weight", dxb, d)
        linear(a + "v_proj.weight", dxb, d)
        linear(a + "o_proj.weight", d, din)
        norm(a + "q_norm.weight", D)
        norm(a + "k_norm.weight", D)
        if symbol == "BMF":
            m = p + "bmojo_f.mamba."
            linear(m + "in_proj.weight", 2 * din + 2 * dxb + H, d)
            linear(m + "out_proj.weight", d, din)
            t[m + "conv1d.weight"] = rng.uniform(-0.6, 0.6, (channels, 1, K))
            t[m + "conv1d.bias"] = rng.uniform(-0.2, 0.2, channels)
            t[m + "dt_bias"] = rng.uniform(-2.0, 0.5, H)
            t[m + "A_log"] = rng.uniform(-1.0, 1.5, H)
            t[m + "D"] = rng.uniform(0.3, 1.5, H)
            if bc:
                norm(m + "B_norm.weight", D)
                norm(m + "C_norm.weight", D)
            norm(m + "norm.weight", din)
        linear(p + "mlp.gate_proj.weight", I, d)
        linear(p + "mlp.up_proj.weight", I, d)
        linear(p + "mlp.down_proj.weight", d, I)
    t = {name: np.asarray(a, dtype="<f4") for name, a in t.items()}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    save_safetensors(os.path.join(out, "model.safetensors"), t)
    return config, {name: a.astype(np.float64) for name, a in t.items()}


def save_safetensors(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in sorted(tensors):
        size = tensors[name].nbytes
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(tensors[name].tobytes())


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps) * weight


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope(x, position, theta):
    """Rotate-half RoPE over the whole head."""
    D = x.shape[-1]
    angle = position * theta ** (-np.arange(0, D, 2) / D)
    cos = np.concatenate([np.cos(angle)] * 2)
    sin = np.concatenate([np.sin(angle)] * 2)
    return x * cos + np.concatenate([-x[..., D // 2:], x[..., :D // 2]], -1) * sin


class Ref:
    """One sequence, fed a token at a time; keeps every past key/value.

    `eidetic` = (capacity, threshold, topk_per_window) turns on the long-term
    eidetic memory of the spec's section 9 (None: plain B'MOJO-F)."""

    def __init__(self, config, tensors, eidetic=None):
        self.t = tensors
        self.eidetic = eidetic
        self.H = config["num_attention_heads"]
        self.Hkv = config["num_key_value_heads"]
        self.D = config["head_dim"]
        window = config["bmojo_config"]["window_size"]
        self.W = window if window % 2 == 0 else window + 1
        self.K = config["mamba2_config"].get("d_conv", 4)
        self.eps = config["rms_norm_eps"]
        self.theta = config.get("rope_theta", 10000.0)
        self.types = config["hybrid_override_pattern"].split("-")
        channels = 2 * self.Hkv * self.D + self.H * self.D
        layers = len(self.types)
        self.kv = [[] for _ in range(layers)]
        self.fading_kv = [[] for _ in range(layers)]
        self.conv = [np.zeros((self.K - 1, channels)) for _ in range(layers)]
        self.S = [np.zeros((self.H, self.D, self.D)) for _ in range(layers)]
        self.scores = [[] for _ in range(layers)]  # innovation r per position
        self.store = [[] for _ in range(layers)]   # [position, r, k, v]
        self.position = 0

    def project(self, prefix, u):
        t, D = self.t, self.D
        q = (u @ t[prefix + "q_proj.weight"].T).reshape(self.H, D)
        k = (u @ t[prefix + "k_proj.weight"].T).reshape(self.Hkv, D)
        v = (u @ t[prefix + "v_proj.weight"].T).reshape(self.Hkv, D)
        q = rope(rms_norm(q, t[prefix + "q_norm.weight"], self.eps),
                 self.position, self.theta)
        k = rope(rms_norm(k, t[prefix + "k_norm.weight"], self.eps),
                 self.position, self.theta)
        return q, k, v

    def attend(self, q, keys):
        """One softmax over `keys` ((k, v) pairs) for every query head."""
        G = self.H // self.Hkv
        out = np.zeros((self.H, self.D))
        for h in range(self.H):
            g = h // G
            scores = np.array([q[h] @ k[g] for k, _ in keys]) / np.sqrt(self.D)
            p = np.exp(scores - scores.max())
            out[h] = sum(pi * v[g] for pi, (_, v) in zip(p, keys)) / p.sum()
        return out.reshape(-1)

    def mamba(self, l, u):
        """The fading token f of layer l (spec 5.1)."""
        t, H, Hkv, D = self.t, self.H, self.Hkv, self.D
        m = f"model.layers.{l}.bmojo_f.mamba."
        din, dxb, G = H * D, Hkv * D, H // Hkv
        zx = u @ t[m + "in_proj.weight"].T
        z, x = zx[:din], zx[din:din + dxb]
        B, C = zx[din + dxb:din + 2 * dxb], zx[din + 2 * dxb:2 * din + 2 * dxb]
        dt = zx[2 * din + 2 * dxb:]
        if m + "B_norm.weight" in t:
            B = rms_norm(B.reshape(Hkv, D), t[m + "B_norm.weight"], 1e-6)
            C = rms_norm(C.reshape(H, D), t[m + "C_norm.weight"], 1e-6)
        rows = np.vstack([self.conv[l], np.concatenate(
            [x, B.reshape(-1), C.reshape(-1)])])
        self.conv[l] = rows[1:]
        taps = t[m + "conv1d.weight"][:, 0, :]
        xbc = silu(t[m + "conv1d.bias"] + np.sum(taps.T * rows, 0))
        x, B, C = xbc[:dxb], xbc[dxb:2 * dxb], xbc[2 * dxb:]
        y = np.zeros(din)
        r = []
        for h in range(H):
            g = h // G
            xh, Bh = x[g * D:(g + 1) * D], B[g * D:(g + 1) * D]
            Ch = C[h * D:(h + 1) * D]
            predicted = self.S[l][h] @ Bh  # the state before this token
            xx, pp = xh @ xh, predicted @ predicted
            r.append(1.0 if xx == 0 or pp == 0 else
                     1.0 - (xh @ predicted) ** 2 / (xx * pp))
            delta = np.log1p(np.exp(dt[h] + t[m + "dt_bias"][h]))
            A = -np.exp(t[m + "A_log"][h])
            self.S[l][h] = (np.exp(delta * A) * self.S[l][h]
                            + delta * np.outer(xh, Bh))
            y[h * D:(h + 1) * D] = self.S[l][h] @ Ch + t[m + "D"][h] * xh
        self.scores[l].append(float(np.mean(r)))
        gated = (y * silu(z)).reshape(H, D)
        gated = gated / np.sqrt(np.mean(gated * gated, -1, keepdims=True)
                                + 1e-5)
        return (gated.reshape(-1) * t[m + "norm.weight"]) @ \
            t[m + "out_proj.weight"].T

    def offer(self, l, j):
        """Position j leaves the in-context window of layer l."""
        capacity, threshold, topk = self.eidetic
        r = self.scores[l][j]
        store = self.store[l]
        entry = [j, r, *self.kv[l][j]]
        if r < threshold or capacity <= 0:
            return

        def replace_weakest(indices):
            # Lowest score loses, then the oldest; the candidate is newest.
            weakest = min(indices, key=lambda e: (store[e][1], store[e][0]))
            if r >= store[weakest][1]:
                store[weakest] = entry

        if topk > 0:
            block = [e for e in range(len(store))
                     if store[e][0] // self.W == j // self.W]
            if len(block) >= topk:
                replace_weakest(block)
                return
        if len(store) < capacity:
            store.append(entry)
        else:
            replace_weakest(range(len(store)))

    def step(self, token):
        """Logits after feeding `token` at the next position."""
        t, i, W = self.t, self.position, self.W
        h = t["model.embed_tokens.weight"][token].copy()
        for l, kind in enumerate(self.types):
            p = f"model.layers.{l}."
            u = rms_norm(h, t[p + "input_layernorm.weight"], self.eps)
            if kind == "*":
                q, k, v = self.project(p + "self_attn.", u)
                self.kv[l].append((k, v))
                o = self.attend(q, self.kv[l])
                h = h + o @ t[p + "self_attn.o_proj.weight"].T
            else:
                f = self.mamba(l, u)
                a = p + "bmojo_f.bmojo_attn."
                q, k, v = self.project(a, u)
                _, kf, vf = self.project(a, f)
                self.kv[l].append((k, v))
                self.fading_kv[l].append((kf, vf))
                keys = self.kv[l][max(0, i - W + 1):i + 1]
                if i >= W:
                    keys = keys + self.fading_kv[l][max(0, i - 2 * W + 1):
                                                    i - W + 1]
                keys = keys + [(k, v) for _, _, k, v in self.store[l]]
                h = h + self.attend(q, keys) @ t[a + "o_proj.weight"].T
                if self.eidetic and i - W + 1 >= 0:
                    self.offer(l, i - W + 1)
            n = rms_norm(h, t[p + "post_attention_layernorm.weight"], self.eps)
            gate = silu(n @ t[p + "mlp.gate_proj.weight"].T)
            h = h + (gate * (n @ t[p + "mlp.up_proj.weight"].T)) @ \
                t[p + "mlp.down_proj.weight"].T
        self.position += 1
        head = t.get("lm_head.weight", t["model.embed_tokens.weight"])
        return rms_norm(h, t["model.norm.weight"], self.eps) @ head.T


def golden(out, config, tensors, seed, lengths=(1, 5, 17, 30), greedy=8):
    """Writes golden.json (schema bmojo-golden/1) for random prompts drawn
    with `seed`; returns the smallest top-1/top-2 margin of the greedy
    choices."""
    rng = np.random.default_rng(seed)
    prompts = [[int(x) for x in rng.integers(0, config["vocab_size"], n)]
               for n in lengths]
    cases = golden_cases(config, tensors, prompts, greedy)
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump({"schema": "bmojo-golden/1", "model_type": "hybrid_qwen3",
                   "reference": "tools/golden/make_bmojo_shapes.py, float64",
                   "seed": seed, "greedy_new_tokens": greedy,
                   "cases": cases}, f)
    return min(min(case["greedy_top2_margin"]) for case in cases)


def golden_cases(config, tensors, prompts, greedy, eidetic=None):
    """The golden fields of every prompt, computed in float64."""
    cases = []
    for prompt in prompts:
        ref = Ref(config, tensors, eidetic)
        sums, sumsqs = [], []
        for token in prompt:
            logits = ref.step(token)
            sums.append(logits.sum())
            sumsqs.append((logits * logits).sum())
        bmf = [l for l, kind in enumerate(ref.types) if kind == "BMF"]
        case = {
            "name": f"len{len(prompt)}", "prompt_ids": prompt,
            "last_logits": logits.tolist(), "logit_sum": sums,
            "logit_sumsq": sumsqs,
            "ssm_state_after_prompt": [ref.S[l].reshape(-1).tolist()
                                       for l in bmf],
            "conv_state_after_prompt": [ref.conv[l].reshape(-1).tolist()
                                        for l in bmf],
            "greedy_ids": [], "greedy_top2_margin": [], "greedy_logit_sum": [],
            "greedy_logit_sumsq": [],
        }
        for k in range(greedy):
            top = np.sort(logits)[-2:]
            case["greedy_ids"].append(int(np.argmax(logits)))
            case["greedy_top2_margin"].append(top[1] - top[0])
            case["greedy_logit_sum"].append(logits.sum())
            case["greedy_logit_sumsq"].append((logits * logits).sum())
            if k < greedy - 1:
                logits = ref.step(case["greedy_ids"][-1])
        cases.append(case)
    return cases


def load_checkpoint(directory):
    config = json.load(open(os.path.join(directory, "config.json")))
    with open(os.path.join(directory, "model.safetensors"), "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(
            entry["shape"]).astype(np.float64)
    return config, tensors


def check(directory):
    config, tensors = load_checkpoint(directory)
    golden = json.load(open(os.path.join(directory, "golden.json")))
    for case in golden["cases"]:
        ref = Ref(config, tensors)
        for token in case["prompt_ids"]:
            logits = ref.step(token)
        diff = np.abs(logits - np.array(case["last_logits"])).max()
        print(f"{case['name']}: max |dlogit| {diff:.3g}")


def eidetic_golden(directory, option, out):
    """A golden file for DIR's checkpoint and prompts with the memory on."""
    capacity, threshold, topk = option.split(",")
    eidetic = (int(capacity), float(threshold), int(topk))
    config, tensors = load_checkpoint(directory)
    source = json.load(open(os.path.join(directory, "golden.json")))
    prompts = [case["prompt_ids"] for case in source["cases"]]
    greedy = len(source["cases"][0]["greedy_ids"])
    cases = golden_cases(config, tensors, prompts, greedy, eidetic)
    with open(out, "w") as f:
        json.dump({"schema": "bmojo-golden/1", "model_type": "hybrid_qwen3",
                   "reference": "tools/golden/make_bmojo_shapes.py, float64",
                   "eidetic": option, "cases": cases}, f)
    margin = min(min(case["greedy_top2_margin"]) for case in cases)
    print(f"wrote {out} (smallest greedy margin {margin:.3g})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("--check", action="store_true",
                        help="compare with DIR's golden.json instead")
    parser.add_argument("--eidetic", metavar="CAPACITY,THRESHOLD,TOPK",
                        help="write --out: DIR's prompts with the eidetic "
                        "memory on")
    parser.add_argument("--out", help="golden file for --eidetic")
    args = parser.parse_args()
    if args.check:
        check(args.dir)
        return
    if args.eidetic:
        eidetic_golden(args.dir, args.eidetic, args.out)
        return
    for name, shape in SHAPES.items():
        out = os.path.join(args.dir, name)
        config, tensors = make(out, **shape)
        # Prompts are redrawn until every greedy choice wins by 100 times
        # the engine's logit tolerance.
        seed = 9
        while golden(out, config, tensors, seed) < MIN_MARGIN:
            seed += 1
        print(f"wrote {out} (prompt seed {seed})")


if __name__ == "__main__":
    main()
