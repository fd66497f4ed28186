"""SASRec (Kang & McAuley, 2018): a causal self-attention next-item model.

Trained on every position of each training window.  The loss of a position is computed over the
items of its target's domain only and kept per domain so transfer strategies can weight domains:
cross-entropy over the domain's items (default), BPR, or the original paper's binary cross-entropy
(``bce``: the target against ``negatives`` uniform draws from its domain -- the loss MAN and most
CDSR papers train every baseline with, so comparisons at their protocol use it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mtrec.builtins.domain_items import DomainItemTables, registered_domain_items
from mtrec.builtins.transformer import TransformerStack, init_weights
from mtrec.components import Encoder, Params
from mtrec.data.views import next_item_windows, train_sequences
from mtrec.training.stage import DomainLoss

if TYPE_CHECKING:
    from mtrec.components import Run


class SASRecParams(Params):
    hidden: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    inner: int | None = Field(None, description="Feed-forward width (default 4 x hidden).")
    dropout: float = Field(0.5, ge=0, lt=1)
    attn_dropout: float = Field(0.5, ge=0, lt=1)
    loss: Literal["ce", "bpr", "bce"] = "ce"
    negatives: int = Field(1, ge=1, description="Uniform negatives per target for loss=bpr|bce (ignored by ce).")
    view: Literal["single", "cross"] = Field(
        "single", description="History view: the target domain's items only, or all domains merged."
    )


class SASRec(Encoder):
    family = "discriminative"

    def __init__(self, params: SASRecParams, n_items: int, item_domain: torch.Tensor,
                 domain_items: list[torch.Tensor], max_len: int, domain_names: list[str]) -> None:
        super().__init__()
        self.params = params
        self.max_len = max_len
        self.item_embedding = nn.Embedding(n_items + 1, params.hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, params.hidden)
        self.norm = nn.LayerNorm(params.hidden, eps=1e-12)
        self.drop = nn.Dropout(params.dropout)
        self.encoder = TransformerStack(
            params.hidden, params.heads, params.layers, params.inner or 4 * params.hidden,
            params.dropout, params.attn_dropout,
        )
        # item_domain, item_local (0-based: per-domain softmax targets) and domain_items_{d}.
        DomainItemTables.build(item_domain, domain_items, n_items).register(self)
        self.domain_names = list(domain_names)
        init_weights(self)

    def domain_items(self, d: int) -> torch.Tensor:
        return registered_domain_items(self, d)

    # ------------------------------------------------------------------ encoding
    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` left-padded item ids -> ``[B, T, H]`` hidden states."""
        t = items.shape[1]
        positions = torch.arange(t, device=items.device).unsqueeze(0)
        x = self.item_embedding(items) + self.position_embedding(positions + (self.max_len - t))
        x = self.drop(self.norm(x))
        return self.encoder(x, items == 0)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        history = batch["history_cross"] if self.params.view == "cross" else batch["history"]
        return self.sequence_output(history)[:, -1]

    def item_representation(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_embedding(items)

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        user = self.user_embedding(batch)
        items = self.item_embedding(candidates)
        if candidates.dim() == 1:
            return user @ items.T
        return torch.einsum("bh,bch->bc", user, items)

    # ------------------------------------------------------------------ training
    def train_tensors(self, run: "Run", domains: list[int]) -> dict[str, torch.Tensor]:
        seqs = train_sequences(run.dataset, domains, self.params.view)
        inputs, targets = next_item_windows(seqs, run.config.data.max_len)
        return {"input": torch.as_tensor(inputs), "target": torch.as_tensor(targets)}

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        hidden = self.sequence_output(batch["input"])
        target = batch["target"]
        valid = target > 0
        hidden, target = hidden[valid], target[valid]
        domain = self.item_domain[target]
        losses, counts = {}, {}
        for d in torch.unique(domain).tolist():
            sel = domain == d
            h, t = hidden[sel], target[sel]
            items = self.domain_items(d)
            if self.params.loss == "ce":
                logits = h @ self.item_embedding(items).T
                loss = F.cross_entropy(logits.float(), self.item_local[t])
            else:
                loss = self._sampled_loss(h, t, items)
            losses[self.domain_names[d]] = loss
            counts[self.domain_names[d]] = int(t.numel())
        return DomainLoss(losses, counts)

    def _sampled_loss(self, h: torch.Tensor, t: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """BPR or BCE of each target against uniform negatives from its domain.  Unlike the original
        SASRec code, items of the user's history may be drawn (as MAN's negatives may): a draw per
        user would need the history here, and on catalogues of thousands it rarely matters."""
        k = self.params.negatives
        shape = t.shape if k == 1 else (*t.shape, k)  # k == 1 keeps the draw of earlier releases
        neg = items[torch.randint(items.numel(), shape, device=t.device)].view(t.numel(), k)
        pos_s = (h * self.item_embedding(t)).sum(-1).float()
        neg_s = torch.einsum("nh,nkh->nk", h, self.item_embedding(neg)).float()
        if self.params.loss == "bpr":
            return -F.logsigmoid(pos_s.unsqueeze(1) - neg_s).mean()
        return -(F.logsigmoid(pos_s).mean() + F.logsigmoid(-neg_s).sum(1).mean())


def build_sasrec(params: SASRecParams, run: "Run") -> SASRec:
    dataset = run.dataset
    return SASRec(
        params,
        dataset.n_items,
        torch.as_tensor(dataset.item_domain),
        [torch.as_tensor(items) for items in dataset.domain_items],
        run.config.data.max_len,
        dataset.domains,
    )
