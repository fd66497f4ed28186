"""The ``man`` encoder: MAN (papers/man.md §3) generalised from two domains to any number.

Per domain ``d`` (local, domain-specific parameters): item embeddings ``M^d`` over the domain's
items, positional embeddings ``P^d``, an encoder, item-similarity attention, sequence-fusion
attention, group-prototype attention and the prediction MLP.  Shared by every domain (global):
item embeddings ``M`` over all items, positional embeddings ``P``, the global encoder, the group
prototypes ``G`` and the global prediction MLP ``MLP_g``.  The logit of a candidate is Eq. 14:
``MLP(e^{d_i} || s^{d_s} || g^{d_u} || s^d || M_c) + MLP_g(s^{d_g} || M_c)``; training is BCE over
the target and sampled negatives of its domain (Eq. 16-17; ``loss: softmax`` takes the cross-entropy
of the target among them instead), plus Eq. 13 and L2 (Eq. 18).

``variant`` gives the backbone study of Figure 3: ``single`` keeps only the local module (local
embeddings, local encoder, ``MLP(s^d || M^d_c)``), ``shared`` only the global one
(``MLP_g(s^{d_g} || M_c)``), ``cross`` is MAN.  ``isa`` / ``sfa`` / ``gpa`` switch the three
attention modules off for Table 3's ablations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from mtrec.builtins.domain_items import DomainItemTables, registered_domain_items
from mtrec.components import Encoder, Params
from mtrec.data.views import train_sequences
from mtrec.errors import ConfigError
from mtrec.training.stage import DomainLoss
from mtrec_mixed_attention.attention import (
    ConcatMLP,
    GroupPrototypeAttention,
    ItemSimilarityAttention,
    SequenceFusionAttention,
    disentanglement,
    masked_mean,
)
from mtrec_mixed_attention.backbone import EmbeddingBackbone, build_backbone

if TYPE_CHECKING:
    from mtrec.run_context import RunContext


# MAN's params for a backbone when `backbone_params` is not given.  Dropout 0.2 is ours (the paper gives
# none); the paper gives no backbone sizes either.  Any other backbone starts from its own defaults.
BACKBONE_DEFAULTS: dict[str, dict] = {
    "sasrec": {"layers": 2, "heads": 2, "dropout": 0.2, "attn_dropout": 0.2},
    "gru4rec": {"layers": 1, "dropout": 0.2},
}


class ManParams(Params):
    hidden: int = Field(20, ge=2, description="Embedding size D = D' (local and global; ISA adds them).")
    backbone: str = Field("sasrec", description="Registered encoder used as local and global encoder (e.g. sasrec, "
                                                 "gru4rec: Figure 3's backbones).")
    backbone_params: dict | None = Field(
        None,
        description="Params of the backbone (validated by its own params model; its hidden is set to `hidden`). "
                    "Unset or null: MAN's defaults for that backbone (BACKBONE_DEFAULTS: sasrec {layers: 2, heads: 2, "
                    "dropout: 0.2, attn_dropout: 0.2}, gru4rec {layers: 1, dropout: 0.2}, any other: its own defaults).",
    )
    groups: int = Field(10, ge=1, description="Group prototypes N_g (the paper searches 1, 5, 10, 20).")
    mlp: list[int] = Field(default_factory=lambda: [20, 10], min_length=1,
                           description="Hidden sizes of the local and global prediction MLPs.")
    isa_hidden: int | None = Field(None, ge=1, description="Hidden size of the item-similarity MLP (default: hidden).")
    variant: Literal["cross", "single", "shared"] = Field(
        "cross", description="cross = MAN; single = local module only; shared = global module only (Figure 3).")
    isa: bool = Field(True, description="Item-similarity attention (Eq. 5-6).")
    sfa: bool = Field(True, description="Sequence-fusion attention (Eq. 7-9).")
    gpa: bool = Field(True, description="Group-prototype attention and its disentanglement loss (Eq. 10-13).")
    train_negatives: int = Field(16, ge=1, description="Uniform negatives of the target's domain per training target.")
    loss: Literal["bce", "softmax"] = Field(
        "bce", description="bce: Eq. 16-17 over the target and its negatives; softmax: cross-entropy of the target "
                           "among them (the objective of the SURGE code base the paper builds on).")
    disentangle: float = Field(1e-3, ge=0, description="lambda_g of Eq. 13.")
    disentangle_normalize: bool = Field(True, description="Apply Eq. 13 to unit-normalised prototypes (bounded).")
    # §4.1.3: "Regularization coefficients are searched in [1e-7, 1e-5, 1e-3]"; the paper reports neither the
    # value it selected nor a sensitivity study of it.  1e-5: on 1,000 ArtsOffice users it is level with 1e-6
    # (the earlier default, outside the grid) and 1e-3 halves NDCG@10 (docs/benchmarks.md, `man` section);
    # 1e-7 was not run.
    l2: float = Field(1e-5, ge=0, description="lambda of Eq. 18: times the squared L2 norm of the parameters used "
                                              "(the paper searches 1e-7, 1e-5, 1e-3).")

    @model_validator(mode="after")
    def _ablations_need_cross(self) -> "ManParams":
        if self.variant != "cross" and not (self.isa and self.sfa and self.gpa):
            raise ValueError("isa/sfa/gpa ablations apply to variant 'cross' only")
        return self

    @model_validator(mode="after")
    def _backbone_defaults(self) -> "ManParams":
        if self.backbone_params is None:  # the resolved config shows the params actually used
            self.backbone_params = dict(BACKBONE_DEFAULTS.get(self.backbone, {}))
        return self


class MAN(Encoder):
    family = "discriminative"

    def __init__(self, params: ManParams, run: "RunContext") -> None:
        super().__init__()
        dataset = run.dataset
        self.params = params
        self.max_len = t = run.config.data.max_len
        self.domain_names = list(dataset.domains)
        d = params.hidden
        self.use_local = params.variant in ("cross", "single")
        self.use_global = params.variant in ("cross", "shared")
        self.cross = params.variant == "cross"
        # item_local is 1-based (0 = pad): the row of an item in its domain's local table M^d.
        tables = DomainItemTables.from_dataset(dataset, local_start=1)
        domain_items = tables.domain_items
        for i, items in enumerate(domain_items):
            if items.numel() < 2:
                raise ConfigError(f"encoder.name: MAN needs at least 2 items per domain; {dataset.domains[i]} has {items.numel()}")
        tables.register(self)

        def backbone() -> nn.Module:
            return build_backbone(params.backbone, params.backbone_params, d, run)

        n = len(domain_items)
        if self.use_local:
            self.local_items = nn.ModuleList(nn.Embedding(x.numel() + 1, d, padding_idx=0) for x in domain_items)
            self.local_positions = nn.Parameter(torch.empty(n, t, d))
            self.local_encoders = nn.ModuleList(backbone() for _ in range(n))
            n_parts = 2 + (self.cross and params.isa) + (self.cross and params.sfa) + (self.cross and params.gpa)
            self.local_heads = nn.ModuleList(ConcatMLP([d] * n_parts, params.mlp) for _ in range(n))
        if self.use_global:
            self.global_items = nn.Embedding(dataset.n_items + 1, d, padding_idx=0)
            self.global_positions = nn.Parameter(torch.empty(t, d))
            self.global_encoder = backbone()
            self.global_head = ConcatMLP([d, d], params.mlp)
        if self.cross and params.isa:
            self.isa = nn.ModuleList(ItemSimilarityAttention(d, params.isa_hidden or d) for _ in range(n))
        if self.cross and params.sfa:
            self.sfa = nn.ModuleList(SequenceFusionAttention(d) for _ in range(n))
        if self.cross and params.gpa:
            self.prototypes = nn.Parameter(torch.empty(params.groups, d))
            self.gpa = nn.ModuleList(GroupPrototypeAttention(d, params.groups, t) for _ in range(n))
        self._xavier()

    def _xavier(self) -> None:
        """Xavier initialisation (§4.1.3) of MAN's own layers and tables; backbones keep their own."""
        backbones = {id(p) for m in self.modules() if isinstance(m, EmbeddingBackbone) for p in m.parameters()}
        for name, p in self.named_parameters():
            if id(p) in backbones:
                continue
            if p.dim() >= 2:
                nn.init.xavier_uniform_(p.view(-1, p.shape[-1]) if p.dim() > 2 else p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        for table in ([*self.local_items] if self.use_local else []) + ([self.global_items] if self.use_global else []):
            with torch.no_grad():
                table.weight[0].zero_()

    def domain_items(self, d: int) -> torch.Tensor:
        return registered_domain_items(self, d)

    def item_embedding_rows(self, items: torch.Tensor) -> list[tuple[nn.Embedding, torch.Tensor, torch.Tensor]]:
        """Where ``items`` (global ids ``[N]``) keep their ID embeddings (``mtrec.embeddings``).

        The global table ``M`` is indexed by global id and holds every item; local table ``M^d`` holds
        the items of domain ``d`` at their 1-based index within it (``item_local``).  A variant
        without one of the modules has no such table.
        """
        items = items.to(self.item_local.device)
        real = items > 0  # padding is no item
        out: list[tuple[nn.Embedding, torch.Tensor, torch.Tensor]] = []
        if self.use_global:
            out.append((self.global_items, items, real))
        if self.use_local:
            domain, local = self.item_domain[items], self.item_local[items]
            for d, table in enumerate(self.local_items):
                held = real & (domain == d)
                out.append((table, torch.where(held, local, torch.zeros_like(local)), held))
        return out

    # ------------------------------------------------------------------ encoding (Eq. 1-4)
    def _embed(self, history: torch.Tensor, d: int, pad: torch.Tensor) -> dict[str, torch.Tensor]:
        """The user-side tensors of one domain's histories (everything that does not see a candidate)."""
        out: dict[str, torch.Tensor] = {}
        keep = (~pad).unsqueeze(-1).to(self.local_positions.dtype if self.use_local else self.global_positions.dtype)
        if self.use_local:
            e = (self.local_items[d](self.item_local[history]) + self.local_positions[d]) * keep
            out["E"], out["S"] = e, self.local_encoders[d](e, pad)
        if self.use_global:
            eg = (self.global_items(history) + self.global_positions) * keep
            out["Eg"], out["Sg"] = eg, self.global_encoder(eg, pad)
        return out

    def _user_parts(self, u: dict[str, torch.Tensor], d: int, pad: torch.Tensor) -> list[torch.Tensor]:
        """The candidate-independent inputs of the local MLP, each ``[B, 1, D]`` (Eq. 14's pooling)."""
        parts = []
        if self.cross and self.params.sfa:
            parts.append(masked_mean(self.sfa[d](u["S"], u["Sg"], pad), pad))
        if self.cross and self.params.gpa:
            parts.append(self.gpa[d](u["S"], pad, self.prototypes))
        parts.append(masked_mean(u["S"], pad))
        return [p.unsqueeze(1) for p in parts]

    def user_state(self, history: torch.Tensor, d: int) -> dict[str, torch.Tensor]:
        """Everything of domain ``d``'s histories ``[B, T]`` that does not depend on a candidate.

        Computed once per batch of users and reused for every chunk of candidates.
        """
        pad = history == 0
        u = self._embed(history, d, pad)
        state: dict[str, torch.Tensor] = {"pad": pad}
        if self.use_local:
            state["local"] = self._user_parts(u, d, pad)
        if self.cross and self.params.isa:
            state["fused"] = u["E"] + u["Eg"]
        if self.use_global:
            state["sg"] = masked_mean(u["Sg"], pad).unsqueeze(1)
        return state

    def score_state(self, state: dict[str, torch.Tensor], d: int, candidates: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` of candidates (``[C]`` shared or ``[B, C]``) of domain ``d`` (Eq. 14)."""
        cand = candidates.unsqueeze(0) if candidates.dim() == 1 else candidates  # [1|B, C]
        logits = None
        if self.use_local:
            target = self.global_items(cand) if self.cross else self.local_items[d](self.item_local[cand])
            parts = []
            if self.cross and self.params.isa:
                parts.append(self.isa[d](target, state["fused"], state["pad"]))
            logits = self.local_heads[d]([*parts, *state["local"], target]).squeeze(-1)
        if self.use_global:
            global_logits = self.global_head([state["sg"], self.global_items(cand)]).squeeze(-1)
            logits = global_logits if logits is None else logits + global_logits
        return logits.expand(state["pad"].shape[0], -1)

    def score_domain(self, history: torch.Tensor, d: int, candidates: torch.Tensor) -> torch.Tensor:
        return self.score_state(self.user_state(history, d), d, candidates)

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        history, domain = batch["history"], batch["domain"]
        out = None
        for d in torch.unique(domain).tolist():
            sel = domain == d
            cand = candidates if candidates.dim() == 1 else candidates[sel]
            part = self.score_domain(history[sel], d, cand)
            if out is None:
                out = part.new_zeros(history.shape[0], part.shape[1])
            out[sel] = part
        return out

    # ------------------------------------------------------------------ training (Eq. 16-18)
    def train_tensors(self, run: "RunContext", domains: list[int]) -> dict[str, torch.Tensor]:
        inputs, targets = prefix_examples(train_sequences(run.dataset, domains, "single"), self.max_len)
        return {"input": torch.as_tensor(inputs), "target": torch.as_tensor(targets)}

    def sample_negatives(self, target: torch.Tensor, d: int, k: int) -> torch.Tensor:
        """``[N, k]`` items of domain ``d`` drawn uniformly among those other than each target."""
        items = self.domain_items(d)
        r = torch.randint(items.numel() - 1, (target.shape[0], k), device=target.device)
        r = r + (r >= (self.item_local[target] - 1).unsqueeze(1)).long()  # skip the target's slot
        return items[r]

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        history, target = batch["input"], batch["target"]
        domain = self.item_domain[target]
        losses, counts = {}, {}
        k = self.params.train_negatives
        for d in torch.unique(domain).tolist():
            sel = domain == d
            t = target[sel]
            candidates = torch.cat([t.unsqueeze(1), self.sample_negatives(t, d, k)], dim=1)
            logits = self.score_domain(history[sel], d, candidates).float()
            if self.params.loss == "softmax":  # the target sits in column 0
                losses[self.domain_names[d]] = F.cross_entropy(logits, torch.zeros_like(t))
            else:
                labels = torch.zeros_like(logits)
                labels[:, 0] = 1.0
                losses[self.domain_names[d]] = F.binary_cross_entropy_with_logits(logits, labels)
            counts[self.domain_names[d]] = int(t.numel())
        extra = {}
        if self.cross and self.params.gpa and self.params.disentangle > 0:
            extra["disentangle"] = disentanglement(self.prototypes, self.params.disentangle, self.params.disentangle_normalize)
        if self.params.l2 > 0:
            params = [p for p in self.parameters() if p.requires_grad]
            extra["l2"] = self.params.l2 * torch.stack(torch._foreach_norm(params)).pow(2).sum()
        return DomainLoss(losses, counts, extra)


def prefix_examples(sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """One example per training target: the (left-padded, most recent ``max_len``) prefix before it.

    MAN's attention modules look at the whole sequence and at the target, so unlike SASRec's
    shifted windows every (prefix, next item) pair is its own example (as in the paper's code base).
    """
    inputs, targets = [], []
    for seq in sequences:
        if len(seq) < 2:
            continue
        padded = np.concatenate([np.zeros(max_len, dtype=np.int64), np.asarray(seq, dtype=np.int64)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, max_len)  # window i: items before position i
        inputs.append(windows[1 : len(seq)])
        targets.append(np.asarray(seq[1:], dtype=np.int64))
    if not inputs:
        return np.zeros((0, max_len), dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(inputs), np.concatenate(targets)


def build_man(params: ManParams, run: "RunContext") -> MAN:
    return MAN(params, run)
