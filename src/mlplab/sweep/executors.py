"""Executors: where a sweep's units train. ``local`` is a process pool on this machine,
``ray`` a set of tasks on an existing Ray cluster. Both hand back one
:class:`UnitResult` per unit, in the order units finish; neither writes anything (the
driver is the only writer of the store).

>>> ex = make_executor("local", workers=2)
>>> ex.workers
2
>>> ex.close()
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import select
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from mlplab.config import ConfigError
from .units import Unit, default_workers
from .worker import WORKER_PRELOAD, UnitResult, describe, failed_result, prepare_worker, run_unit

MAX_UNIT_TRIES = 3      # a unit whose worker died this often is recorded as failed


class Executor(Protocol):
    workers: int

    def start(self) -> None: ...

    def map_unordered(self, units: Iterable[Unit]) -> Iterator[UnitResult]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- local


WORKER_TRIM_MB = 64          # freed memory a worker keeps for its next unit (engine.process)


def worker_context() -> multiprocessing.context.BaseContext:
    """The start method of the local pool's workers: ``forkserver`` with
    :data:`WORKER_PRELOAD` imported in the server, where the platform has it; ``spawn``
    elsewhere. Never plain ``fork``: the driver has torch's threads running."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))   # no effect once the server runs
    return ctx


def start_forkserver() -> None:
    """Start the local pool's forkserver now, where :func:`worker_context` uses one: its
    imports (:data:`WORKER_PRELOAD`: torch, a second or more) are under way while the
    driver reads the sweep file and claims the store, and the pool's workers fork from it
    later. This call does not wait for them; a driver that stops first (a mistake in the
    file) leaves nothing behind, the server exits with it."""
    if worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _watch_driver(driver: int) -> None:
    """Leave when the driver is gone: a driver killed with SIGKILL cannot stop its pool.
    Not by the parent's pid: a forkserver worker's parent is the server, which outlives
    the driver while any worker lives."""
    try:
        fd = os.pidfd_open(driver)            # readable once the driver has exited
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):         # no pidfd (not Linux 5.3+): poll the pid
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while True:
            try:
                os.kill(driver, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            time.sleep(0.5)
    os._exit(1)


def _init_worker(driver: int, env: dict[str, str]) -> None:
    # The forkserver started with the environment of the first pool of this driver
    # process: a worker takes the driver's environment as it is now.
    os.environ.clear()
    os.environ.update(env)
    prepare_worker()
    from mlplab.engine.process import freeze_imports

    # the worker is mlplab's own process; it keeps less freed memory than `mlplab train`
    # (a unit's records are a few MB): with 256 MB, one worker of a 10,000-run sweep held
    # 150 MB more than the other by the end, in no less training time
    freeze_imports(trim_mb=WORKER_TRIM_MB)
    threading.Thread(target=_watch_driver, args=(driver,), daemon=True).start()
    # Results are flushed before interpreter shutdown; skipping torch's slow teardown
    # makes closing the pool take a fraction of a second instead of seconds.
    atexit.register(os._exit, 0)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes of the local pool's kind (:func:`worker_context`,
    set up by :func:`_init_worker` for this driver)."""
    return ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_init_worker,
                               initargs=(os.getpid(), dict(os.environ)))


def _ready() -> int:
    return os.getpid()


def _run_marked(unit: Unit, device: str, compile: bool, marker: str) -> UnitResult:
    """:func:`run_unit`, after writing this worker's pid to ``marker``: which worker ran
    which unit, for charging a broken pool's try to the unit whose worker died."""
    Path(marker).write_text(str(os.getpid()))
    return run_unit(unit, device, compile)


def died_by_itself(exitcode: int | None) -> bool:
    """A worker's exit code says it died (killed, out of memory, crashed), rather than
    being terminated by the pool after another worker broke it (SIGTERM).

    >>> died_by_itself(-9), died_by_itself(-15), died_by_itself(None)
    (True, False, False)
    """
    return exitcode is not None and exitcode != -signal.SIGTERM


