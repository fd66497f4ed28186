"""Shared test fixtures: isolated caches/registry per session, the shared datasets' location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory):
    """Keep every test's caches, runs and default registry out of the user's folders."""
    root = tmp_path_factory.mktemp("mtrec-home")
    old = {k: os.environ.get(k) for k in ("MTREC_HOME", "MTREC_CACHE_DIR", "MTREC_REGISTRY_URL")}
    os.environ["MTREC_HOME"] = str(root / "home")
    os.environ["MTREC_CACHE_DIR"] = str(root / "cache")
    os.environ.pop("MTREC_REGISTRY_URL", None)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def shared_dataset(*parts: str) -> Path:
    path = SHARED_DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset {path} is not available (clone with ../shared beside the repo)")
    return path
