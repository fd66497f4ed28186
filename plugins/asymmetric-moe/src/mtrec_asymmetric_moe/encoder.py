"""The ``syncrec`` encoder (papers/syncrec.md §4): shared embedding, ACMoE, BPR per task, SC-MIM.

One training example is a window of a user's cross-domain sequence together with its split into
single-domain sequences (:mod:`.data`).  ``loss`` returns a :class:`DomainLoss` whose keys are
``single/<domain>`` (Eq. 8, the mean BPR of the domain's single-domain targets) and
``cross/<domain>`` (Eq. 9, the mean BPR of the cross-domain targets that belong to the domain),
so the ``ntg-weighting`` strategy can compute the negative transfer gap and correct the cross
loss (Eq. 10-12) without knowing this model.  SC-MIM (Eq. 16-17), weighted by ``1 - eta`` as in
Eq. 18, comes back in ``extra``; ``task_weight`` tells the strategy the ``eta`` of the task terms.
Prediction uses the cross-domain representation of the last step only (Eq. 19).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from mtrec.builtins.domain_items import DomainItemTables
from mtrec.builtins.transformer import init_weights
from mtrec.components import Encoder, Params
from mtrec.training.stage import DomainLoss
from mtrec_asymmetric_moe.acmoe import ACMoE
from mtrec_asymmetric_moe.data import two_view_windows, user_train_sequences
from mtrec_asymmetric_moe.losses import bpr, sc_mim

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


class SyNCRecParams(Params):
    hidden: int = Field(128, ge=4, description="Embedding size r (§5.2.3: 128).")
    experts: int = Field(4, ge=2, description="Number of transformer experts K (§5.2.3: 4 on Amazon, 5 on Telco).")
    cross_expert_ratio: float = Field(
        0.8, gt=0, le=1,
        description="Share of the K experts trained only by the cross-domain task: j = max(1, int(K * ratio)) "
                    "(official code: cross_expert_num = int(expert_num * 0.8); §5.6: 3 of 5 did best). "
                    "0.2 gives the j = 0.2 K of §4.2 (j = 1 for K = 4).")
    cross_experts: int | None = Field(
        None, ge=1, description="j set directly (experts trained only by the cross-domain task); overrides "
                                "cross_expert_ratio.")
    layers: int = Field(2, ge=1, description="Transformer blocks per expert.")
    heads: int = Field(1, ge=1, description="Attention heads per block (§5.2.3: single-head).")
    inner: int | None = Field(None, ge=1, description="Expert feed-forward width (default r, as W_1 in Eq. 7).")
    dropout: float = Field(0.2, ge=0, lt=1)
    attn_dropout: float = Field(0.2, ge=0, lt=1)
    gate: Literal["position", "sequence"] = Field(
        "position", description="Gate input: each step (causal) or the flattened window (Eq. 3 literally).")
    stop_gradient: bool = Field(True, description="The asymmetric SG split; false = vanilla MoE (ablation C).")
    sc_mim: bool = Field(True, description="The SC-MIM auxiliary loss; false = ablation (B).")
    eta: float = Field(0.9, gt=0, le=1, description="Harmonic factor of Eq. 18: eta * task losses + (1 - eta) * SC-MIM.")
    bpr_on: Literal["logits", "sigmoid"] = Field(
        "logits", description="BPR on dot products, or on sigma(dot products) as Eq. 8 writes P.")

    @property
    def n_cross_experts(self) -> int:
        """j: ``cross_experts`` if set, else the official ``int(K * cross_expert_ratio)``, at least 1."""
        if self.cross_experts is not None:
            return self.cross_experts
        # The official formula floors (K 4 -> 3, K 5 -> 4 at 0.8).  At least one expert: prediction
        # reads only the cross path (Eq. 19), and with j = 0 no expert would be trained by the
        # cross-domain task -- the cross path would mix experts that only the single-domain tasks
        # shaped (and ACMoE refuses j = 0).  A small ratio (0.2 with K = 4) thus still gives j = 1.
        return max(1, int(self.experts * self.cross_expert_ratio))

    @model_validator(mode="after")
    def _check(self) -> "SyNCRecParams":
        if self.n_cross_experts >= self.experts:
            source = ("cross_experts" if self.cross_experts is not None else
                      f"cross_expert_ratio {self.cross_expert_ratio} gives cross_experts")
            raise ValueError(
                f"{source} = {self.n_cross_experts}, which must be smaller than experts ({self.experts}): "
                "some experts must learn from the single-domain tasks (every expert trained by both tasks "
                "is stop_gradient=false, ablation C)")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class SyNCRec(Encoder):
    family = "discriminative"

    def __init__(self, params: SyNCRecParams, n_items: int, item_domain: torch.Tensor,
                 domain_items: list[torch.Tensor], max_len: int, domain_names: list[str]) -> None:
        super().__init__()
        self.params = params
        self.max_len = max_len
        self.domain_names = list(domain_names)
        self.task_weight = params.eta  # read by ntg-weighting: eta of Eq. 18 on the task losses
        r = params.hidden
        self.item_embedding = nn.Embedding(n_items + 1, r, padding_idx=0)  # M, shared by both views
        self.position_embedding = nn.Embedding(max_len, r)  # P
        self.norm = nn.LayerNorm(r, eps=1e-12)
        self.drop = nn.Dropout(params.dropout)
        self.moe = ACMoE(
            r, len(domain_names), params.experts, params.n_cross_experts, params.layers, params.heads,
            params.inner or r, params.dropout, params.attn_dropout, max_len, params.gate, params.stop_gradient,
        )
        init_weights(self)
        # W^H of Eq. 17; identity at start so rho begins as sigma(u . v).
        self.mim_weight = nn.Parameter(torch.eye(r)) if params.sc_mim else None
        # item_domain, and domain_start / domain_size / domain_pool for drawing per-domain negatives.
        DomainItemTables.build(item_domain, domain_items, n_items).register(
            self, item_local=False, domain_items=False, pool=True)

    # ------------------------------------------------------------------ encoding
    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """E = M(x) + P for left-padded ``[N, T]`` ids (then layer norm and dropout)."""
        t = items.shape[1]
        positions = torch.arange(t, device=items.device).unsqueeze(0) + (self.max_len - t)
        return self.drop(self.norm(self.item_embedding(items) + self.position_embedding(positions)))

    def represent(self, items: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """``[N, T, r]`` outputs Y of the rows' tasks (group d < D: single-domain d; D: cross)."""
        return self.moe(self.embed(items), items == 0, group)

    def cross_representation(self, items: torch.Tensor) -> torch.Tensor:
        group = torch.full((items.shape[0],), self.moe.cross_group, dtype=torch.long, device=items.device)
        return self.represent(items, group)

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        """Eq. 19: ``(y_T)^cross . M(x)`` for the candidates of the target domain."""
        user = self.cross_representation(batch["history_cross"])[:, -1]
        items = self.item_embedding(candidates)
        if candidates.dim() == 1:
            return user @ items.T
        return torch.einsum("bh,bch->bc", user, items)

    # ------------------------------------------------------------------ training
    def train_tensors(self, run: "RunContext", domains: list[int]) -> dict[str, torch.Tensor]:
        dataset = run.dataset
        sequences = user_train_sequences(dataset, domains)
        windows = two_view_windows(sequences, dataset.item_domain, len(dataset.domains), run.config.data.max_len)
        return {k: torch.as_tensor(v) for k, v in windows.items()}

    def negatives(self, domain: torch.Tensor) -> torch.Tensor:
        """One item drawn uniformly from each target's domain."""
        offset = (torch.rand(domain.shape, device=domain.device) * self.domain_size[domain]).long()
        return self.domain_pool[self.domain_start[domain] + offset]

    def task_losses(self, task: str, hidden: torch.Tensor, target: torch.Tensor, out: DomainLoss) -> None:
        """Mean BPR per domain of the task's targets into ``out`` under ``task/<domain>``."""
        valid = target > 0
        h, pos = hidden[valid], target[valid]
        domain = self.item_domain[pos]
        neg = self.negatives(domain)
        per_target = bpr((h * self.item_embedding(pos)).sum(-1), (h * self.item_embedding(neg)).sum(-1),
                         self.params.bpr_on)
        for d in torch.unique(domain).tolist():
            sel = domain == d
            key = f"{task}/{self.domain_names[d]}"
            out.losses[key] = per_target[sel].mean()
            out.counts[key] = int(sel.sum())

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        b, n_dom, t = batch["single_input"].shape
        flat_target = batch["single_target"].reshape(b * n_dom, t)
        rows = torch.nonzero((flat_target > 0).any(dim=1)).squeeze(1)  # (window, domain) pairs with targets
        s_input = batch["single_input"].reshape(b * n_dom, t)[rows]
        s_domain, s_window = rows % n_dom, rows // n_dom
        items = torch.cat([batch["input"], s_input])
        group = torch.cat([torch.full((b,), self.moe.cross_group, device=items.device, dtype=torch.long), s_domain])
        out = self.represent(items, group)
        y_cross, y_single = out[:b], out[b:]

        result = DomainLoss({}, {})
        self.task_losses("cross", y_cross, batch["target"], result)
        self.task_losses("single", y_single, flat_target[rows], result)
        if self.mim_weight is not None and rows.numel():
            positions = batch["single_pos"].reshape(b * n_dom, t)[rows]
            mim = self.mim_loss(y_single, y_cross, positions, s_domain, s_window, batch["user"])
            result.extra["sc_mim"] = (1.0 - self.params.eta) * mim
        return result

    def mim_loss(self, y_single: torch.Tensor, y_cross: torch.Tensor, positions: torch.Tensor,
                 domain: torch.Tensor, window: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Sum over domains of Eq. 16, each view mean-pooled over the same interactions."""
        valid = (positions >= 0).unsqueeze(-1).to(y_single.dtype)
        n = valid.sum(dim=1).clamp(min=1)
        single = (y_single * valid).sum(dim=1) / n
        aligned = y_cross[window.unsqueeze(1), positions.clamp(min=0)]  # [R, T, r]: same interactions
        cross = (aligned * valid).sum(dim=1) / n
        total = y_single.new_zeros(())
        for d in torch.unique(domain).tolist():
            sel = domain == d
            if int(sel.sum()) >= 2:
                total = total + sc_mim(single[sel], cross[sel], self.mim_weight, users[window[sel]])
        return total


def build_syncrec(params: SyNCRecParams, run: "RunContext") -> SyNCRec:
    dataset = run.dataset
    return SyNCRec(
        params,
        dataset.n_items,
        torch.as_tensor(dataset.item_domain),
        [torch.as_tensor(items) for items in dataset.domain_items],
        run.config.data.max_len,
        dataset.domains,
    )
