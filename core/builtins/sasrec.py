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
from pydantic import Field
from torch import nn

from mtrec.builtins.domain_items import DomainItemTables
from mtrec.builtins.next_item import NextItemEncoder
from mtrec.builtins.transformer import TransformerStack, init_weights
from mtrec.components import Params

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


class SASRec(NextItemEncoder):
    """The history's hidden states come from causal self-attention; objectives, scoring and
    training windows are :class:`NextItemEncoder`'s."""

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

    # ------------------------------------------------------------------ encoding
    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` left-padded item ids -> ``[B, T, H]`` hidden states."""
        t = items.shape[1]
        positions = torch.arange(t, device=items.device).unsqueeze(0)
        x = self.item_embedding(items) + self.position_embedding(positions + (self.max_len - t))
        x = self.drop(self.norm(x))
        return self.encoder(x, items == 0)


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
