#!/usr/bin/env python3
"""Load a spatial-gpu checkpoint (model.safetensors) in Python: numpy, and PyTorch if installed.

    python3 python/spatial_gpu_torch.py RUN_DIR --data-dir DATA [--task NAME=DIR ...] [--torch]

prints the per-task test accuracy of the run's model, computed here from the checkpoint and the
test sets (IDX files, gzipped or not), the same numbers `spatial-gpu` reports in the run's
summary.json. The format is documented in docs/CHECKPOINTS.md; the network (METHOD.md) is a stack
of linear layers, the run's activation after every hidden layer (the model's "activation": sigmoid,
relu or tanh; sigmoid in a checkpoint without the field), and an output layer split into one head per
task (the checkpoint's `model.tasks`, in order, each with its class count; MNIST and Fashion-MNIST,
10 classes each, in checkpoints that list no tasks). A built-in task is read from DATA/NAME/, a task
trained with `--task NAME=DIR` from the DIR given again here.

As a library:

    config, tensors = load("runs/x/model.safetensors")     # config: {"model": .., "train": .., ..}
    logits = numpy_forward(config, tensors, inputs)         # inputs: (n, sizes[0]) float32 in [0, 1]
    net = SpatialNet(config, tensors)                       # a torch.nn.Module (needs torch)

Needs numpy and safetensors (pip install numpy safetensors); SpatialNet needs torch, and is only
defined when torch imports. The numpy path is what tests/python_loader.rs runs in CI.
"""

import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
from safetensors.numpy import load_file

try:
    import torch
    from torch import nn
except ImportError:  # torch is optional: everything but SpatialNet works without it
    torch = None

MNIST, FASHION = "mnist", "fashion-mnist"
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load(path):
    """The checkpoint at `path` (a file, or a run directory holding model.safetensors).

    Returns (config, tensors): config has "model" and "train" (the configurations as dicts),
    "epoch", "batch" and "adam_step" (ints); tensors maps every tensor name (`layer1.weight`,
    `adam_m.layer1.weight`, ...) to a float32 array.
    """
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "spatial-gpu":
        raise ValueError(f"{path}: not a spatial-gpu checkpoint (metadata format {meta.get('format')!r})")
    if meta.get("format_version") != "1":
        raise ValueError(f"{path}: checkpoint format version {meta.get('format_version')!r}, this reads 1")
    config = {
        "model": json.loads(meta["model"]),
        "train": json.loads(meta["train"]),
        "epoch": int(meta["epoch"]),
        "batch": int(meta["batch"]),
        "adam_step": int(meta["adam_step"]),
    }
    tensors = load_file(path)
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise ValueError(f"{path}: tensor `{name}` holds a value that is not finite")
    return config, tensors


def activation_name(config):
    """The hidden layers' activation of the checkpoint: "sigmoid" (also when the field is absent,
    as in checkpoints written before the option existed), "relu" or "tanh"."""
    name = config["model"].get("activation", "sigmoid")
    if name not in ("sigmoid", "relu", "tanh"):
        raise ValueError(f"unknown activation {name!r} in the checkpoint's model")
    return name


NUMPY_ACTIVATIONS = {
    "sigmoid": lambda h: 1.0 / (1.0 + np.exp(-h)),
    "relu": lambda h: np.maximum(h, 0.0),
    "tanh": np.tanh,
}


def numpy_forward(config, tensors, inputs, dtype=np.float64):
    """The logits (n, sizes[-1]) of `inputs` (n, sizes[0]).

    Computed in `dtype` (float64 by default: closer to the exact values than spatial-gpu's float32,
    so an argmax differs from it only where two logits are within float32 rounding of each other).
    """
    sizes = config["model"]["sizes"]
    act = NUMPY_ACTIVATIONS[activation_name(config)]
    h = np.asarray(inputs, dtype=dtype)
    last = len(sizes) - 1
    for layer in range(1, last + 1):
        w = tensors[f"layer{layer}.weight"].astype(dtype)
        b = tensors[f"layer{layer}.bias"].astype(dtype)
        h = h @ w.T + b
        if layer < last:
            h = act(h)
    return h


if torch is not None:

    class SpatialNet(nn.Module):
        """The checkpoint's network as a torch module: `forward(x)` gives the logits of every head,
        (n, 20) for the paper's network. Neuron positions are kept as buffers `position{l}`."""

        def __init__(self, config, tensors):
            super().__init__()
            sizes = config["model"]["sizes"]
            self.head_sizes = [n for _, n in tasks_of(config["model"])]
            self.activation = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}[
                activation_name(config)
            ]
            self.layers = nn.ModuleList()
            for layer in range(1, len(sizes)):
                lin = nn.Linear(sizes[layer - 1], sizes[layer])
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(tensors[f"layer{layer}.weight"]))
                    lin.bias.copy_(torch.from_numpy(tensors[f"layer{layer}.bias"]))
                self.layers.append(lin)
            for layer in range(len(sizes)):
                self.register_buffer(f"position{layer}", torch.from_numpy(tensors[f"layer{layer}.position"]))

        def forward(self, x):
            for i, lin in enumerate(self.layers):
                x = lin(x)
                if i + 1 < len(self.layers):
                    x = self.activation(x)
            return x

        def head_logits(self, x):
            """The logits split per head: a list of (n, classes) tensors, in task order."""
            return list(self.forward(x).split(self.head_sizes, dim=1))


