"""Fixtures of the mixed-attention tests: isolated caches, one thread, the plugin registered."""

from __future__ import annotations

import pytest
import torch

from mtrec.plugins import Plugins
from mtrec_mixed_attention import plugin as plugin_module


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MTREC_HOME", str(tmp_path / "home"))
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def plugins() -> Plugins:
    p = Plugins().load()
    if "mixed-attention" not in p.infos:  # not installed as a distribution: register the module directly
        p.register_module(plugin_module, "mixed-attention", "mtrec-mixed-attention")
    return p
