"""The Ray backend on a real local Ray cluster (tests/realray.py ``ray_address``: a head
started by the test session on 127.0.0.1, stopped by its process ids): the same sweep
gives the same runs as the local process pool, and on two Ray nodes it uses both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from realray import local_ray_cluster
from test_sweep_run import assert_same_runs, xor_sweep

from mlplab.store.store import Store
from mlplab.sweep import run_sweep
from mlplab.sweep.executors import RayExecutor
from mlplab.sweep.worker import UnitResult

pytestmark = pytest.mark.slow        # a Ray cluster


def test_ray_backend_gives_the_same_runs_as_the_local_pool(ray_address: str, tmp_path: Path):
    src = xor_sweep({"seeds": 2, "grid": {"train.lr": [0.05, 0.5], "model.hidden": [[3], [5]]}})
    local = run_sweep(src, out=tmp_path / "local", workers=2, quiet=True, report=False)
    ray = run_sweep(src, out=tmp_path / "ray", backend="ray", address=ray_address, quiet=True,
                    report=False)
    assert ray.sweep_id == local.sweep_id
    assert ray.data["timing"]["backend"] == "ray" and ray.data["timing"]["workers"] == 2
    assert len(Store(tmp_path / "ray").runs(status="done")) == 8
    assert_same_runs(tmp_path / "local", tmp_path / "ray")
    assert ray.data["configs"] == local.data["configs"]


def test_cli_sweep_on_ray(ray_address: str, tmp_path: Path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(xor_sweep({"strategy": "staged", "stages": [
        {"train.lr": [0.05, 0.5]}, {"model.hidden": [[4], [5]]}]})))
    done = subprocess.run([sys.executable, "-m", "mlplab", "sweep", str(f), "--out", str(tmp_path / "o"),
                           "--backend", "ray", "--address", ray_address, "--json", "--no-report"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [s["stage"] for s in doc["stages"]] == [0, 1]
    assert doc["n_failed"] == 0 and doc["n_runs"] == 3        # the stage-1 winner is reused


def test_a_sweep_on_two_ray_nodes_trains_units_on_both(tmp_path: Path, monkeypatch):
    import ray

    results: list[UnitResult] = []
    map_unordered = RayExecutor.map_unordered

    def recorded(self, units):      # the sweep's own unit results, as the driver gets them
        for result in map_unordered(self, units):
            results.append(result)
            yield result

    monkeypatch.setattr(RayExecutor, "map_unordered", recorded)
    src = xor_sweep({"seeds": 2, "grid": {"train.lr": [0.05, 0.5], "model.hidden": [[3], [5]]}})
    with local_ray_cluster(num_cpus=1, nodes=2) as cluster:
        ray.init(address=cluster.address, log_to_driver=False)      # ends with the cluster
        nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        done = run_sweep(src, out=tmp_path, backend="ray", address=cluster.address, quiet=True,
                         report=False)
    assert len(nodes) == 2
    assert done.data["timing"]["workers"] == 2 and done.data["n_failed"] == 0
    assert len(Store(tmp_path).runs(status="done")) == 8
    assert sum(len(result.records) for result in results) == 8
    assert {result.worker.split(":")[0] for result in results} == nodes
