"""Summaries of a sweep: per configuration the spread over seeds, the staged path, the
best configuration, and the printed table. Pure functions of run outcomes.

Per configuration (``summary["configs"]``): ``success_rate`` is the share of attempts
(restarts included) whose monitored value reached ``stopping.target`` (SPEC §6),
``run_success_rate`` the share of seeds that reached it with their restarts; ``median``,
``q1``, ``q3`` are quartiles over seeds of the selected metric; ``score`` is the
selected statistic. A failed run counts as the worst possible value.

>>> statistic([0.1, 0.3, 0.2], "median", "min")
0.2
>>> statistic([0.1, float("nan")], "worst", "min")
inf
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mlplab.config import StoppingConfig
from mlplab.engine.stopping import monitor_mode, sets_target
from mlplab.record import improving_restarts
from mlplab.strictjson import jsonable

from .plan import Candidate, PlannedRun
from .select import interval, leader
from .spec import SelectConfig

if TYPE_CHECKING:
    from mlplab.record import RunRecord
    from mlplab.store.store import AttemptInfo, RunInfo

VALUE_KEYS = ("val_loss", "val_acc", "test_loss", "test_acc", "train_loss", "best")


@dataclass(frozen=True)
class RunOutcome:
    """What the sweep needs of a finished (or failed) run."""

    run_id: str
    status: str                          # done or failed
    values: Mapping[str, float]          # VALUE_KEYS at the kept attempt (nan if none)
    n_attempts: int = 0
    attempts_met: int = 0                # attempts whose monitored value met the target
    target_met: bool = False             # any attempt met it
    end_reason: str | None = None        # of the kept attempt
    error: str | None = None
    wall_time: float = 0.0
    restarts_improved: int = 0           # restarts that beat every attempt before them

    @property
    def restarts(self) -> int:
        return max(self.n_attempts - 1, 0)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _mode(config: Mapping[str, Any] | None) -> str:
    """min or max: how a run's monitored value improves (its stored config's stopping)."""
    st = (config or {}).get("stopping") or {}
    return monitor_mode(StoppingConfig(monitor=st.get("monitor", "val_loss"),
                                       mode=st.get("mode", "auto")))


def outcome_from_record(rec: "RunRecord") -> RunOutcome:
    b = rec.best
    values = {"val_loss": b.val_loss, "val_acc": b.val_acc, "test_loss": b.test_loss,
              "test_acc": b.test_acc, "train_loss": b.train_loss, "best": b.best_value}
    return RunOutcome(rec.run_id, "done", {k: _num(v) for k, v in values.items()},
                      len(rec.attempts), sum(a.target_met for a in rec.attempts),
                      any(a.target_met for a in rec.attempts), b.end_reason, None, rec.wall_time,
                      improving_restarts([a.best_value for a in rec.attempts], _mode(rec.config)))


def outcome_from_info(info: "RunInfo", attempts: Sequence["AttemptInfo"]) -> RunOutcome:
    values = {"val_loss": info.val_loss, "val_acc": info.val_acc, "test_loss": info.test_loss,
              "test_acc": info.test_acc, "train_loss": info.train_loss, "best": info.best_value}
    return RunOutcome(info.run_id, info.status, {k: _num(v) for k, v in values.items()},
                      len(attempts) or (info.n_attempts or 0),
                      sum(a.target_met for a in attempts), bool(info.target_met),
                      info.end_reason, info.error, info.wall_time or 0.0,
                      improving_restarts([_num(a.best_value) for a in attempts], _mode(info.config)))


def failed_outcome(run_id: str, error: str) -> RunOutcome:
    return RunOutcome(run_id, "failed", {k: math.nan for k in VALUE_KEYS}, error=error)


def worst(mode: str) -> float:
    return math.inf if mode == "min" else -math.inf


def run_value(o: RunOutcome, metric: str, mode: str) -> float:
    """The selected metric of a run; a failed run or a non-finite value is the worst."""
    v = o.values.get(metric, math.nan) if o.status == "done" else math.nan
    return v if math.isfinite(v) else worst(mode)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile that keeps infinities (``inf`` stays ``inf``)."""
    s = sorted(values)
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if s[lo] == s[hi]:
        return s[lo]
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def statistic(values: Sequence[float], name: str, mode: str) -> float:
    """The statistic over seeds: ``mean``, ``median``, ``worst`` or ``mean_minus_std``
    (the mean penalised by one standard deviation: mean − std for a metric to maximise,
    mean + std for one to minimise). NaN counts as the worst value."""
    vals = [v if not math.isnan(v) else worst(mode) for v in values]
    if not vals:
        return worst(mode)
    if name == "median":
        return quantile(vals, 0.5)
    if name == "worst":
        return max(vals) if mode == "min" else min(vals)
    mean = sum(vals) / len(vals)
    if not math.isfinite(mean):          # a failed seed (or opposite infinities): the worst
        return worst(mode) if math.isnan(mean) else mean
    if name == "mean":
        return mean
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    return mean + std if mode == "min" else mean - std


def is_better(a: float, b: float, mode: str) -> bool:
    """``a`` strictly better than ``b`` (NaN never is)."""
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a < b if mode == "min" else a > b


