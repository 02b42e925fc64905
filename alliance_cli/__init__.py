"""alliance: score therapeutic alliance questionnaires.

The public Python API lives in ``alliance_cli.api`` and is re-exported here lazily, so
``import alliance_cli`` stays light (the command line imports this package on every run).
"""

from __future__ import annotations

__version__ = "0.3.0"

__all__ = ["__version__", "frame_columns", "load_instrument", "score", "score_frame", "score_rows"]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> object:
    """Load the API on first use of one of its names."""
    if name in _API:
        from alliance_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'alliance_cli' has no attribute {name!r}")
