"""``mlplab bench``: the cohort engine against the ordinary per-model PyTorch loop (SPEC §10).

Two workloads, each run in this one process on the same data, initialisations and
minibatch orders:

- **W1**: XOR (the 4 points), 2-4-1 ReLU/sigmoid, Xavier-uniform, MSE, SGD momentum 0.9,
  lr 0.02, full batch, 1000 steps, K=256 seeds;
- **W2**: 5-class 2-D Gaussian mixture of 1000 points (700 train), 2-16-16-5 ReLU,
  cross-entropy, Adam, minibatch 64, 100 epochs, K=64 learning rates log-spaced
  1e-4 … 1e-1.

(a) is the loop a user writes: ``nn.Sequential``, ``torch.optim``, and per step ``.item()``
of the loss and of each parameter's gradient norm. It is timed on a subset of the K models
and scaled per model. (b) is :func:`mlplab.engine.cohort.train_cohort` with the probe on (per-layer
norms every step, activation statistics every 10 steps, boundary snapshots), timed end to
end, and with the probe off for its overhead: the two alternate, at least
``COHORT_REPEATS`` times each and until they have run ``COHORT_SECONDS`` together, and
the medians count. Both must reach the same final losses for the same models.

>>> result = run_bench(quick=True)                        # doctest: +SKIP
>>> print(result.summary())                               # doctest: +SKIP
"""

from __future__ import annotations

import gc
import math
import platform
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from .userloop import time_user_loop, user_net
from .workloads import Workload, median_times, workloads

if TYPE_CHECKING:
    from .curvature import CurvatureCost

# (a) and (b) differ only in float32 rounding (batched kernels sum in another order); it
# stays ~1e-7 for most models but can grow along a long run where training is chaotic
AGREE_RTOL = 1e-4     # a model "agrees" when its final losses are this close
# the cohort is timed at least this many times with and without the probe, alternately,
# and until the two together have run this long; the medians count. One run of a fraction of a
# second on a shared machine is at the mercy of the neighbours (the per-model loop runs
# for seconds, which averages them out), and alternating gives both settings the same luck
# (W2's cohorts take ~1 s: with 3 rounds its probe cost read 1.06x to 1.17x from run to run)
COHORT_REPEATS = 7
COHORT_SECONDS = 5.0
LOSS_RTOL = 2e-2      # and every model must be this close


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    description: str
    models: int                       # K
    steps_per_model: int
    baseline_models: int              # models the per-model loop trained (timed subset)
    baseline_seconds: float           # for the subset
    baseline_scaled_seconds: float    # scaled to all K models
    baseline_rate: float              # model-steps/s
    cohort_seconds: float             # all K models, probe on, end to end (median of runs)
    cohort_rate: float
    noprobe_seconds: float            # all K models, probe off
    noprobe_rate: float
    ratio: float                      # cohort_rate / baseline_rate
    probe_overhead: float             # cohort_seconds / noprobe_seconds
    final_loss_max_rel_diff: float    # (a) vs (b), over the subset
    models_agreeing: int              # of the subset, final losses within AGREE_RTOL
    losses_match: bool                # every model of the subset within LOSS_RTOL
    baseline_peak_mb: float | None    # CUDA: peak allocated in the phase; CPU: process
    cohort_peak_mb: float | None      # peak resident memory after the phase (see _peak_mb)
    compiled: bool = False            # (b) ran as compiled epochs (mlplab.engine.compiled)
    compile_seconds: float | None = None  # with compile: the first run's extra seconds
    compile_how: str | None = None    # "built" (compiled in this run) or "loaded" (cached)
    eager_why: str | None = None      # compile asked, not compiled: the cohort's own warning
    cohort_runs: int = 1              # runs of each probe setting the medians are of


