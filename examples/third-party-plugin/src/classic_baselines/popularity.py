"""The popularity baseline, and the ``no-training`` transfer strategy it runs under.

Popularity recommends, in the target domain, the items with the most training interactions,
whatever the history.  Counts come from the training view only (``train_sequences``), so no
validation or test target is ever counted.  Every item belongs to one domain and candidates are
always the target domain's items, so one table of counts serves every domain.  Ties are broken
by item id, lower first: that is the evaluator's rule for equal scores, so the ranking is the
classic "most popular, then by id" list.

A count table has nothing to train, and mtrec's trainer refuses a stage without trainable
parameters.  Rather than a dummy parameter, the encoder declares that it is ``training-free``
and requires a transfer strategy that provides ``no-training``; the engine then refuses, before
any work, a config that would put popularity under a training strategy (and vice versa).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mtrec.components import Encoder, Params
from mtrec.data.views import train_sequences

if TYPE_CHECKING:
    from mtrec.components import Run


class PopularityParams(Params):
    pass


class Popularity(Encoder):
    """Scores each candidate by its number of training interactions."""

    family = "discriminative"

    def __init__(self, counts: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("counts", counts.float())  # [n_items + 1], saved with the model

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        n = batch["target"].shape[0]
        scores = self.counts[candidates]
        return scores.unsqueeze(0).expand(n, -1) if candidates.dim() == 1 else scores


def training_counts(run: "Run") -> torch.Tensor:
    """``[n_items + 1]`` number of training interactions of each item (0 for padding)."""
    dataset = run.dataset
    sequences = train_sequences(dataset, run.all_domains, "single")
    items = np.concatenate(sequences) if sequences else np.zeros(0, dtype=np.int64)
    return torch.as_tensor(np.bincount(items, minlength=dataset.n_items + 1))


def build_popularity(params: PopularityParams, run: "Run") -> Popularity:
    return Popularity(training_counts(run))


class NoTrainingParams(Params):
    pass


class NoTraining:
    """Build the encoder once and use it as built for every target domain: no training stage."""

    def __init__(self, params: NoTrainingParams, run: "Run | None" = None) -> None:
        self.params = params

    def execute(self, run: "Run") -> dict[int, nn.Module]:
        model = run.build_encoder()
        return {d: model for d in run.target_domains}

    def save(self, models: dict[int, nn.Module], directory: Path) -> None:
        model = next(iter(models.values()))
        torch.save({"domains": sorted(models), "state": model.state_dict()}, directory / "model.pt")

    def load(self, run: "Run", directory: Path) -> dict[int, nn.Module]:
        saved = torch.load(directory / "model.pt", map_location=run.device, weights_only=True)
        model = run.build_encoder()
        model.load_state_dict(saved["state"])
        return {d: model.eval() for d in saved["domains"]}
