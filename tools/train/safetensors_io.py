"""Minimal safetensors reader/writer (F32, F64 and BF16) for torch tensors.

Layout: 8-byte little-endian header length n, n bytes of JSON
{name: {dtype, shape, data_offsets}} (padded with spaces), then the data.
"""

import json
import struct

import numpy as np
import torch

_NUMPY = {"F32": np.float32, "F64": np.float64}


def load(path):
    """Returns {name: float32/float64 tensor}; BF16 is widened to F32."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = blob[base + begin : base + end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif info["dtype"] in _NUMPY:
            arr = np.frombuffer(raw, dtype=np.dtype(_NUMPY[info["dtype"]]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
    return out


def save(path, tensors, dtype="F32"):
    """Writes tensors in name order as F32 or BF16 (round-to-nearest-even)."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        if dtype == "BF16":
            data = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        elif dtype == "F32":
            data = t.numpy().astype("<f4").tobytes()
        else:
            raise ValueError(f"unsupported output dtype {dtype}")
        header[name] = {
            "dtype": dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)
