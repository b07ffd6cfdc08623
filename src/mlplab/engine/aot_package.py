"""Pure tensor functions compiled ahead of time into AOTInductor packages, kept on disk.

A package is a shared library built by ``torch.export`` and AOTInductor, called from C++
with no per-call Python wrapper. :func:`obtain` gives the package of a function for one
kind of input: from this process's memory, else from :func:`cache_dir`, else built
(``~30 s``) and cached. The file name digests everything the package assumes: the caller's
key, every input's shape, stride and dtype (the package checks none of them), torch, the
CPU's vector instructions and mlplab's own source, so a package built by other code or for
other inputs is never loaded. Packages hold no pickles; the most recently used
``KEEP_PACKAGES`` are kept. :mod:`mlplab.engine.compiled` compiles the cohort's epoch so.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

CACHE_ENV = "MLPLAB_CACHE_DIR"     # where the packages live (else ~/.cache/mlplab)
KEEP_PACKAGES = 64                 # the most recently used ones (~2 MB each) are kept


def cache_dir() -> Path:
    """The folder of the packages: ``$MLPLAB_CACHE_DIR/compiled``, else
    ``$XDG_CACHE_HOME/mlplab/compiled`` (``~/.cache/mlplab/compiled``). Deleting it only
    costs the next compile."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "mlplab")
    return Path(root) / "compiled"


# how leaves and unflattener take a type apart, found once per type: "tensor", "none",
# "list", "tuple", "named" (a named tuple) or a dataclass's field names
_KINDS: dict[type, Any] = {}


def _kind(t: type) -> Any:
    kind = _KINDS.get(t)
    if kind is None:
        if issubclass(t, Tensor):
            kind = "tensor"
        elif t is type(None):
            kind = "none"
        elif issubclass(t, list):
            kind = "list"
        elif issubclass(t, tuple):
            kind = "named" if hasattr(t, "_fields") else "tuple"
        elif is_dataclass(t):
            kind = tuple(f.name for f in fields(t))
        else:
            raise TypeError(f"a package takes tensors only, got {t.__name__}")
        _KINDS[t] = kind
    return kind


def leaves(obj: Any) -> list[Tensor]:
    """The tensors of a nest of tuples, lists, dataclasses and None, depth first."""
    out: list[Tensor] = []
    _collect(obj, out)
    return out


def _collect(obj: Any, out: list[Tensor]) -> None:
    kind = _kind(type(obj))
    if kind == "tensor":
        out.append(obj)
    elif kind == "none":
        return
    elif isinstance(kind, tuple):                # a dataclass
        for name in kind:
            _collect(getattr(obj, name), out)
    else:
        for item in obj:
            _collect(item, out)


def unflattener(template: Any) -> Callable[[Sequence[Tensor]], Any]:
    """A function that puts a flat list of tensors (in :func:`leaves`' order) back into
    ``template``'s nest: made once for its structure (which members are tensors, None or
    nests; not the tensors themselves), then called for every list of that nest (the
    package's inputs as it is exported, its outputs every epoch). A nest of tensors only
    is taken with one ``itemgetter``."""
    from operator import itemgetter

    count = 0

    def plan(node: Any) -> Callable[[Sequence[Tensor]], Any]:
        nonlocal count
        t, kind = type(node), _kind(type(node))
        if kind == "tensor":
            count += 1
            return itemgetter(count - 1)
        if kind == "none":
            return lambda flat: None
        items = [getattr(node, name) for name in kind] if isinstance(kind, tuple) else node
        if items and all(_kind(type(i)) == "tensor" for i in items):
            count += len(items)
            take = itemgetter(*range(count - len(items), count))
            row = (lambda flat: (take(flat),)) if len(items) == 1 else take
            if kind == "tuple":
                return row
            if kind == "list":
                return lambda flat: list(row(flat))
            return lambda flat: t(*row(flat))
        parts = [plan(i) for i in items]
        if kind == "list":
            return lambda flat: [p(flat) for p in parts]
        if kind == "tuple":
            return lambda flat: tuple([p(flat) for p in parts])
        return lambda flat: t(*[p(flat) for p in parts])

    build = plan(template)
    n = count

    def unflatten(flat: Sequence[Tensor]) -> Any:
        if len(flat) != n:
            raise ValueError(f"{len(flat)} tensors for a nest of {n}")
        return build(flat)

    return unflatten


