"""Device choice and reproducibility switches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from mtrec.errors import ConfigError


def pick_device(spec: str) -> torch.device:
    """``auto`` is CUDA when present; under ``torchrun`` a CUDA device means this rank's ``cuda:LOCAL_RANK``."""
    local = int(os.environ.get("LOCAL_RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and local is not None and torch.cuda.is_available():
        return torch.device("cuda", local)
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"device: {spec!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {spec!r} requested but CUDA is not available here; use device=auto or cpu")
    return device


def seed_everything(seed: int, device: torch.device) -> None:
    """Same seed, same config, same metrics on CPU (GPU kernels may still differ in the last bits)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
