"""Runs over seeds: the runs table grouped by configuration (``mlplab runs --group-by``)
and the comparison of two groups (``mlplab compare``), each number with its n and its
95 % interval (:mod:`mlplab.stats`).

A group is every run that shares the values of the ``--group-by`` keys (``config``: every
key but the seed). Two groups are compared seed by seed when they hold the same seeds
(a sweep's seed index ``i`` is the same split, batches and initial weights for every
configuration: a paired permutation test), otherwise as independent samples
(Mann–Whitney U).

>>> parse_selector("train.optimizer=adam&train.lr=0.01")
[('train.optimizer', 'adam'), ('train.lr', '0.01')]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from mlplab.config import ConfigError, get_dotted
from mlplab.stats import compare, seeds_needed, success_rate, summarize
from .store import RunInfo, Store, config_hash
from .table import filter_runs, matches, run_row

METRICS = ("val_loss", "val_acc", "test_loss", "test_acc", "best", "train_loss")
HIGHER_IS_BETTER = {"val_acc": True, "test_acc": True}


def config_key(config: dict[str, Any]) -> str:
    """A configuration's identity over its seeds: its hash with ``train.seed`` cleared."""
    train = dict(config.get("train") or {})
    train["seed"] = 0
    return config_hash({**config, "train": train})[:10]


def _metric(metric: str) -> str:
    if metric not in METRICS:
        raise ConfigError("--metric", metric, ", ".join(METRICS))
    return metric


def _value(run: RunInfo, metric: str) -> float:
    v = run_row(run).get(metric)
    return float(v) if isinstance(v, (int, float)) and v is not None else math.nan


def _group_value(run: RunInfo, key: str) -> Any:
    if key == "config":
        return config_key(run.config)
    try:
        v = get_dotted(run.config, key)
    except (KeyError, TypeError):
        raise ConfigError("--group-by", key, "dotted config keys such as train.optimizer,train.lr,"
                          " or 'config' (every key but the seed)") from None
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def _seed(run: RunInfo) -> Any:
    return (run.config.get("train") or {}).get("seed")


def group_summary(runs: Sequence[RunInfo], metric: str) -> dict[str, Any]:
    """n, mean, median and its 95 % interval of ``metric`` over ``runs``, the success rate
    (runs that met their target) with its Wilson interval, and the restarts."""
    s = summarize([_value(r, metric) for r in runs], statistic="median")
    targeted = [r for r in runs if r.status == "done" and r.target_met is not None]
    rate = success_rate(sum(bool(r.target_met) for r in targeted), len(targeted)) if targeted else None
    return {"n": len(runs), "n_done": sum(r.status == "done" for r in runs),
            "metric": metric, "n_finite": s.n, "mean": s.mean, "median": s.median,
            "ci_low": s.ci_low, "ci_high": s.ci_high, "ci_method": s.method,
            "success": None if rate is None else rate.to_dict(),
            "restarts": sum(r.restarts or 0 for r in runs)}