def signature(flat: list[Tensor], free: Sequence[int | None] | None = None
              ) -> tuple[tuple[Any, ...], ...]:
    """What a package assumes of each input (it checks none of it itself): shape, layout
    ("C" for contiguous, else the strides), dtype and device. ``free[i]``: the dimension of
    input i whose size the package leaves open (None where it has none); it reads ``*``.
    """
    out, open_sizes = [], set()
    for i, t in enumerate(flat):
        shape: list[Any] = list(t.shape)
        if free is not None and free[i] is not None:
            open_sizes.add(shape[free[i]])
            shape[free[i]] = "*"
        layout = "C" if t.is_contiguous() else t.stride()
        out.append((tuple(shape), layout, str(t.dtype), t.device.type))
    if len(open_sizes) > 1:                      # one open size, or no package fits
        out.append(("open sizes differ", tuple(sorted(open_sizes))))
    return tuple(out)


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """A digest of mlplab's modules: a package built by other code is never loaded."""
    h = hashlib.sha256()
    root = Path(__file__).parent.parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


def package_name(key: tuple[Any, ...], sig: tuple[Any, ...]) -> str:
    """The file name of the package for ``key`` and input signature ``sig`` here."""
    import torch.backends.cpu

    what = repr((key, sig, torch.__version__, torch.backends.cpu.get_cpu_capability(),
                 platform.machine(), sys.version_info[:2], _source_digest()))
    return hashlib.sha256(what.encode()).hexdigest()[:32] + ".pt2"


class _Flat(torch.nn.Module):
    """``fn`` on flat tensors (what torch.export and the package see)."""

    def __init__(self, fn: Callable[..., tuple[Any, ...]], template: tuple[Any, ...]):
        super().__init__()
        self.fn, self.args = fn, unflattener(template)

    def forward(self, *flat: Tensor) -> tuple[Tensor, ...]:
        return tuple(leaves(self.fn(*self.args(flat))))


def _build(fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...], path: Path,
           free: Sequence[int | None] | None, options: Mapping[str, Any] | None = None
           ) -> None:
    """Export ``fn``, compile it with AOTInductor and write the package to ``path``
    (via a temporary name: a crash leaves no half-written package). The ``free``
    dimensions (:func:`signature`) share one size, open from 2 up; ``options``: inductor
    settings for this build."""
    import torch._inductor

    with torch.inference_mode(False), torch.no_grad():
        flat = [t.clone() for t in leaves(args)]      # normal tensors, not inference ones
        size = torch.export.Dim("n", min=2)
        shapes = None if free is None else \
            (tuple(None if d is None else {d: size} for d in free),)
        program = torch.export.export(_Flat(fn, args), tuple(flat), dynamic_shapes=shapes)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.pt2")
        try:
            torch._inductor.aoti_compile_and_package(program, package_path=str(tmp),
                                                     inductor_configs=dict(options or {}))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def _building(path: Path) -> Iterator[None]:
    """Hold the build lock of the package at ``path``: the sweep's workers asking for one
    package at once then build it once, the others waiting and loading it (each building
    its own copy took 15-30 s of every worker's core). An advisory ``flock`` on a file
    beside the package, released by the kernel if its holder dies; none where the
    platform has no ``fcntl`` (then each builds its own, as before)."""
    try:
        import fcntl
    except ImportError:                          # not a POSIX system
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cpp_loader() -> Any:
    """torch's C++ package loader class, or None where this torch has none by that name."""
    return getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)


def _load(path: Path) -> Callable[..., list[Tensor]]:
    """The package at ``path`` as ``run(*flat) -> [outputs]``, through torch's C++ package
    loader (4 ms). ``torch._inductor.aoti_load_package`` wraps the same loader but first
    imports the compiler and reads the archive in Python: ~2 s in every process."""
    loader = _cpp_loader()
    with _LOADING, _private_tmpdir():
        if loader is None:                       # another torch: its public way
            from torch._inductor import aoti_load_package

            return aoti_load_package(str(path))
        model = loader(str(path), "model", False, 1, -1)     # one runner, the current device
    return lambda *flat: model.run(flat)