def read_idx(path):
    """An IDX file of unsigned bytes (gzipped or not, by its magic bytes) as a uint8 array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: the header says {dims}, the file has {data.size} bytes of data")
    return data.reshape(dims)


def tasks_of(model):
    """The model's tasks as (name, classes), in head order; a checkpoint written before tasks could
    be chosen lists none: `heads` equal heads, MNIST and Fashion-MNIST when there are two."""
    if model.get("tasks"):
        return [(t["name"], t["classes"]) for t in model["tasks"]]
    heads = model["heads"]
    n = model["sizes"][-1] // heads
    names = [MNIST, FASHION] if heads == 2 else [f"task{t}" for t in range(heads)]
    return [(name, n) for name in names]


def locate(data_dir, set_name, name, custom=None):
    """The file `name` (or name.gz) of task `set_name`: in custom[set_name] if given (--task), else
    DATA/set_name/ as spatial-gpu finds it (Fashion-MNIST also from Debian)."""
    if custom and set_name in custom:
        dirs = [custom[set_name]]
    else:
        dirs = [os.path.join(data_dir, set_name)]
        if set_name == FASHION:
            dirs.append(DEBIAN_FASHION_DIR)
    for d in dirs:
        for candidate in (os.path.join(d, name), os.path.join(d, name + ".gz")):
            if os.path.isfile(candidate):
                return candidate
    raise FileNotFoundError(f"task {set_name}: {os.path.join(dirs[0], name)} (or .gz) not found")


def test_set(mode, data_dir, names=(MNIST, FASHION), custom=None):
    """The test inputs (n, input width) float32 and labels (n, M) int (-1: no label for that head),
    as spatial-gpu builds them for the tasks `names`: concat and mixed show test image i of every
    task in row i, for i below the largest test count, a smaller task's image i mod len filling in,
    unlabelled; sequential has each task's images in turn, each labelled on its own head."""
    sets = []
    for s in names:
        images = read_idx(locate(data_dir, s, TEST_FILES[0], custom))
        labels = read_idx(locate(data_dir, s, TEST_FILES[1], custom))
        # Scaled exactly as spatial-gpu scales them: value / 255 in float32.
        sets.append((images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0), labels.astype(np.int64)))
    m = len(sets)
    if mode in ("concat", "mixed"):
        n = max(len(x) for x, _ in sets)
        rows = [np.arange(n) % len(x) for x, _ in sets]
        parts = [x[r] for (x, _), r in zip(sets, rows)]
        if mode == "concat":
            x = np.concatenate(parts, axis=1)
        else:
            x = parts[0].copy()
            for p in parts[1:]:
                x += p
        y = np.stack([np.where(np.arange(n) < len(lab), lab[r], -1) for (_, lab), r in zip(sets, rows)], axis=1)
    elif mode == "sequential":
        x = np.concatenate([x for x, _ in sets], axis=0)
        cols = []
        for t in range(m):
            cols.append(np.concatenate([lab if u == t else np.full(len(lab), -1) for u, (_, lab) in enumerate(sets)]))
        y = np.stack(cols, axis=1)
    else:
        raise ValueError(f"unknown input mode {mode!r}")
    return x, y


def count_correct(logits, labels, head_sizes):
    """(correct, labelled) per head (head h: the next head_sizes[h] logits); argmax ties go to the
    lower class, as in spatial-gpu."""
    out = []
    start = 0
    for h, n in enumerate(head_sizes):
        z = logits[:, start : start + n]
        start += n
        labelled = labels[:, h] >= 0
        correct = int(np.sum(np.argmax(z[labelled], axis=1) == labels[labelled, h]))
        out.append((correct, int(np.sum(labelled))))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run directory (or its model.safetensors)")
    p.add_argument("--data-dir", default=os.environ.get("SPATIAL_GPU_DATA"), help="holds mnist/, fashion-mnist/, ...")
    p.add_argument("--task", action="append", default=[], metavar="NAME=DIR", help="where a --task task of the run is")
    p.add_argument("--torch", action="store_true", help="evaluate with the torch module instead of numpy")
    args = p.parse_args(argv)
    if not args.data_dir:
        p.error("give --data-dir (or set SPATIAL_GPU_DATA)")
    config, tensors = load(args.run)
    model = config["model"]
    custom = {}
    for spec in args.task:
        name, sep, d = spec.partition("=")
        if not sep or not name or not d:
            p.error(f"--task {spec}: expected NAME=DIR")
        custom[name] = d
    tasks = tasks_of(model)
    x, y = test_set(config["train"]["mode"], args.data_dir, [t for t, _ in tasks], custom)
    if x.shape[1] != model["sizes"][0]:
        sys.exit(f"the model's input width is {model['sizes'][0]}, the data gives {x.shape[1]}")
    if args.torch:
        if torch is None:
            sys.exit("--torch: torch is not installed (pip install torch)")
        with torch.no_grad():
            logits = SpatialNet(config, tensors).double()(torch.from_numpy(x).double()).numpy()
    else:
        logits = numpy_forward(config, tensors, x)
    for (name, _), (correct, total) in zip(tasks, count_correct(logits, y, [n for _, n in tasks])):
        acc = correct / total if total else 0.0
        print(f"{name} test accuracy: {acc!r} ({correct}/{total})")


if __name__ == "__main__":
    main()
