"""GRU4Rec (Hidasi et al., ICLR 2016): a recurrent next-item model.

Item embedding, dropout, a GRU over the history; the GRU's hidden state after the last history
item is the sequence representation, scored against the item embeddings by dot product (so the
hidden size is the embedding size).  Everything around the recurrence is ``sasrec``'s: the same
training examples (every position of every training window predicts its next item), the same
per-domain objectives (``loss``: cross-entropy over the target domain's items, or BPR / BCE
against uniform negatives from it) and the same scoring interface, so every recipe that runs
``sasrec`` runs ``gru4rec`` with ``--set encoder.name=gru4rec``, and the ``topk`` decoder,
transfer strategies and components that read ``item_embedding`` (the ``embeddings`` capability)
work unchanged.

Histories arrive left-padded (mtrec's convention).  A GRU run over the leading padding would start
every sequence from a state that depends on how short the history is, so each row is rotated to
right padding and packed (``pack_padded_sequence``): the recurrence starts from a zero state at
the first real item, and padding never changes a representation.  Outputs are rotated back, zero
at padding positions.

``encode_embeddings(x, padding)`` runs the same dropout + GRU over sequences embedded elsewhere,
which makes ``gru4rec`` usable as the backbone of encoders that own their embeddings (MAN's local
and global encoders, Figure 3 of papers/man.md).

Choices of ours (the paper trains session-parallel mini-batches of 1-of-N encoded items with
ranking losses such as BPR and TOP1): training windows of user histories with sasrec's objectives,
a learned item embedding of the hidden size, dropout on the embedded inputs and between stacked
layers, RecBole's initialisation (Xavier-normal embedding, Xavier-uniform GRU weights) and its
default dropout 0.3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mtrec.builtins.domain_items import DomainItemTables
from mtrec.builtins.next_item import NextItemEncoder
from mtrec.components import Params

if TYPE_CHECKING:
    from mtrec.components import Run


class GRU4RecParams(Params):
    hidden: int = Field(64, ge=2, description="GRU hidden size, which is also the item embedding size (the last "
                                               "hidden state is scored against item embeddings by dot product).")
    layers: int = Field(1, ge=1, description="Stacked GRU layers.")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout on the embedded history items, and between stacked "
                                                         "GRU layers when layers > 1.")
    loss: Literal["ce", "bpr", "bce"] = Field(
        "ce", description="Training objective, as sasrec's: ce = cross-entropy over the target domain's items; "
                          "bpr / bce = the target against `negatives` uniform draws from its domain.")
    negatives: int = Field(1, ge=1, description="Uniform negatives per target for loss=bpr|bce (ignored by ce).")
    view: Literal["single", "cross"] = Field(
        "single", description="History view: the target domain's items only, or all domains merged."
    )


def right_aligned_gru(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run ``gru`` over left-padded ``x`` ``[B, T, H]`` whose rows hold ``lengths[b]`` real steps.

    Returns ``[B, T, H]`` outputs aligned with ``x`` (zero at padding positions).  Each sequence
    starts from a zero state at its first real step, whatever the padding.  An empty row reads its
    last (padding) step, so it gets the state of one empty input rather than no state at all.
    """
    t = x.shape[1]
    n = lengths.clamp(min=1)
    shift = (t - n).unsqueeze(1)  # [B, 1]: how far each row is rotated
    pos = torch.arange(t, device=x.device).unsqueeze(0)  # [1, T]
    right = torch.gather(x, 1, ((pos + shift) % t).unsqueeze(-1).expand_as(x))  # real steps first
    packed = pack_padded_sequence(right, n.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = gru(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=t)  # zeros after each row's length
    return torch.gather(out, 1, ((pos - shift) % t).unsqueeze(-1).expand(-1, -1, out.shape[-1]))


class GRU4Rec(NextItemEncoder):
    """The history's hidden states come from a GRU; objectives, scoring and training windows are
    :class:`NextItemEncoder`'s (the same as sasrec's)."""

    def __init__(self, params: GRU4RecParams, n_items: int, item_domain: torch.Tensor,
                 domain_items: list[torch.Tensor], domain_names: list[str]) -> None:
        super().__init__()
        self.params = params
        h = params.hidden
        self.item_embedding = nn.Embedding(n_items + 1, h, padding_idx=0)
        self.drop = nn.Dropout(params.dropout)
        self.gru = nn.GRU(h, h, params.layers, batch_first=True, dropout=params.dropout if params.layers > 1 else 0.0)
        # item_domain, item_local (0-based: per-domain softmax targets) and domain_items_{d}.
        DomainItemTables.build(item_domain, domain_items, n_items).register(self)
        self.domain_names = list(domain_names)
        nn.init.xavier_normal_(self.item_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        for name, p in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_uniform_(p)

    # ------------------------------------------------------------------ encoding
    def encode_embeddings(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``[B, T, H]`` left-padded embedded sequences (``padding`` ``[B, T]`` True at padding)
        -> ``[B, T, H]`` GRU outputs, zero at padding positions."""
        return right_aligned_gru(self.gru, self.drop(x), (~padding).sum(1))

    def sequence_output(self, items: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` left-padded item ids -> ``[B, T, H]`` hidden states (the output at position
        ``t`` has read the history up to and including ``t``)."""
        return self.encode_embeddings(self.item_embedding(items), items == 0)


def build_gru4rec(params: GRU4RecParams, run: "Run") -> GRU4Rec:
    dataset = run.dataset
    return GRU4Rec(
        params,
        dataset.n_items,
        torch.as_tensor(dataset.item_domain),
        [torch.as_tensor(items) for items in dataset.domain_items],
        dataset.domains,
    )
