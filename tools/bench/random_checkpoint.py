"""Writes a checkpoint in Hugging Face layout (config.json + model.safetensors,
all F32) for the benchmark model generators in this folder."""

import json
import os
import struct


def save_safetensors(path, tensors):
    """`tensors`: name -> little-endian float32 numpy array; names sorted,
    header padded to a multiple of 8 bytes."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in sorted(tensors):
        size = tensors[name].nbytes
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in sorted(tensors):
            f.write(tensors[name].tobytes())


def write_checkpoint(out_dir, config, tensors):
    """Writes both files into `out_dir`; returns the parameter count."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    save_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    return sum(a.size for a in tensors.values())
