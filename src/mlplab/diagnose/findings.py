"""``mlplab diagnose``: plain-language findings from a run's recorded history (SPEC §5).

:func:`diagnose` is pure: it takes the ``metrics.parquet`` frame (and the run's info)
and runs every detector of :mod:`mlplab.diagnose.detectors` on the chosen attempt.
:func:`diagnose_path` reads a run from the store first. Findings are
:class:`~mlplab.diagnose.detectors.Finding` records; :func:`format_findings` writes them for
people.

>>> from mlplab.metrics import MetricsLog
>>> log = MetricsLog()
>>> for step in range(20):
...     log.add(0, step, 0, "step", "", "loss", 1.0 if step < 5 else float("nan"))
>>> [f.kind for f in diagnose(log.to_frame())]
['divergence']
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from mlplab.config import ConfigError
from mlplab.store.models import locate_run
from mlplab.store.store import Store, StoreError
from .detectors import DETECTORS
from .history import SEVERITIES, Finding, history_of, layer_label

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Finding", "diagnose", "diagnose_path", "format_findings"]


def _attempts(frame: "pd.DataFrame", info: dict[str, Any], attempt: int | str | None) -> list[int]:
    present = sorted(int(a) for a in frame["attempt"].unique())
    if isinstance(attempt, str) and attempt.strip().isdigit():     # from the command line
        attempt = int(attempt)
    if attempt == "all":
        return present
    if attempt is None:
        best = info.get("best_attempt")
        if best is not None and int(best) in present:
            return [int(best)]
        return present[-1:]
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt not in present:
        raise ConfigError("--attempt", attempt, "'all' or an attempt of this run: "
                          + (", ".join(map(str, present)) or "none, the run recorded nothing"))
    return [attempt]


def diagnose(frame: "pd.DataFrame | str | Path", info: dict[str, Any] | None = None,
             attempt: int | str | None = None) -> list[Finding]:
    """Findings for one run, most severe first.

    ``frame``: the run's metrics (``Store.metrics(run_id)``, or ``pd.read_parquet`` of
    its ``metrics.parquet``); a path instead is read with :func:`diagnose_path`.
    ``info``: the run's info (layer order, config, ``best_attempt``, ...), optional.
    ``attempt``: None diagnoses the best attempt (``info["best_attempt"]``, else the
    last one), an int that attempt, ``"all"`` every attempt.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        return diagnose_path(frame, attempt=attempt)
    info = dict(info or {})
    found: list[Finding] = []
    for a in _attempts(frame, info, attempt):
        history = history_of(frame, a, info)
        for detect in DETECTORS:
            found.extend(detect(history))
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(found, key=lambda f: (f.attempt, -rank[f.severity], f.step, f.kind))


def run_info(root: Path, run_id: str) -> dict[str, Any]:
    """What the detectors read besides the metrics: the run's info, config and best attempt."""
    doc = json.loads((root / "runs" / run_id / "config.json").read_text())
    info = {**(doc.get("info") or {}), "config": doc.get("config") or {},
            "source": doc.get("source"), "run_id": run_id}
    try:
        info["best_attempt"] = Store(root, readonly=True).run(run_id).best_attempt
    except StoreError:
        pass
    return info


def diagnose_path(path: str | Path, run_id: str | None = None,
                  attempt: int | str | None = None) -> list[Finding]:
    """Findings for a run read from disk: ``path`` is a run folder ``STORE/runs/ID`` or a
    store directory (then ``run_id``, or its only finished run).

    >>> import tempfile
    >>> from mlplab.config import from_dict
    >>> from mlplab.run import run_config
    >>> cfg = from_dict({"data": {"name": "xor", "n": 40}, "train": {"lr": 1e-6, "epochs": 30},
    ...                  "stopping": {"restarts": 0}, "probe": {"boundary_snapshots": 0}})
    >>> with tempfile.TemporaryDirectory() as out:
    ...     _ = run_config(cfg, out, report=False, quiet=True)
    ...     "plateau" in [f.kind for f in diagnose_path(out)]
    True
    """
    from mlplab.metrics import read_metrics

    root, rid = locate_run(Path(path), run_id)
    run_dir = root / "runs" / rid
    if not (run_dir / "config.json").is_file():
        raise StoreError(f"run '{rid}' has no finished files in '{root}'")
    return diagnose(read_metrics(run_dir / "metrics.parquet"), run_info(root, rid), attempt)


def format_findings(findings: Iterable[Finding]) -> str:
    """Findings as text for people, one block each.

    >>> print(format_findings([]))
    no findings: nothing unusual in the recorded history
    """
    findings = list(findings)
    if not findings:
        return "no findings: nothing unusual in the recorded history"
    attempts = {f.attempt for f in findings}
    lines = [f"{len(findings)} finding{'s' if len(findings) != 1 else ''}"
             + (f" (attempt {next(iter(attempts))})" if len(attempts) == 1 else "") + ":"]
    for f in findings:
        where = f" in {layer_label(f.layer)}" if f.layer else ""
        extra = f", attempt {f.attempt}" if len(attempts) > 1 else ""
        lines.append(f"\n[{f.severity}] {f.kind}{where}, from step {f.step} "
                     f"(epoch {f.epoch}{extra})")
        lines.append(f"    {f.message}")
        lines.append(f"    hint: {f.hint}")
    return "\n".join(lines)


class _DiagnoseModule(types.ModuleType):
    """``import mlplab.diagnose.findings`` binds ``mlplab.diagnose.findings`` to this module (the import
    system does that for every submodule), which would hide the function of the same
    name exported by ``mlplab``; calling the module calls the function instead."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Finding]:
        return diagnose(*args, **kwargs)


sys.modules[__name__].__class__ = _DiagnoseModule
