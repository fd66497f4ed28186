"""GRU4Rec (Hidasi et al., ICLR 2016) as an mtrec encoder.

A GRU reads the history item by item; its hidden state after the last item, projected back to
the embedding size, is scored against item embeddings by dot product.  Training follows the
"improved" GRU4Rec of Hidasi & Karatzoglou (2018) and RecBole: every position of every training
window predicts the next item with a softmax cross-entropy, here over the items of the target
item's own domain only (a multi-domain model must not push down other domains' items), kept per
domain so transfer strategies can weight domains.

Histories arrive left-padded (mtrec's convention).  A GRU would otherwise run over the leading
padding and start every sequence from a state that depends on how short it is, so sequences are
right-aligned and packed (``pack_padded_sequence``): the recurrence starts at the first real
item from a zero state, as in the paper's session-parallel mini-batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mtrec.builtins.domain_items import DomainItemTables, registered_domain_items
from mtrec.components import Encoder, Params
from mtrec.data.views import next_item_windows, train_sequences
from mtrec.training.stage import DomainLoss

if TYPE_CHECKING:
    from mtrec.components import Run


class Gru4RecParams(Params):
    embedding: int = Field(64, ge=4, description="Item embedding size (also the output size scored against items).")
    hidden: int = Field(128, ge=4, description="GRU hidden size.")
    layers: int = Field(1, ge=1, description="Stacked GRU layers.")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout on the input embeddings.")
    view: Literal["single", "cross"] = Field(
        "single", description="History view: the target domain's items only, or all domains merged."
    )


def shift_padding(items: torch.Tensor, lengths: torch.Tensor, to: Literal["right", "left"]) -> torch.Tensor:
    """Move each row's ``lengths[b]`` real entries from one end of ``items`` ``[B, T, ...]`` to the other.

    ``to="right"`` turns left padding into right padding (what ``pack_padded_sequence`` reads);
    ``to="left"`` undoes it.  Padding positions come back as zeros.
    """
    t = items.shape[1]
    pad = (t - lengths).unsqueeze(1)  # [B, 1]
    pos = torch.arange(t, device=items.device).unsqueeze(0)  # [1, T]
    source = pos + pad if to == "right" else pos - pad
    valid = (pos < lengths.unsqueeze(1)) if to == "right" else (pos >= pad)
    index = source.clamp(0, t - 1)
    if items.dim() == 3:
        index = index.unsqueeze(-1).expand(-1, -1, items.shape[-1])
        valid = valid.unsqueeze(-1)
    return torch.gather(items, 1, index) * valid


class Gru4Rec(Encoder):
    family = "discriminative"

    def __init__(self, params: Gru4RecParams, n_items: int, item_domain: torch.Tensor,
                 domain_items: list[torch.Tensor], domain_names: list[str]) -> None:
        super().__init__()
        self.params = params
        self.item_embedding = nn.Embedding(n_items + 1, params.embedding, padding_idx=0)
        self.drop = nn.Dropout(params.dropout)
        self.gru = nn.GRU(params.embedding, params.hidden, params.layers, batch_first=True)
        self.project = nn.Linear(params.hidden, params.embedding)
        nn.init.xavier_normal_(self.item_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        # item_domain, item_local (each item's index within its domain) and domain_items_{d}.
        DomainItemTables.build(item_domain, domain_items, n_items).register(self)
        self.domain_names = list(domain_names)

    def domain_items(self, d: int) -> torch.Tensor:
        return registered_domain_items(self, d)

    # ------------------------------------------------------------------ encoding
    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` left-padded item ids -> ``[B, T, E]`` outputs, zero at padding positions."""
        lengths = (items > 0).sum(1)
        packed_lengths = lengths.clamp(min=1).cpu()  # an empty history reads one padding token
        x = self.drop(self.item_embedding(shift_padding(items, lengths, "right")))
        packed = pack_padded_sequence(x, packed_lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=items.shape[1])
        return shift_padding(self.project(out), packed_lengths.to(items.device), "left")

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        history = batch["history_cross"] if self.params.view == "cross" else batch["history"]
        return self.sequence_output(history)[:, -1]

    def item_representation(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_embedding(items)

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        user = self.user_embedding(batch)
        items = self.item_embedding(candidates)
        return user @ items.T if candidates.dim() == 1 else torch.einsum("be,bce->bc", user, items)

    # ------------------------------------------------------------------ training
    def train_tensors(self, run: "Run", domains: list[int]) -> dict[str, torch.Tensor]:
        seqs = train_sequences(run.dataset, domains, self.params.view)
        inputs, targets = next_item_windows(seqs, run.config.data.max_len)
        return {"input": torch.as_tensor(inputs), "target": torch.as_tensor(targets)}

    def loss(self, batch: dict[str, torch.Tensor]) -> DomainLoss:
        output = self.sequence_output(batch["input"])
        target = batch["target"]
        valid = target > 0
        output, target = output[valid], target[valid]
        domain = self.item_domain[target]
        losses, counts = {}, {}
        for d in torch.unique(domain).tolist():
            sel = domain == d
            logits = output[sel] @ self.item_embedding(self.domain_items(d)).T
            losses[self.domain_names[d]] = F.cross_entropy(logits.float(), self.item_local[target[sel]])
            counts[self.domain_names[d]] = int(sel.sum())
        return DomainLoss(losses, counts)


def build_gru4rec(params: Gru4RecParams, run: "Run") -> Gru4Rec:
    dataset = run.dataset
    return Gru4Rec(
        params,
        dataset.n_items,
        torch.as_tensor(dataset.item_domain),
        [torch.as_tensor(items) for items in dataset.domain_items],
        dataset.domains,
    )
