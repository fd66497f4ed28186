"""Per-domain item lookup tables: the one implementation every encoder shares.

An encoder that scores or samples within the target's domain needs the same few tables, derived
from ``dataset.item_domain`` and ``dataset.domain_items`` (see :mod:`mtrec.data.model`):

* ``item_domain`` ``[n_items + 1]``: the domain index of every item (padding, -1 in the dataset,
  becomes 0 so the table can be indexed with padded batches);
* ``item_local`` ``[n_items + 1]``: every item's position within its domain's item list, counted
  from ``local_start`` (0: the column of a per-domain softmax target; 1: a row of a per-domain
  embedding table whose row 0 is padding); 0 at padding;
* ``domain_items[d]``: the global ids of domain ``d``'s items, ascending;
* ``pool()``: the same lists concatenated, with each domain's start and size, for drawing uniform
  per-domain negatives in one indexing operation.

Encoders keep them as non-persistent buffers (they follow the model to its device and are not
saved: a saved model's ``state_dict`` does not change) under fixed names, registered by
:meth:`DomainItemTables.register`: ``item_domain``, ``item_local``, ``domain_items_{d}`` and
``domain_start`` / ``domain_size`` / ``domain_pool``.  Typical use in an encoder::

    tables = DomainItemTables.build(item_domain, domain_items, n_items)
    tables.register(self)
    ...
    def domain_items(self, d: int) -> torch.Tensor:
        return registered_domain_items(self, d)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from mtrec.data.model import MultiDomainDataset

IdArray = Union[torch.Tensor, np.ndarray, Sequence[int]]

__all__ = ["DomainItemTables", "domain_items_buffer_name", "registered_domain_items"]


def domain_items_buffer_name(d: int) -> str:
    """The buffer name under which :meth:`DomainItemTables.register` keeps domain ``d``'s items."""
    return f"domain_items_{d}"


def registered_domain_items(module: nn.Module, d: int) -> torch.Tensor:
    """Domain ``d``'s item ids as registered on ``module`` (on the module's device)."""
    return getattr(module, domain_items_buffer_name(d))


def _ids(values: IdArray) -> torch.Tensor:
    """An int64 tensor of ids (an int64 tensor is returned as it is, not copied)."""
    if isinstance(values, torch.Tensor):
        return values.long()
    return torch.as_tensor(np.asarray(values), dtype=torch.long)


@dataclass(frozen=True)
class DomainItemTables:
    """The lookup tables of one dataset's items by domain (see the module docstring).

    Build with :meth:`build` (from the two arrays) or :meth:`from_dataset`; all tensors are int64.
    """

    item_domain: torch.Tensor  # [n_items + 1]; padding (item 0) -> 0
    item_local: torch.Tensor  # [n_items + 1]; index within the domain from local_start; 0 at padding
    domain_items: tuple[torch.Tensor, ...]  # per domain: its items' global ids, ascending
    local_start: int = 0

    @classmethod
    def build(cls, item_domain: IdArray, domain_items: Sequence[IdArray], n_items: int | None = None,
              *, local_start: int = 0) -> "DomainItemTables":
        """Tables from ``item_domain`` (``[n_items + 1]``, -1 or any domain at padding) and each
        domain's item ids.  ``n_items`` defaults to ``len(item_domain) - 1``; ``local_start`` is the
        local index of each domain's first item (0 or 1)."""
        domain = _ids(item_domain)
        n = domain.numel() - 1 if n_items is None else int(n_items)
        items = tuple(_ids(x) for x in domain_items)
        local = torch.zeros(n + 1, dtype=torch.long)
        for x in items:
            local[x] = torch.arange(local_start, x.numel() + local_start)
        return cls(domain.clamp(min=0), local, items, local_start)

    @classmethod
    def from_dataset(cls, dataset: "MultiDomainDataset", *, local_start: int = 0) -> "DomainItemTables":
        """Tables of a :class:`~mtrec.data.model.MultiDomainDataset`."""
        return cls.build(dataset.item_domain, dataset.domain_items, dataset.n_items, local_start=local_start)

    @property
    def n_domains(self) -> int:
        return len(self.domain_items)

    def sizes(self) -> torch.Tensor:
        """``[n_domains]``: the number of items of each domain."""
        return torch.tensor([x.numel() for x in self.domain_items], dtype=torch.long)

    def pool(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(start, size, pool)``: every domain's items concatenated in domain order (``pool``),
        and where each domain's run starts in it and how long it is.  Item ``j`` of domain ``d`` is
        ``pool[start[d] + j]``; a uniform draw from domain ``d`` is
        ``pool[start[d] + (rand * size[d]).long()]``."""
        size = self.sizes()
        pool = torch.cat(self.domain_items) if self.domain_items else torch.zeros(0, dtype=torch.long)
        return torch.cumsum(size, 0) - size, size, pool

    def register(self, module: nn.Module, *, item_domain: bool = True, item_local: bool = True,
                 domain_items: bool = True, pool: bool = False) -> None:
        """Register the chosen tables on ``module`` as non-persistent buffers (never in its
        ``state_dict``): ``item_domain``, ``item_local``, ``domain_items_{d}`` for every domain (read
        them back with :func:`registered_domain_items`) and, with ``pool``, ``domain_start``,
        ``domain_size`` and ``domain_pool``."""
        if item_domain:
            module.register_buffer("item_domain", self.item_domain, persistent=False)
        if item_local:
            module.register_buffer("item_local", self.item_local, persistent=False)
        if domain_items:
            for d, items in enumerate(self.domain_items):
                module.register_buffer(domain_items_buffer_name(d), items, persistent=False)
        if pool:
            start, size, items = self.pool()
            module.register_buffer("domain_start", start, persistent=False)
            module.register_buffer("domain_size", size, persistent=False)
            module.register_buffer("domain_pool", items, persistent=False)
