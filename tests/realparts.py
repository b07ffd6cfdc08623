"""Real parts for tests: processes stopped by id, loopback servers, headless Chromium.

Loaded as a pytest plugin from ``tests/conftest.py`` (``pytest_plugins = ["realparts",
"realray"]``; the local Ray cluster is :mod:`realray`), which makes these fixtures
available to every test:

- ``chromium_browser`` (session): a Playwright ``Browser`` on Debian's ``chromium``;
- ``browser_page`` (function): a :class:`WatchedPage` (a fresh page plus the console
  and page errors it has seen).

Every process is started in its own process group and stopped by its id, and nothing
listens anywhere but 127.0.0.1.  A part that is missing skips the test, except under
``CI=true`` where it fails it (see :func:`require_or_skip`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any, NoReturn

import pytest

LOOPBACK = "127.0.0.1"

# Flags for a quiet, sandbox-free, offline headless Chromium.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

SERVER_START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def require_or_skip(what: str, reason: str) -> NoReturn:
    """Skip a test whose real part is missing; fail it instead when ``CI=true``.

    In CI a missing browser or cluster is a broken setup, not a reason to pass quietly.

    >>> require_or_skip("chromium", "not on PATH")  # doctest: +SKIP
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required when CI=true but is missing: {reason}", pytrace=False)
    pytest.skip(f"{what} is missing: {reason}", allow_module_level=True)


def import_or_skip(name: str) -> ModuleType:
    """``pytest.importorskip`` for a package the tests need: a missing one skips (a whole
    module, at its top) but fails under ``CI=true``, as :func:`require_or_skip`.

    >>> import_or_skip("json").dumps([])
    '[]'
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        require_or_skip(name, f"the Python package does not import ({err})")


# --------------------------------------------------------------------------- processes


class LoggedProcess(subprocess.Popen):
    """A ``Popen`` whose stdout and stderr go to a temporary file, for error messages."""

    def __init__(self, argv: Sequence[str], log: IO[bytes], **kwargs: Any) -> None:
        super().__init__(list(argv), stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.log = log

    def log_tail(self, n_chars: int = 4000) -> str:
        """The last ``n_chars`` characters the process has written."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-n_chars:]


def start_process(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None
) -> LoggedProcess:
    """Start ``argv`` as the leader of a new process group (so its pid is its group id)."""
    log = tempfile.TemporaryFile()
    try:
        return LoggedProcess(
            argv, log, env=env, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        log.close()
        raise


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    """One process as /proc shows it; ``started`` (clock ticks after boot) tells a
    reused pid from the process we saw."""

    pid: int
    ppid: int
    pgid: int
    state: str
    started: int


def _read_process(pid: int) -> ProcessInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or no procfs
        return None
    # "pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22nd) ..."
    # comm may hold spaces and parentheses, so split after its closing one
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))


def _all_processes() -> list[ProcessInfo]:
    proc_dir = Path("/proc")
    pids = [int(entry.name) for entry in proc_dir.iterdir() if entry.name.isdigit()]
    return [info for info in map(_read_process, pids) if info is not None]


def _is_live(info: ProcessInfo) -> bool:
    return info.state not in ("Z", "X")


def process_tree(pgid: int) -> list[ProcessInfo]:
    """Live processes of group ``pgid`` and all their descendants, wherever they are.

    Descendants matter: Ray's raylet starts its workers in sessions of their own.
    Without procfs only the group leader can be seen.
    """
    if not Path("/proc").is_dir():
        leader = ProcessInfo(pgid, 0, pgid, "R", 0)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [leader]
    processes = _all_processes()
    tree = {info.pid: info for info in processes if info.pgid == pgid}
    grew = True
    while grew:
        children = [info for info in processes if info.ppid in tree and info.pid not in tree]
        tree.update((info.pid, info) for info in children)
        grew = bool(children)
    return [info for info in tree.values() if _is_live(info)]


def is_running(info: ProcessInfo) -> bool:
    """Whether the process ``info`` describes is still alive (not a zombie, pid not reused)."""
    now = _read_process(info.pid)
    if now is None:
        return not Path("/proc").is_dir() and process_group_alive(info.pgid)
    return now.started == info.started and _is_live(now)


