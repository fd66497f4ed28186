"""Atomic writes: a file appears whole under its final name or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- resume state


def load_checkpoint(path: Path) -> Any:
    """Read a checkpoint this package wrote (it holds RNG states, so not ``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def rng_state() -> dict[str, Any]:
    """Every random generator a run draws from: Python, NumPy, torch CPU and CUDA."""
    import random

    import numpy as np

    state: dict[str, Any] = {"random": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resume_dir(run_dir: Path) -> Path:
    """Where a run keeps what ``mtrec run --resume`` needs (finished steps, the last epoch)."""
    return run_dir / "checkpoints" / "resume"


def step_paths(run_dir: Path, key: str) -> tuple[Path, Path]:
    """``(done, last)`` files of one step: its final state, and its last finished epoch."""
    folder = resume_dir(run_dir)
    return folder / f"{key}.done.pt", folder / f"{key}.last.pt"
