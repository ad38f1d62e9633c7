#!/usr/bin/python3
"""Plain PyTorch batched decode loop of a recurrent_gemma (Griffin) checkpoint,
as a CPU throughput reference for engine/models/model_benchmark.

Usage: /usr/bin/python3 tools/bench/torch_griffin_decode.py MODEL_DIR
           [--batches 1,64,256,1024] [--threads 2] [--min-seconds 1]
           [--workload 256x32x32] [--json FILE]

--workload BxPxO also times B sequences that each read P prompt tokens
(fed as P batched steps) and then generate O greedy tokens, as slabload's
closed-loop mix does against the server: output tokens per second overall.

Every step feeds one token per sequence through the same math the engine
runs (RMSNorm, RG-LRU with its conv, local MQA over a ring of W keys, GeGLU,
tied soft-capped head), in f32 under torch.no_grad(). The attention rings
start full (random keys, positions past W), so every step attends to W keys,
as in the engine benchmark. Prints torch's build configuration and the BLAS
library (and OpenBLAS kernel) it loaded first.
"""

import argparse
import ctypes
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: only F32 checkpoints are supported")
        begin, end = info["data_offsets"]
        data = np.frombuffer(blob, dtype="<f4", count=(end - begin) // 4, offset=8 + n + begin)
        out[name] = torch.from_numpy(data.copy().reshape(info["shape"]))
    return out


class Griffin:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.t = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.d = c["hidden_size"]
        self.r = c["lru_width"]
        self.heads = c["num_attention_heads"]
        self.hd = self.d // self.heads
        self.kv_heads = c["num_key_value_heads"]
        self.window = c["attention_window_size"]
        self.conv = c["conv1d_width"]
        self.cap = c["logits_soft_cap"]
        self.eps = c["rms_norm_eps"]
        self.rot = int(self.hd * c["partial_rotary_factor"])
        self.theta = c["rope_theta"]
        pattern = c["block_types"]
        self.types = [pattern[i % len(pattern)] for i in range(c["num_hidden_layers"])]
        scale = torch.tensor(math.sqrt(self.d), dtype=torch.bfloat16).float()
        self.embed = self.t["model.embed_tokens.weight"]
        self.embed_scale = scale
        self.log_decay = {}
        for i, kind in enumerate(self.types):
            if kind == "recurrent":
                p = f"model.layers.{i}.temporal_block.rg_lru.recurrent_param"
                self.log_decay[i] = -8.0 * F.softplus(self.t[p])

    def w(self, name):
        return self.t[name]

    def norm(self, x, name):
        scale = 1.0 + self.w(name)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * scale

    def linear(self, x, prefix, bias=True):
        b = self.t.get(prefix + ".bias") if bias else None
        return F.linear(x, self.w(prefix + ".weight"), b)

    def new_state(self, batch):
        state = {}
        for i, kind in enumerate(self.types):
            if kind == "recurrent":
                state[i] = (torch.zeros(batch, self.conv - 1, self.r), torch.zeros(batch, self.r))
            else:
                kv = self.kv_heads * self.hd
                state[i] = (torch.randn(batch, self.window, kv), torch.randn(batch, self.window, kv))
        return state

    def recurrent(self, i, x, state):
        p = f"model.layers.{i}.temporal_block."
        y = F.gelu(self.linear(x, p + "linear_y"), approximate="tanh")
        u = self.linear(x, p + "linear_x")
        tail, h = state[i]
        window = torch.cat([tail, u[:, None, :]], dim=1)  # [B, K, R]
        taps = self.w(p + "conv_1d.weight")[:, 0, :].t()  # [K, R]
        c = (window * taps).sum(1) + self.w(p + "conv_1d.bias")
        bw = self.r // self.heads
        blocks = c.view(-1, self.heads, bw).transpose(0, 1)  # [H, B, bw]
        gate_x = torch.sigmoid(
            torch.bmm(blocks, self.w(p + "rg_lru.input_gate_weight")).transpose(0, 1).reshape(-1, self.r)
            + self.w(p + "rg_lru.input_gate_bias").reshape(-1))
        gate_a = torch.sigmoid(
            torch.bmm(blocks, self.w(p + "rg_lru.recurrent_gate_weight")).transpose(0, 1).reshape(-1, self.r)
            + self.w(p + "rg_lru.recurrent_gate_bias").reshape(-1))
        log_a = self.log_decay[i] * gate_a
        h = torch.exp(log_a) * h + torch.sqrt(-torch.expm1(2 * log_a)) * (gate_x * c)
        state[i] = (window[:, 1:, :], h)
        return self.linear(h * y, p + "linear_out")

    def attention(self, i, x, state, position):
        p = f"model.layers.{i}.temporal_block."
        b = x.shape[0]
        q = self.linear(x, p + "q_proj", bias=False).view(b, self.heads, self.hd)
        k = self.linear(x, p + "k_proj", bias=False).view(b, self.kv_heads, self.hd)
        v = self.linear(x, p + "v_proj", bias=False)
        half = self.rot // 2
        freq = self.theta ** (-2.0 * torch.arange(half, dtype=torch.float64) / self.rot)
        angle = position * freq
        cos, sin = torch.cos(angle).float(), torch.sin(angle).float()

        def rope(t):
            a, r, rest = t[..., :half], t[..., half : self.rot], t[..., self.rot :]
            return torch.cat([a * cos - r * sin, r * cos + a * sin, rest], dim=-1)

        q, k = rope(q), rope(k).reshape(b, -1)
        keys, values = state[i]
        slot = position % self.window
        keys[:, slot], values[:, slot] = k, v
        kk = keys.view(b, self.window, self.kv_heads, self.hd)[:, :, 0]  # MQA
        vv = values.view(b, self.window, self.kv_heads, self.hd)[:, :, 0]
        scores = torch.einsum("bhd,bwd->bhw", q, kk) / math.sqrt(self.hd)
        out = torch.einsum("bhw,bwd->bhd", torch.softmax(scores, -1), vv)
        return self.linear(out.reshape(b, -1), p + "o_proj")

    def step(self, tokens, state, position):
        x = self.embed[tokens] * self.embed_scale
        for i, kind in enumerate(self.types):
            p = f"model.layers.{i}."
            n = self.norm(x, p + "temporal_pre_norm.weight")
            if kind == "recurrent":
                x = x + self.recurrent(i, n, state)
            else:
                x = x + self.attention(i, n, state, position)
            n = self.norm(x, p + "channel_pre_norm.weight")
            m = p + "mlp_block."
            hidden = F.gelu(self.linear(n, m + "gate_proj"), approximate="tanh") * self.linear(n, m + "up_proj")
            x = x + self.linear(hidden, m + "down_proj")
        logits = F.linear(self.norm(x, "model.final_norm.weight"), self.embed)
        return self.cap * torch.tanh(logits / self.cap)


def time_workload(model, spec, vocab):
    batch, prompt, output = (int(v) for v in spec.split("x"))
    state = model.new_state(batch)
    for i, kind in enumerate(model.types):  # a fresh sequence: empty rings
        if kind != "recurrent":
            state[i] = tuple(torch.zeros_like(t) for t in state[i])
    prompts = torch.randint(3, vocab, (prompt, batch))
    begin = time.perf_counter()
    for position in range(prompt):
        logits = model.step(prompts[position], state, position)
    tokens = logits.argmax(-1)
    for position in range(prompt, prompt + output - 1):
        tokens = model.step(tokens, state, position).argmax(-1)
    seconds = time.perf_counter() - begin
    return {"kind": "workload", "size": batch, "prompt": prompt, "output": output,
            "tokens_per_s": batch * output / seconds}


def loaded_blas():
    """The BLAS libraries this process mapped, and OpenBLAS's chosen kernel."""
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line})
    info = {"libraries": libs}
    for lib in libs:
        if "libopenblas" in lib:
            openblas = ctypes.CDLL(lib)
            openblas.openblas_get_corename.restype = ctypes.c_char_p
            openblas.openblas_get_config.restype = ctypes.c_char_p
            info["openblas_core"] = openblas.openblas_get_corename().decode()
            info["openblas_config"] = openblas.openblas_get_config().decode()
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--batches", default="1,64,256,1024")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--workload", help="BxPxO: prompt + output mix")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(torch.__config__.show())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    torch.zeros(8, 8) @ torch.zeros(8, 8)  # loads the BLAS
    blas = loaded_blas()
    print(f"BLAS: {blas}")
    results = []
    model = Griffin(args.model_dir)
    vocab = model.embed.shape[0]
    print(f"{'batch':>6} {'step ms':>10} {'tok/s':>11}")
    with torch.no_grad():
        for batch in [int(b) for b in args.batches.split(",")]:
            state = model.new_state(batch)
            position = max(16, model.window)
            tokens = torch.randint(3, vocab, (batch,))
            for _ in range(3):
                model.step(tokens, state, position)
                position += 1
            steps, begin = 0, time.perf_counter()
            while steps < 3 or time.perf_counter() - begin < args.min_seconds:
                logits = model.step(tokens, state, position)
                tokens = logits.argmax(-1)
                position += 1
                steps += 1
            seconds = (time.perf_counter() - begin) / steps
            print(f"{batch:>6} {seconds * 1e3:>10.3f} {batch / seconds:>11.1f}", flush=True)
            results.append({"kind": "decode", "size": batch, "step_ms": seconds * 1e3,
                            "tokens_per_s": batch / seconds})
        if args.workload:
            results.append(time_workload(model, args.workload, vocab))
            r = results[-1]
            print(f"workload {args.workload}: {r['tokens_per_s']:.1f} output tok/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "blas": blas, "results": results}, f)


if __name__ == "__main__":
    main()
