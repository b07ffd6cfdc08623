"""Real parts for tests: headless Chromium, a local Ray cluster, loopback servers.

Loaded as a pytest plugin from ``tests/conftest.py`` (``pytest_plugins = ["realparts"]``),
which makes these fixtures available to every test:

- ``chromium_browser`` (session): a Playwright ``Browser`` on Debian's ``chromium``;
- ``browser_page`` (function): a :class:`WatchedPage` (a fresh page plus the console
  and page errors it has seen);
- ``ray_address`` (session): ``"127.0.0.1:<port>"`` of a real local Ray cluster.

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

# Both the cluster and the driver must see these.  RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
# keeps the driver on 127.0.0.1 (otherwise ray.init rewrites "127.0.0.1:port" to the
# machine's outward address, where the loopback-only cluster does not listen); Ray reads
# it when `ray` is first imported, so it is set in pytest_configure, before collection.
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
# Only for the cluster: on SIGTERM, `ray start` would first drain the node for up to
# 30 s, for the sake of serving traffic a test cluster never has.
RAY_CLUSTER_ENV = {**RAY_ENV, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}

RAY_START_TIMEOUT_S = 60.0
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
# SIGKILL never runs a fixture's teardown).  Not PR_SET_PDEATHSIG: it reaches only the
# child itself, not the daemons it starts in sessions of their own, and it fires when
# the starting *thread* ends.  The watchdog polls its parent's pid, which changes (to
# init or a subreaper) when the parent dies, and keeps the group's tree meanwhile.
WATCH_INTERVAL_S = 0.5


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


# --------------------------------------------------------------------------- Ray


@dataclasses.dataclass(frozen=True)
class RayCluster:
    """A running local Ray cluster: its GCS address, the head's ``ray start`` process
    and the processes of the other nodes (:func:`run_ray_worker_node`)."""

    address: str  # "127.0.0.1:<port>"
    proc: LoggedProcess
    temp_dir: str
    workers: tuple[LoggedProcess, ...] = ()


def ray_script() -> Path:
    """The ``ray`` script of this interpreter's environment."""
    return Path(sys.executable).parent / "ray"


def _short_temp_root() -> str:
    # Ray puts Unix sockets under --temp-dir and their paths must stay under ~107
    # bytes, so a long $TMPDIR (macOS, some CI runners) is replaced by /tmp.
    default = tempfile.gettempdir()
    if len(default) <= 20 or not os.path.isdir("/tmp"):
        return default
    return "/tmp"


def pytest_configure(config: pytest.Config) -> None:
    """Give the whole session Ray's driver environment before any test imports ``ray``."""
    os.environ.update(RAY_ENV)


def _check_driver_stays_on_loopback() -> None:
    # Fail loudly rather than let ray.init retry an unreachable address for minutes.
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError(
            "`ray` was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set, so "
            "ray.init would turn 127.0.0.1 into this machine's outward address; load "
            "realparts as a pytest plugin (its pytest_configure sets it) or set it first"
        )


