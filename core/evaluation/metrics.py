"""Rank-based metrics.  Every function works on 0-based ranks of the target item.

A rank is the number of candidates placed before the target.  Ties are broken
deterministically: a candidate with the same score counts as placed before the target when its
global item id is smaller (so results never depend on sort stability or hardware).  A target
absent from a decoder's top-k list gets rank ``MISS`` (it counts as a miss for every K up to the
list's length, and contributes 0 to MRR).
"""

from __future__ import annotations

import math

import numpy as np
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
    below the target (ties broken by item id), averaged over examples.  The evaluator adds
    :func:`pooled_auc` and :func:`group_auc` from the scores themselves.
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


def pooled_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of all targets' scores ``[E]`` against all negatives' scores ``[E, N]`` pooled together.

    The CTR-style "AUC" of MAN's and SURGE's tables: every (target, negative) pair counts, across
    users too, so it also measures how comparable scores are between users.  Ties count one half.
    """
    from sklearn.metrics import roc_auc_score

    pos, neg = np.asarray(pos, dtype=np.float64).ravel(), np.asarray(neg, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    labels = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    return float(roc_auc_score(labels, np.concatenate([pos, neg])))


def group_auc(pos: np.ndarray, neg: np.ndarray, groups: np.ndarray) -> float:
    """GAUC: the AUC within each group (user) over its targets ``pos`` and their negatives ``neg``
    ``[E, N]``, averaged with each group weighted by its number of scored candidates (targets +
    negatives), as in the "group AUC" (WAUC) of DIN/SURGE/MAN.  Ties count one half.
    """
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64).reshape(pos.size, -1)
    order = np.argsort(np.asarray(groups), kind="stable")
    bounds = np.flatnonzero(np.diff(np.asarray(groups)[order])) + 1
    total, weight = 0.0, 0
    for sel in np.split(order, bounds):  # the examples of one group
        p, q = pos[sel], neg[sel].ravel()
        if p.size == 0 or q.size == 0:
            continue
        auc = ((p[:, None] > q[None, :]).mean() + 0.5 * (p[:, None] == q[None, :]).mean())
        w = p.size + q.size
        total += auc * w
        weight += w
    return total / weight if weight else float("nan")
