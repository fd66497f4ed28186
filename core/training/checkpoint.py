"""Safe reads of what a run folder holds (and, re-exported from :mod:`mtrec.files`, atomic writes).

Writes go through :mod:`mtrec.files`: a file appears whole under its final name or not at all
(``atomic_write_text`` and ``atomic_torch_save`` stay importable from here).  Reading never runs code from a data
file: ``.pt`` files are read with ``torch.load(weights_only=True)`` (tensors, numbers, strings,
lists, tuples and dicts only -- a pickle that names any other Python object is refused), every
other file is JSON, and a file name read from a run's JSON must stay inside its folder.  Run
folders may be shared (a team's disk, a copied run): treat their contents as untrusted input.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch

from mtrec.errors import UserError
from mtrec.files import atomic_torch_save as atomic_torch_save  # re-exported: plugins import them from here
from mtrec.files import atomic_write_text as atomic_write_text


class UnsafeFileError(UserError):
    """A run file that would run code or reach outside its folder if it were loaded as asked."""


# --------------------------------------------------------------------------- safe reads


def load_tensors(path: Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with one clear message when the file is refused.

    Every ``.pt`` file mtrec writes (models, adapters, identifiers, resume checkpoints) holds only
    tensors and plain data, so it loads this way; a file that needs any other Python object to
    load is not mtrec's and is refused before a byte of it runs.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        import re

        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        detail = f"it names {named.group(1)}" if named else str(exc).strip().splitlines()[0][:200]
        raise UnsafeFileError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain data ({detail}), "
            "and loading it could run code. mtrec writes only tensors and plain data: this file was made or "
            "altered elsewhere (or by an older mtrec that pickled NumPy RNG states). Nothing in it was run."
        ) from None
    except FileNotFoundError:
        raise UserError(f"cannot load {path}: the file does not exist") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"cannot load {path} (truncated, or not a torch file?): {type(exc).__name__}: {first}") from None


def read_json(path: Path, what: str = "") -> Any:
    """A JSON file of a run folder, or a message naming the file and what is wrong with it."""
    path = Path(path)
    label = f" ({what})" if what else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}{label}: the file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}{label}: cannot read it ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}, line {exc.lineno}{label}: not valid JSON ({exc.msg})") from None


def member(directory: Path, name: Any, source: Path | str | None = None) -> Path:
    """``directory / name`` for a file name read from a run's own files, refused when it leaves
    ``directory``: not a plain relative name, an absolute path, a ``..`` part, or a link that
    resolves outside the folder.  ``source`` names the file the name came from, for the message."""
    directory = Path(directory)
    where = f"{source}: " if source is not None else ""
    if not isinstance(name, str) or not name.strip():
        raise UnsafeFileError(f"{where}file name {name!r} is not a file name inside {directory}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive \
            or ".." in pure.parts or ".." in PureWindowsPath(name).parts or "\x00" in name:
        raise UnsafeFileError(f"{where}file name {name!r} leaves the folder {directory}; refusing to read it")
    path = directory / name
    try:
        inside = path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UnsafeFileError(f"{where}file name {name!r} in {directory} cannot be resolved ({exc})") from None
    if not inside:
        raise UnsafeFileError(
            f"{where}file name {name!r} resolves to {path.resolve()}, outside the folder {directory} "
            "(a symbolic link?); refusing to read it"
        )
    return path


# --------------------------------------------------------------------------- resume state


def load_checkpoint(path: Path) -> Any:
    """Read a checkpoint this package wrote: tensors and plain data only (``weights_only``)."""
    return load_tensors(path, map_location="cpu")


def rng_state() -> dict[str, Any]:
    """Every random generator a run draws from: Python, NumPy, torch CPU and CUDA.

    In plain data and tensors only, so a checkpoint that holds it loads with ``weights_only``:
    Python's state is its ``(version, tuple of ints, gauss_next)``, NumPy's keys are an int64
    tensor (the uint32 words, exactly) beside its plain position and cached Gaussian.
    """
    import random

    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "random": random.getstate(),
        "numpy": (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    version, internal, gauss = state["random"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resume_dir(run_dir: Path) -> Path:
    """Where a run keeps what ``mtrec run --resume`` needs (finished steps, the last epoch)."""
    return run_dir / "checkpoints" / "resume"


# the identifier's step, before every stage (stages are numbered from 001)
IDENTIFIER_STEP = "000-identifier"


def step_paths(run_dir: Path, key: str) -> tuple[Path, Path]:
    """``(done, last)`` files of one step: its final state, and its last finished epoch."""
    folder = resume_dir(run_dir)
    return folder / f"{key}.done.pt", folder / f"{key}.last.pt"
