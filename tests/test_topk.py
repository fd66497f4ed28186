"""The topk decoder: exact scores, and a faiss index that returns the same top of the list."""

from __future__ import annotations

import torch
from torch import nn

from mtrec.builtins.topk import TopKDecoder, TopKParams
from mtrec.evaluation.metrics import MISS, ranks_from_scores, ranks_from_topk


class DotModel(nn.Module):
    def __init__(self, n_items: int = 200, dim: int = 16) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.items = nn.Embedding(n_items, dim)
        self.items.weight.data = torch.randn(n_items, dim, generator=gen)
        self.users = torch.randn(8, dim, generator=gen)

    def user_embedding(self, batch):
        return self.users[batch["user"]]

    def item_representation(self, items):
        return self.items(items)

    def score(self, batch, candidates):
        return self.user_embedding(batch) @ self.item_representation(candidates).T


def test_faiss_flat_index_returns_the_exact_top_k():
    model = DotModel()
    batch = {"user": torch.arange(8)}
    candidates = torch.arange(50, 150)  # one domain's items
    exact = TopKDecoder(TopKParams(index="exact")).rank(model, batch, candidates, k=10)
    approx = TopKDecoder(TopKParams(index="faiss")).rank(model, batch, candidates, k=10)
    assert exact.scores is not None and approx.topk is not None
    best = candidates[exact.scores.topk(10, dim=1).indices]
    assert torch.equal(approx.topk, best)
    assert int(approx.topk.min()) >= 50 and int(approx.topk.max()) < 150  # only the domain's items
    target = best[:, 3]
    assert ranks_from_topk(approx.topk, target).tolist() == [3] * 8
    assert ranks_from_scores(exact.scores, candidates, target).tolist() == [3] * 8
    assert ranks_from_topk(approx.topk, candidates[exact.scores.argmin(dim=1)]).tolist() == [MISS] * 8


def test_faiss_index_is_rebuilt_when_the_model_changes():
    model = DotModel()
    decoder = TopKDecoder(TopKParams(index="faiss"))
    batch = {"user": torch.arange(8)}
    candidates = torch.arange(0, 100)
    before = decoder.rank(model, batch, candidates, k=5).topk
    with torch.no_grad():
        model.items.weight.mul_(-1)  # every ranking flips
    after = decoder.rank(model, batch, candidates, k=5).topk
    expected = candidates[(model.score(batch, candidates)).topk(5, dim=1).indices]
    assert torch.equal(after, expected) and not torch.equal(before, after)
