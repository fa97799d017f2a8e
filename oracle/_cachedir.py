"""Where the project's disk caches live: ``$LOSS_CONFORMANCE_CACHE``, else ``~/.cache/loss-conformance``.

A module of its own, free of SymPy, so that collecting the conformance suite can find its catalogue
(``conformance.catalogue``) there without importing the oracle's compiler (``oracle._compile``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache directory, read from the environment at each call (tests point it elsewhere)."""
    return Path(os.environ.get("LOSS_CONFORMANCE_CACHE") or Path.home() / ".cache" / "loss-conformance")
