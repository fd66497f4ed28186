"""BPR and SC-MIM against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from mtrec_asymmetric_moe.losses import bpr, sc_mim


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bpr_on_logits_and_literal_sigmoid():
    pos, neg = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    assert bpr(pos, neg).tolist() == pytest.approx([-math.log(sig(1.5)), -math.log(sig(-2.0))], rel=1e-6)
    literal = [-math.log(sig(sig(2.0) - sig(0.5))), -math.log(sig(sig(-1.0) - sig(1.0)))]
    assert bpr(pos, neg, on="sigmoid").tolist() == pytest.approx(literal, rel=1e-6)


def test_sc_mim_hand_computed():
    single = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    cross = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    w = torch.eye(2)
    got = sc_mim(single, cross, w, torch.tensor([0, 1]))
    # anchor cross_0: positive rho(s0, c0) = sig(1), negative rho(s1, c0) = sig(0)
    l0 = -sig(1) + math.log(math.exp(sig(1)) + math.exp(sig(0)))
    # anchor cross_1: positive sig(2), negative sig(0)
    l1 = -sig(2) + math.log(math.exp(sig(2)) + math.exp(sig(0)))
    assert float(got) == pytest.approx((l0 + l1) / 2, rel=1e-6)


def test_sc_mim_uses_w_and_never_a_users_own_other_window():
    single = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    cross = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # same user twice: no negatives left, the loss is -rho + log exp(rho) = 0
    assert float(sc_mim(single, cross, torch.eye(2), torch.tensor([3, 3]))) == pytest.approx(0.0, abs=1e-7)
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)  # swaps which pair matches
    loss = sc_mim(single, cross, w, torch.tensor([0, 1]))
    swapped = -sig(0) + math.log(math.exp(sig(0)) + math.exp(sig(1)))
    assert float(loss.detach()) == pytest.approx(swapped, rel=1e-6)
    loss.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
