"""The report's PNG files: each drawn from one frozen figure record and kept until that
record or the drawing code changes; two sets of them drawn on two processes.

Beside every ``<name>.png`` lies ``<name>.key.json``: the digest of the figure's record
(:func:`mlplab.figures.digest.record_digest`, salted with the figure's name, its draw
function and :func:`~mlplab.figures.digest.drawing_version`) and the SHA-256 of the PNG's
bytes. A PNG is drawn again when its key file is missing, unreadable or names another
record, or when the PNG is missing or its bytes changed; otherwise it is reused as is.

:func:`in_two` runs two pieces of work at once, one in a forked child process (the child
inherits the records in memory, so nothing is handed over but the written files' names).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from mlplab.store.atomic import replacing, write_atomic
from mlplab.strictjson import dumps

from .html import caption_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KEY_SUFFIX = ".key.json"
Job = tuple[str, Callable[..., "Figure"], Any]      # (file name without suffix, draw, record)


@dataclass(frozen=True)
class FigureFile:
    """A written PNG and the words that go with it."""

    name: str
    path: Path
    caption: str


def figure_key(name: str, draw: Callable[..., Any], record: Any) -> str:
    """The digest a PNG of ``record`` drawn by ``draw`` as ``name`` is kept under."""
    from mlplab.figures.digest import drawing_version, record_digest

    return record_digest(record, name, f"{draw.__module__}.{draw.__qualname__}", drawing_version())


def key_path(png: Path) -> Path:
    """The key file beside ``png``."""
    return png.with_name(png.stem + KEY_SUFFIX)


def is_current(png: Path, key: str) -> bool:
    """Whether ``png`` exists, is the one its key file describes, and was drawn from the
    record whose key is ``key``."""
    try:
        stored = json.loads(key_path(png).read_text(encoding="utf-8"))
        return (isinstance(stored, dict) and stored.get("figure") == key
                and stored.get("png") == hashlib.sha256(png.read_bytes()).hexdigest())
    except (OSError, ValueError):
        return False


def write_png(fig: "Figure", png: Path, key: str) -> Path:
    """Save ``fig`` to ``png`` (by a rename, so a reader never sees half a file), then its
    key file; a crash in between leaves a key that no longer matches, so it is redrawn."""
    from mlplab.figures.draw_run import save_figure

    png.parent.mkdir(parents=True, exist_ok=True)
    with replacing(png) as tmp:
        save_figure(fig, tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    write_atomic(key_path(png), dumps({"figure": key, "png": digest}))
    return png


@contextlib.contextmanager
def objects_kept_out_of_gc() -> Iterator[None]:
    """Leave the objects that exist now (the records, the store's data, torch: hundreds of
    thousands) out of the garbage collector's full passes while drawing, then put them
    back. matplotlib makes enough garbage cycles to start a full pass every few figures,
    and each pass walked all of them: a third of a second on a 1000-run report."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def draw_all(jobs: Sequence[Job], out: Path, prune: bool = True) -> list[FigureFile]:
    """Each ``(name, draw, record)`` as ``out/<name>.png``, drawn only when not current
    (:func:`is_current`); with ``prune``, PNGs (and keys) of earlier reports that this one
    no longer draws are removed."""
    out = Path(out)
    files = []
    with objects_kept_out_of_gc():
        for name, draw, record in jobs:
            png = out / f"{name}.png"
            key = figure_key(name, draw, record)
            if not is_current(png, key):
                write_png(draw(record), png, key)
            files.append(FigureFile(name, png, caption_of(draw)))
    if prune:
        prune_figures(out, files)
    return files


def prune_figures(out: Path, files: Sequence[FigureFile]) -> None:
    """Remove the PNGs (and keys) in ``out`` of earlier reports that are not ``files``."""
    if out.is_dir():
        keep = {f.path.name for f in files} | {key_path(f.path).name for f in files}
        for old in [*out.glob("*.png"), *out.glob(f"*{KEY_SUFFIX}")]:
            if old.name not in keep:
                old.unlink()


def draw_all_in_two(jobs: Sequence[Job], out: Path) -> list[FigureFile]:
    """:func:`draw_all` with every other figure that needs drawing drawn by a second
    process; the files in the order of ``jobs``."""
    out = Path(out)
    stale = [j for j in jobs if not is_current(out / f"{j[0]}.png", figure_key(*j))]
    if len(stale) > 1:
        in_two(lambda: bool(draw_all(stale[1::2], out, prune=False)),
               lambda: draw_all(stale[0::2], out, prune=False))
    return draw_all(jobs, out)


def files_json(files: Sequence[FigureFile]) -> list[list[str]]:
    """``files`` as JSON lists, for :func:`in_two`'s child to hand back."""
    return [[f.name, str(f.path), f.caption] for f in files]


def files_from_json(listed: Sequence[Sequence[str]]) -> list[FigureFile]:
    return [FigureFile(name, Path(path), caption) for name, path, caption in listed]


def in_two(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """``(first(), second())``, ``first`` run in a forked child process while this one
    runs ``second``; ``first`` returns plain JSON data (it is handed back through a pipe
    as JSON). Where there is no fork, or the child fails, ``first`` runs here (so its
    error, if any, is raised here as it would be without a child).

    ``first`` must not use torch: a child forked after this process ran torch's thread
    pool can hang in it, so the drawing of records goes to the child and whatever needs
    torch (a trained network's figure data) stays here. Nor is a process forked while it
    runs other Python threads (a sweep driver's pool or Ray client, a notebook's kernel):
    a lock one of them held at the fork would stay held in the child for good; there
    both run here, one after the other."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return json.loads(dumps(first())), second()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                 # the child: do it, hand back the result, leave
        os.close(read)
        try:
            message = dumps({"result": first()})
        except BaseException:                   # noqa: BLE001 - the parent runs it again
            message = "{}"
        with os.fdopen(write, "w", encoding="utf-8") as pipe:
            pipe.write(message)
        os._exit(0)
    os.close(write)
    try:
        result = second()
    finally:
        with os.fdopen(read, encoding="utf-8") as pipe:
            message = pipe.read()
        os.waitpid(pid, 0)
    handed = json.loads(message) if message else {}
    if "result" not in handed:
        return json.loads(dumps(first())), result
    return handed["result"], result


__all__ = ["FigureFile", "figure_key", "is_current", "write_png", "draw_all", "prune_figures",
           "objects_kept_out_of_gc",
           "draw_all_in_two", "in_two", "files_json", "files_from_json", "KEY_SUFFIX"]
