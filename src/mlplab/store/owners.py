"""Who owns an unfinished run, and whether that process is gone: a ``pending`` or
``running`` run records the pid and host of the process that will finish it, so a reader
can tell a run whose process was killed (even by SIGKILL, which no handler sees) from one
still training; and the mode new folders of a store get.

>>> owner_gone(this_process()), owner_gone({})
(False, False)
"""

from __future__ import annotations

import os
import socket
from typing import Any

# a pending or running run whose process (recorded with it) is gone reads as interrupted
UNFINISHED = ("pending", "running")


def this_process() -> dict[str, Any]:
    """The owner record of a run this process marks unfinished."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def folder_mode() -> int:
    """The mode a new folder gets here (0o777 less the process's umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def owner_gone(owner: dict[str, Any]) -> bool:
    """Whether the process recorded with an unfinished run (``{"pid", "host"}``) is gone:
    on this host and no longer running. A run owned on another host is taken as alive.

    >>> owner_gone({"pid": 2 ** 22 + 7, "host": socket.gethostname()})    # past pid_max
    True
    """
    pid, host = owner.get("pid"), owner.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:        # alive, another user's
        return False
    return False