# The loader extracts the package's library to a new folder in $TMPDIR (``aotinductor_*``)
# and removes it only when the loader is destroyed, which never happens in a process that
# ends with os._exit (every multiprocessing worker) or is killed: 5 MB left behind per
# package and worker. The library is mapped once loaded, so the extraction can go at once.
_LOADING = threading.Lock()


@contextmanager
def _private_tmpdir() -> Iterator[None]:
    """$TMPDIR pointed at a folder of our own while the loader extracts into it, then the
    folder removed with whatever was extracted (one load at a time, ``_LOADING``)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="mlplab-load-")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = folder
    try:
        yield
    finally:
        if before is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used packages in ``folder`` (packages of
    older mlplab or torch versions are never loaded again)."""
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:                          # removed by another process meanwhile
            return 0.0

    done = [p for p in folder.glob("*.pt2") if ".tmp." not in p.name]   # not being written
    for old in sorted(done, key=used, reverse=True)[keep:]:
        old.unlink(missing_ok=True)
        # its lock (a process that opened it just now builds again: only work repeated)
        old.with_suffix(".lock").unlink(missing_ok=True)


@dataclass
class Package:
    """A loaded package (``run(*leaves)``), or why there is none (``failed``)."""

    run: Callable[..., Any] | None
    signature: tuple[Any, ...]
    label: str                           # what it is, for people
    how: str                             # "built", "loaded" (from the disk cache)
    seconds: float                       # building or loading it
    calls: int = 0
    failed: str | None = None
    warned: bool = False                 # the failure was reported


# the packages loaded in this process, by key and input signature (a failure is kept too:
# known broken, not retried)
_CACHE: dict[tuple[Any, ...], Package] = {}


def obtain(key: tuple[Any, ...], fn: Callable[..., Any], args: tuple[Any, ...],
           sig: tuple[Any, ...], label: str = "",
           free: Sequence[int | None] | None = None,
           options: Mapping[str, Any] | None = None) -> Package:
    """The package of ``fn`` for ``key`` (what it depends on beyond its inputs) and ``sig``
    (``signature(leaves(args), free)``): loaded in this process, else from the disk cache,
    else built from ``fn(*args)`` and cached. A failure is returned as ``failed``, not
    raised. ``free``: as in :func:`signature` (one package then serves every size >= 2);
    ``options``: inductor settings of the build (part of the package's name)."""
    if options:
        key = key + (tuple(sorted(options.items())),)
    hit = _CACHE.get((key, sig))
    if hit is not None:
        return hit
    path = cache_dir() / package_name(key, sig)
    start, how = time.perf_counter(), "loaded"
    try:
        with warnings.catch_warnings():          # the compiler's own deprecation notes
            warnings.simplefilter("ignore")
            if not path.exists():
                with _building(path):            # another process may be building it
                    if not path.exists():
                        how = "built"
                        _build(fn, args, path, free, options)
                        _prune(path.parent, KEEP_PACKAGES)
            if how == "loaded":
                os.utime(path)                   # recently used: kept by _prune
            run = _load(path)
        hit = Package(run, sig, label, how, time.perf_counter() - start)
    except Exception as err:                     # noqa: BLE001 - any compiler failure
        why = _what_failed(err)
        if isinstance(err, OSError):
            why += f"; {CACHE_ENV} can name a writable folder for the compiled epochs"
        hit = Package(None, sig, label, how, time.perf_counter() - start, failed=why)
    _CACHE[(key, sig)] = hit
    return hit


def compiled_calls() -> int:
    """Calls of packages in this process so far (callers count them in ``calls``)."""
    return sum(c.calls for c in _CACHE.values())


def packages() -> list[Package]:
    """The packages this process has loaded (built or from the cache), oldest first."""
    return [c for c in _CACHE.values() if c.failed is None]


def compile_seconds() -> dict[str, float]:
    """Seconds spent building (compiling) or loading each package in this process, keyed
    by its label and how it came."""
    return {f"{c.label} {c.how}": c.seconds for c in packages()}


def _what_failed(err: BaseException) -> str:
    """The compiler's own error in one line (wrappers keep it as their cause)."""
    inner = getattr(err, "inner_exception", None) or err.__cause__ or err
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return f"{type(inner).__name__}: {lines[0] if lines else ''}".rstrip(": ")
