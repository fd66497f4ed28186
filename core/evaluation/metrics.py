"""Rank-based metrics.  Every function works on 0-based ranks of the target item.

A rank is the number of candidates placed before the target.  Ties are broken
deterministically: a candidate with the same score counts as placed before the target when its
global item id is smaller (so results never depend on sort stability or hardware).  A target
absent from a decoder's top-k list gets rank ``MISS`` (it counts as a miss for every K up to the
list's length, and contributes 0 to MRR).
"""

from __future__ import annotations

import math

import torch

MISS = 1 << 30


def ranks_from_scores(scores: torch.Tensor, candidates: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Ranks of ``target`` ``[B]`` among ``candidates`` (``[C]`` or ``[B, C]``) scored ``[B, C]``.

    A target missing from its candidate row gets :data:`MISS`.
    """
    if candidates.dim() == 1:
        candidates = candidates.unsqueeze(0).expand(scores.shape[0], -1)
    is_target = candidates == target.unsqueeze(1)
    present = is_target.any(dim=1)
    target_score = torch.where(is_target, scores, torch.full_like(scores, -math.inf)).max(dim=1).values
    ahead = (scores > target_score.unsqueeze(1)) | (
        (scores == target_score.unsqueeze(1)) & (candidates < target.unsqueeze(1))
    )
    ranks = ahead.sum(dim=1)
    return torch.where(present, ranks, torch.full_like(ranks, MISS))


def ranks_from_topk(topk: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Ranks of ``target`` in ranked lists ``topk`` ``[B, K]`` (``MISS`` when absent)."""
    hit = topk == target.unsqueeze(1)
    first = torch.argmax(hit.to(torch.int64), dim=1)
    return torch.where(hit.any(dim=1), first, torch.full_like(first, MISS))


def metric_values(ranks: torch.Tensor, ks: list[int], n_candidates: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-example metric values: ``recall@K`` (equal to HR@K with one target), ``ndcg@K``, ``mrr``.

    With ``n_candidates`` (sampled protocol) ``auc`` is added: the share of negatives ranked
    below the target.
    """
    ranks = ranks.to(torch.float64)
    hit = ranks < MISS
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        within = ranks < k
        out[f"recall@{k}"] = within.to(torch.float64)
        out[f"ndcg@{k}"] = torch.where(within, 1.0 / torch.log2(ranks + 2.0), torch.zeros_like(ranks))
    out["mrr"] = torch.where(hit, 1.0 / (ranks + 1.0), torch.zeros_like(ranks))
    if n_candidates is not None:
        negatives = (n_candidates.to(torch.float64) - 1.0).clamp(min=1.0)
        out["auc"] = torch.where(hit, 1.0 - ranks / negatives, torch.zeros_like(ranks))
    return out
