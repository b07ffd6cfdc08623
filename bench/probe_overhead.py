"""Overhead of :class:`mlplab.Probe` in a user's loop: steps per second of a plain
PyTorch loop against the same loop with a Probe, on a small MLP.

    .venv/bin/python bench/probe_overhead.py              # 2-64-64-1 MLP, batch 64
    .venv/bin/python bench/probe_overhead.py --steps 500 --json

Every variant trains the same network from the same initialisation on the same batches.
The variants take turns, ``--repeats`` rounds, and each variant's fastest round counts
(the least disturbed by other work on the machine); time is the process's CPU time with
``--threads 1`` (the default), so other processes on a shared machine disturb it less.
``close()`` (writing the run) is timed apart from the loop.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from torch import nn

from mlplab.run import Probe

VARIANTS = {   # name: Probe settings, None = the plain loop
    "plain loop": None,
    "probe every=1, activations_every=10": {"every": 1, "activations_every": 10},
    "probe every=10, activations_every=100": {"every": 10, "activations_every": 100},
    "probe every=1, activations_every=1": {"every": 1, "activations_every": 1},
}


def make_model(width: int, device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 1)).to(device)


def run_loop(settings: dict | None, steps: int, width: int, batch: int,
             device: str) -> tuple[float, float]:
    """(loop seconds, close seconds) for ``steps`` SGD steps."""
    model = make_model(width, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(steps % 64 + 64, batch, 2, generator=g).to(device)      # [64, B, 2]
    y = (x[..., :1] * x[..., 1:] > 0).float()                              # XOR-like labels
    with tempfile.TemporaryDirectory() as out:
        probe = Probe(model, out=out, optimizer=opt, **settings) if settings else None
        if device != "cpu":
            torch.cuda.synchronize()
        clock = time.perf_counter if device != "cpu" else time.process_time
        start = clock()
        for step in range(steps):
            xb, yb = x[step % len(x)], y[step % len(x)]
            loss = nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if probe is not None:
                probe.step(loss)
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        loop = clock() - start
        start = clock()
        if probe is not None:
            probe.close()
        return loop, clock() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    run_loop(None, 50, a.width, a.batch, a.device)                          # warm up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for _ in range(a.repeats):                                               # take turns
        for name, settings in VARIANTS.items():
            times[name].append(run_loop(settings, a.steps, a.width, a.batch, a.device))
    rows = []
    for name in VARIANTS:
        loop, close = min(times[name])
        rows.append({"variant": name, "steps_per_s": a.steps / loop, "close_s": close})
    base = rows[0]["steps_per_s"]
    for row in rows:
        row["ratio_to_plain"] = row["steps_per_s"] / base
    meta = {"steps": a.steps, "width": a.width, "batch": a.batch, "device": a.device,
            "torch": torch.__version__, "threads": torch.get_num_threads()}
    if a.json:
        print(json.dumps({"setup": meta, "results": rows}, indent=2))
        return
    clock = "wall" if a.device != "cpu" else "CPU"
    print(f"2-{a.width}-{a.width}-1 ReLU MLP, batch {a.batch}, SGD+momentum, {a.steps} steps, "
          f"{a.device}, torch {torch.__version__}, {meta['threads']} thread(s), {clock} time, "
          f"best of {a.repeats}")
    for row in rows:
        print(f"  {row['variant']:40s} {row['steps_per_s']:8.0f} steps/s  "
              f"x{row['ratio_to_plain']:.2f}  close {row['close_s'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
