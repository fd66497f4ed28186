"""Fixtures of the id-matcher tests: isolated caches and run folders, one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Caches (processed datasets, text embeddings) and run folders of a test go to its own folder."""
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MTREC_HOME", str(tmp_path / "home"))
    torch.set_num_threads(1)