@dataclass(frozen=True)
class BenchResult:
    workloads: tuple[WorkloadResult, ...]
    device: str
    quick: bool
    torch_version: str
    threads: int
    machine: str
    repeats: int = 1                  # cohort runs per probe setting at least (median)
    compile: bool = False             # (b) asked for compiled epochs
    curvature: "CurvatureCost | None" = None   # with --curvature

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``json.dumps`` works on it)."""
        out = asdict(self)
        out["workloads"] = [asdict(w) for w in self.workloads]
        out["curvature"] = None if self.curvature is None else asdict(self.curvature)
        return out

    def summary(self) -> str:
        """The table ``mlplab bench`` prints."""
        head = (f"{'workload':<9}{'K':>5}{'steps':>7}{'per-model loop':>24}"
                f"{'cohort + probe':>24}{'ratio':>9}{'probe cost':>12}{'same loss':>11}"
                + (f"{'compile':>10}" if self.compile else ""))
        lines = [f"mlplab bench ({'quick, ' if self.quick else ''}device {self.device}, "
                 f"torch {self.torch_version}, {self.threads} threads, {self.machine}"
                 f"{', compiled epochs asked for' if self.compile else ''})", head,
                 "-" * len(head)]
        for w in self.workloads:
            lines.append(
                f"{w.name:<9}{w.models:>5}{w.steps_per_model:>7}"
                f"{_rate(w.baseline_rate):>14} {w.baseline_scaled_seconds:>7.1f} s"
                f"{_rate(w.cohort_rate):>14} {w.cohort_seconds:>7.2f} s"
                f"{w.ratio:>8.0f}x{w.probe_overhead:>11.2f}x"
                f"{f'{w.models_agreeing}/{w.baseline_models}':>11}"
                + (f"{_compile_cell(w):>10}" if self.compile else ""))
        lines.append("")
        for w in self.workloads:
            what = "peak allocated" if self.device.startswith("cuda") else "process peak RSS"
            mem = "" if w.cohort_peak_mb is None or w.baseline_peak_mb is None else \
                f"; {what} after the loop {w.baseline_peak_mb:.0f} MB, after the cohort " \
                f"{w.cohort_peak_mb:.0f} MB"
            lines.append(f"{w.name}: {w.description}. Per-model loop timed on {w.baseline_models} "
                         f"of {w.models} models and scaled per model; cohort timed end to "
                         f"end, median of {w.cohort_runs} runs "
                         f"(probe off: {_rate(w.noprobe_rate)}, {w.noprobe_seconds:.2f} s); "
                         f"final losses of {w.models_agreeing} of {w.baseline_models} models "
                         f"agree to {AGREE_RTOL:.0e}, all to {w.final_loss_max_rel_diff:.1e} "
                         f"(relative; {'ok' if w.losses_match else 'MISMATCH'}){mem}."
                         + _compile_sentence(w, self.compile))
        lines.append("Rates are model-steps/s; time columns are for all K models; 'same loss': "
                     "models whose final loss agrees between the two.")
        if self.curvature is not None:
            lines.append(self.curvature.summary())
        return "\n".join(lines)


def _compile_cell(w: WorkloadResult) -> str:
    if w.compiled and w.compile_how == "loaded":
        return "cached"
    return f"{w.compile_seconds:.1f} s" if w.compiled and w.compile_seconds is not None \
        else "eager"


def _compile_sentence(w: WorkloadResult, asked: bool) -> str:
    """What the compile column means for ``w``, with the ratio the compile time gives."""
    if not asked:
        return ""
    if not w.compiled:
        return f" Not compiled, the cohort ran eagerly; it said: {w.eager_why or 'nothing'}."
    with_compile = w.baseline_scaled_seconds / (w.cohort_seconds + (w.compile_seconds or 0.0))
    if w.compile_how == "loaded":
        return (f" Compiled epochs: the package came from the cache (an earlier run built "
                f"it); the first run in this process took {w.compile_seconds:.2f} s longer "
                f"(loading it); with it the ratio is "
                f"{with_compile:.3g}x.")
    return (f" Compiled epochs: the first run in this process took {w.compile_seconds:.1f} s "
            f"longer (compiling; the median leaves it out); with it the ratio is "
            f"{with_compile:.3g}x.")


def _rate(r: float) -> str:
    return f"{r / 1e6:.2f}M/s" if r >= 1e6 else f"{r / 1e3:.1f}k/s"


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float | None:
    """CUDA: peak memory allocated since the last reset. CPU: the process's peak resident
    memory so far (Linux/macOS; None elsewhere), as torch keeps no CPU statistics."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if platform.system() == "Darwin" else peak / 2 ** 10


