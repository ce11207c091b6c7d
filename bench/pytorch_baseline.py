#!/usr/bin/env python3
"""PyTorch baseline for spatial-gpu: the same model, losses, optimiser, batch and data pipeline.

Written the way a competent PyTorch user would: nn.Linear layers, autograd, torch.optim.Adam, the
datasets as tensors in memory, batches assembled by indexing. It exists so that `spatial-gpu bench`
can race equal programs; `--check` proves they are equal on one batch.

  python3 bench/pytorch_baseline.py --data-dir DIR --steps 200 --threads 1 [--regular] [--json OUT]
  python3 bench/pytorch_baseline.py --check reference.safetensors

The reference file is written by `spatial-gpu bench --reference FILE`: our initial parameters, one
batch (inputs, labels) and our CPU backend's loss and gradients on it.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    """An IDX file, raw or gzip (by magic bytes), as a numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def locate(d, name):
    for cand in (os.path.join(d, name), os.path.join(d, name + ".gz")):
        if os.path.exists(cand):
            return cand
    sys.exit(f"error: {os.path.join(d, name)}[.gz] not found")


def load_set(data_dir, name):
    d = os.path.join(data_dir, name)
    images = read_idx(locate(d, "train-images-idx3-ubyte"))
    labels = read_idx(locate(d, "train-labels-idx1-ubyte"))
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


class SpatialNet(nn.Module):
    """n-128-128-128-256-20, sigmoid hidden layers, a 2-D position per neuron of every layer."""

    def __init__(self, sizes, heads=2, spatial_layers=(3, 4, 5), alpha=0.01, beta=3.0,
                 transport_norm="paper", weight_norm="l1"):
        super().__init__()
        self.sizes, self.heads = sizes, heads
        self.spatial_layers, self.alpha, self.beta = list(spatial_layers), alpha, beta
        self.transport_norm, self.weight_norm = transport_norm, weight_norm
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.positions = nn.ParameterList(nn.Parameter(torch.randn(n, 2)) for n in sizes)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.sigmoid(x)
        return x

    def task_loss(self, logits, labels):
        """Each labelled head's cross-entropy, summed over heads, averaged over the batch."""
        k = logits.shape[1] // self.heads
        loss = 0.0
        for h in range(self.heads):
            loss = loss + F.cross_entropy(logits[:, h * k:(h + 1) * k], labels[:, h],
                                          ignore_index=-1, reduction="sum")
        return loss / logits.shape[0]

    def spatial_loss(self):
        terms = []
        for l in self.spatial_layers:
            w = self.layers[l - 1].weight
            p_in, p_out = self.positions[l - 1], self.positions[l]
            phi = w.abs() if self.weight_norm == "l1" else w * w
            scale = 1.0 / w.shape[0] if self.transport_norm == "paper" else 1.0 / w.numel()
            # cdist's backward takes a zero distance's gradient as 0, as METHOD.md does.
            t = scale * (phi * torch.cdist(p_out, p_in)).sum()
            v = torch.exp(-torch.cdist(p_out, p_out)).sum() / p_out.shape[0] ** 2
            terms.append(self.alpha * t + self.beta * v)
        return sum(terms) / len(terms)


def check(reference):
    """Loads our parameters and batch, compares loss and every gradient with ours."""
    from safetensors.numpy import load_file
    from safetensors import safe_open
    with safe_open(reference, "np") as f:
        meta = f.metadata()
    t = load_file(reference)
    model_cfg = json.loads(meta["model"])
    net = SpatialNet(model_cfg["sizes"], model_cfg["heads"], model_cfg["spatial_layers"],
                     model_cfg["alpha"], model_cfg["beta"], model_cfg["transport_norm"],
                     model_cfg["weight_norm"]).double()
    with torch.no_grad():
        for l, layer in enumerate(net.layers, start=1):
            layer.weight.copy_(torch.from_numpy(t[f"layer{l}.weight"]))
            layer.bias.copy_(torch.from_numpy(t[f"layer{l}.bias"]))
        for l, p in enumerate(net.positions):
            p.copy_(torch.from_numpy(t[f"layer{l}.position"]))
    x = torch.from_numpy(t["batch.inputs"]).double()
    y = torch.from_numpy(t["batch.labels"]).long()
    # In float64: PyTorch's answer is then exact to ~1e-12 and the difference is all ours (f32).
    loss = net.task_loss(net(x), y) + net.spatial_loss()
    loss.backward()
    ours = float(meta["loss_total"])
    worst = abs(loss.item() - ours) / max(1.0, abs(ours))
    print(f"loss: pytorch {loss.item():.7f} ours {ours:.7f}")
    ok = worst < 1e-5
    grads = {}
    for l, layer in enumerate(net.layers, start=1):
        grads[f"layer{l}.weight"] = layer.weight.grad
        grads[f"layer{l}.bias"] = layer.bias.grad
    for l, p in enumerate(net.positions):
        grads[f"layer{l}.position"] = p.grad if p.grad is not None else torch.zeros_like(p)
    for name, g in grads.items():
        mine = torch.from_numpy(t[f"grad.{name}"]).double()
        # f32 gradients accumulated over a batch of 256: 1e-6 absolute plus 1e-4 relative.
        tol = 1e-6 + 1e-4 * g.abs()
        diff = (g - mine).abs()
        bad = (diff > tol).sum().item()
        print(f"grad {name:18s} max |diff| {diff.max().item():.3e}  max |g| {g.abs().max().item():.3e}  "
              f"{'OK' if bad == 0 else f'{bad} entries out of tolerance'}")
        ok = ok and bad == 0
    print("baseline agrees with spatial-gpu's CPU backend" if ok else "MISMATCH")
    return 0 if ok else 1


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xm, ym = load_set(args.data_dir, "mnist")
    xf, yf = load_set(args.data_dir, "fashion-mnist")
    n = min(len(xm), len(xf))
    alpha, beta = (0.0, 0.0) if args.regular else (args.alpha, args.beta)
    net = SpatialNet([xm.shape[1] + xf.shape[1]] + args.hidden + [20], alpha=alpha, beta=beta)
    opt = torch.optim.Adam(net.parameters(), lr=0.005, betas=(0.9, 0.999), eps=1e-8)
    spatial = not args.regular

    def epoch_batches():
        while True:
            pairing, order = torch.randperm(n), torch.randperm(n)
            for s in range(0, n, args.batch_size):
                i = order[s:s + args.batch_size]
                j = pairing[i]
                yield torch.cat([xm[i], xf[j]], 1), torch.stack([ym[i], yf[j]], 1)

    batches = epoch_batches()

    def step():
        x, y = next(batches)
        opt.zero_grad(set_to_none=True)
        loss = net.task_loss(net(x), y)
        if spatial:
            loss = loss + net.spatial_loss()
        loss.backward()
        opt.step()
        return x.shape[0]

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    samples = sum(step() for _ in range(args.steps))
    dt = time.perf_counter() - t0
    result = {"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
              "spatial": spatial, "batch_size": args.batch_size, "hidden": args.hidden,
              "steps": args.steps, "seconds": dt, "samples_per_second": samples / dt}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="REFERENCE", help="compare with spatial-gpu on one batch")
    ap.add_argument("--data-dir", default=os.environ.get("SPATIAL_GPU_DATA"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], default=[128, 128, 128, 256])
    ap.add_argument("--regular", action="store_true")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--beta", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.check:
        return check(args.check)
    if not args.data_dir:
        sys.exit("error: give --data-dir or set SPATIAL_GPU_DATA")
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