def config_entry(candidate: Candidate, runs: Sequence[PlannedRun],
                 outcomes: Mapping[str, RunOutcome], select: SelectConfig) -> dict[str, Any]:
    """The spread over seeds of one configuration (its ``runs``)."""
    outs = [outcomes[r.run_id] for r in runs if r.run_id in outcomes]
    vals = [run_value(o, select.metric, select.mode) for o in outs]
    target = candidate.config.stopping.target if sets_target(candidate.config) else None
    attempts = sum(max(o.n_attempts, 1) for o in outs)
    finite = [v for v in vals if math.isfinite(v)]
    mean = sum(finite) / len(finite) if finite else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite)) if finite else math.nan
    entry = {
        "config_id": runs[0].config_id if runs else "",
        "params": jsonable(candidate.params_dict()),
        "stage": candidate.stage, "trial": candidate.trial,
        "n_seeds": len(runs), "n_done": sum(o.status == "done" for o in outs),
        "n_failed": sum(o.status == "failed" for o in outs),
        "n_diverged": sum(o.status == "done" and o.end_reason == "diverged" for o in outs),
        "success_rate": None if target is None or not outs else
        sum(o.attempts_met for o in outs) / attempts,
        "run_success_rate": None if target is None or not outs else
        sum(o.target_met for o in outs) / len(outs),
        "score": statistic(vals, select.statistic, select.mode),
        "ci": list(interval(vals, select.statistic)),
        "values": [v if math.isfinite(v) else None for v in vals],
        "median": quantile(vals, 0.5), "q1": quantile(vals, 0.25), "q3": quantile(vals, 0.75),
        "mean": mean, "std": std,
        "restarts_mean": sum(o.restarts for o in outs) / len(outs) if outs else math.nan,
        "restarts_total": sum(o.restarts for o in outs),
        "restarts_improved": sum(o.restarts_improved for o in outs),
        "run_ids": [r.run_id for r in runs],
    }
    return entry


def pick_best(entries: Sequence[Mapping[str, Any]], select: SelectConfig) -> Mapping[str, Any] | None:
    """The entry ``select.rule`` picks (:func:`mlplab.sweep.select.leader`)."""
    return leader(entries, select.mode, select.statistic, select.rule)


def best_run(entry: Mapping[str, Any], outcomes: Mapping[str, RunOutcome],
             select: SelectConfig) -> str | None:
    """The best seed's run of a configuration."""
    ids = [r for r in entry["run_ids"] if r in outcomes and outcomes[r].status == "done"]
    if not ids:
        return None
    key = (lambda r: run_value(outcomes[r], select.metric, select.mode))
    return min(ids, key=key) if select.mode == "min" else max(ids, key=key)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    return str(v)


def _fmt_ci(ci: Sequence[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None or not all(math.isfinite(v) for v in ci):
        return "-"
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def format_params(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in params.items()) or "(base)"


def format_summary(summary: Mapping[str, Any], limit: int = 20) -> str:
    """The table printed at the end of a sweep: configurations ranked by score, the
    staged path, the best configuration and where the store is."""
    sel = summary["select"]
    mode = sel["mode"]
    entries = sorted(summary["configs"], key=lambda e: (e["score"] is None,
                     (e["score"] or 0) * (1 if mode == "min" else -1)))
    staged = summary["strategy"] == "staged"
    head = ["rank", *(["stage"] if staged else []), "config", "seeds", "ok", "success",
            f"{sel['statistic']} {sel['metric']}", "95% CI", "median [q1, q3]", "restarts", "tie"]
    rows = [head]
    for i, e in enumerate(entries[:limit]):
        stage = [str(e["stage"] + 1)] if staged else []
        rows.append([str(i + 1), *stage, format_params(e["params"]), str(e["n_seeds"]),
                     f"{e['n_done'] - e['n_diverged']}/{e['n_seeds']}",
                     "-" if e["success_rate"] is None else f"{e['success_rate']:.0%}",
                     _fmt(e["score"]), _fmt_ci(e.get("ci")),
                     f"{_fmt(e['median'])} [{_fmt(e['q1'])}, {_fmt(e['q3'])}]",
                     _fmt(e["restarts_mean"]), "=" if e.get("tied_with_best") else ""])
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = [f"sweep {summary['sweep_id']} ({summary['strategy']}): {summary['n_runs']} runs,"
             f" {summary['n_failed']} failed, {summary['n_diverged']} diverged,"
             f" {summary.get('restarts', 0)} restarts ({summary.get('restarts_improved', 0)} of"
             f" them improved on the attempts before)"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if len(entries) > limit:
        lines.append(f"... {len(entries) - limit} more configurations (mlplab runs {summary['out']})")
    if any(e.get("tied_with_best") for e in entries):
        lines.append("tie '=': not distinguishable from the best (paired permutation test over"
                     " 6+ shared seeds, else Mann-Whitney U; Holm-corrected, alpha 0.05)")
    for s in summary.get("stages", []):
        tied = s.get("tied") or []
        lines.append(f"stage {s['stage'] + 1} ({', '.join(s['keys'])}): handed on "
                     f"{format_params(s['winner'])}  score {_fmt(s['score'])} {_fmt_ci(s.get('ci'))}"
                     + (f"; tied with it: {'; '.join(format_params(t) for t in tied)}" if tied
                        else "; separated from the rest"))
    race = summary.get("racing")
    if race:
        lines.append(f"racing (seeds {race['min']}..{race['max']}): {race['runs']} runs instead of"
                     f" {race['runs_at_max_everywhere']} with {race['max']} seeds everywhere"
                     f" ({race['saved']} saved, {race['rounds']} rounds)")
    best = summary.get("best")
    if best:
        lines.append(f"best: {format_params(best['params'])}  {sel['statistic']} {sel['metric']}"
                     f" {_fmt(best['score'])}  (run {best.get('best_run_id')})")
    t = summary.get("timing", {})
    if t:
        share = f" ({t['train_share']:.0%} of the workers' time)" if t.get("train_share") else ""
        lines.append(f"wall time {t['wall_s']:.1f}s, training {t['train_s']:.1f}s{share} and"
                     f" encoding run files {t.get('encode_s', 0.0):.1f}s over"
                     f" {t['workers']} worker(s) ({t['backend']})")
    return "\n".join(lines)
