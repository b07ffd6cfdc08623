"""The live web dashboard of a store (SPEC §8): ``mlplab dashboard DIR``.

Needs the optional extra ``mlplab[dashboard]`` (Dash and Plotly); importing this
package without them raises ImportError naming ``dash`` or ``plotly``, which the CLI
turns into an install hint.

>>> # from mlplab.dashboard import serve; serve("runs/demo", port=8050)
"""

from __future__ import annotations

from .app import create_app as create_app
from .server import serve as serve

__all__ = ["create_app", "serve"]
