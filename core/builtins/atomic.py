"""``atomic`` identifier: one token per item (the classic ID embedding)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mtrec.components import Params
from mtrec.errors import ConfigError

if TYPE_CHECKING:
    from mtrec.components import Run


class AtomicParams(Params):
    pass


class AtomicIdentifier:
    """Item ``i`` is the single token ``i`` (0 is padding); nothing to fit."""

    def __init__(self, params: AtomicParams, run: "Run") -> None:
        self.n_items = run.dataset.n_items
        self.vocab_size = self.n_items + 1

    def fit(self, run: "Run") -> None:
        return None

    def item_tokens(self) -> torch.Tensor:
        return torch.arange(self.n_items + 1).unsqueeze(1)

    def domain_tokens(self, run: "Run", domain: int) -> torch.Tensor:
        return torch.as_tensor(run.dataset.domain_items[domain]).unsqueeze(1)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "atomic.json").write_text(json.dumps({"n_items": self.n_items}))

    def load(self, directory: Path) -> None:
        saved = json.loads((directory / "atomic.json").read_text())
        if saved["n_items"] != self.n_items:
            raise ConfigError(
                f"identifier.from_run: the saved atomic identifier has {saved['n_items']} items, "
                f"this dataset has {self.n_items}"
            )
