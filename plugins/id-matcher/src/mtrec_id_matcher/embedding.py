"""Encoder-side pieces of IDP: the ID embedding table, installing generated rows, the ID+text input,
and the training data of intra-domain cold start.

Reading: IDP reads the *pre-training* encoder's ``item_embedding``, an ``nn.Embedding`` over the
dataset's global item ids (the core ``sasrec`` and most ID-based encoders).  Writing: generated
rows are installed through the core contract :mod:`mtrec.embeddings`, so any encoder that declares
the ``embeddings`` capability can receive them -- a plain ``item_embedding`` (sasrec, syncrec) or
one that says where its rows are with ``item_embedding_rows`` (MAN: a global table and per-domain
local tables, each written).  The ID+text variant wraps a plain ``item_embedding`` only.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from mtrec.data.model import TRAIN, MultiDomainDataset
from mtrec.embeddings import item_embedding_width, write_item_embeddings
from mtrec.errors import ConfigError

# Config keys that decide the widths of the two encoders (named when they differ).
WIDTH_KEYS = "transfer.params.pretrain_encoder.params.hidden and encoder.params.hidden"


def item_table(model: nn.Module, what: str = "encoder") -> nn.Embedding:
    """The encoder's plain ID embedding table (what IDP reads), or a ConfigError naming what is missing."""
    table = getattr(model, "item_embedding", None)
    if isinstance(table, IdPlusText):
        table = table.ids
    if not isinstance(table, nn.Embedding):
        raise ConfigError(
            f"transfer 'pretrain-match-finetune': {what} {type(model).__name__} has no `item_embedding` "
            "nn.Embedding over the global item ids, so IDP cannot read its pre-trained ID embeddings; pre-train "
            "another encoder and initialise this one from it: transfer.params.mode=new-encoder with "
            "transfer.params.pretrain_encoder={name: sasrec, params: {hidden: <its width>}}"
        )
    return table


@torch.no_grad()
def install_rows(model: nn.Module, items: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
    """Overwrite the ID embeddings of ``items`` with ``rows`` ``[len(items), H]`` in every table holding them."""
    width = item_embedding_width(model, items)
    if width != rows.shape[1]:
        raise ConfigError(
            f"transfer.params.pretrain_encoder: generated embeddings are {rows.shape[1]}-d but the fine-tuned "
            f"encoder {type(model).__name__}'s item tables are {width}-d; give both encoders the same width "
            f"({WIDTH_KEYS})"
        )
    write_item_embeddings(model, items, torch.as_tensor(rows).detach().cpu())


@torch.no_grad()
def reinit_rows(model: nn.Module, items: np.ndarray, std: float = 0.02, seed: int = 0) -> None:
    """Fresh N(0, std) rows for ``items`` (IDP w/o M: no transferred embedding)."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(len(items), item_embedding_width(model, items), generator=g) * std
    write_item_embeddings(model, items, rows)


class IdPlusText(nn.Module):
    """IDP_ID+t: ``item_embedding(i) = id(i) + text(i)``, ``text`` a frozen buffer (PCA of matcher vectors).

    Replaces the encoder's ``item_embedding`` so the sum feeds both the sequence input and the
    candidate scores, as in UniSRec_ID+t which the paper follows.  ``weight`` gives the summed table
    for code that reads it directly.
    """

    def __init__(self, ids: nn.Embedding, text: torch.Tensor) -> None:
        super().__init__()
        self.ids = ids
        self.register_buffer("text", text.to(ids.weight))
        self.padding_idx = ids.padding_idx
        self.embedding_dim = ids.embedding_dim

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.ids(items) + self.text[items]

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        return self.ids.weight + self.text


def add_text(model: nn.Module, text: torch.Tensor) -> None:
    """Wrap ``model.item_embedding`` in :class:`IdPlusText` (once)."""
    table = item_table(model)
    model.item_embedding = IdPlusText(table, text)


# --------------------------------------------------------------------------- cold start (§3.8)


def pick_cold_items(dataset: MultiDomainDataset, domains: list[int], fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of each domain's items (at least one per domain), ascending ids."""
    rng = np.random.default_rng(seed)
    picked = []
    for d in domains:
        items = dataset.domain_items[d]
        n = max(1, int(round(fraction * items.size)))
        picked.append(rng.choice(items, size=n, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def without_training_items(dataset: MultiDomainDataset, items: np.ndarray) -> MultiDomainDataset:
    """The dataset with every *training* interaction on ``items`` removed (their valid/test targets stay)."""
    drop = np.isin(dataset.inter_item, items) & (dataset.inter_role == TRAIN)
    keep = ~drop
    counts = np.bincount(dataset.inter_user[keep], minlength=dataset.n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return dataclasses.replace(
        dataset,
        user_offsets=offsets,
        inter_item=dataset.inter_item[keep],
        inter_role=dataset.inter_role[keep],
        fingerprint=(dataset.fingerprint + "-cold") if dataset.fingerprint else "",
    )


class _RunWithDataset:
    """``run`` as the encoder sees it while building training tensors, with another dataset."""

    def __init__(self, run: Any, dataset: MultiDomainDataset) -> None:
        self._run = run
        self.dataset = dataset

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)


@contextmanager
def training_data_from(model: nn.Module, dataset: MultiDomainDataset) -> Iterator[None]:
    """While active, ``model.train_tensors`` reads ``dataset`` instead of the run's."""
    original = model.train_tensors

    def train_tensors(run: Any, domains: list[int]) -> dict[str, torch.Tensor]:
        return original(_RunWithDataset(run, dataset), domains)

    model.train_tensors = train_tensors  # instance attribute: the state dict is untouched
    try:
        yield
    finally:
        del model.train_tensors
