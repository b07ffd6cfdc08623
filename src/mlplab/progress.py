"""A text progress bar for long work: done / total, ETA and the best value so far.

Writes to stderr, one line rewritten in place on a terminal, a line every few seconds
otherwise; silent when ``quiet``.

>>> bar = ProgressBar(total=2, label="runs", quiet=True)
>>> bar.update(1, best=0.5); bar.update(1); bar.close()
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str = "runs", quiet: bool = False,
                 stream: TextIO | None = None, best_label: str = "best"):
        self.total, self.label, self.quiet = max(int(total), 0), label, quiet
        self.stream = stream or sys.stderr
        self.best_label = best_label
        self.done, self.best = 0, math.nan
        self.start = self._last = time.perf_counter()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n: int = 1, best: float | None = None) -> None:
        self.done += n
        if best is not None and math.isfinite(best):
            self.best = best
        now = time.perf_counter()
        if not self.quiet and (self._tty or now - self._last > 5 or self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self.start
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed / frac - elapsed if frac > 0 else math.nan
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        best = f"  {self.best_label} {self.best:.4g}" if math.isfinite(self.best) else ""
        eta_s = f"ETA {eta:5.0f}s" if math.isfinite(eta) else "ETA    ?"
        line = f"[{bar}] {self.done}/{self.total} {self.label}  {elapsed:5.1f}s  {eta_s}{best}"
        self.stream.write(("\r" + line) if self._tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self._tty:
            self.stream.write("\n")
            self.stream.flush()
