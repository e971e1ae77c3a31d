"""Benchmark: Bartunov's CIFAR locally-connected net against the same-shape ConvNet.

Prints, for one forward+backward pass of a batch (cross-entropy on random data, gradients for
every forward parameter), the median time after warm-up and the memory it needs, then the LC/conv
ratios. The two nets take turns in the timing loop, so a change of machine load hits both alike;
memory is measured in a fresh child process per net, so one net's allocations never count for the
other.

Memory, measured honestly per device:
- cuda: peak of torch.cuda.max_memory_allocated during the passes, minus what the weights and
  the batch held before them (activations + gradients + workspace).
- cpu: (a) the bytes autograd keeps for the backward pass (every tensor saved for backward,
  counted once per storage, parameters excluded), measured with saved_tensors_hooks; and
  (b) the growth of the process's peak resident set size (ru_maxrss) over the passes.

    python scripts/bench_lc.py                   # batch 128, CPU (or --device cuda)
    python scripts/bench_lc.py --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
NETS = ("bartunov_cifar_lc", "bartunov_cifar_conv")
IN_SHAPE, NUM_CLASSES = (3, 32, 32), 10


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(net, x, y) -> None:
    """One forward+backward pass: ℓ = CE(net(x), y), gradients of every parameter."""
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()


def _saved_bytes(net, x, y) -> int:
    """Bytes autograd saves for backward in one pass, once per storage, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(net(x), y)
    del loss
    return sum(seen.values())


def _build(name: str, batch: int, device: torch.device):
    """The net of conf/net/<name>.yaml for CIFAR shapes, and a random batch (x, y)."""
    torch.manual_seed(0)
    cfg = OmegaConf.load(ROOT / "conf" / "net" / f"{name}.yaml")
    net = instantiate(cfg, in_shape=IN_SHAPE, num_classes=NUM_CLASSES).to(device)
    x = torch.randn(batch, *IN_SHAPE, device=device)  # (N, 3, 32, 32)
    y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    return net, x, y


def memory(name: str, batch: int, repeats: int, device: torch.device) -> dict:
    """Memory of forward+backward passes of `name`; run in a fresh process (see main)."""
    net, x, y = _build(name, batch, device)
    result = {
        "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
        "saved_MB": _saved_bytes(net, x, y) / 2**20,
    }
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    for _ in range(repeats):
        _step(net, x, y)
    _sync(device)
    if device.type == "cuda":
        result["peak_MB"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["peak_MB"] = (rss_after - rss_before) / 2**10
    return result


def times(batch: int, repeats: int, warmup: int, device: torch.device) -> dict[str, float]:
    """Median ms of a forward+backward pass per net, the nets taking turns (fair under load)."""
    built = {name: _build(name, batch, device) for name in NETS}
    samples: dict[str, list[float]] = {name: [] for name in NETS}
    for i in range(warmup + repeats):
        for name, (net, x, y) in built.items():
            _sync(device)
            start = time.perf_counter()
            _step(net, x, y)
            _sync(device)
            if i >= warmup:
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(ms) for name, ms in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--child", choices=NETS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.child:
        print(json.dumps(memory(args.child, args.batch, 2, device)))
        return
    rows = []
    for name in NETS:  # memory in a fresh process per net
        cmd = [sys.executable, __file__, "--child", name, *sys.argv[1:]]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append({"net": name, **json.loads(out.strip().splitlines()[-1])})
    for row, ms in zip(rows, times(args.batch, args.repeats, args.warmup, device).values()):
        row["ms"] = ms
    _print_table(rows, args)


def _print_table(rows: list[dict], args) -> None:
    peak = "peak MB (cuda alloc)" if args.device.startswith("cuda") else "peak RSS growth MB"
    print(
        f"device={args.device} threads={torch.get_num_threads()} batch={args.batch}, "
        f"median of {args.repeats} after {args.warmup} warm-up, nets taking turns"
    )
    print(f"{'net':<22}{'params M':>10}{'fwd+bwd ms':>12}{'saved-for-bwd MB':>18}{peak:>22}")
    for r in rows:
        print(
            f"{r['net']:<22}{r['params_M']:>10.2f}{r['ms']:>12.1f}"
            f"{r['saved_MB']:>18.1f}{r['peak_MB']:>22.1f}"
        )
    ratio = {
        k: rows[0][k] / max(rows[1][k], 1e-9) for k in ("params_M", "ms", "saved_MB", "peak_MB")
    }
    print(
        f"{'ratio LC/conv':<22}{ratio['params_M']:>10.2f}{ratio['ms']:>12.2f}"
        f"{ratio['saved_MB']:>18.2f}{ratio['peak_MB']:>22.2f}"
    )


if __name__ == "__main__":
    main()
