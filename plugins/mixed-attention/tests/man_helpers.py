"""Helpers of the mixed-attention tests: a tiny 3-domain dataset and a run over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mtrec.config import resolve
from mtrec.data.model import MultiDomainDataset
from mtrec.plugins import Plugins
from mtrec.run_context import RunContext

TINY = ["encoder.params.hidden=8", "encoder.params.mlp=[8, 4]", "encoder.params.groups=3",
        "encoder.params.backbone_params={layers: 1, heads: 2, dropout: 0.0, attn_dropout: 0.0}", "data.max_len=5"]


def toy_dataset() -> MultiDomainDataset:
    """Three domains (items 1-4: A, 5-7: B, 8-10: C); six users, some in several domains."""
    item_domain = np.array([-1, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    seqs = [[1, 5, 2, 6, 3, 7, 4], [2, 3, 4, 1], [5, 6, 7, 8, 9, 10], [8, 9, 10, 1, 2, 3], [4, 3, 2], [6, 5, 7]]
    offsets = np.cumsum([0] + [len(s) for s in seqs])
    inter_item = np.concatenate([np.array(s) for s in seqs])
    from mtrec.data.assemble import leave_one_out_roles

    roles = leave_one_out_roles(offsets, item_domain[inter_item])
    names = [""] + [f"i{i}" for i in range(1, 11)]
    return MultiDomainDataset(
        name="toy", domains=["A", "B", "C"], item_domain=item_domain, item_raw_id=names,
        item_fields={"title": names}, item_text=names, user_raw_id=[f"u{u}" for u in range(len(seqs))],
        user_offsets=offsets, inter_item=inter_item, inter_role=roles,
    )


def make_run(plugins: Plugins, tmp: Path, overrides: list[str] = ()) -> RunContext:
    resolved = resolve(plugins.catalogue, "man", overrides=[*TINY, *overrides])
    return RunContext(resolved, toy_dataset(), plugins, torch.device("cpu"), tmp, progress=False)
