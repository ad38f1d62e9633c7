"""Griffin (RecurrentGemma) in PyTorch, written for training.

The math follows the serving spec exactly (embedding scale rounded to bf16,
RMSNorm with a (1 + w) scale, GeGLU MLP, recurrent block with a width-4
causal conv and the RG-LRU, local MQA attention with partial RoPE, tied head
with a soft cap). Parameter names are the Hugging Face ones, so
`model.state_dict()` is the checkpoint without any renaming.

Whole sequences are processed at once: every sequence starts at position 0
(BOS), the RG-LRU runs as a parallel prefix scan and attention uses a banded
causal mask of W keys (the current token included).
"""

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class GriffinConfig:
    vocab_size: int
    hidden_size: int
    lru_width: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    num_hidden_layers: int
    attention_window_size: int
    block_types: list
    conv1d_width: int = 4
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    logits_soft_cap: float = 30.0

    @classmethod
    def from_hf(cls, cfg):
        """Builds the config from a Hugging Face config.json dict."""
        fields = {f.name for f in dataclasses.fields(cls)}
        args = {k: v for k, v in cfg.items() if k in fields}
        args["block_types"] = cfg.get("block_types") or cfg["_block_types"]
        args["lru_width"] = cfg.get("lru_width") or cfg["hidden_size"]
        if args.get("logits_soft_cap") is None:
            args["logits_soft_cap"] = 0.0
        return cls(**args)

    def layer_type(self, i):
        return self.block_types[i % len(self.block_types)]


def gelu(z):
    """0.5·z·(1 + tanh(0.7978845608028654·(z + 0.044715·z³))), as one fused op."""
    return F.gelu(z, approximate="tanh")


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * scale * (1.0 + self.weight)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        width = cfg.intermediate_size // 2
        self.gate_proj = nn.Linear(cfg.hidden_size, width)
        self.up_proj = nn.Linear(cfg.hidden_size, width)
        self.down_proj = nn.Linear(width, cfg.hidden_size)

    def forward(self, x):
        return self.down_proj(gelu(self.gate_proj(x)) * self.up_proj(x))


def linear_scan(a, b):
    """h_t = a_t * h_{t-1} + b_t along dim 1 with h_{-1} = 0 (log-depth scan)."""
    shift = 1
    while shift < a.shape[1]:
        # Combine each position with the partial result `shift` steps back.
        b = torch.cat([b[:, :shift], b[:, shift:] + a[:, shift:] * b[:, :-shift]], dim=1)
        a = torch.cat([a[:, :shift], a[:, shift:] * a[:, :-shift]], dim=1)
        shift *= 2
    return b