def _run_workload(w: Workload, device: torch.device, repeats: int,
                  compile: bool = False, min_seconds: float = 0.0) -> WorkloadResult:
    from mlplab.engine.aot_package import compiled_calls, packages
    from mlplab.engine.cohort import train_cohort

    _peak_reset(device)
    baseline, baseline_seconds = time_user_loop(w, w.baseline_models, device)
    baseline_peak = _peak_mb(device)
    _peak_reset(device)

    def cohort(probe: bool) -> Callable[[], Any]:
        return lambda: train_cohort(w.configs, device=device, probe=probe, compile=compile)

    first_seconds, calls, loaded, built = None, compiled_calls(), len(packages()), False
    # the cohort's warnings are kept, not shown: why it trained eagerly goes in the table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if compile:                 # the first run compiles: timed apart from the medians
            _, (first_seconds,), _ = median_times([cohort(True)], 1)
            # without the probe the program computes less, a package of its own: built or
            # loaded here too, outside the medians (its time is not reported)
            cohort(False)()
            built = any(p.how == "built" for p in packages()[loaded:])
            if built:
                # a build imports torch's compiler for good: its objects out of the
                # garbage collector's sight, as the console script does with torch's
                # (without it, the timed runs after a build paid full collections: W1's
                # probe cost read 1.60x)
                gc.freeze()
        records, (cohort_seconds, noprobe_seconds), runs = median_times(
            [cohort(True), cohort(False)], repeats, min_seconds)
    cohort_peak = _peak_mb(device)
    compiled = compiled_calls() > calls
    said = [str(c.message).removeprefix("mlplab: ") for c in caught
            if str(c.message).startswith("mlplab:")]
    steps = records[0].attempts[0].steps
    final = []
    for k in w.baseline_models:
        frame = records[k].metrics.to_frame()
        last = frame[(frame.metric == "loss") & (frame.step == steps - 1)]
        final.append(float(last.value.iloc[0]))
    diffs = [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(baseline, final)]
    worst = float(max(diffs)) if all(math.isfinite(d) for d in diffs) else math.inf
    k_all = len(w.configs)
    baseline_rate = len(w.baseline_models) * steps / baseline_seconds
    cohort_rate = k_all * steps / cohort_seconds
    return WorkloadResult(
        name=w.name, description=w.description, models=k_all, steps_per_model=steps,
        baseline_models=len(w.baseline_models), baseline_seconds=baseline_seconds,
        baseline_scaled_seconds=baseline_seconds * k_all / len(w.baseline_models),
        baseline_rate=baseline_rate, cohort_seconds=cohort_seconds, cohort_rate=cohort_rate,
        noprobe_seconds=noprobe_seconds, noprobe_rate=k_all * steps / noprobe_seconds,
        ratio=cohort_rate / baseline_rate, probe_overhead=cohort_seconds / noprobe_seconds,
        final_loss_max_rel_diff=worst, models_agreeing=sum(d <= AGREE_RTOL for d in diffs),
        losses_match=bool(worst <= LOSS_RTOL),
        baseline_peak_mb=baseline_peak, cohort_peak_mb=cohort_peak, compiled=compiled,
        compile_seconds=None if first_seconds is None or not compiled else
        max(0.0, first_seconds - cohort_seconds), cohort_runs=runs,
        compile_how=("built" if built else "loaded") if compiled else None,
        eager_why=said[0] if compile and not compiled and said else None)


def _warm_up(device: torch.device) -> None:
    """One-time costs (lazy imports of torch.optim, first kernels) before any timing."""
    from mlplab.engine.cohort import train_cohort

    net = user_net([(2, 2), (2, 1)], True).to(device)
    for opt in (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
                torch.optim.Adam(net.parameters())):
        net(torch.zeros(1, 2, device=device)).sum().backward()
        opt.step()
    train_cohort(workloads(quick=True)[1].configs[:2], device=device)


def run_bench(quick: bool = False, device: str = "cpu", *,
              threads: int | None = 1, compile: bool = False,
              curvature: bool = False) -> BenchResult:
    """Run W1 and W2 as (a) the per-model loop and (b) the cohort; see the module doc.

    ``quick`` uses a few models and steps (seconds; for tests): its ratios mean little.
    ``threads``: torch's intra-op CPU threads for both (a) and (b) during the bench (None:
    leave torch's setting). One is the default: on a small shared machine OpenMP threads
    spinning on tiny tensors slow the cohort down several times, and (a) never uses more.
    ``compile``: (b) with compiled epochs (:mod:`mlplab.engine.compiled`: W1's full-batch
    epoch, W2's 11 minibatch steps); the first run's compile (or package load) time is
    reported apart. ``curvature``: also :func:`mlplab.bench.curvature.curvature_cost`, the probe with and without
    curvature every ``CURVATURE_EVERY`` steps on W2's cohort.
    """
    from mlplab.engine.reference import resolve_device

    dev = resolve_device(device)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        _warm_up(dev)
        results = tuple(_run_workload(w, dev, 1 if quick else COHORT_REPEATS, compile,
                                      0.0 if quick else COHORT_SECONDS)
                        for w in workloads(quick))
        curv = None
        if curvature:
            from .curvature import curvature_cost

            curv = curvature_cost(dev, quick)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return BenchResult(workloads=results, device=str(dev), quick=quick,
                       torch_version=torch.__version__, threads=used,
                       machine=f"{platform.machine()}, {_cpu_count()} CPUs",
                       repeats=1 if quick else COHORT_REPEATS, compile=compile,
                       curvature=curv)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