class LocalExecutor:
    """A pool of ``workers`` processes (:func:`worker_context`), each with one torch thread.

    A worker that dies (killed, out of memory) breaks the pool; the pool is rebuilt and
    the units that were in flight are tried again. Only a unit whose own worker died is
    charged a try (each unit marks which worker runs it); after :data:`MAX_UNIT_TRIES`
    such deaths it fails. The units in the other workers, and those not started, are not.
    """

    def __init__(self, workers: int | None = None, device: str = "cpu", compile: bool = False):
        check_backend("local", workers, None)
        self.workers = int(workers) if workers else default_workers()
        self.device, self.compile = device, compile
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None      # see start()
        self._markers = Path(tempfile.mkdtemp(prefix="mlplab-units-"))

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._pool is None:
            self._pool = self._new_pool()
        return self._pool

    def _new_pool(self) -> ProcessPoolExecutor:
        return worker_pool(self.workers)

    def start(self) -> None:
        """Start every worker now, in the background: the forkserver's imports (torch:
        seconds) overlap the driver's own preparations, which this call does not wait for
        (starting a worker waits for the server's imports)."""
        def start_all() -> None:
            pool = self._pool = self._new_pool()
            for _ in range(self.workers):
                pool.submit(_ready)

        if self._pool is None and self._starting is None:
            self._starting = threading.Thread(target=start_all, name="mlplab-pool-start", daemon=True)
            self._starting.start()

    def map_unordered(self, units: Iterable[Unit]) -> Iterator[UnitResult]:
        pending = {u.index: u for u in units}
        tries = {i: 0 for i in pending}
        fruitless = 0        # pools in a row that broke before any unit finished or was charged
        while pending:
            pool = self._get_pool()
            workers = pool._processes     # pid -> Process (the pool's own table): exit codes
            futures: dict[Future, Unit] = {
                pool.submit(_run_marked, u, self.device, self.compile, str(self._marker(u))): u
                for u in pending.values()}
            broken = False
            waiting = set(futures)
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                for fut in done:
                    unit = futures.pop(fut)     # a done future holds its result: let it go
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        if not self._its_worker_died(unit, workers):
                            continue          # in a worker the pool stopped, or not started
                        fruitless = -1
                        tries[unit.index] += 1
                        if tries[unit.index] >= MAX_UNIT_TRIES:
                            del pending[unit.index]
                            yield failed_result(unit, f"worker process died {MAX_UNIT_TRIES} times"
                                                " while training this cohort")
                        continue
                    except Exception as e:   # noqa: BLE001 - e.g. a record that cannot be sent
                        result = failed_result(unit, describe(e))
                    del pending[unit.index]
                    fruitless = -1
                    yield result
            if broken:
                fruitless += 1
                if fruitless >= MAX_UNIT_TRIES:   # e.g. a worker's start-up (initializer) fails
                    raise RuntimeError(f"the local pool broke {fruitless} times in a row before its"
                                       " workers took any unit; their errors are above")
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def _marker(self, unit: Unit) -> Path:
        path = self._markers / f"{unit.index}.pid"
        path.unlink(missing_ok=True)
        return path

    def _its_worker_died(self, unit: Unit, workers: dict[int, Any]) -> bool:
        """Whether the worker that ran ``unit`` died by itself (see :func:`died_by_itself`;
        the pool terminates the others right after, so wait for their exit codes)."""
        try:
            pid = int((self._markers / f"{unit.index}.pid").read_text())
        except (OSError, ValueError):
            return False                      # never started
        proc = dict(workers).get(pid)
        if proc is None:
            return True                       # gone from the pool's table: it died
        proc.join(timeout=10)
        return died_by_itself(proc.exitcode)

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        shutil.rmtree(self._markers, ignore_errors=True)


# --------------------------------------------------------------------------- ray


def _ray_unit(unit: Unit, device: str, compile: bool = False) -> UnitResult:
    import ray

    prepare_worker()             # a Ray worker's first unit: its imports are not training
    result = run_unit(unit, device, compile)
    # the Ray node, not the host name: one machine may run several nodes
    return replace(result, worker=f"{ray.get_runtime_context().get_node_id()}:{os.getpid()}")


class RayExecutor:
    """Units as Ray tasks (one CPU each) on the cluster at ``address``."""

    def __init__(self, address: str | None, device: str = "cpu", compile: bool = False):
        check_backend("ray", None, address)
        try:
            import ray
        except ImportError as e:
            raise ImportError("the ray backend needs Ray: pip install 'mlplab[ray]'",
                              name="ray") from e
        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            import logging

            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        self.device, self.compile = device, compile
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=MAX_UNIT_TRIES - 1)(_ray_unit)

    def start(self) -> None:
        """Nothing to start: the cluster's workers are already running."""

    def map_unordered(self, units: Iterable[Unit]) -> Iterator[UnitResult]:
        ray = self._ray
        refs: dict[Any, Unit] = {self._remote.remote(u, self.device, self.compile): u for u in units}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    unit = refs.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as e:   # noqa: BLE001 - a task that died for good
                        yield failed_result(unit, describe(e))
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owned:
            self._ray.shutdown()


def check_backend(backend: str, workers: int | None, address: str | None) -> None:
    """Reject a bad ``--backend`` / ``--workers`` / ``--address`` before anything starts."""
    if backend not in ("local", "ray"):
        raise ConfigError("--backend", backend, "local or ray")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ConfigError("--workers", workers, "an integer >= 1")
    if backend == "ray" and not address:
        raise ConfigError("--address", address, "the address host:port of a running Ray"
                          " cluster (e.g. 127.0.0.1:6379) with --backend ray")
    if backend == "ray":
        check_reachable(address)


def check_reachable(address: str) -> None:
    """Refuse a Ray address where nothing listens, within ``MLPLAB_CONNECT_TIMEOUT`` seconds
    (default 10): Ray itself retries an unreachable cluster for minutes, and the sweep
    would have created its store by then."""
    import os
    import socket

    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("--address", address, "host:port of a running Ray cluster, e.g."
                          " 127.0.0.1:6379")
    timeout = float(os.environ.get("MLPLAB_CONNECT_TIMEOUT", "10"))
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConfigError("--address", address, f"a running Ray cluster: nothing answered at"
                          f" {host}:{port} within {timeout:g} s ({e.strerror or e});"
                          " start one with `ray start --head --port PORT`") from None


def make_executor(backend: str, workers: int | None = None, address: str | None = None,
                  device: str = "cpu", compile: bool = False) -> Executor:
    """The executor named by ``--backend`` (``compile``: units train with compiled epochs)."""
    check_backend(backend, workers, address)
    if backend == "local":
        return LocalExecutor(workers, device, compile)
    return RayExecutor(address, device, compile)