def process_group_alive(pgid: int) -> bool:
    """Whether any live process is left in process group ``pgid``."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return any(info.pgid == pgid and _is_live(info) for info in _all_processes())


def _signal_all(pgid: int, tree: list[ProcessInfo], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    for info in tree:
        if info.pgid != pgid and is_running(info):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, sig)


def _wait_gone(tree: list[ProcessInfo], pgid: int, timeout: float) -> list[ProcessInfo]:
    deadline = time.monotonic() + timeout
    while True:
        left = [info for info in tree if is_running(info)]
        if process_group_alive(pgid):
            left += [info for info in process_tree(pgid) if info not in left]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def stop_tree(
    pgid: int,
    tree: list[ProcessInfo],
    timeout: float = STOP_TIMEOUT_S,
    reap: Callable[[float], object] | None = None,
) -> list[ProcessInfo]:
    """Stop process group ``pgid`` and the processes of ``tree`` by id; return survivors.

    SIGTERM first, SIGKILL to whatever is left after ``timeout``.  ``reap`` waits for
    the group's leader where it is our child (``Popen.wait``), so it leaves no zombie.
    """
    _signal_all(pgid, tree, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    if reap is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            reap(timeout)
    left = _wait_gone(tree, pgid, deadline - time.monotonic())
    if left:
        _signal_all(pgid, tree + left, signal.SIGKILL)
        left = _wait_gone(tree + left, pgid, timeout)
    return left


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop ``proc``, its process group and its descendants by id (:func:`stop_tree`).

    ``proc`` must lead its own group (``start_new_session=True``, as
    :func:`start_process` does).  Raises ``RuntimeError`` if anything survives SIGKILL.
    """
    pgid = proc.pid
    left = stop_tree(pgid, process_tree(pgid), timeout, reap=lambda t: proc.wait(timeout=t))
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    if isinstance(proc, LoggedProcess):
        proc.log.close()
    if left:
        raise RuntimeError(f"processes {[info.pid for info in left]} of {pgid} survived SIGKILL")


# A watchdog stops a group when the process that started it dies first (a CI timeout's
# SIGKILL runs no fixture's teardown).  Not PR_SET_PDEATHSIG on the child: it is
# Linux-only, it fires when the starting *thread* ends rather than the process, and it
# signals the child alone, not the processes the child starts in sessions of their own.
# The watchdog polls its parent's pid, which changes (to init or a subreaper) when the
# parent dies, and keeps the group's tree meanwhile.
WATCH_INTERVAL_S = 1.0


def watch_parent(parent: int, pgid: int, remove: Sequence[str] = ()) -> None:
    """Run in the watchdog process: while ``parent`` lives, note the processes of group
    ``pgid`` and their descendants; once it is gone, stop them and remove ``remove``.
    Returns early when the group is stopped another way."""
    seen: dict[int, ProcessInfo] = {}
    while os.getppid() == parent:
        seen = {pid: info for pid, info in seen.items() if is_running(info)}
        seen.update((info.pid, info) for info in process_tree(pgid))
        if not seen:
            return
        time.sleep(WATCH_INTERVAL_S)
    stop_tree(pgid, list(seen.values()))
    for path in remove:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def watched_process(
    argv: Sequence[str], *, env: dict[str, str] | None = None, remove: Sequence[str] = ()
) -> Iterator[LoggedProcess]:
    """:func:`start_process` plus a watchdog (:func:`watch_parent`), so the process and
    its descendants die with this process even when it is killed before the block ends;
    both are stopped by id at the end."""
    proc = start_process(argv, env=env)
    try:
        watchdog = start_process(
            [sys.executable, __file__, "watch", str(os.getpid()), str(proc.pid), *remove]
        )
    except BaseException:
        stop_process(proc)
        raise
    try:
        yield proc
    finally:
        try:
            stop_process(proc)
        finally:
            stop_process(watchdog)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _fail_if_exited(proc: LoggedProcess, what: str) -> None:
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited with code {proc.returncode}:\n{proc.log_tail()}")


