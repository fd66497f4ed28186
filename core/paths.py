"""Where mtrec keeps caches, run outputs and the default registry."""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    """Run outputs and the default SQLite registry (``MTREC_HOME`` overrides)."""
    return Path(os.environ.get("MTREC_HOME") or platformdirs.user_data_dir("mtrec", appauthor=False))


def cache_dir(kind: str) -> Path:
    """Derived data that can always be rebuilt (``MTREC_CACHE_DIR`` overrides)."""
    root = os.environ.get("MTREC_CACHE_DIR") or platformdirs.user_cache_dir("mtrec", appauthor=False)
    return Path(root) / kind


#: What a run id may look like (the engine's are the time and a random suffix), wherever an id names a
#: run folder: the registry and ``--resume`` / ``transfer.from_run``.  A name with '/' or '..' would lead elsewhere.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def run_folder_id(root: Path, run_id: str) -> str:
    """The full id of the run folder under ``root`` named ``run_id`` or, uniquely, starting with it.

    ValueError, with the message to show, when there is none, several, or ``run_id`` is not an id."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"{run_id!r} is not a run id (ids look like 20261205-071544-8604e9)")
    if (root / run_id).is_dir():
        return run_id
    matches = sorted(p.name for p in root.glob(f"{run_id}*") if p.is_dir()) if root.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"run id prefix {run_id!r} is ambiguous: {', '.join(matches[:5])}")
    raise ValueError(f"no run folder {run_id!r} under {root} (set MTREC_HOME as it was when the run started)")
