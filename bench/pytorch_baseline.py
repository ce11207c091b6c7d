#!/usr/bin/env python3
"""PyTorch baseline for spatial-gpu: the same model, losses, optimiser, batch and data pipeline.

Written the way a competent PyTorch user would: nn.Linear layers, autograd, torch.optim.Adam, the
datasets as tensors in memory, batches assembled by indexing. It exists so that `spatial-gpu bench`
can race equal programs; `--check` proves they are equal on one batch.

  python3 bench/pytorch_baseline.py --data-dir DIR --steps 200 --threads 1 [--regular] [--json OUT]
  python3 bench/pytorch_baseline.py --check reference.safetensors [--device cuda]
  python3 bench/pytorch_baseline.py --serve --data-dir DIR --threads 1
  python3 bench/pytorch_baseline.py --self-test-graph [--device cuda]

The reference file is written by `spatial-gpu bench --reference FILE`: our initial parameters, one
batch (inputs, labels) and our CPU backend's loss and gradients on it.

`--serve` is how `spatial-gpu bench` drives the baseline: the data is loaded once, then each line
read on stdin is a JSON request `{"spatial": bool, "batch_size": B, "hidden": [..], "alpha": a,
"beta": b, "steps": N, "warmup": W, "variant": "eager" or "graph"}` answered by one JSON line `{"seconds": s, "cpu_seconds": c, "samples": n, ...}`
(N timed steps; the W warm-up steps run once, the first time a configuration is asked for, and each
configuration keeps its network, optimiser and data stream between requests). So the bench can
alternate our measurements with PyTorch's in one invocation without reloading anything.

`--threads N` sets torch.set_num_threads(N); `--threads 0` leaves PyTorch's own default.

`--device cuda` runs on the GPU (data on the device, a synchronisation before the clock stops); the
check then runs there too, in float64. On CUDA a second variant races beside eager PyTorch:
`"variant": "graph"`, the whole training step (forward, backward, Adam with `capturable=True`)
captured once with `torch.cuda.graphs` on static input tensors and replayed each step, the batch
copied into the static tensors first. We chose a hand-made CUDA graph over
`torch.compile(mode="reduce-overhead")` (which also replays CUDA graphs) because it needs no
compiler toolchain (Triton, a C++ compiler), has no compile time to exclude from the race, and
graphs exactly the same eager program the check verified, so it removes launch overhead and nothing
else. A static graph has static shapes, so it skips the short last batch of an epoch (the samples it
counts are those it trains). `--self-test-graph` (CPU) trains 5 steps both ways from the same start
on the same batches: the static-tensor step (uncaptured on the CPU) must give the eager parameters
bit for bit.
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
    if name == "fashion-mnist" and not os.path.exists(os.path.join(d, "train-images-idx3-ubyte")) \
            and not os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")) \
            and os.path.isdir("/usr/share/datasets/fashion-mnist"):
        d = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist, as spatial-gpu does
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


def check(reference, device):
    """Loads our parameters and batch, compares loss and every gradient with ours (on `device`)."""
    from safetensors.numpy import load_file
    from safetensors import safe_open
    with safe_open(reference, "np") as f:
        meta = f.metadata()
    t = load_file(reference)
    model_cfg = json.loads(meta["model"])
    net = SpatialNet(model_cfg["sizes"], model_cfg["heads"], model_cfg["spatial_layers"],
                     model_cfg["alpha"], model_cfg["beta"], model_cfg["transport_norm"],
                     model_cfg["weight_norm"]).double().to(device)
    with torch.no_grad():
        for l, layer in enumerate(net.layers, start=1):
            layer.weight.copy_(torch.from_numpy(t[f"layer{l}.weight"]))
            layer.bias.copy_(torch.from_numpy(t[f"layer{l}.bias"]))
        for l, p in enumerate(net.positions):
            p.copy_(torch.from_numpy(t[f"layer{l}.position"]))
    x = torch.from_numpy(t["batch.inputs"]).double().to(device)
    y = torch.from_numpy(t["batch.labels"]).long().to(device)
    print(f"device: {device}, float64")
    # In float64: PyTorch's answer is then exact to ~1e-12 and the difference is all ours (f32).
    task = net.task_loss(net(x), y)
    loss = task + (net.spatial_loss() if model_cfg["alpha"] != 0 or model_cfg["beta"] != 0 else 0.0)
    loss.backward()
    ours = float(meta["loss_total"])
    worst = abs(loss.item() - ours) / max(1.0, abs(ours))
    print(f"loss: pytorch {loss.item():.7f} ours {ours:.7f} (task: pytorch {task.item():.7f} "
          f"ours {float(meta.get('loss_task', 'nan')):.7f})")
    ok = worst < 1e-5
    grads = {}
    for l, layer in enumerate(net.layers, start=1):
        grads[f"layer{l}.weight"] = layer.weight.grad
        grads[f"layer{l}.bias"] = layer.bias.grad
    for l, p in enumerate(net.positions):
        grads[f"layer{l}.position"] = p.grad if p.grad is not None else torch.zeros_like(p)
    for name, g in grads.items():
        mine = torch.from_numpy(t[f"grad.{name}"]).double().to(device)
        # f32 gradients accumulated over a batch of 256: 1e-6 absolute plus 1e-4 relative.
        tol = 1e-6 + 1e-4 * g.abs()
        diff = (g - mine).abs()
        bad = (diff > tol).sum().item()
        print(f"grad {name:18s} max |diff| {diff.max().item():.3e}  max |g| {g.abs().max().item():.3e}  "
              f"{'OK' if bad == 0 else f'{bad} entries out of tolerance'}")
        ok = ok and bad == 0
    print("baseline agrees with spatial-gpu's CPU backend" if ok else "MISMATCH")
    return 0 if ok else 1


class Trainer:
    """One network, its optimiser and its endless stream of batches (METHOD.md's concat input)."""

    def __init__(self, data, spatial, batch_size, hidden, alpha, beta, seed, device, capturable=False):
        xm, ym, xf, yf = data
        self.device = device
        torch.manual_seed(seed)
        self.n = min(len(xm), len(xf))
        alpha, beta = (alpha, beta) if spatial else (0.0, 0.0)
        self.net = SpatialNet([xm.shape[1] + xf.shape[1]] + list(hidden) + [20], alpha=alpha,
                              beta=beta).to(device)
        # fused: one kernel over all parameters, the fastest of torch's three Adam implementations
        # on this CPU at this size (measured against foreach and the default for-loop: see
        # docs/PERFORMANCE.md); foreach where a build cannot fuse.
        hp = dict(lr=0.005, betas=(0.9, 0.999), eps=1e-8)
        if capturable:
            hp["capturable"] = True
        try:
            self.opt = torch.optim.Adam(self.net.parameters(), fused=True, **hp)
        except (RuntimeError, TypeError):
            self.opt = torch.optim.Adam(self.net.parameters(), foreach=True, **hp)
        self.spatial, self.batch_size = spatial, batch_size
        self.data = data
        self.batches = self.epoch_batches()

    def epoch_batches(self, drop_last=False):
        xm, ym, xf, yf = self.data
        n, bs, dev = self.n, self.batch_size, self.device
        while True:
            pairing, order = torch.randperm(n, device=dev), torch.randperm(n, device=dev)
            for s in range(0, n - bs + 1 if drop_last else n, bs):
                i = order[s:s + bs]
                j = pairing[i]
                yield torch.cat([xm[i], xf[j]], 1), torch.stack([ym[i], yf[j]], 1)

    def train_on(self, x, y):
        """One training step on the batch (x, y)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.net.task_loss(self.net(x), y)
        if self.spatial:
            loss = loss + self.net.spatial_loss()
        loss.backward()
        self.opt.step()
        return loss

    def step(self):
        x, y = next(self.batches)
        self.train_on(x, y)
        return x.shape[0]

    def sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def run(self, steps):
        """Wall seconds, CPU seconds and samples of `steps` training steps. CPU time is that of this
        thread (where torch runs everything with one thread), of the process with several."""
        cpu_clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
        self.sync()
        c0, t0 = cpu_clock(), time.perf_counter()
        samples = sum(self.step() for _ in range(steps))
        self.sync()
        return time.perf_counter() - t0, cpu_clock() - c0, samples


class GraphTrainer(Trainer):
    """The whole training step captured as one CUDA graph on static input tensors, replayed each
    step after the batch is copied in (see the module's documentation). On the CPU there is no
    capture: the same static-tensor step runs eagerly (what `--self-test-graph` checks there)."""

    def __init__(self, data, spatial, batch_size, hidden, alpha, beta, seed, device):
        cuda = device.startswith("cuda")
        super().__init__(data, spatial, batch_size, hidden, alpha, beta, seed, device, capturable=cuda)
        self.batches = self.epoch_batches(drop_last=True)
        x, y = next(self.batches)
        self.static_x, self.static_y = x.clone(), y.clone()
        self.graph = None
        if cuda:
            # Warm up on a side stream (autograd and the optimiser allocate their state), then
            # capture one step; each replay is a step on whatever the static tensors hold.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.train_on(self.static_x, self.static_y)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.train_on(self.static_x, self.static_y)

    def step(self):
        x, y = next(self.batches)
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        if self.graph is not None:
            self.graph.replay()
        else:
            self.train_on(self.static_x, self.static_y)
        return x.shape[0]


def self_test_graph(args):
    """Eager steps against the graph variant's steps from the same start on the same batches."""
    if args.device != "cpu":
        # A captured graph has trained its warm-up steps already: the race's check is the check there.
        sys.exit("error: --self-test-graph runs on the CPU (give no --device)")
    torch.manual_seed(0)
    n, width = 1000, 2 * 28 * 28
    data = (torch.rand(n, width // 2), torch.randint(0, 10, (n,)),
            torch.rand(n, width // 2), torch.randint(0, 10, (n,)))
    data = tuple(t.to(args.device) for t in data)
    eager = Trainer(data, True, 64, [32, 32, 32, 64], 0.01, 3.0, 1, args.device,
                    capturable=args.device.startswith("cuda"))
    graph = GraphTrainer(data, True, 64, [32, 32, 32, 64], 0.01, 3.0, 1, args.device)
    eager.net.load_state_dict(graph.net.state_dict())
    for _ in range(5):
        x, y = next(graph.batches)
        eager.train_on(x, y)
        graph.static_x.copy_(x)
        graph.static_y.copy_(y)
        graph.train_on(graph.static_x, graph.static_y)
    worst = max((a - b).abs().max().item() for a, b in
                zip(eager.net.parameters(), graph.net.parameters()))
    print(f"graph variant's step against eager, 5 steps on {args.device}: max |diff| {worst:.3e}")
    return 0 if worst == 0.0 else 1


def load_data(data_dir, device):
    xm, ym = load_set(data_dir, "mnist")
    xf, yf = load_set(data_dir, "fashion-mnist")
    return tuple(t.to(device) for t in (xm, ym, xf, yf))


def framework_info(args):
    info = {"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
            "device": args.device}
    if args.device.startswith("cuda"):
        info["device_name"] = torch.cuda.get_device_name()
    return info


def bench(args):
    data = load_data(args.data_dir, args.device)
    tr = Trainer(data, not args.regular, args.batch_size, args.hidden, args.alpha, args.beta,
                 args.seed, args.device)
    tr.run(args.warmup)
    dt, cpu, samples = tr.run(args.steps)
    result = dict(framework_info(args), spatial=not args.regular, batch_size=args.batch_size,
                  hidden=args.hidden, steps=args.steps, seconds=dt, cpu_seconds=cpu,
                  samples_per_second=samples / dt)
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    return 0


def serve(args):
    data = load_data(args.data_dir, args.device)
    trainers = {}
    print(json.dumps(dict(framework_info(args), ready=True)), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        variant = req.get("variant", "eager")
        if variant not in ("eager", "graph"):
            sys.exit(f"error: unknown variant {variant!r} (eager or graph)")
        if variant == "graph" and not args.device.startswith("cuda"):
            sys.exit("error: the graph variant captures a CUDA graph: it needs --device cuda")
        key = (bool(req["spatial"]), int(req["batch_size"]), tuple(req["hidden"]),
               float(req.get("alpha", args.alpha)), float(req.get("beta", args.beta)), variant)
        if key not in trainers:
            kind = GraphTrainer if variant == "graph" else Trainer
            trainers[key] = kind(data, key[0], key[1], key[2], key[3], key[4], args.seed,
                                 args.device)
            trainers[key].run(int(req.get("warmup", args.warmup)))
        dt, cpu, samples = trainers[key].run(int(req["steps"]))
        print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "samples": samples,
                          "steps": int(req["steps"]), "samples_per_second": samples / dt}), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="REFERENCE", help="compare with spatial-gpu on one batch")
    ap.add_argument("--serve", action="store_true", help="answer timing requests on stdin (see above)")
    ap.add_argument("--data-dir", default=os.environ.get("SPATIAL_GPU_DATA"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads; 0: PyTorch's default")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")], default=[128, 128, 128, 256])
    ap.add_argument("--regular", action="store_true")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--beta", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--self-test-graph", action="store_true",
                    help="check the graph variant's step against eager steps (see above)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads < 0:
        sys.exit(f"error: --threads {args.threads}: give a count of at least 1, or 0 for PyTorch's default")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        sys.exit(f"error: --device {args.device}: cpu or cuda")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"error: --device {args.device}: torch {torch.__version__} has no usable CUDA device "
                 "(torch.cuda.is_available() is false); use --device cpu")
    if args.self_test_graph:
        return self_test_graph(args)
    if args.check:
        return check(args.check, args.device)
    if not args.data_dir:
        sys.exit("error: give --data-dir or set SPATIAL_GPU_DATA")
    return serve(args) if args.serve else bench(args)


if __name__ == "__main__":
    sys.exit(main())
