#!/usr/bin/env python3
"""Writes the fuzzers' seed inputs into fuzz/seeds/<target>/: small valid files of each kind (and a
gzip one for IDX), so the fuzzers start from the interesting paths. Needs numpy and safetensors."""
import gzip, json, os, struct
import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
def out(target, name, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

images = struct.pack(">IIII", 0x803, 3, 4, 5) + bytes(range(60))
out("idx_images", "small", images)
out("idx_images", "small.gz", gzip.compress(images))
labels = struct.pack(">II", 0x801, 6) + bytes([0, 1, 2, 9, 5, 3])
out("idx_labels", "small", labels)
out("idx_labels", "small.gz", gzip.compress(labels))

# A checkpoint of a 4-3-2 network (format 1, no checksum: the loader accepts files without one).
sizes = [4, 3, 2]
rng = np.random.default_rng(0)
tensors = {}
for prefix in ["", "adam_m.", "adam_v."]:
    for l in range(1, len(sizes)):
        tensors[f"{prefix}layer{l}.weight"] = rng.standard_normal((sizes[l], sizes[l - 1])).astype(np.float32)
        tensors[f"{prefix}layer{l}.bias"] = rng.standard_normal(sizes[l]).astype(np.float32)
    for l, n in enumerate(sizes):
        tensors[f"{prefix}layer{l}.position"] = rng.standard_normal((n, 2)).astype(np.float32)
model = {"sizes": sizes, "heads": 2, "spatial_layers": [2], "alpha": 1.0, "beta": 3.0,
         "transport_norm": "paper", "weight_norm": "l1", "init": "torch"}
train = {"mode": "mixed", "epochs": 2, "batch_size": 8, "lr": 0.005, "beta1": 0.9, "beta2": 0.999,
         "eps": 1e-8, "seed": 1}
meta = {"format": "spatial-gpu", "format_version": "1", "crate_version": "0.1.0",
        "model": json.dumps(model), "train": json.dumps(train), "adam_step": "5", "epoch": "1", "batch": "2"}
path = os.path.join(here, "seeds", "checkpoint", "tiny.safetensors")
os.makedirs(os.path.dirname(path), exist_ok=True)
save_file(tensors, path, metadata=meta)