class RGLRU(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        heads, width = cfg.num_attention_heads, cfg.lru_width
        block = width // heads
        self.heads = heads
        self.input_gate_weight = nn.Parameter(torch.empty(heads, block, block))
        self.input_gate_bias = nn.Parameter(torch.zeros(heads, block))
        self.recurrent_gate_weight = nn.Parameter(torch.empty(heads, block, block))
        self.recurrent_gate_bias = nn.Parameter(torch.zeros(heads, block))
        self.recurrent_param = nn.Parameter(torch.empty(width))

    def _block_diag(self, x, weight, bias):
        # Weights are [heads, in, out], applied untransposed: z_h = x_h @ G[h] + b[h].
        xs = x.unflatten(-1, (self.heads, -1))
        z = torch.einsum("bthi,hij->bthj", xs, weight) + bias
        return z.flatten(-2)

    def forward(self, c):
        gate_x = torch.sigmoid(self._block_diag(c, self.input_gate_weight, self.input_gate_bias))
        gate_a = torch.sigmoid(
            self._block_diag(c, self.recurrent_gate_weight, self.recurrent_gate_bias))
        log_a = -8.0 * gate_a * F.softplus(self.recurrent_param)
        a = torch.exp(log_a)
        mult = torch.sqrt(-torch.expm1(2.0 * log_a))
        # Reset at the sequence start: no carry, multiplier 1.
        first = torch.zeros_like(a[:, :1])
        a = torch.cat([first, a[:, 1:]], dim=1)
        mult = torch.cat([first + 1.0, mult[:, 1:]], dim=1)
        return linear_scan(a, mult * gate_x * c)


class RecurrentBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, r, k = cfg.hidden_size, cfg.lru_width, cfg.conv1d_width
        self.linear_y = nn.Linear(d, r)
        self.linear_x = nn.Linear(d, r)
        self.linear_out = nn.Linear(r, d)
        # Depthwise causal conv: left padding K-1, tap K-1 multiplies the current token.
        self.conv_1d = nn.Conv1d(r, r, k, groups=r, padding=k - 1)
        self.rg_lru = RGLRU(cfg)

    def forward(self, n):
        y = gelu(self.linear_y(n))
        u = self.linear_x(n)
        c = self.conv_1d(u.transpose(1, 2))[..., : u.shape[1]].transpose(1, 2)
        return self.linear_out(self.rg_lru(c) * y)


def rope(x, positions, theta):
    """Rotate-half RoPE on the first half of the head dims; x is [B, T, heads, hd]."""
    rot = x.shape[-1] // 2
    half = rot // 2
    freq = theta ** (-torch.arange(half, dtype=x.dtype) * 2.0 / rot)
    angle = positions.to(x.dtype)[:, None] * freq[None, :]
    cos, sin = torch.cos(angle)[:, None, :], torch.sin(angle)[:, None, :]
    x1, x2, rest = x[..., :half], x[..., half:rot], x[..., rot:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)


class LocalAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, heads = cfg.hidden_size, cfg.num_attention_heads
        self.heads, self.kv_heads = heads, cfg.num_key_value_heads
        self.head_dim = d // heads
        self.window = cfg.attention_window_size
        self.theta = cfg.rope_theta
        self.q_proj = nn.Linear(d, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, d, bias=True)

    def forward(self, n):
        b, t, _ = n.shape
        pos = torch.arange(t)
        q = rope(self.q_proj(n).view(b, t, self.heads, -1), pos, self.theta)
        k = rope(self.k_proj(n).view(b, t, self.kv_heads, -1), pos, self.theta)
        v = self.v_proj(n).view(b, t, self.kv_heads, -1)
        # Consecutive query heads share one KV head.
        group = self.heads // self.kv_heads
        k = k.repeat_interleave(group, dim=2)
        v = v.repeat_interleave(group, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * self.head_dim**-0.5
        dist = pos[:, None] - pos[None, :]
        allowed = (dist >= 0) & (dist < self.window)
        scores = scores.masked_fill(~allowed, float("-inf"))
        att = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(scores, dim=-1), v)
        return self.o_proj(att.reshape(b, t, -1))


class ResidualBlock(nn.Module):
    def __init__(self, cfg, layer_type):
        super().__init__()
        self.temporal_pre_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        if layer_type == "recurrent":
            self.temporal_block = RecurrentBlock(cfg)
        elif layer_type == "attention":
            self.temporal_block = LocalAttention(cfg)
        else:
            raise ValueError(f"unknown block type {layer_type!r}")
        self.channel_pre_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp_block = MLP(cfg)

    def forward(self, h):
        h = h + self.temporal_block(self.temporal_pre_norm(h))
        return h + self.mlp_block(self.channel_pre_norm(h))


class GriffinModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(
            ResidualBlock(cfg, cfg.layer_type(i)) for i in range(cfg.num_hidden_layers))
        self.final_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class Griffin(nn.Module):
    """Causal LM: `forward(ids)` returns soft-capped logits [B, T, V]."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = GriffinModel(cfg)
        # sqrt(D) rounded to bfloat16 (round-to-nearest-even), as in the references.
        root = torch.tensor(math.sqrt(cfg.hidden_size), dtype=torch.float32)
        self.embed_scale = float(root.to(torch.bfloat16).float())

    def forward(self, ids):
        h = self.model.embed_tokens(ids) * self.embed_scale
        for layer in self.model.layers:
            h = layer(h)
        logits = self.model.final_norm(h) @ self.model.embed_tokens.weight.T
        cap = self.cfg.logits_soft_cap
        return cap * torch.tanh(logits / cap) if cap else logits

    def init_weights(self, seed):
        """Seeded init: scaled normal linears, RG-LRU decays in [0.9, 0.999]."""
        gen = torch.Generator().manual_seed(seed)
        cfg = self.cfg
        out_scale = 1.0 / math.sqrt(2 * cfg.num_hidden_layers)
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith("recurrent_param"):
                    decay = 0.9 + 0.099 * torch.rand(p.shape, generator=gen)
                    # exp(-8 softplus(L)) = decay  =>  L = log(expm1(-log(decay) / 8)).
                    p.copy_(torch.log(torch.expm1(-torch.log(decay) / 8.0)))
                elif name.endswith("gate_weight"):
                    p.normal_(0.0, p.shape[1] ** -0.5, generator=gen)
                elif name.endswith("embed_tokens.weight"):
                    p.normal_(0.0, cfg.hidden_size**-0.5, generator=gen)
                elif name.endswith("conv_1d.weight"):
                    p.normal_(0.0, 0.5, generator=gen)
                elif p.dim() == 2:
                    std = p.shape[1] ** -0.5
                    if name.split(".")[-2] in ("linear_out", "o_proj", "down_proj"):
                        std *= out_scale
                    p.normal_(0.0, std, generator=gen)
                else:
                    p.zero_()


def load_pretrained(config_path, weights_path, dtype=torch.float64):
    """Loads an HF-layout checkpoint into a Griffin module of the given dtype."""
    import json

    import safetensors_io

    with open(config_path) as f:
        model = Griffin(GriffinConfig.from_hf(json.load(f)))
    state = safetensors_io.load(weights_path)
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()


@torch.no_grad()
def greedy(model, prompt_ids, new_tokens):
    """Argmax continuation (lowest id on ties, EOS does not stop), full recompute per step.

    Returns (the logits that chose each new token, the new ids); step 0's
    logits are those at the last prompt position.
    """
    ids = list(prompt_ids)
    step_logits = []
    for _ in range(new_tokens):
        step_logits.append(model(torch.tensor([ids]))[0, -1])
        ids.append(int(torch.argmax(step_logits[-1])))  # argmax returns the first maximum
    return step_logits, ids[len(prompt_ids):]
