"""Encoder-side pieces of IDP: the ID embedding table, installing generated rows, the ID+text input,
and the training data of intra-domain cold start.

IDP works with any encoder whose items enter through ``item_embedding``, an ``nn.Embedding`` over
the dataset's global item ids (the core ``sasrec`` and every encoder that declares the
``embeddings`` capability): it only ever reads and overwrites rows of that table.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from mtrec.data.model import TRAIN, MultiDomainDataset
from mtrec.errors import ConfigError


def item_table(model: nn.Module, what: str = "encoder") -> nn.Embedding:
    """The encoder's ID embedding table, or a ConfigError naming what is missing."""
    table = getattr(model, "item_embedding", None)
    if isinstance(table, IdPlusText):
        table = table.ids
    if not isinstance(table, nn.Embedding):
        raise ConfigError(
            f"transfer 'pretrain-match-finetune': {what} {type(model).__name__} has no `item_embedding` "
            "nn.Embedding over the global item ids, so IDP cannot read or write its ID embeddings"
        )
    return table


@torch.no_grad()
def install_rows(model: nn.Module, items: np.ndarray, rows: np.ndarray | torch.Tensor) -> None:
    """Overwrite the ID embeddings of ``items`` with ``rows`` ``[len(items), H]``."""
    table = item_table(model)
    if table.weight.shape[1] != rows.shape[1]:
        raise ConfigError(
            f"transfer.params.pretrain_encoder: generated embeddings are {rows.shape[1]}-d but the "
            f"fine-tuned encoder's item_embedding is {table.weight.shape[1]}-d; give both encoders the same width"
        )
    index = torch.as_tensor(items, dtype=torch.long, device=table.weight.device)
    table.weight[index] = torch.as_tensor(rows, dtype=table.weight.dtype, device=table.weight.device)


@torch.no_grad()
def reinit_rows(model: nn.Module, items: np.ndarray, std: float = 0.02, seed: int = 0) -> None:
    """Fresh N(0, std) rows for ``items`` (IDP w/o M: no transferred embedding)."""
    table = item_table(model)
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(len(items), table.weight.shape[1], generator=g) * std
    table.weight[torch.as_tensor(items, dtype=torch.long, device=table.weight.device)] = rows.to(table.weight)


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
