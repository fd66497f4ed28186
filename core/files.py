"""Atomic writes: a file (or folder) appears whole under its final name, or not at all.

Every writer stages its output under a hidden temporary name in the destination's folder (so the
final rename stays on one file system) and renames it into place with ``os.replace``; on any
error, Ctrl-C included, the staged output is removed and the destination is left as it was.

* :func:`atomic_write_text`, :func:`atomic_torch_save`: the common cases;
* :func:`atomic_open`: an open file to write anything else through (``np.save``, ``np.savez``);
* :func:`atomic_path`: a staged path (file or folder) for writers that want a name;
* :func:`strict_json_text`: JSON that every reader accepts (no ``NaN`` / ``Infinity`` tokens).

Plugins may import these from here; ``mtrec.training.checkpoint`` re-exports the first two.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator


def _staging(path: Path, *, suffix: str, directory: bool) -> Path:
    """A new, empty, hidden file (or folder) beside ``path``, the folder created if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _discard(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path, *, suffix: str = "", directory: bool = False, existing_wins: bool = False) -> Iterator[Path]:
    """Yield a staged path beside ``path``; when the block ends without error it becomes ``path``.

    ``suffix`` ends the staged name (writers that add an extension unless it is there, such as
    ``np.save``, need it); ``directory=True`` stages an empty folder instead of an empty file.
    ``existing_wins=True`` is for writers racing to produce identical output (a cache entry):
    when the rename fails because ``path`` already exists, the staged copy is dropped quietly.
    """
    path = Path(path)
    tmp = _staging(path, suffix=suffix, directory=directory)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError:
            if not (existing_wins and path.exists()):
                raise
            _discard(tmp)
    except BaseException:
        _discard(tmp)
        raise


@contextmanager
def atomic_open(path: Path, mode: str = "wb", *, suffix: str = "", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Yield a file open for writing (``mode`` "w" or "wb"); when the block ends without error it
    is closed and becomes ``path``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a new file: mode 'w' or 'wb', not {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, suffix=suffix) as tmp:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder if need be."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def strict_json_text(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``obj`` as indented, strict JSON: a non-finite float (a stage that never validated has no best
    value) becomes ``null``, since ``NaN`` is Python's extension and other JSON readers reject it.
    ``default``: as :func:`json.dumps`'s, for values JSON has no type for (e.g. ``str`` for paths)."""
    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(obj), indent=2, ensure_ascii=False, allow_nan=False, default=default)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)``, atomically, creating its folder if need be."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
