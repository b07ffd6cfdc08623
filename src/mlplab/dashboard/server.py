"""Serve the dashboard: loopback by default (:func:`mlplab.dashboard.app.is_loopback`),
a warning when bound anywhere else.

>>> dashboard_url("127.0.0.1", 8050)
'http://127.0.0.1:8050/'
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from mlplab.config import ConfigError
from .app import create_app, is_loopback


def dashboard_url(host: str, port: int) -> str:
    """The address to open: an IPv6 host in brackets, given with them or without.

    >>> dashboard_url("::1", 8050), dashboard_url("[::1]", 8050), dashboard_url("localhost", 80)
    ('http://[::1]:8050/', 'http://[::1]:8050/', 'http://localhost:80/')
    """
    bare = host.strip("[]")
    return f"http://[{bare}]:{port}/" if ":" in bare else f"http://{bare}:{port}/"


def exposure_warning(host: str, port: int) -> str | None:
    """The warning printed when the dashboard is reachable from other machines."""
    if is_loopback(host):
        return None
    return (f"warning: the dashboard listens on {host}:{port}, so other machines on the network"
            " can read this store (it has no login). Use --host 127.0.0.1 to keep it local.")


def serve(dir: str | Path, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve the dashboard of the store ``dir`` at ``http://host:port/`` until interrupted.

    Raises :class:`mlplab.config.ConfigError` for a port outside 1..65535 and
    :class:`mlplab.store.store.StoreError` when ``dir`` is not a store, both before
    anything listens. A host other than loopback is served, with a warning.

    ``serve`` blocks, so the example builds the app it runs and asks it for pages
    through Flask's test client (no socket):

    >>> import tempfile
    >>> import mlplab
    >>> cfg = mlplab.from_dict({"data": {"name": "xor", "n": 40}, "train": {"epochs": 3}})
    >>> with tempfile.TemporaryDirectory() as out:
    ...     (run_id,) = mlplab.run_config(cfg, out, report=False, quiet=True)
    ...     client = create_app(out).server.test_client()
    ...     page, api = client.get(f"/run/{run_id}"), client.get(f"/api/run/{run_id}")
    ...     page.status_code, api.get_json()["run"]["status"]
    (200, 'done')
    >>> serve("runs/demo", port=80800)
    Traceback (most recent call last):
    ...
    mlplab.config.ConfigError: config key '--port': got 80800; allowed: an integer from 1 to 65535
    >>> print(exposure_warning("0.0.0.0", 8050))       # printed by serve(dir, host="0.0.0.0")
    warning: the dashboard listens on 0.0.0.0:8050, so other machines on the network can read ...
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError("--port", port, "an integer from 1 to 65535")
    app = create_app(dir, host=host, port=port)
    warning = exposure_warning(host, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"mlplab dashboard of '{dir}' at {dashboard_url(host, port)}  (Ctrl+C to stop)", flush=True)
    # one log line per poll of the live view would bury everything else
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host=host.strip("[]"), port=port, debug=False)   # the socket wants ::1, not [::1]
