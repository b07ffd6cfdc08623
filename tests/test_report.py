"""``report.html``: every figure embedded, nothing external, extra sections first, and a
real headless Chromium opens it without console errors (a screenshot is taken)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from mlplab.cli import main
from mlplab.figures.draw_run import save_figure
from mlplab.config import from_dict
from mlplab.engine.reference import train
from mlplab.report.build import ReportSection, build_report, run_findings
from mlplab.report.figfiles import in_two
from mlplab.store.store import Store, StoreError

import figstores


def embedded(html: str, png: Path) -> bool:
    return base64.b64encode(png.read_bytes()).decode("ascii") in html


@pytest.fixture(scope="module")
def many_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(figstores.built(tmp_path_factory, "many"))


SECTION_TEXT = "4 of 10 seeds <failed>.\n\n- Xavier: 3 failures\n- He: 1 failure\n\n    table  as typed"


@pytest.fixture(scope="module")
def section_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1, 4])
    return save_figure(fig, tmp_path_factory.mktemp("section") / "seed-study.png")


@pytest.fixture(scope="module")
def run_report(tmp_path_factory: pytest.TempPathFactory, section_png: Path) -> Path:
    """The report of the run with restarts, with an extra section as the demo passes it."""
    store = figstores.built(tmp_path_factory, "restarts")
    return build_report(store / "runs" / "xor-restarts",
                        [ReportSection("Seed study", SECTION_TEXT, [section_png])])


def test_store_report_embeds_every_figure(many_report: Path) -> None:
    store = many_report.parent
    html = many_report.read_text()
    store_pngs = sorted((store / "figures").glob("*.png"))
    run_pngs = sorted((store / "runs").glob("*/figures/*.png"))
    assert "Metric vs learning rate" in html and "Metric vs model.init" in html
    assert {p.stem for p in store_pngs} == {"lr_curve", "param_train.optimizer", "param_model.init",
                                            "comparison", "success", "stages-staged-1",
                                            "parallel", "importance"}
    assert "The seed alone (the initialisation) explains" in html
    assert len(run_pngs) == 10 and len({p.parent for p in run_pngs}) == 1   # the best run only
    for png in store_pngs + run_pngs:
        assert embedded(html, png), png.name
    assert html.count("<figure") == len(store_pngs) + len(run_pngs)
    assert html.count("<tr") == 1 + 50 + 1 + len(Store(store).attempts(run_pngs[0].parent.parent.name))


def test_no_external_resource(many_report: Path, run_report: Path) -> None:
    for report in (many_report, run_report):
        html = report.read_text()
        assert "http://" not in html and "https://" not in html
        assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', html))
        for href in re.findall(r'href="([^"]*)"', html):
            assert href.startswith(("#", "data:", "runs/")), href


def test_the_best_run_gets_a_linked_report_of_its_own(many_report: Path) -> None:
    links = re.findall(r'href="(runs/[^"]+/report.html)"', many_report.read_text())
    assert len(links) == 1 and (many_report.parent / links[0]).is_file()


def test_run_folder_report(run_report: Path) -> None:
    assert run_report.name == "report.html" and run_report.parent.name == "xor-restarts"
    html = run_report.read_text()
    for png in (run_report.parent / "figures").glob("*.png"):
        assert embedded(html, png)
    assert html.count("<figure") == 10 + 1                    # and the extra section's
    assert "Attempt 0 (ended by plateau)" in html            # findings per attempt
    assert "diagnose unavailable" not in html
    assert "restarts: 2" in html                              # the configuration


def test_extra_sections_come_first(run_report: Path, section_png: Path, tmp_path: Path) -> None:
    html = run_report.read_text()
    sections = re.findall(r"<h2>(.*?)</h2>", html)
    assert sections[0] == "Seed study" and sections[1] == "Run xor-restarts"
    first = html[html.index("<h2>Seed study"):html.index("<h2>Run xor-restarts")]
    assert "4 of 10 seeds &lt;failed&gt;." in first and "<li>He: 1 failure</li>" in first
    assert "<pre>table  as typed</pre>" in first and embedded(first, section_png)
    with pytest.raises(StoreError, match="no figure file"):
        build_report(run_report.parent, [ReportSection("x", "", [tmp_path / "missing.png"])])


def test_diagnose_unavailable_is_said_not_raised(tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = figstores.built(tmp_path_factory, "restarts")
    assert run_findings(store, "xor-restarts")                # diagnose is there in this build
    monkeypatch.setitem(sys.modules, "mlplab.diagnose.findings", None)  # as if the module were missing
    assert run_findings(store, "xor-restarts") is None


def test_bad_paths_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="neither an mlplab store"):
        build_report(tmp_path)


def test_cli_report_of_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Store(tmp_path / "store")
    assert main(["report", str(tmp_path / "store")]) == 0
    report = tmp_path / "store" / "report.html"
    assert capsys.readouterr().out.strip() == f"report: {report}"
    assert "0 runs: no runs yet." in report.read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "neither an mlplab store" in capsys.readouterr().err


def drawn_at(store: Path) -> dict[str, int]:
    """Every PNG of the store's report (its own and the best run's) and when it was written."""
    pngs = [*(store / "figures").glob("*.png"), *(store / "runs").glob("*/figures/*.png")]
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in pngs}


def redrawn(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name, t in after.items() if before.get(name) != t}


@pytest.fixture
def many_copy(many_report: Path, tmp_path: Path) -> Path:
    """A copy of the reported "many" store (the copy keeps the files' times)."""
    return Path(shutil.copytree(many_report.parent, tmp_path / "store"))


def test_an_unchanged_store_redraws_nothing(many_copy: Path) -> None:
    before = drawn_at(many_copy)
    assert len(before) == 8 + 10
    build_report(many_copy)
    assert redrawn(before, drawn_at(many_copy)) == set()


def test_a_missing_or_damaged_figure_is_redrawn_alone(many_copy: Path) -> None:
    figures = many_copy / "figures"
    (figures / "comparison.png").unlink()                            # missing
    (figures / "parallel.png").write_bytes(b"\x89PNG not really")     # damaged
    (figures / "lr_curve.key.json").write_text("{not json")            # its key damaged
    (figures / "success.key.json").unlink()                          # its key missing
    before = drawn_at(many_copy)
    build_report(many_copy)
    after = drawn_at(many_copy)
    assert redrawn(before, after) == {f"figures/{n}.png" for n in
                                      ("comparison", "parallel", "lr_curve", "success")}
    assert imread(figures / "parallel.png").shape[2] in (3, 4)       # a real PNG again


def test_a_new_run_redraws_what_it_changes(many_copy: Path) -> None:
    before = drawn_at(many_copy)
    best_pngs = {n for n in before if n.startswith("runs/")}
    raw = {"name": "one-more", "data": {"name": "xor", "n": 48}, "model": {"hidden": [4]},
           "train": {"optimizer": "sgd", "lr": 0.001, "epochs": 3, "batch_size": 0, "seed": 7}}
    Store(many_copy).write_run(train(from_dict(raw), run_id="run-new"))
    build_report(many_copy)
    changed = redrawn(before, drawn_at(many_copy))
    assert "figures/lr_curve.png" in changed and "figures/parallel.png" in changed
    assert not changed & best_pngs                # the best run is the same: none of its figures


_IN_TWO = """import json, os, sys
from pathlib import Path
from mlplab.report.figfiles import in_two
d = Path(sys.argv[1])
def child():
    (d / f"from-{os.getpid()}").touch()
    return ["drawn", str(d / "a.png")]
handed, result = in_two(child, lambda: os.getpid())
print(json.dumps([handed, result, os.getpid()]))
"""


def test_in_two_runs_both_and_raises_the_childs_error_here(tmp_path: Path) -> None:
    # in a process of its own: this one may run other tests' threads, and then nothing forks
    out = subprocess.run([sys.executable, "-c", _IN_TWO, str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    handed, result, pid = json.loads(out.stdout)
    assert handed == ["drawn", str(tmp_path / "a.png")] and result == pid
    assert len(list(tmp_path.glob("from-*"))) == 1 and not (tmp_path / f"from-{pid}").exists()

    def fails() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):    # run again here, so raised here
        in_two(fails, lambda: None)


def test_in_two_forks_no_process_that_runs_other_threads(tmp_path: Path) -> None:
    import threading

    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        handed, result = in_two(lambda: os.getpid(), lambda: os.getpid())
    finally:
        release.set()
        other.join()
    assert handed == result == os.getpid()      # both here: no child held a lock it never frees


@pytest.mark.slow
def test_report_opens_in_chromium(many_report: Path, run_report: Path, browser_page, tmp_path: Path) -> None:
    page = browser_page.page
    page.set_viewport_size({"width": 1280, "height": 900})
    for report in (run_report, many_report):
        page.goto(report.resolve().as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
        assert images and all(w and w >= 300 for w in images)
    assert len(images) == many_report.read_text().count("<img")
    # the runs table sorts by a clicked column (numbers ascending, blanks last), then back
    header = page.locator("#runs-table th", has_text="val loss")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = page.eval_on_selector_all(
        "#runs-table tbody tr", "rows => rows.map(r => r.cells[4].getAttribute('data-v'))")
    numbers = [float(v) for v in values if v]
    assert len(values) == 50 and numbers == sorted(numbers)
    header.click()
    values = page.eval_on_selector_all(
        "#runs-table tbody tr", "rows => rows.map(r => r.cells[4].getAttribute('data-v'))")
    assert [float(v) for v in values if v] == sorted(numbers, reverse=True)
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert imread(shot).shape[:2] == (900, 1280)
    assert browser_page.errors == []