@contextlib.contextmanager
def ray_environment() -> Iterator[None]:
    """Set :data:`RAY_ENV` in this process (the driver) for the duration."""
    saved = {key: os.environ.get(key) for key in RAY_ENV}
    os.environ.update(RAY_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_for_output(proc: LoggedProcess, text: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log_tail():
        _fail_if_exited(proc, what)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not say {text!r} in {timeout:.0f} s:\n{proc.log_tail()}")
        time.sleep(0.2)


RAY_NODE_READY = "ray worker node registered"


def run_ray_worker_node(address: str, num_cpus: int, agent_port: int, timeout: float) -> None:
    """Run in a process of its own: one more Ray node (its raylet) on 127.0.0.1 joined
    to the head at ``address``, until SIGTERM (Ray's handler then stops its processes).

    What ``ray start --address`` does (ray/scripts/scripts.py, its non-head branch),
    whose refusal of a second node under ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` guards
    nothing here: the setting only makes ``get_node_ip_address`` answer 127.0.0.1
    (ray/_private/services.py), which is what this node must use.  Worker ports are
    the OS's choice, as in ``ray.cluster_utils.Cluster.add_node``, so two raylets on one
    machine do not hand out the same ones.
    """
    from ray._private import services
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        gcs_address=address,
        node_ip_address=LOOPBACK,
        num_cpus=num_cpus,
        min_worker_port=0,
        max_worker_port=0,
        dashboard_agent_listen_port=agent_port,
        include_log_monitor=False,  # the head's log monitor reads the shared temp dir
    )
    node = Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    services.wait_for_node(node.gcs_address, node.plasma_store_socket_name, timeout)
    print(f"{RAY_NODE_READY}: {node.node_id}", flush=True)
    while True:
        time.sleep(3600)


@contextlib.contextmanager
def local_ray_cluster(
    num_cpus: int = 2, timeout: float = RAY_START_TIMEOUT_S, nodes: int = 1
) -> Iterator[RayCluster]:
    """Start a Ray cluster of ``nodes`` nodes (``num_cpus`` CPUs each) on 127.0.0.1,
    yield it once every node has joined, stop it and its workers by process id.

    ``ray.init(address=cluster.address)`` connects to it from inside the block, provided
    :data:`RAY_ENV` was set before ``ray`` was imported (the plugin's pytest_configure
    does that).  A driver still connected at the end is shut down first.  Each node's
    processes die with this process even if it is killed (:func:`watched_process`).
    """
    script = ray_script()
    if importlib.util.find_spec("ray") is None or not script.exists():
        require_or_skip("ray", f"no `ray` package or script next to {Path(sys.executable).name}")
    _check_driver_stays_on_loopback()
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir=_short_temp_root())
    argv = [
        str(script), "start", "--head", "--block",
        f"--node-ip-address={LOOPBACK}",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        # ports that otherwise default to fixed numbers, which parallel runs would share
        # (no Ray Client server: it needs ray[client], which mlplab[ray] does not pull in)
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-port={free_port()}",
    ]  # fmt: skip
    address = f"{LOOPBACK}:{port}"
    env = {**os.environ, **RAY_CLUSTER_ENV}
    with ray_environment(), contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, temp_dir, ignore_errors=True)
        proc = stack.enter_context(watched_process(argv, env=env, remove=[temp_dir]))
        wait_for_port(proc, LOOPBACK, port, timeout, what="ray start")
        workers = []
        for _ in range(nodes - 1):
            node_argv = [sys.executable, __file__, "ray-node", address, str(num_cpus),
                         str(free_port()), str(timeout)]  # fmt: skip
            workers.append(stack.enter_context(watched_process(node_argv, env=env)))
        for worker in workers:
            _wait_for_output(worker, RAY_NODE_READY, timeout, what="a Ray worker node")
        stack.callback(_shutdown_ray_driver)  # first of all at the end
        yield RayCluster(address, proc, temp_dir, tuple(workers))


def _shutdown_ray_driver() -> None:
    ray_module = sys.modules.get("ray")
    if ray_module is not None and ray_module.is_initialized():
        ray_module.shutdown()


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """``"127.0.0.1:<port>"`` of a local Ray cluster (2 CPUs) shared by the session."""
    with local_ray_cluster() as cluster:
        yield cluster.address


def main(argv: Sequence[str]) -> None:
    """The processes :func:`watched_process` and :func:`local_ray_cluster` start:
    ``watch PARENT PGID [DIR...]`` and ``ray-node ADDRESS CPUS AGENT_PORT TIMEOUT``."""
    command, *args = argv
    if command == "watch":
        watch_parent(int(args[0]), int(args[1]), args[2:])
    elif command == "ray-node":
        run_ray_worker_node(args[0], int(args[1]), int(args[2]), float(args[3]))
    else:
        raise SystemExit(f"realparts.py: unknown command {command!r}: watch or ray-node")


if __name__ == "__main__":
    main(sys.argv[1:])