def group_rows(store_dir: str | Path, keys: Sequence[str], metric: str = "val_loss",
               filters: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One row per group of runs sharing the values of ``keys``: the group's values and
    :func:`group_summary`; groups in order of first appearance."""
    metric, keys = _metric(metric), [k.strip() for k in keys if k.strip()]
    if not keys:
        raise ConfigError("--group-by", ",".join(keys), "one or more dotted config keys, or 'config'")
    groups: dict[tuple, list[RunInfo]] = {}
    for r in filter_runs(Store(store_dir, readonly=True).runs(), filters):
        groups.setdefault(tuple(_group_value(r, k) for k in keys), []).append(r)
    return [{**dict(zip(keys, values)), **group_summary(runs, metric)}
            for values, runs in groups.items()]


def parse_selector(text: str) -> list[tuple[str, str]]:
    """``key=value[&key=value...]`` as (key, value) pairs."""
    pairs = []
    for part in text.split("&"):
        if "=" not in part:
            raise ConfigError("compare", text, "key=value conditions joined by '&', e.g."
                              " 'train.optimizer=adam&train.lr=0.01', or a run-id prefix")
        k, v = part.split("=", 1)
        pairs.append((k.strip(), v.strip()))
    return pairs


def _pick(runs: Sequence[RunInfo], selector: str) -> list[RunInfo]:
    if "=" in selector:
        pairs = parse_selector(selector)
        picked = [r for r in runs if all(matches(r, run_row(r), k, v) for k, v in pairs)]
    else:
        picked = [r for r in runs if r.run_id.startswith(selector) or config_key(r.config) == selector]
    picked = [r for r in picked if r.status == "done"]
    if not picked:
        raise ConfigError("compare", selector, "a selector that matches finished runs of the store"
                          " (key=value[&key=value], a run-id prefix or a configuration id)")
    return picked


def compare_groups(store_dir: str | Path, a: str, b: str, metric: str = "val_loss") -> dict[str, Any]:
    """Compare ``metric`` of the runs selected by ``a`` with those selected by ``b``:
    each side's summary, the difference A − B with its interval, P(A better than B) with
    its interval, the test and its p-value, paired by seed where both sides hold the same
    seeds, and the seeds per side needed to detect the observed difference (power 0.8)."""
    metric = _metric(metric)
    runs = Store(store_dir, readonly=True).runs()
    side_a, side_b = _pick(runs, a), _pick(runs, b)
    seeds_a = {_seed(r): r for r in side_a}
    seeds_b = {_seed(r): r for r in side_b}
    shared = [s for s in seeds_a if s in seeds_b]
    paired = (len(shared) >= 2 and len(seeds_a) == len(side_a) and len(seeds_b) == len(side_b)
              and set(seeds_a) == set(seeds_b))
    if paired:
        va = [_value(seeds_a[s], metric) for s in shared]
        vb = [_value(seeds_b[s], metric) for s in shared]
    else:
        va, vb = [_value(r, metric) for r in side_a], [_value(r, metric) for r in side_b]
    c = compare(va, vb, paired=paired, higher_is_better=HIGHER_IS_BETTER.get(metric, False))
    needed = None
    if c.sd is not None and c.sd > 0 and c.diff != 0 and math.isfinite(c.diff):
        needed = seeds_needed(abs(c.diff), c.sd, paired=paired)
    return {"metric": metric, "a": {"selector": a, **group_summary(side_a, metric)},
            "b": {"selector": b, **group_summary(side_b, metric)},
            "comparison": c.to_dict(), "seeds_needed": needed,
            "significant": c.p_value < 0.05}


def format_groups(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> str:
    """The grouped runs table as text."""
    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}"

    head = [*keys, "n", "done", f"median {rows[0]['metric'] if rows else ''}", "95% CI", "success", "restarts"]
    cells = [head]
    for r in rows:
        s = r["success"]
        success = "-" if s is None else (f"{s['k']}/{s['n']} [{num(s['ci_low'])}, {num(s['ci_high'])}]")
        cells.append([*(str(r[k]) for k in keys), str(r["n"]), str(r["n_done"]), num(r["median"]),
                      f"[{num(r['ci_low'])}, {num(r['ci_high'])}]", success, str(r["restarts"])])
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def format_comparison(result: dict[str, Any]) -> str:
    """``mlplab compare``'s text: both sides, the effect with its interval, the test."""
    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}"

    c, m = result["comparison"], result["metric"]
    lines = []
    for side in ("a", "b"):
        s = result[side]
        lines.append(f"{side.upper()} {s['selector']}: n={s['n_finite']}  median {m} {num(s['median'])}"
                     f" [{num(s['ci_low'])}, {num(s['ci_high'])}]  mean {num(s['mean'])}")
    pairing = f"paired over {c['n_a']} shared seeds" if c["paired"] else "independent samples"
    lines.append(f"A - B (mean {m}): {num(c['diff'])} [{num(c['diff_low'])}, {num(c['diff_high'])}]"
                 f"  P(A better) {num(c['prob_a_better'])} [{num(c['prob_low'])}, {num(c['prob_high'])}]")
    verdict = "significant at 0.05" if result["significant"] else "not significant at 0.05"
    needed = result["seeds_needed"]
    more = f"; about {needed} seeds per side would detect a difference this size" if needed else ""
    lines.append(f"{c['test']} ({pairing}): p = {num(c['p_value'])}, {verdict}{more}")
    return "\n".join(lines)
