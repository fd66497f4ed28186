"""Fixtures of the example plugin's tests: isolated mtrec folders, one thread, a tiny dataset."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mtrec.data.model import MultiDomainDataset

TRAIN, VALID, TEST = 0, 1, 2


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Runs, caches and the registry of a test go to temporary folders, never the user's."""
    root = tmp_path_factory.getbasetemp() / "mtrec"
    monkeypatch.setenv("MTREC_HOME", str(root / "home"))
    monkeypatch.setenv("MTREC_CACHE_DIR", str(root / "cache"))
    monkeypatch.delenv("MTREC_REGISTRY_URL", raising=False)
    torch.set_num_threads(1)


def tiny_dataset() -> MultiDomainDataset:
    """Domain A: items 1-4, domain B: items 5-7; three users with hand-set roles.

    Training counts: 1:2 (u1, u2), 2:2 (u0 twice), 3:1 (u1), 4:2 (u2 twice), 5:1, 6:2, 7:1.
    Item 3 is also u0's validation and u2's test target, item 4 u0's and u1's test target,
    item 7 u1's validation target: counting those would reorder both domains.
    """
    sequences = [
        [(2, TRAIN), (5, TRAIN), (2, TRAIN), (3, VALID), (4, TEST)],
        [(3, TRAIN), (1, TRAIN), (6, TRAIN), (6, TRAIN), (7, VALID), (4, TEST)],
        [(1, TRAIN), (4, TRAIN), (4, TRAIN), (7, TRAIN), (3, TEST)],
    ]
    items = np.array([i for seq in sequences for i, _ in seq], dtype=np.int64)
    roles = np.array([r for seq in sequences for _, r in seq], dtype=np.int8)
    offsets = np.cumsum([0] + [len(s) for s in sequences]).astype(np.int64)
    return MultiDomainDataset(
        name="tiny", domains=["A", "B"], item_domain=np.array([-1, 0, 0, 0, 0, 1, 1, 1]),
        item_raw_id=[str(i) for i in range(8)], item_fields={}, item_text=[""] * 8,
        user_raw_id=["u0", "u1", "u2"], user_offsets=offsets, inter_item=items, inter_role=roles,
    )


@pytest.fixture
def tiny_run() -> SimpleNamespace:
    """What components read from a RunContext: the dataset, its domains and ``data.max_len``."""
    dataset = tiny_dataset()
    return SimpleNamespace(dataset=dataset, all_domains=[0, 1], target_domains=[0, 1],
                           config=SimpleNamespace(data=SimpleNamespace(max_len=4)))


@pytest.fixture(scope="session")
def plugins():
    """mtrec's plugins with this one loaded: from its entry point when installed, else directly."""
    from mtrec.plugins import Plugins

    loaded = Plugins().load()
    if "classic-baselines" not in loaded.infos:
        import classic_baselines.plugin

        loaded.register_module(classic_baselines.plugin, "classic-baselines")
    return loaded
