"""The ``pointwise`` decoder: score every candidate with the model's (CTR-style) head, in chunks.

A pointwise head such as MAN's builds a ``[users, candidates, ...]`` tensor, so a whole catalogue
at once would not fit in memory; this decoder scores at most ``max_pairs`` (user, candidate) pairs
per call and returns exact scores, so ranks, ties and metrics are the evaluator's usual ones.

A model with ``user_state(history, domain)`` and ``score_state(state, domain, candidates)`` (MAN)
has its candidate-independent work (the encoders, pooling, group attention) done once per batch
of users instead of once per chunk; any other model is called through ``score(batch, candidates)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import nn

from mtrec.components import Params, Ranking

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


class PointwiseParams(Params):
    max_pairs: int = Field(32768, ge=1, description="(user, candidate) pairs scored per model call.")


class PointwiseDecoder:
    def __init__(self, params: PointwiseParams, run: "RunContext | None" = None) -> None:
        self.params = params

    def rank(self, model: nn.Module, batch: dict[str, torch.Tensor], candidates: torch.Tensor, k: int) -> Ranking:
        users = batch["target"].shape[0]
        chunk = max(1, self.params.max_pairs // max(users, 1))
        width = candidates.shape[-1]
        starts = range(0, width, chunk)
        domains = torch.unique(batch["domain"])
        if hasattr(model, "user_state") and domains.numel() == 1:
            d = int(domains[0])
            state = model.user_state(batch["history"], d)
            parts = [model.score_state(state, d, candidates[..., s : s + chunk]) for s in starts]
        else:
            parts = [model.score(batch, candidates[..., s : s + chunk]) for s in starts]
        return Ranking(scores=torch.cat(parts, dim=1))
