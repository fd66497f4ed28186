"""MAN's mixed attention layer (papers/man.md §3.2) and prediction MLPs (§3.3), as plain modules.

Shapes: ``B`` users, ``T`` history positions (left-padded; ``pad`` is True at padding), ``D`` the
embedding size, ``C`` candidate items, ``N_g`` group prototypes.  Every module here is
domain-agnostic; the model keeps one instance per domain ("all functions are with dependent
parameters except that they are subscript with g") and shares only the prototypes ``G``.
"""

from __future__ import annotations

import math
from functools import reduce

import torch
import torch.nn.functional as F
from torch import nn


def masked_min(x: torch.Tensor) -> float:
    """The most negative finite value of ``x``'s dtype: a softmax weight of exactly 0 without NaN."""
    return torch.finfo(x.dtype).min


def masked_mean(x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Mean over the non-padding positions of ``x`` ``[B, T, D]`` -> ``[B, D]`` (the paper's pooling)."""
    keep = (~pad).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class ConcatMLP(nn.Module):
    """An MLP over a concatenation ``a || b || ...`` whose first layer is split per block.

    ``W [a || b] + c = W_a a + W_b b + c`` exactly, so the candidate-independent blocks (the user's
    pooled sequences) are projected once per user and broadcast over the candidates instead of being
    copied ``C`` times: what makes pointwise full ranking affordable.  Blocks broadcast against each
    other (``[B, 1, D]`` with ``[B, C, D]`` or ``[1, C, D]``).
    """

    def __init__(self, in_dims: list[int], hidden: list[int], out: int = 1) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("ConcatMLP needs at least one hidden layer")
        self.first = nn.ModuleList(nn.Linear(d, hidden[0], bias=i == 0) for i, d in enumerate(in_dims))
        self.rest = nn.Sequential(nn.ReLU(), mlp([*hidden, out]))

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        if len(parts) != len(self.first):
            raise ValueError(f"expected {len(self.first)} input blocks, got {len(parts)}")
        return self.rest(reduce(torch.add, (layer(p) for layer, p in zip(self.first, parts))))


class CrossAttention(nn.Module):
    """Eq. 8-9: ``softmax(Q W^Q (K W^K)^T / sqrt(D)) K W^V`` with padded keys masked out."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        logits = (self.q(query) @ self.k(keys).transpose(1, 2)) * self.scale  # [B, Q, T]
        logits = logits.masked_fill(pad.unsqueeze(1), masked_min(logits))
        return torch.softmax(logits, dim=-1) @ self.v(keys)


class ItemSimilarityAttention(nn.Module):
    """Eq. 5-6: target-aware attention over the fused item embeddings ``E^d + E^{d_g}``.

    ``F_t = MLP(M_target || x_t)`` with one hidden ReLU layer, softmax over the non-padding
    positions, then ``e^{d_i} = sum_t softmax(F)_t x_t`` (Eq. 14's pooling of ``E^{d_i}``).  The
    first layer is split (target part + position part), so ``[B, C, T, h]`` is the largest tensor.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.target = nn.Linear(dim, hidden)
        self.history = nn.Linear(dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1)

    def forward(self, target: torch.Tensor, fused: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``target`` ``[B or 1, C, D]``, ``fused`` ``[B, T, D]`` -> ``[B, C, D]``."""
        a = self.target(target).unsqueeze(2)  # [B|1, C, 1, h]
        b = self.history(fused).unsqueeze(1)  # [B, 1, T, h]
        scores = self.out(F.relu(a + b)).squeeze(-1)  # [B, C, T]
        scores = scores.masked_fill(pad.unsqueeze(1), masked_min(scores))
        return torch.softmax(scores, dim=-1) @ fused


class SequenceFusionAttention(nn.Module):
    """Eq. 7: ``S^{d_s} = MLP(CA(S^d, S^{d_g}) + S^d)``: local positions attend to the global sequence."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cross = CrossAttention(dim)
        self.mlp = mlp([dim, dim, dim])

    def forward(self, local: torch.Tensor, global_: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.cross(local, global_, pad) + local)


class GroupPrototypeAttention(nn.Module):
    """Eq. 10-12 for one domain: group-interest pooling and aggregation over shared prototypes.

    ``C = MLP(W^P S)`` scores the ``N_g`` groups from a learnable ``N_g x T`` pooling of the
    (padding-zeroed) sequence; ``G^d = MLP(CA(G, S))`` lets each shared prototype gather the
    sequence's related items; the user's group interest is ``sum_k softmax(C)_k G^d_k``.
    """

    def __init__(self, dim: int, groups: int, max_len: int) -> None:
        super().__init__()
        self.pool = nn.Parameter(torch.empty(groups, max_len))
        nn.init.xavier_uniform_(self.pool)
        self.relevance = mlp([dim, dim, 1])
        self.cross = CrossAttention(dim)
        self.mlp = mlp([dim, dim, dim])

    def forward(self, seq: torch.Tensor, pad: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """``seq`` ``[B, T, D]``, ``prototypes`` ``[N_g, D]`` -> ``g^{d_u}`` ``[B, D]``."""
        zeroed = seq.masked_fill(pad.unsqueeze(-1), 0.0)
        relevance = self.relevance(self.pool @ zeroed).squeeze(-1)  # [B, N_g]
        queries = prototypes.unsqueeze(0).expand(seq.shape[0], -1, -1)
        groups = self.mlp(self.cross(queries, seq, pad))  # [B, N_g, D]
        return (torch.softmax(relevance, dim=-1).unsqueeze(-1) * groups).sum(1)


def disentanglement(prototypes: torch.Tensor, weight: float, normalize: bool = True) -> torch.Tensor:
    """Eq. 13: ``-lambda_g sum_{i<j} ||G_i - G_j||^2``.

    Uses ``sum_{i<j} ||G_i - G_j||^2 = N_g sum_k ||G_k||^2 - ||sum_k G_k||^2`` (no square roots, so
    no NaN gradient at equal prototypes).  With ``normalize`` the prototypes are unit-normalised
    first: Eq. 13 on raw prototypes is unbounded below (it is minimised by pushing them to
    infinity), so only the directions are pushed apart.
    """
    g = F.normalize(prototypes, dim=-1) if normalize else prototypes
    spread = g.shape[0] * g.pow(2).sum() - g.sum(0).pow(2).sum()
    return -weight * spread