def wait_for_port(proc: LoggedProcess, host: str, port: int, timeout: float, what: str) -> None:
    """Wait until ``host:port`` accepts TCP connections, while ``proc`` lives."""
    deadline = time.monotonic() + timeout
    while True:
        _fail_if_exited(proc, what)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{what} did not open {host}:{port} in {timeout:.0f} s:\n{proc.log_tail()}"
            )
        time.sleep(0.1)


def wait_for_output(proc: LoggedProcess, text: str, timeout: float, what: str) -> None:
    """Wait until ``proc`` has written ``text``, while it lives."""
    deadline = time.monotonic() + timeout
    while text not in proc.log_tail(n_chars=1 << 20):
        _fail_if_exited(proc, what)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not say {text!r} in {timeout:.0f} s:\n{proc.log_tail()}")
        time.sleep(0.2)


def wait_for_http(proc: LoggedProcess, url: str, timeout: float, what: str) -> None:
    """Wait until a GET of ``url`` gets any HTTP answer, while ``proc`` lives."""
    deadline = time.monotonic() + timeout
    # the loopback server must be reached directly, whatever *_proxy says
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        _fail_if_exited(proc, what)
        try:
            with opener.open(url, timeout=2) as response:
                response.read()
            return
        except urllib.error.HTTPError as error:  # an error status is still an answer
            error.close()
            return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{what} did not answer {url} in {timeout:.0f} s:\n{proc.log_tail()}"
            )
        time.sleep(0.1)


# --------------------------------------------------------------------------- web servers


def serve_subprocess(
    argv: Sequence[str],
    host: str = LOOPBACK,
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = SERVER_START_TIMEOUT_S,
) -> tuple[LoggedProcess, str]:
    """Start a web server on a free port of ``host``; return it once ``/`` answers.

    ``{host}`` and ``{port}`` in ``argv`` are replaced by the chosen address.  The
    server runs in its own process group; stop it with :func:`stop_process`.

    >>> proc, url = serve_subprocess(  # doctest: +SKIP
    ...     [sys.executable, "-m", "http.server", "--bind", "{host}", "{port}"])
    >>> stop_process(proc)  # doctest: +SKIP
    """
    port = free_port(host)
    argv = [arg.replace("{host}", host).replace("{port}", str(port)) for arg in argv]
    url = f"http://{host}:{port}/"
    proc = start_process(argv, env=env, cwd=cwd)
    try:
        wait_for_http(proc, url, timeout, what=f"server {argv[0]}")
    except BaseException:
        stop_process(proc)
        raise
    return proc, url


# --------------------------------------------------------------------------- Chromium


@dataclasses.dataclass
class WatchedPage:
    """A Playwright page and the errors its JavaScript reported."""

    page: Any  # playwright.sync_api.Page
    console_errors: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught page errors, in that order."""
        return self.console_errors + self.page_errors


def chromium_path() -> str | None:
    """Debian's ``chromium`` on PATH, or None."""
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``) shared by the session."""
    executable = chromium_path()
    if executable is None:
        require_or_skip("chromium", "no `chromium` on PATH (Debian: apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        require_or_skip("playwright", "the Python package is missing (pip install playwright)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium_browser: Any) -> Iterator[WatchedPage]:
    """A fresh page in its own browser context, recording console and page errors."""
    context = chromium_browser.new_context()
    page = context.new_page()
    watched = WatchedPage(page)
    page.on(
        "console",
        lambda message: watched.console_errors.append(f"{message.text} ({message.location})")
        if message.type == "error"
        else None,
    )
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    try:
        yield watched
    finally:
        context.close()


def main(argv: Sequence[str]) -> None:
    """The watchdog :func:`watched_process` starts: ``watch PARENT PGID [DIR...]``."""
    command, *args = argv
    if command != "watch":
        raise SystemExit(f"realparts.py: unknown command {command!r}: watch")
    watch_parent(int(args[0]), int(args[1]), args[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
