"""Where an encoder keeps its item ID embeddings: the contract behind the ``embeddings`` capability.

An encoder component that declares the capability ``embeddings`` promises that its item ID
embeddings live in ``nn.Embedding`` tables that another component may read and overwrite row by
row -- e.g. IDP (``mtrec-id-matcher``) installs generated embeddings for a new domain's items
before fine-tuning.  The encoder says where an item's rows are in one of two ways:

1. a plain ``item_embedding: nn.Embedding`` over the dataset's global item ids (row ``i`` is item
   ``i``, row 0 the padding) -- the core ``sasrec`` and most ID-based encoders; nothing else to do;
2. a method ``item_embedding_rows(items) -> list[ItemRows]`` for encoders that keep several tables
   or index them otherwise (MAN: a global table over global ids plus one local table per domain
   indexed by the item's position within its domain).  Each entry names one table, the row of
   every given item in it, and which of the items that table holds at all; an item may be held by
   several tables (all of them are written).

:func:`item_embedding_rows` answers for any model (the method if defined, else the plain table,
else a :class:`~mtrec.errors.ConfigError` naming the encoder); :func:`write_item_embeddings`
overwrites the given items' rows in every table that holds them.  Padding (item 0) is never an
item: no table holds it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from mtrec.errors import ConfigError

__all__ = [
    "ItemRows", "has_plain_item_embedding", "item_embedding_rows", "item_embedding_width", "write_item_embeddings",
]


class ItemRows(NamedTuple):
    """One table's share of a list of ``N`` items."""

    table: nn.Embedding
    rows: torch.Tensor  # [N] long: the row of each item in ``table`` (meaningless where ``held`` is False)
    held: torch.Tensor  # [N] bool: which items ``table`` holds


def _ids(items: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.as_tensor(items, dtype=torch.long).reshape(-1)


def has_plain_item_embedding(model: nn.Module) -> bool:
    """Whether ``model.item_embedding`` is an ``nn.Embedding`` over the global item ids (way 1)."""
    return isinstance(getattr(model, "item_embedding", None), nn.Embedding)


def item_embedding_rows(model: nn.Module, items: torch.Tensor | np.ndarray, what: str | None = None) -> list[ItemRows]:
    """The tables that hold ``items`` (global ids, ``[N]``) and each item's row in them.

    ``what`` names the model in the error (default: its class), e.g. ``"encoder 'man'"``.
    """
    items = _ids(items)
    method = getattr(model, "item_embedding_rows", None)
    if callable(method):
        return [ItemRows(*entry) for entry in method(items)]
    if has_plain_item_embedding(model):
        table = model.item_embedding
        items = items.to(table.weight.device)
        return [ItemRows(table, items, items > 0)]
    name = what or f"encoder {type(model).__name__}"
    raise ConfigError(
        f"{name} keeps no item ID embeddings where other components can find them: it needs an `item_embedding` "
        "nn.Embedding over the global item ids or an `item_embedding_rows(items)` method (mtrec.embeddings, the "
        "`embeddings` capability)"
    )


def item_embedding_width(model: nn.Module, items: torch.Tensor | np.ndarray, what: str | None = None) -> int:
    """The width ``H`` of the tables holding ``items``; ``ValueError`` if those tables differ in width."""
    widths = {e.table.embedding_dim for e in item_embedding_rows(model, items, what) if bool(e.held.any())}
    if len(widths) != 1:
        raise ValueError(f"{what or type(model).__name__}: the tables holding these items have widths {sorted(widths)}")
    return widths.pop()


@torch.no_grad()
def write_item_embeddings(
    model: nn.Module, items: torch.Tensor | np.ndarray, rows: torch.Tensor | np.ndarray, what: str | None = None
) -> None:
    """Overwrite the ID embeddings of ``items`` ``[N]`` with ``rows`` ``[N, H]`` in every table that holds them.

    Raises ``ValueError`` when ``rows`` does not match a table's width or an item is held by no table
    (writing nothing would hide a bug); the caller turns that into a message naming its config keys.
    """
    items_t = _ids(items)
    values = torch.as_tensor(rows)
    if values.dim() != 2 or values.shape[0] != items_t.numel():
        n = items_t.numel()
        raise ValueError(f"expected rows of shape [{n}, H] for {n} items, got {tuple(values.shape)}")
    entries = item_embedding_rows(model, items_t, what)
    name = what or type(model).__name__
    # Check everything before writing anything, so an error leaves the model as it was.
    for entry in entries:
        if entry.table.weight.shape[1] != values.shape[1]:
            raise ValueError(f"rows are {values.shape[1]}-d but {name}'s item table is {entry.table.weight.shape[1]}-d")
    covered = torch.zeros(items_t.numel(), dtype=torch.bool)
    for entry in entries:
        covered |= entry.held.cpu()
    if not bool(covered.all()):
        raise ValueError(f"items {items_t[~covered][:5].tolist()} are held by none of {name}'s item tables")
    for entry in entries:
        weight = entry.table.weight
        held = entry.held.to(weight.device)
        weight[entry.rows.to(weight.device)[held]] = values.to(device=weight.device, dtype=weight.dtype)[held]
