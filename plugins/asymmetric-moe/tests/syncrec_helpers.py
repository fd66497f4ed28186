"""Helpers of the asymmetric-moe tests: a tiny hand-made multi-domain dataset and a fake run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from mtrec.data.model import TRAIN, MultiDomainDataset
from mtrec_asymmetric_moe.encoder import SyNCRec, SyNCRecParams

# Items 1-4 are domain A, 5-8 domain B.  User 0: A1 B5 A2 B6 A3; user 1: B7 B8 A4 B5.
ITEM_DOMAIN = np.array([-1, 0, 0, 0, 0, 1, 1, 1, 1])
SEQUENCES = [[1, 5, 2, 6, 3], [7, 8, 4, 5]]


def tiny_dataset(sequences=SEQUENCES, item_domain=ITEM_DOMAIN) -> MultiDomainDataset:
    offsets = np.cumsum([0] + [len(s) for s in sequences]).astype(np.int64)
    n = len(item_domain)
    return MultiDomainDataset(
        name="tiny", domains=["A", "B"], item_domain=item_domain.astype(np.int64),
        item_raw_id=[""] + [str(i) for i in range(1, n)], item_fields={}, item_text=[""] * n,
        user_raw_id=[f"u{u}" for u in range(len(sequences))], user_offsets=offsets,
        inter_item=np.concatenate(sequences).astype(np.int64),
        inter_role=np.full(offsets[-1], TRAIN, dtype=np.int8),
    )


def fake_run(dataset: MultiDomainDataset, max_len: int = 6):
    return SimpleNamespace(dataset=dataset, config=SimpleNamespace(data=SimpleNamespace(max_len=max_len)),
                           device=torch.device("cpu"), seed=0)


def tiny_model(dataset: MultiDomainDataset, max_len: int = 6, seed: int = 0, **params) -> SyNCRec:
    torch.manual_seed(seed)
    defaults = {"hidden": 8, "experts": 3, "layers": 1, "heads": 1, "dropout": 0.0, "attn_dropout": 0.0}
    return SyNCRec(
        SyNCRecParams(**{**defaults, **params}), dataset.n_items, torch.as_tensor(dataset.item_domain),
        [torch.as_tensor(i) for i in dataset.domain_items], max_len, dataset.domains,
    )
