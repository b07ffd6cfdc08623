"""The ``mlplab`` command line's arguments: one sub-parser per command
(:func:`build_parser`), and the train flags that stand for config keys
(:data:`TRAIN_FLAGS`). Nothing here imports more than argparse.

>>> build_parser().parse_args(["train", "--hidden", "8,8"]).hidden
'8,8'
>>> sizes("8-8"), sizes("8 8")
([8, 8], [8, 8])
"""

from __future__ import annotations

import argparse

TRAIN_FLAGS = {  # flag -> (dotted config key, parser)
    "dataset": ("data.name", str), "n": ("data.n", int), "noise": ("data.noise", float),
    "hidden": ("model.hidden", lambda s: sizes(s)),
    "activation": ("model.activation", str), "init": ("model.init", str),
    "loss": ("train.loss", str), "optimizer": ("train.optimizer", str), "lr": ("train.lr", float),
    "momentum": ("train.momentum", float), "batch_size": ("train.batch_size", int),
    "epochs": ("train.epochs", int), "seed": ("train.seed", int),
    "patience": ("stopping.patience", int), "restarts": ("stopping.restarts", int),
    "target": ("stopping.target", lambda s: s if s == "auto" else float(s)), "name": ("name", str),
}


def sizes(text: str) -> list[int]:
    """``"8,8"``, ``"8-8"`` or ``"8 8"`` -> ``[8, 8]``; ``""`` -> ``[]`` (rejected later).
    A ``-`` separates sizes only between digits, so ``4,-2`` is refused, not read as [4, 2]."""
    import re

    sizes = [int(x) for x in re.split(r"[,\s]+|(?<=\d)-(?=\d)", text.strip()) if x]
    if any(size <= 0 for size in sizes):
        raise ValueError(text)
    return sizes


def build_parser() -> argparse.ArgumentParser:
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
    for flag, (key, _) in TRAIN_FLAGS.items():
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
