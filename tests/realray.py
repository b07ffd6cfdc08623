"""A real local Ray cluster for tests: ``ray_address`` and :func:`local_ray_cluster`.

Loaded as a pytest plugin from ``tests/conftest.py``, which makes the fixture
``ray_address`` (session) available to every test: ``"127.0.0.1:<port>"`` of a real
local Ray cluster.  Its processes are started in process groups of their own, stopped
by id, die with the process that started them (:func:`realparts.watched_process`), and
listen only on 127.0.0.1; a cluster may have several nodes (raylets) on this machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from realparts import (
    LOOPBACK,
    LoggedProcess,
    free_port,
    require_or_skip,
    wait_for_output,
    wait_for_port,
    watched_process,
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
            "realray as a pytest plugin (its pytest_configure sets it) or set it first"
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
        # (the Ray Client server's is 10001 wherever its packages import, as here)
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
    ]  # fmt: skip
    address = f"{LOOPBACK}:{port}"
    env = {**os.environ, **RAY_CLUSTER_ENV}
    with ray_environment(), contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, temp_dir, ignore_errors=True)
        proc = stack.enter_context(watched_process(argv, env=env, remove=[temp_dir]))
        wait_for_port(proc, LOOPBACK, port, timeout, what="ray start")
        workers: list[LoggedProcess] = []
        for _ in range(nodes - 1):
            node_argv = [sys.executable, __file__, address, str(num_cpus),
                         str(free_port()), str(timeout)]  # fmt: skip
            workers.append(stack.enter_context(watched_process(node_argv, env=env)))
        for worker in workers:
            wait_for_output(worker, RAY_NODE_READY, timeout, what="a Ray worker node")
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


if __name__ == "__main__":  # the process of one more node: ADDRESS CPUS AGENT_PORT TIMEOUT
    run_ray_worker_node(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
