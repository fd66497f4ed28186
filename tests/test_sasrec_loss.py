"""SASRec's sampled losses (``bpr``, ``bce``) against values computed by hand from the same draws."""

from __future__ import annotations

import math

import pytest
import torch

from mtrec.builtins.sasrec import SASRec, SASRecParams


def tiny_model(loss: str, negatives: int) -> SASRec:
    # items 1..4 in domain 0; embeddings set by hand so every score is a known dot product
    params = SASRecParams(hidden=8, layers=1, heads=1, loss=loss, negatives=negatives)
    model = SASRec(params, 4, torch.tensor([0, 0, 0, 0, 0]), [torch.tensor([1, 2, 3, 4])], 5, ["A"])
    with torch.no_grad():
        model.item_embedding.weight.zero_()
        for item in range(1, 5):
            model.item_embedding.weight[item, 0] = float(item)  # score of item i = h[0] * i
    return model


def draws(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randint(4, shape) + 1  # domain items are 1..4, in order


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


@pytest.mark.parametrize("negatives", [1, 3])
def test_bce_is_target_plus_sum_over_negatives(negatives):
    model = tiny_model("bce", negatives)
    h = torch.zeros(2, 8)
    h[0, 0], h[1, 0] = 0.5, -0.25
    target = torch.tensor([2, 3])
    shape = (2,) if negatives == 1 else (2, negatives)
    neg = draws(7, shape).view(2, negatives)
    torch.manual_seed(7)
    got = float(model._sampled_loss(h, target, model.domain_items(0)).detach())
    want = 0.0
    for row in range(2):
        x = float(h[row, 0])
        want -= logsig(x * float(target[row])) / 2
        want -= sum(logsig(-x * float(n)) for n in neg[row].tolist()) / 2
    assert got == pytest.approx(want, rel=1e-6)


def test_bpr_with_several_negatives_averages_the_pairs():
    model = tiny_model("bpr", 2)
    h = torch.zeros(2, 8)
    h[:, 0] = torch.tensor([1.0, 0.3])
    target = torch.tensor([4, 1])
    neg = draws(3, (2, 2))
    torch.manual_seed(3)
    got = float(model._sampled_loss(h, target, model.domain_items(0)).detach())
    pairs = [float(h[r, 0]) * (float(target[r]) - n) for r in range(2) for n in neg[r].tolist()]
    assert got == pytest.approx(-sum(logsig(p) for p in pairs) / 4, rel=1e-6)


def test_bpr_with_one_negative_keeps_the_earlier_draw():
    # negatives=1 draws a [N] tensor, as before the option existed: seeded runs keep their metrics
    model = tiny_model("bpr", 1)
    h = torch.zeros(3, 8)
    h[:, 0] = torch.tensor([0.2, -0.7, 1.1])
    target = torch.tensor([1, 2, 3])
    neg = draws(11, (3,))
    torch.manual_seed(11)
    got = float(model._sampled_loss(h, target, model.domain_items(0)).detach())
    want = -sum(logsig(float(h[r, 0]) * (float(target[r]) - float(neg[r]))) for r in range(3)) / 3
    assert got == pytest.approx(want, rel=1e-6)


def test_negatives_must_be_positive():
    with pytest.raises(ValueError, match="negatives"):
        SASRecParams(loss="bce", negatives=0)
