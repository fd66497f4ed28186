"""``topk`` decoder: rank the target domain's items by the encoder's score.

``index: exact`` scores every candidate (exact ranks, ties broken by item id).  ``index: faiss``
answers from a faiss inner-product index over the domain's item representations (flat, or HNSW
for large catalogues); it returns a top-k list, so targets beyond k count as misses.  The index is
rebuilt whenever the model's parameters change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from mtrec.components import Params, Ranking

if TYPE_CHECKING:
    from mtrec.components import Run


class TopKParams(Params):
    index: Literal["exact", "faiss"] = "exact"
    faiss_type: Literal["flat", "hnsw"] = "flat"
    hnsw_m: int = Field(32, ge=4)


class TopKDecoder:
    def __init__(self, params: TopKParams, run: "Run | None" = None) -> None:
        self.params = params
        self._indexes: dict[tuple, object] = {}

    def rank(self, model: nn.Module, batch: dict[str, torch.Tensor], candidates: torch.Tensor, k: int) -> Ranking:
        if self.params.index == "exact" or candidates.dim() == 2:
            return Ranking(scores=model.score(batch, candidates))
        return Ranking(topk=self._faiss_topk(model, batch, candidates, k))

    def _faiss_topk(self, model: nn.Module, batch: dict[str, torch.Tensor], candidates: torch.Tensor, k: int) -> torch.Tensor:
        import faiss

        version = sum(p._version for p in model.parameters())
        key = (id(model), int(candidates[0]), candidates.numel(), version)
        index = self._indexes.get(key)
        if index is None:
            vectors = model.item_representation(candidates).float().detach().cpu().numpy()
            vectors = np.ascontiguousarray(vectors)
            dim = vectors.shape[1]
            if self.params.faiss_type == "hnsw":
                index = faiss.IndexHNSWFlat(dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexFlatIP(dim)
            index.add(vectors)
            self._indexes = {key: index}  # one live index: older ones belong to stale parameters
        users = np.ascontiguousarray(model.user_embedding(batch).float().detach().cpu().numpy())
        _, positions = index.search(users, min(k, candidates.numel()))
        positions = torch.as_tensor(positions, device=candidates.device)
        return torch.where(positions >= 0, candidates[positions.clamp(min=0)], torch.zeros_like(positions))
