"""What each ``mlplab`` command does with its parsed arguments: one library call each,
the heavy imports inside the command that needs them (a mistake in the input is answered
before torch loads). :data:`COMMANDS` maps a command's name to its function.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from mlplab.strictjson import dumps
from .parser import TRAIN_FLAGS

OWN_PROCESS = [False]       # [True] once main() runs as the console script (mlplab's own process)


def _ready_to_train() -> None:
    """The command's input is checked and it trains next: in mlplab's own process, move
    what the imports made out of the garbage collector's sight
    (:func:`mlplab.engine.process.freeze_imports`). Not before the input is checked, so a
    mistake in it is answered without importing torch. (A sweep's driver trains nothing:
    its workers do this themselves.)"""
    if OWN_PROCESS[0]:
        from mlplab.engine.process import freeze_imports

        freeze_imports()


def _cmd_train(a: argparse.Namespace) -> int:
    from mlplab.config import from_dict, with_overrides
    from mlplab.config_file import load_config, parse_value

    overrides: dict[str, Any] = {}
    for flag, (key, cast) in TRAIN_FLAGS.items():
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
    if a.backend == "local":
        from mlplab.sweep.executors import start_forkserver

        start_forkserver()      # the workers' imports take longest: first
    from mlplab.sweep.spec import load_sweep

    load_sweep(a.file)      # a mistake in the file is answered before torch and scipy load
    if a.backend == "local" and a.device != "cpu":     # (the driver itself needs no torch)
        from mlplab.engine.reference import resolve_device

        resolve_device(a.device, "--device")
    from mlplab.sweep import run_sweep

    result = run_sweep(a.file, out=a.out, workers=a.workers, backend=a.backend,
                       address=a.address, resume=a.resume, quiet=a.quiet or a.json,
                       device=a.device, report=not a.no_report, compile=a.compile)
    print(dumps(result.to_dict()) if a.json else result.summary())
    if OWN_PROCESS[0]:
        # the process exits next: out of the collector's sight, the sweep's objects are not
        # walked once more by the collection at exit (half of its teardown: ~0.3 s after
        # a 1000-run sweep)
        import gc

        gc.freeze()
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


COMMANDS = {"train": _cmd_train, "runs": _cmd_runs, "compare": _cmd_compare, "check": _cmd_check,
             "sweep": _cmd_sweep, "report": _cmd_report,
             "diagnose": _cmd_diagnose, "dashboard": _cmd_dashboard, "bench": _cmd_bench,
             "landscape": _cmd_landscape, "lr-find": _cmd_lr_find, "export": _cmd_export,
             "demo": _cmd_demo}
