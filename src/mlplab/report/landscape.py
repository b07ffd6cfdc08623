"""The report's section on a run's loss landscape, when ``mlplab landscape`` has written one
(``RUN/landscape.json`` and ``RUN/landscape/*.png``; the PNGs are drawn again from the JSON
when they are missing)."""

from __future__ import annotations

import json
from pathlib import Path

from .html import figure_html, text_html

FIGURE_TITLES = {"interpolation": "Loss along straight lines in weight space",
                 "slice": "Loss on a 2-D slice with the training path"}


def landscape_sections(run_dir: Path) -> list[tuple[str, str]]:
    """``[(title, html)]``: the landscape's numbers and figures, or nothing without one."""
    path = run_dir / "landscape.json"
    if not path.is_file():
        return []
    from mlplab.figures.data_landscape import landscape_info, landscape_text
    from mlplab.figures.draw_landscape import caption_of_figure, write_landscape_figures

    doc = json.loads(path.read_text())
    folder = run_dir / "landscape"
    files = [folder / f"{name}.png" for name in FIGURE_TITLES]
    if not all(f.is_file() for f in files):
        files = write_landscape_figures(landscape_info(doc), folder)
    body = text_html("    " + landscape_text(doc).replace("\n", "\n    ")) + "".join(
        figure_html(f, FIGURE_TITLES[f.stem], caption_of_figure(f.stem)) for f in files)
    return [(f"Loss landscape of {doc['run_id']}", body)]
