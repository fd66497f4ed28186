"""ACMoE: the asymmetric cooperative multi-gate mixture of sequential experts (papers/syncrec.md §4.2).

K transformer experts (each its own :class:`mtrec.builtins.transformer.TransformerStack`, so its
own parameters) encode every sequence of a batch -- the cross-domain rows and the single-domain
rows together, in one pass per expert.  Each row then mixes the experts with the gate of its
*group* (one gate per domain for single-domain rows, one cross-domain gate) and goes through
that group's tower.

The asymmetric split (Eq. 2 and 4): experts ``0..j-1`` receive gradients only from cross-domain
rows, experts ``j..K-1`` only from single-domain rows; the forward pass is unchanged (SG is the
identity).  ``stop_gradient=False`` gives the vanilla multi-gate MoE of ablation (C).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from mtrec.builtins.transformer import TransformerStack


class Tower(nn.Module):
    """h^d / h^cross: a feed-forward network with layer normalisation (residual, post-norm)."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.drop(self.ff(x)))


class ACMoE(nn.Module):
    """Groups ``0..n_domains-1`` are the single-domain tasks, group ``n_domains`` the cross task."""

    def __init__(
        self,
        hidden: int,
        n_domains: int,
        experts: int,
        cross_experts: int,
        layers: int,
        heads: int,
        inner: int,
        dropout: float,
        attn_dropout: float,
        max_len: int,
        gate: Literal["position", "sequence"] = "position",
        stop_gradient: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= cross_experts < experts:
            raise ValueError(f"cross_experts must be in [1, experts), got {cross_experts} of {experts}")
        self.n_domains = n_domains
        self.cross_experts = cross_experts
        self.gate_kind = gate
        self.stop_gradient = stop_gradient
        self.max_len = max_len
        self.experts = nn.ModuleList(
            TransformerStack(hidden, heads, layers, inner, dropout, attn_dropout) for _ in range(experts)
        )
        gate_in = hidden if gate == "position" else hidden * max_len
        self.gates = nn.ModuleList(nn.Linear(gate_in, experts) for _ in range(n_domains + 1))
        self.towers = nn.ModuleList(Tower(hidden, dropout) for _ in range(n_domains + 1))

    @property
    def cross_group(self) -> int:
        return self.n_domains

    def gate_weights(self, e: torch.Tensor, group: int) -> torch.Tensor:
        """``[n, T, K]`` softmax over experts (Eq. 3).

        ``position``: one distribution per step from that step's input (causal);
        ``sequence``: one per sequence from the flattened ``[T * r]`` input, ``W_g in R^{K x rT}``
        as Eq. 3 writes it (it sees the whole window, see the README).
        """
        if self.gate_kind == "position":
            return torch.softmax(self.gates[group](e), dim=-1)
        weights = torch.softmax(self.gates[group](e.flatten(1)), dim=-1)
        return weights.unsqueeze(1).expand(-1, e.shape[1], -1)

    def expert_outputs(self, e: torch.Tensor, padding: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """``[N, T, K, r]``: every expert on every row, with the asymmetric stop-gradient applied."""
        is_cross = (group == self.cross_group)[:, None, None]
        outs = []
        for k, expert in enumerate(self.experts):
            y = expert(e, padding)
            if self.stop_gradient:
                # Eq. 2/4: SG on experts < j for single rows, on experts >= j for cross rows.
                frozen = ~is_cross if k < self.cross_experts else is_cross
                y = torch.where(frozen, y.detach(), y)
            outs.append(y)
        return torch.stack(outs, dim=2)

    def forward(self, e: torch.Tensor, padding: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """``e`` ``[N, T, r]`` embedded rows, ``padding`` ``[N, T]``, ``group`` ``[N]`` -> ``[N, T, r]``."""
        experts = self.expert_outputs(e, padding, group)
        out = e.new_zeros(e.shape)
        for g in torch.unique(group).tolist():
            idx = torch.nonzero(group == g).squeeze(1)
            weights = self.gate_weights(e[idx], g)
            mixed = (weights.unsqueeze(-1) * experts[idx]).sum(dim=2)
            out = out.index_copy(0, idx, self.towers[g](mixed))
        return out
