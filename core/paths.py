"""Where mtrec keeps caches, run outputs and the default registry."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    """Run outputs and the default SQLite registry (``MTREC_HOME`` overrides)."""
    return Path(os.environ.get("MTREC_HOME") or platformdirs.user_data_dir("mtrec", appauthor=False))


def cache_dir(kind: str) -> Path:
    """Derived data that can always be rebuilt (``MTREC_CACHE_DIR`` overrides)."""
    root = os.environ.get("MTREC_CACHE_DIR") or platformdirs.user_cache_dir("mtrec", appauthor=False)
    return Path(root) / kind
