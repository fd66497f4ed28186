"""Fixtures of the asymmetric-moe tests: isolated caches and run folders, one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MTREC_HOME", str(tmp_path / "home"))
    torch.set_num_threads(1)
