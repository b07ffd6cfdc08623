"""Serve the dashboard: loopback by default, a warning when bound anywhere else.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, False)
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

from .app import create_app

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (only this machine can reach it)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning printed when the dashboard is reachable from other machines."""
    if is_loopback(host):
        return None
    return (f"warning: the dashboard listens on {host}:{port}, so other machines on the network"
            " can read this store (it has no login). Use --host 127.0.0.1 to keep it local.")


def serve(dir: str | Path, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve the dashboard of the store ``dir`` at ``http://host:port/`` until interrupted.

    Raises :class:`mlplab.store.store.StoreError` when ``dir`` is not a store.

    >>> # serve("runs/demo")            # then open http://127.0.0.1:8050/
    """
    app = create_app(dir)
    warning = exposure_warning(host, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    shown = f"[{host}]" if ":" in host else host
    print(f"mlplab dashboard of '{dir}' at http://{shown}:{port}/  (Ctrl+C to stop)", flush=True)
    # one log line per poll of the live view would bury everything else
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host=host, port=port, debug=False)
