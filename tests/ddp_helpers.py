"""A model for exact training steps, shared by the gloo DDP tests (test_distributed.py) and the
CUDA tests (test_cuda.py)."""

from __future__ import annotations

import torch
from torch import nn

from mtrec.components import Encoder
from mtrec.training.stage import DomainLoss


class Linear(Encoder):
    """y = w.x + b with a mean-squared loss: no randomness, so DDP and one process can agree exactly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(4, 1)

    def train_tensors(self, run, domains):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(64, 4, generator=g)
        return {"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(64, generator=g)}

    def loss(self, batch):
        mse = ((self.layer(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()
        return DomainLoss({"all": mse}, {"all": batch["x"].shape[0]})
