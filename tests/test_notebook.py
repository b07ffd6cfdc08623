"""Notebooks: ``mlplab.open`` on a store, a sweep and a run, their ``_repr_html_`` (the
report's runs table and inline figures), ``.runs()``, ``.metrics()``, ``.figure()``,
``.diagnose()``; and examples/explore.ipynb run top to bottom under nbclient."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from realparts import import_or_skip

import mlplab
from mlplab.config import ConfigError
from mlplab.store.store import Store, StoreError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "explore.ipynb"


def test_open_names_a_path_that_is_no_store(tmp_path):
    with pytest.raises(StoreError, match=re.escape(f"'{tmp_path}' is neither an mlplab store")):
        mlplab.open(tmp_path)


def test_open_names_the_sweeps_of_the_store_when_the_sweep_is_unknown(tmp_path):
    Store(tmp_path).put_sweep("grid-1", "grid", "grid", {})
    assert mlplab.open(tmp_path, sweep="grid-1").sweep_id == "grid-1"
    with pytest.raises(StoreError, match="sweep='nope': no such sweep .* its sweeps: grid-1"):
        mlplab.open(tmp_path, sweep="nope")


def test_the_notebook_block_keeps_the_report_style_inside_it():
    from mlplab.notebook.html import SCOPE, block, scoped_css
    from mlplab.report.html import CSS

    css = scoped_css(CSS)
    rules = [r.split("{")[0] for r in css.split("}") if "{" in r]
    assert rules and all(s.strip().startswith(f".{SCOPE}") for r in rules for s in r.split(","))
    html = block("t", "s", [("Runs", "<p>x</p>")])
    assert html.startswith(f'<div class="{SCOPE}">') and "<body" not in html


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """Two learning rates × two inits × three seeds of a tiny XOR net, trained as cohorts;
    and two more runs, in a sweep of their own."""
    from mlplab.engine.reference import train

    root = tmp_path_factory.mktemp("nb-store")
    raw = {"name": "nb", "data": {"name": "xor", "n": 40}, "model": {"hidden": [4]},
           "train": {"epochs": 12, "batch_size": 0}, "stopping": {"restarts": 0},
           "probe": {"activations_every": 4, "boundary_snapshots": 2}}
    for lr in (0.05, 0.5):
        for init in ("xavier_uniform", "he_normal"):
            cfg = mlplab.from_dict({**raw, "model": {"hidden": [4], "init": init},
                                    "train": {"lr": lr, "epochs": 12, "batch_size": 0}})
            mlplab.run_config(cfg, root, seeds=3, report=False, quiet=True)
    store = Store(root)
    store.put_sweep("nb-grid", "nb", "grid", {}, status="done")
    for seed in (0, 1):
        cfg = mlplab.from_dict({**raw, "train": {"lr": 0.1, "epochs": 12, "batch_size": 0,
                                                 "seed": seed}})
        store.write_run(train(cfg, run_id=f"nb-grid-{seed}"), sweep_id="nb-grid")
    return root


@pytest.mark.slow
def test_a_store_shows_the_report_runs_table_and_inline_figures(small_store):
    import_or_skip("optuna")
    store = mlplab.open(small_store)
    html = store._repr_html_()
    assert 'id="runs-table"' in html and html.count("<tr") >= 14 + 1
    assert html.count('src="data:image/png;base64,') >= 4
    for name in ("parallel", "importance", "loss"):
        assert f'data-name="{name}"' in html, name
    assert "src=\"http" not in html and "<link" not in html       # self-contained
    assert not list(small_store.rglob("*.png")) and not (small_store / "report.html").exists()


@pytest.mark.slow
def test_a_store_gives_its_runs_metrics_figures_and_findings(small_store):
    from matplotlib.figure import Figure

    from mlplab.diagnose import Finding
    from mlplab.store.table import run_row

    store = mlplab.open(small_store)
    runs = store.runs(sort="val_loss")
    assert len(runs) == 14 and list(runs.columns) == list(run_row(Store(small_store).runs()[0]))
    assert runs.val_loss.is_monotonic_increasing
    assert set(store.metrics(runs.run_id[0]).metric) >= {"val_loss", "train_loss"}
    assert isinstance(store.figure("parallel"), Figure)
    assert isinstance(store.figure("loss", run=runs.run_id[0]), Figure)
    with pytest.raises(ConfigError, match="'figure': got 'nope'; allowed: .*parallel.*loss"):
        store.figure("nope")
    assert all(isinstance(f, Finding) for f in store.diagnose())


@pytest.mark.slow
def test_a_sweep_of_the_store_is_its_runs_only(small_store):
    sweep = mlplab.open(small_store, sweep="nb-grid")
    assert sweep.label() == "sweep nb-grid"
    assert sorted(sweep.runs().run_id) == ["nb-grid-0", "nb-grid-1"]
    assert sweep.best_run_id() in {"nb-grid-0", "nb-grid-1"}
    assert [name for name, *_ in sweep.figure_jobs()] == []   # only the seed varies in it
    again = mlplab.open(small_store).sweep("nb-grid")
    assert (again.store.root, again.sweep_id) == (sweep.store.root, "nb-grid")


@pytest.mark.slow
def test_a_run_folder_opens_as_that_run(small_store):
    run_id = Store(small_store).runs()[0].run_id
    run = mlplab.open(small_store / "runs" / run_id)
    assert run.run_id == run_id and list(run.runs().run_id) == [run_id]
    html = run._repr_html_()
    assert f"Run {run_id}" in html and 'data-name="loss"' in html and "runs-table" not in html
    with pytest.raises(ConfigError, match="'run'"):
        run.metrics("another")


@pytest.mark.slow
def test_the_example_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = import_or_skip("nbformat")
    nbclient = import_or_skip("nbclient")
    import_or_skip("ipykernel")
    import_or_skip("optuna")
    nb = nbformat.read(EXAMPLE, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") for c in code), "commit it without outputs"
    # the kernel (this interpreter, ipykernel's native python3 spec) imports this mlplab
    src = str(Path(mlplab.__file__).resolve().parents[1])
    paths = (src, os.environ.get("PYTHONPATH"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})
            and "mlplab-nb" in o.data["text/html"]]
    assert html and 'id="runs-table"' in html[0] and 'src="data:image/png;base64,' in html[0]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3   # the .figure() cells
    assert list(tmp_path.iterdir()) == []                                 # nothing written here
