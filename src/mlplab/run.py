"""Runs into a store: the one place above the engines where a finished run is written.

``run_config`` trains one seed with the reference engine or N seeds as one cohort (what
``mlplab train`` calls); :class:`Probe` is the user-loop probe of :mod:`mlplab.probe`
writing its run into a store (what ``mlplab.Probe`` is).

>>> import tempfile
>>> from mlplab.config import from_dict
>>> cfg = from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3}})
>>> with tempfile.TemporaryDirectory() as out:
...     ids = run_config(cfg, out, seeds=2, report=False, quiet=True)
...     [r.status for r in Store(out).runs()]
['done', 'done']
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplab.config import ConfigError, RunConfig, to_dict
from mlplab.probe.user import Probe as UserLoopProbe
from mlplab.progress import ProgressBar
from mlplab.store.store import Store

if TYPE_CHECKING:
    import torch

    from mlplab.record import RunRecord


def seed_configs(cfg: RunConfig, seeds: int) -> list[RunConfig]:
    """``seeds`` copies of ``cfg`` with train seeds ``seed, seed+1, ...``."""
    return [replace(cfg, train=replace(cfg.train, seed=cfg.train.seed + i)) for i in range(seeds)]


def check_data_and_head(cfg: RunConfig) -> None:
    """Load the data and resolve the output head: raises ConfigError before any training."""
    from mlplab.data import load_data

    data = load_data(cfg.data)
    from mlplab.model.mlp import resolve_head   # imports torch: only once the data is known good

    resolve_head(cfg.model, cfg.train.loss, data.n_classes)


def run_config(cfg: RunConfig, out: str | Path, seeds: int = 1, device: str = "cpu",
               report: bool = True, quiet: bool = False, compile: bool = False) -> list[str]:
    """Train ``cfg`` (``seeds`` > 1: that many seeds as one cohort) into the store ``out``,
    write the report unless ``report`` is False, and return the new run ids. ``compile``:
    train as a cohort (even of one seed) with compiled epochs
    (:func:`mlplab.engine.cohort.train_cohort`).

    The data and the head are checked first, so a bad file or loss leaves no store behind.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError("--seeds", seeds, "a whole number >= 1")
    check_data_and_head(cfg)
    store = Store(out)
    configs = seed_configs(cfg, seeds)
    ids = [store.new_run_id(c.name, to_dict(c)) for c in configs]
    for run_id, c in zip(ids, configs):
        store.mark(run_id, c.name, to_dict(c), "running")
    bar = ProgressBar(len(configs), "runs", quiet=quiet, best_label=f"best {cfg.stopping.monitor}")
    try:
        if seeds == 1 and not compile:
            import torch

            from mlplab.engine.reference import train

            # tiny networks: one intra-op thread beats two (thread hand-off costs more
            # than the arithmetic; several times slower on a busy 2-core machine)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                records = [train(cfg, run_id=ids[0], device=device)]
            finally:
                torch.set_num_threads(threads)
        else:
            from mlplab.engine.cohort import train_cohort

            records = train_cohort(configs, run_ids=ids, device=device, compile=compile)
        for rec in records:
            store.write_run(rec)
            bar.update(1, best=rec.best.best_value)
    except (Exception, KeyboardInterrupt) as e:   # Ctrl-C or SIGTERM: interrupted, not failed
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        for run_id, c in zip(ids, configs):
            if store.run(run_id).status != "done":
                store.mark(run_id, c.name, to_dict(c), status,
                           error=None if status == "interrupted" else f"{type(e).__name__}: {e}")
        raise
    finally:
        bar.close()
    if report:
        from mlplab.report.build import build_report

        build_report(out)
    return ids


class StoreSink:
    """A :class:`mlplab.probe.user.RunSink` that writes into the store at ``out``: the run
    is listed as ``running`` from ``begin`` and written whole at ``finish``."""

    def __init__(self, out: str | Path, source: str = "probe") -> None:
        self.store, self.source = Store(out), source

    def begin(self, name: str, config: dict[str, Any]) -> str:
        run_id = self.store.new_run_id(name, config)
        self.store.mark(run_id, name, config, "running", source=self.source)
        return run_id

    def finish(self, record: "RunRecord") -> None:
        self.store.write_run(record)


class Probe(UserLoopProbe):
    """The probe in your own training loop, writing its run into the store at ``out``
    (SPEC §5); every other argument as :class:`mlplab.probe.user.Probe`.

    >>> import tempfile, torch, mlplab
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    >>> with tempfile.TemporaryDirectory() as out:
    ...     with mlplab.Probe(net, out=out, name="doc") as probe:
    ...         loss = net(torch.ones(8, 2)).pow(2).mean()
    ...         loss.backward()
    ...         probe.step(loss)
    ...     mlplab.Store(out).run(probe.run_id).status
    'done'
    """

    def __init__(self, model: "torch.nn.Module", out: str | Path, name: str | None = None,
                 every: int = 1, activations_every: int = 10, **kwargs: Any) -> None:
        sink = StoreSink(out)
        self.store = sink.store
        super().__init__(model, sink, name, every, activations_every, **kwargs)
