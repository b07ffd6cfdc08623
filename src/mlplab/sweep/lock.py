"""One driver per sweep: an advisory lock on ``STORE/.sweep-<id>.lock`` held while a
driver runs the sweep. A second ``mlplab sweep ... --resume`` on the same store and file
is refused (it would train every unfinished unit a second time); the lock file names the
process holding it. The operating system releases the lock when that process ends, however
it ends (SIGKILL included), so a killed sweep never leaves a stale lock behind.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d, sweep_lock(Path(d), "s-1"):
...     try:
...         with sweep_lock(Path(d), "s-1"):
...             pass
...     except StoreError as e:
...         print(str(e).split(";")[0])
sweep 's-1' in ... is being run by pid ... on ...
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mlplab.store.store import StoreError


@contextmanager
def sweep_lock(root: Path, sweep_id: str) -> Iterator[None]:
    """Hold the lock of ``sweep_id`` in the store at ``root`` for the ``with`` block, or
    raise :class:`StoreError` naming the process that holds it."""
    path = root / f".sweep-{sweep_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise StoreError(f"sweep '{sweep_id}' in '{root}' is being run by {holder}; wait for"
                             " it to finish (or stop it) before running or resuming it again"
                             ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)          # releases the lock
