"""The ``mlplab`` command line: parses arguments and makes one library call each.

Exit codes: 0 success, 2 bad input (a one-paragraph error naming the key or file and
what is allowed), 1 failure. Heavy imports happen inside the command that needs them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from typing import Any, Callable, Sequence

from mlplab.strictjson import dumps

_TRAIN_FLAGS = {  # flag -> (dotted config key, parser)
    "dataset": ("data.name", str), "n": ("data.n", int), "noise": ("data.noise", float),
    "hidden": ("model.hidden", lambda s: _sizes(s)),
    "activation": ("model.activation", str), "init": ("model.init", str),
    "loss": ("train.loss", str), "optimizer": ("train.optimizer", str), "lr": ("train.lr", float),
    "momentum": ("train.momentum", float), "batch_size": ("train.batch_size", int),
    "epochs": ("train.epochs", int), "seed": ("train.seed", int),
    "patience": ("stopping.patience", int), "restarts": ("stopping.restarts", int),
    "target": ("stopping.target", lambda s: s if s == "auto" else float(s)), "name": ("name", str),
}


def _sizes(text: str) -> list[int]:
    """``"8,8"``, ``"8-8"`` or ``"8 8"`` -> ``[8, 8]``; ``""`` -> ``[]`` (rejected later).
    A ``-`` separates sizes only between digits, so ``4,-2`` is refused, not read as [4, 2]."""
    import re

    sizes = [int(x) for x in re.split(r"[,\s]+|(?<=\d)-(?=\d)", text.strip()) if x]
    if any(size <= 0 for size in sizes):
        raise ValueError(text)
    return sizes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlplab", description="Train, debug and sweep small "
                                "fully-connected networks in PyTorch.")
    p.add_argument("--version", action="version", version="mlplab 0.1.0")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="the seed study, report included")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    d.add_argument("--quiet", action="store_true")

    t = sub.add_parser("train", help="train one configuration (early stopping, restarts)")
    t.add_argument("--config", help="YAML or TOML config file")
    for flag, (key, _) in _TRAIN_FLAGS.items():
        t.add_argument("--" + flag.replace("_", "-"), dest=flag, metavar="V", help=key)
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, e.g. --set train.weight_decay=1e-4")
    t.add_argument("--seeds", type=int, default=1, help="train N seeds as one cohort")
    t.add_argument("--compile", action="store_true",
                   help="train as a cohort with each epoch compiled (a build of 15-30 s for "
                        "a full-batch epoch, ~1 min for 11 minibatch steps, the first time "
                        "for a kind of network on this machine, then cached)")
    t.add_argument("--out", help="store directory (default runs/<name>)")
    t.add_argument("--device", default="cpu")
    t.add_argument("--no-report", action="store_true")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--json", action="store_true")

    s = sub.add_parser("sweep", help="run a sweep file")
    s.add_argument("file")
    s.add_argument("--out")
    s.add_argument("--workers", type=int)
    s.add_argument("--backend", choices=("local", "ray"), default="local")
    s.add_argument("--address", help="Ray cluster address (host:port)")
    s.add_argument("--resume", action="store_true")
    s.add_argument("--device", default="cpu")
    s.add_argument("--compile", action="store_true",
                   help="cohorts with compiled epochs (a build per kind of network "
                        "on this machine, then cached; see mlplab train --compile)")
    s.add_argument("--no-report", action="store_true")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--json", action="store_true")

    r = sub.add_parser("runs", help="table of the runs in a store")
    r.add_argument("dir")
    r.add_argument("--sort", help="column to sort by (e.g. val_loss; --sort=-val_acc descends)")
    r.add_argument("--desc", action="store_true", help="sort descending")
    r.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--group-by", metavar="KEY[,KEY]",
                   help="one row per group over its seeds (n, median, 95%% CI, success rate "
                        "with its interval); 'config' groups by every key but the seed")
    r.add_argument("--metric", default="val_loss", help="the metric of --group-by rows")
    r.add_argument("--json", action="store_true")

    cmp = sub.add_parser("compare", help="compare two groups of runs over seeds")
    cmp.add_argument("dir")
    cmp.add_argument("a", help="KEY=VALUE[&KEY=VALUE], a run-id prefix or a configuration id")
    cmp.add_argument("b", help="the same for the other side")
    cmp.add_argument("--metric", default="val_loss")
    cmp.add_argument("--json", action="store_true")

    ck = sub.add_parser("check", help="verify every finished run's files against the index")
    ck.add_argument("dir")
    ck.add_argument("--repair", action="store_true",
                    help="mark the damaged runs 'damaged'; rebuild a missing or damaged index"
                         " from the run folders (the damaged file is kept aside)")
    ck.add_argument("--json", action="store_true")

    rep = sub.add_parser("report", help="(re)build report.html and PNG figures")
    rep.add_argument("dir")

    dg = sub.add_parser("diagnose", help="plain-language findings for a run")
    dg.add_argument("run", help="a run folder (STORE/runs/ID) or a store with one run")
    dg.add_argument("--run-id", help="the run, when RUN is a store of several")
    dg.add_argument("--attempt", help="an attempt number, or 'all' (default: the best attempt)")
    dg.add_argument("--json", action="store_true")

    ls = sub.add_parser("landscape", help="loss along lines and on a 2-D slice around a run's "
                        "final weights, the training path drawn on it")
    ls.add_argument("run", help="a run folder (STORE/runs/ID) or a store with one run")
    ls.add_argument("--run-id", help="the run, when RUN is a store of several")
    ls.add_argument("--seeds-of", metavar="CONFIG",
                    help="the configuration id whose seeds the barrier is measured to "
                         "(default: the run's own; mlplab runs STORE --group-by config)")
    ls.add_argument("--which", choices=("best", "last"), default="best",
                    help="the final weights: the kept (best) epoch's or the last")
    ls.add_argument("--grid", type=int, default=31, help="points along each axis of the slice")
    ls.add_argument("--points", type=int, default=41, help="points along each line")
    ls.add_argument("--span", type=float, help="half width of the slice in direction units "
                    "(default: wide enough for the whole path)")
    ls.add_argument("--seed", type=int, default=0, help="of the random directions")
    ls.add_argument("--directions", choices=("random", "path"), default="random",
                    help="of the slice: random filter-normalised, or the training path's "
                         "two principal directions (the path then lies in the slice)")
    ls.add_argument("--json", action="store_true")

    lf = sub.add_parser("lr-find", help="fixed learning rates x seeds as one cohort, and "
                        "the range test: a suggested lr with its interval")
    lf.add_argument("config", help="YAML or TOML config file")
    lf.add_argument("--seeds", type=int, default=8)
    lf.add_argument("--lr-min", type=float, default=1e-4)
    lf.add_argument("--lr-max", type=float, default=10.0)
    lf.add_argument("--points", type=int, default=16, help="learning rates on the log grid")
    lf.add_argument("--epochs", type=int, help="of each short run (default: the config's, "
                    "at most 50)")
    lf.add_argument("--range-steps", type=int, default=200, help="steps of the range test")
    lf.add_argument("--out", help="folder of lr_find.json and lr_find.png "
                    "(default runs/lr-find-<name>)")
    lf.add_argument("--write-sweep", metavar="FILE",
                    help="write the config with a staged sweep whose first stage is the lrs "
                         "around the suggestion")
    lf.add_argument("--device", default="cpu")
    lf.add_argument("--quiet", action="store_true")
    lf.add_argument("--json", action="store_true")

    db = sub.add_parser("dashboard", help="the live web dashboard")
    db.add_argument("dir")
    db.add_argument("--host", default="127.0.0.1")
    db.add_argument("--port", type=int, default=8050)

    ex = sub.add_parser("export", help="a store's runs to TensorBoard or MLflow")
    exs = ex.add_subparsers(dest="target", required=True, metavar="TARGET")
    ext = exs.add_parser("tensorboard", help="one event folder per run, HParams included")
    ext.add_argument("dir", help="the store")
    ext.add_argument("out", help="the log directory (tensorboard --logdir OUT)")
    exm = exs.add_parser("mlflow", help="one MLflow run per run (again: adds nothing)")
    exm.add_argument("dir", help="the store")
    exm.add_argument("--tracking-uri", required=True, metavar="URI",
                     help="e.g. sqlite:///mlflow.db, a folder, or http://127.0.0.1:5000")
    exm.add_argument("--experiment", help="experiment name (default: the store's folder name)")
    exm.add_argument("--artifact-location", metavar="URI",
                     help="where a new experiment keeps artifacts (default for a sqlite:/// "
                          "store: an 'mlartifacts' folder beside the database)")
    for e in (ext, exm):
        e.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                       help="as mlplab runs --filter (status=done, sweep_id=..., train.lr=0.1)")
        e.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="cohort engine vs the per-model loop")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--json", action="store_true")
    b.add_argument("--device", default="cpu")
    b.add_argument("--compile", action="store_true",
                   help="the cohort with compiled epochs (compile time reported)")
    b.add_argument("--curvature", action="store_true",
                   help="also the probe's cost with curvature every 10 steps against without")
    return p


def _cmd_train(a: argparse.Namespace) -> int:
    from mlplab.config import from_dict, with_overrides
    from mlplab.config_file import load_config, parse_value

    overrides: dict[str, Any] = {}
    for flag, (key, cast) in _TRAIN_FLAGS.items():
        raw = getattr(a, flag)
        if raw is not None:
            overrides[key] = _cast(flag, key, raw, cast)
    for item in a.set:
        if "=" not in item:
            from mlplab.config import ConfigError

            raise ConfigError("--set", item, "KEY=VALUE with a dotted key, e.g. train.lr=0.1")
        key, value = item.split("=", 1)
        overrides[key.strip()] = parse_value(value, key.strip())
    cfg = load_config(a.config, overrides) if a.config else with_overrides(from_dict({}), overrides)
    if cfg.name == "run" and "name" not in overrides:   # default name: the dataset's
        cfg = with_overrides(cfg, {"name": cfg.data.name.split(":")[0]})
    out = a.out or f"runs/{cfg.name}"
    from mlplab.engine.reference import resolve_device
    from mlplab.run import run_config

    resolve_device(a.device, "--device")
    _ready_to_train()
    ids = run_config(cfg, out, seeds=a.seeds, device=a.device, report=not a.no_report,
                     quiet=a.quiet or a.json, compile=a.compile)
    from mlplab.store.table import format_table, run_rows

    rows = [row for row in run_rows(out) if row["run_id"] in ids]
    if a.json:
        print(dumps({"store": out, "runs": rows}))
    elif not a.quiet:
        print(format_table(rows))
        print(f"\nstore: {out}" + ("" if a.no_report else f"   report: {out}/report.html"))
    return 0


def _cast(flag: str, key: str, raw: str, cast: Callable[[str], Any]) -> Any:
    from mlplab.config import ConfigError

    try:
        return cast(raw)
    except ValueError:
        raise ConfigError(f"--{flag.replace('_', '-')} ({key})", raw,
                          "a list of positive sizes like 8,8" if flag == "hidden" else
                          "a number or auto" if flag == "target" else
                          {int: "an integer", float: "a number"}.get(cast, "a value")) from None


def _cmd_runs(a: argparse.Namespace) -> int:
    from mlplab.store.table import format_table, run_rows

    if a.group_by:
        from mlplab.store.groups import format_groups, group_rows

        keys = a.group_by.split(",")
        rows = group_rows(a.dir, keys, metric=a.metric, filters=a.filter)
        print(dumps(rows) if a.json else format_groups(rows, keys))
        return 0
    sort = f"-{a.sort.lstrip('-')}" if a.sort and a.desc else a.sort
    rows = run_rows(a.dir, sort=sort, filters=a.filter)
    print(dumps(rows) if a.json else format_table(rows))
    damaged = [r for r in rows if r["status"] == "damaged"]
    if damaged and not a.json:
        print(f"{len(damaged)} damaged: " + "; ".join(f"{r['run_id']}: {r['error']}"
                                                   for r in damaged[:3])
              + (" ..." if len(damaged) > 3 else "")
              + f"; mlplab check {a.dir} --repair marks them (a resumed sweep retrains them)",
              file=sys.stderr)
    return 0


def _cmd_check(a: argparse.Namespace) -> int:
    from mlplab.store.check import check_store

    result = check_store(a.dir, repair=a.repair, rebuild=a.repair)
    print(dumps(result.to_dict()) if a.json else result.text())
    return 1 if result.damaged and not result.repaired else 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from mlplab.store.groups import compare_groups, format_comparison

    result = compare_groups(a.dir, a.a, a.b, metric=a.metric)
    print(dumps(result) if a.json else format_comparison(result))
    return 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from mlplab.sweep.spec import load_sweep

    load_sweep(a.file)      # a mistake in the file is answered before torch and scipy load
    if a.backend == "local":
        from mlplab.engine.reference import resolve_device

        resolve_device(a.device, "--device")
    from mlplab.sweep import run_sweep

    result = run_sweep(a.file, out=a.out, workers=a.workers, backend=a.backend,
                       address=a.address, resume=a.resume, quiet=a.quiet or a.json,
                       device=a.device, report=not a.no_report, compile=a.compile)
    print(dumps(result.to_dict()) if a.json else result.summary())
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from mlplab.report.build import build_report

    print(f"report: {build_report(a.dir)}")
    return 0


def _cmd_diagnose(a: argparse.Namespace) -> int:
    from mlplab.diagnose.findings import diagnose_path, format_findings

    findings = diagnose_path(a.run, a.run_id, attempt=a.attempt)
    print(dumps([f.to_dict() for f in findings]) if a.json else format_findings(findings))
    return 0


def _cmd_landscape(a: argparse.Namespace) -> int:
    from mlplab.figures.data_landscape import landscape_text
    from mlplab.landscape.of_run import landscape

    doc = landscape(a.run, a.run_id, a.seeds_of, which=a.which, points=a.points, grid=a.grid,
                    span=a.span, seed=a.seed, directions=a.directions)
    print(dumps(doc) if a.json else landscape_text(doc))
    return 0


def _cmd_lr_find(a: argparse.Namespace) -> int:
    from mlplab.config_file import load_config
    from mlplab.engine.reference import resolve_device
    from mlplab.landscape.finder import lr_find, summary, write_result, write_sweep

    cfg = load_config(a.config)
    resolve_device(a.device, "--device")
    _ready_to_train()
    doc = lr_find(cfg, a.seeds, lr_min=a.lr_min, lr_max=a.lr_max, points=a.points,
                  epochs=a.epochs, range_steps=a.range_steps, device=a.device)
    files = write_result(doc, a.out or f"runs/lr-find-{cfg.name}")
    if a.write_sweep:
        files.append(write_sweep(doc, a.config, a.write_sweep))
    if a.json:
        print(dumps({**doc, "files": files}))
    elif not a.quiet:
        print(summary(doc) + "".join(f"\nwrote {f}" for f in files))
    return 0


def _cmd_dashboard(a: argparse.Namespace) -> int:
    from mlplab.dashboard import serve

    serve(a.dir, host=a.host, port=a.port)
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from mlplab.export import export_mlflow, export_tensorboard

    if a.target == "tensorboard":
        result = export_tensorboard(a.dir, a.out, filters=a.filter)
    else:
        result = export_mlflow(a.dir, a.tracking_uri, experiment=a.experiment,
                               artifact_location=a.artifact_location, filters=a.filter)
    print(dumps(result.to_dict()) if a.json else result.text())
    return 0


def _cmd_bench(a: argparse.Namespace) -> int:
    from mlplab.bench import run_bench
    from mlplab.engine.reference import resolve_device

    resolve_device(a.device, "--device")
    _ready_to_train()
    result = run_bench(quick=a.quick, device=a.device, compile=a.compile,
                       curvature=a.curvature)
    print(dumps(result.to_dict()) if a.json else result.summary())
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from mlplab.demo.study import run_demo

    _ready_to_train()
    result = run_demo(a.out, quick=a.quick, quiet=a.quiet)
    print(result.summary())
    return 0


_COMMANDS = {"train": _cmd_train, "runs": _cmd_runs, "compare": _cmd_compare, "check": _cmd_check,
             "sweep": _cmd_sweep, "report": _cmd_report,
             "diagnose": _cmd_diagnose, "dashboard": _cmd_dashboard, "bench": _cmd_bench,
             "landscape": _cmd_landscape, "lr-find": _cmd_lr_find, "export": _cmd_export,
             "demo": _cmd_demo}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """mlplab's own warnings as one line on stderr (they say what happened and why; the
    source line Python adds means nothing to a user of the command); others as usual."""
    text = str(message)
    if not text.startswith("mlplab:"):
        return _default_show(message, category, filename, lineno, file, line)
    print(text, file=file if file is not None else sys.stderr)


_default_show = warnings.showwarning


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM in mlplab's own process: the work in progress unwinds as after
    Ctrl-C (runs and sweeps marked interrupted, workers stopped, finished runs kept), and
    the command exits 128 + the signal's number, as a shell reports it.

    A subclass, not KeyboardInterrupt itself: CPython remembers a bare KeyboardInterrupt
    that passed through code some extension ran with ``PyRun_String`` and, at exit, kills
    the process with SIGINT even after ``main`` caught it and returned (seen as an exit
    status of -2 about one time in twelve)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


_OWN_PROCESS = False        # main() runs as the console script: the process is mlplab's


def _ready_to_train() -> None:
    """The command's input is checked and it trains next: in mlplab's own process, move
    what the imports made out of the garbage collector's sight
    (:func:`mlplab.engine.cohort.freeze_imports`). Not before the input is checked, so a
    mistake in it is answered without importing torch. (A sweep's driver trains nothing:
    its workers do this themselves.)"""
    if _OWN_PROCESS:
        from mlplab.engine.cohort import freeze_imports

        freeze_imports()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from mlplab.config import ConfigError
    from mlplab.store.store import StoreError

    if argv is None:          # the process is mlplab's own (the console script)
        warnings.showwarning = _show_warning
        for sig in (signal.SIGINT, signal.SIGTERM):    # both end work as Ctrl-C does
            signal.signal(sig, _interrupt)
        global _OWN_PROCESS
        _OWN_PROCESS = True

    try:
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()      # a closed pipe (mlplab runs DIR | head) shows here, not at exit
        return code
    except BrokenPipeError:     # the reader has gone: nothing left to say, and no one to say it to
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ConfigError, StoreError) as e:
        print(f"mlplab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        extra = {"dash": "dashboard", "plotly": "dashboard", "ray": "ray", "optuna": "optuna",
                 "tensorboard": "tensorboard", "mlflow": "mlflow"}.get(
            (e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"mlplab {args.command}: error: this needs the optional package '{e.name}';"
              f" install it with: pip install 'mlplab[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"mlplab {args.command}: interrupted", file=sys.stderr)
        return 128 + (e.signum if isinstance(e, Interrupted) else signal.SIGINT)
    except Exception as e:  # a failure, not a user mistake: say what broke, briefly
        print(f"mlplab {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        if "MLPLAB_DEBUG" in __import__("os").environ:
            raise
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
