"""A file written whole or not at all: its content goes to a temporary file beside it,
renamed onto it when complete (atomic on POSIX), so a reader, or a crash, sees the old
file or the new one, never half of one. The temporary name holds the process and
thread, so two writers of one file never share it; it is removed if the write fails.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "a.json"
>>> write_atomic(path, '{"a": 1}').read_text(), sorted(p.name for p in path.parent.iterdir())
('{"a": 1}', ['a.json'])
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write (by any means: a figure's ``savefig``);
    renamed onto ``path`` when the block ends normally, removed otherwise."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path`` whole; returns ``path``."""
    with replacing(path) as tmp:
        tmp.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


__all__ = ["replacing", "write_atomic"]
