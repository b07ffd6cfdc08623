"""How fast can an eager PyTorch epoch of ``mlplab bench``'s W1 be, at the least?

W1 trains 256 XOR nets 2-4-1 (ReLU, sigmoid, MSE, SGD momentum, full batch) for 1000
epochs of one step. This script writes out the least an epoch must do, with no mlplab
code in it: the batched forward, the MSE gradient, the backward, the momentum update,
the training accuracy, one stopping check (best loss and patience as masks) and the two
copies a probe needs (the gradient and the weights after the update). It times 1000
such epochs and the ``mlplab bench`` per-model loop on a few models, in one process, and
prints the ratio the minimal epoch would allow: a ceiling for the cohort engine's W1
ratio in eager mode, whatever it does better, before any probe reductions or records.

    PYTHONPATH=src .venv/bin/python bench/w1_floor.py [--loop-models 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from mlplab import bench

K, STEPS = 256, 1000


def minimal_epochs(rounds: int) -> float:
    """Fastest seconds of ``STEPS`` minimal epochs over ``rounds`` rounds."""
    torch.manual_seed(0)
    flat = torch.randn(K, 17) * 0.5                          # [K, P]: w1 8, b1 4, w2 4, b2 1
    w1, b1 = flat[:, :8].view(K, 4, 2), flat[:, 8:12]
    w2, b2 = flat[:, 12:16].view(K, 1, 4), flat[:, 16:17]
    x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])        # [B, d]
    xt, y = x.t().contiguous(), torch.tensor([0., 1., 1., 0.])
    buf, lr, mom = torch.zeros(K, 17), torch.full((K, 1), 0.02), torch.full((K, 1), 0.9)
    grads, after = torch.empty(64, K, 17), torch.empty(64, K, 17)   # the probe's copies
    best, since = torch.full((K,), float("inf")), torch.zeros(K, dtype=torch.long)
    active = torch.ones(K, dtype=torch.bool)

    def epoch(e: int) -> None:
        z1 = torch.baddbmm(b1.unsqueeze(-1), w1, xt.expand(K, 2, 4))  # [K, 4, B]
        h1 = torch.relu(z1)
        p = torch.sigmoid(torch.baddbmm(b2.unsqueeze(-1), w2, h1))     # [K, 1, B]
        diff = p - y
        loss = diff.square().mean(-1).squeeze(-1)                      # [K]
        g2 = torch.ops.aten.sigmoid_backward(diff * 0.5, p)            # d loss / d z2
        g1 = torch.ops.aten.threshold_backward(torch.bmm(w2.transpose(-1, -2), g2), h1, 0)
        grad = grads[e % 64]
        torch.cat([torch.matmul(g1, x).flatten(-2), g1.sum(-1),
                   torch.matmul(g2, h1.transpose(-1, -2)).flatten(-2), g2.sum(-1)], -1,
                  out=grad)
        buf.mul_(mom).add_(grad)
        flat.sub_(lr * buf)
        after[e % 64].copy_(flat)
        acc = ((p[:, 0] > 0.5) == y).float().mean(-1)                  # noqa: F841
        better = (loss < best) & active
        best.copy_(torch.where(better, loss, best))
        since.add_(active).masked_fill_(better, 0)
        active.logical_and_(since < 10 ** 9)

    fastest = float("inf")
    with torch.inference_mode():
        for e in range(100):
            epoch(e)
        for _ in range(rounds):
            start = time.perf_counter()
            for e in range(STEPS):
                epoch(e)
            fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop-models", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench._warm_up(torch.device("cpu"))
    w1 = bench.workloads()[0]
    floor = minimal_epochs(args.rounds)
    models = list(range(args.loop_models))
    loop = bench.time_user_loop(w1, models, torch.device("cpu"))[1] / len(models) * K
    print(f"W1 minimal eager epoch: {floor / STEPS * 1e6:.0f} us ({floor * 1e3:.0f} ms for "
          f"{STEPS}); per-model loop {loop:.1f} s for {K} models; ceiling {loop / floor:.0f}x")


if __name__ == "__main__":
    main()
