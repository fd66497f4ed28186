"""The mixed-attention modules against hand-written formulas (papers/man.md Eq. 5-13)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtrec_mixed_attention.attention import (
    ConcatMLP,
    CrossAttention,
    GroupPrototypeAttention,
    ItemSimilarityAttention,
    disentanglement,
    masked_mean,
)


def test_concat_mlp_equals_an_mlp_on_the_concatenation_and_broadcasts():
    torch.manual_seed(0)
    m = ConcatMLP([3, 2], [4, 2], out=1)
    first = nn.Linear(5, 4)
    with torch.no_grad():
        first.weight.copy_(torch.cat([m.first[0].weight, m.first[1].weight], dim=1))
        first.bias.copy_(m.first[0].bias)
    a, b = torch.randn(6, 3), torch.randn(6, 2)
    assert torch.allclose(m([a, b]), m.rest(first(torch.cat([a, b], dim=1))), atol=1e-6)
    users, items = torch.randn(2, 1, 3), torch.randn(1, 5, 2)  # per-user block x per-candidate block
    out = m([users, items])
    assert out.shape == (2, 5, 1)
    assert torch.allclose(out[1, 3], m([users[1, 0], items[0, 3]]), atol=1e-6)
    with pytest.raises(ValueError, match="expected 2 input blocks"):
        m([a])


def test_cross_attention_is_eq9_and_ignores_padded_keys():
    torch.manual_seed(0)
    ca = CrossAttention(4)
    q, k = torch.randn(1, 2, 4), torch.randn(1, 3, 4)
    pad = torch.tensor([[True, False, False]])
    out = ca(q, k, pad)
    logits = ca.q(q) @ ca.k(k[:, 1:]).transpose(1, 2) / math.sqrt(4)
    assert torch.allclose(out, torch.softmax(logits, -1) @ ca.v(k[:, 1:]), atol=1e-6)
    k2 = k.clone()
    k2[0, 0] = 100.0  # whatever sits at a padded position does not matter
    assert torch.allclose(ca(q, k2, pad), out, atol=1e-6)


def test_item_similarity_attention_is_eq5_6():
    torch.manual_seed(0)
    isa = ItemSimilarityAttention(3, hidden=4)
    target = torch.randn(1, 2, 3)  # two candidates shared by the batch
    fused = torch.randn(2, 4, 3)
    pad = torch.tensor([[True, True, False, False], [False, False, False, False]])
    out = isa(target, fused, pad)
    assert out.shape == (2, 2, 3)
    for b in range(2):
        for c in range(2):
            keep = ~pad[b]
            x = fused[b][keep]
            cat = torch.cat([target[0, c].expand(x.shape[0], -1), x], dim=1)  # M_target || E_t
            w1 = torch.cat([isa.target.weight, isa.history.weight], dim=1)
            f = isa.out(torch.relu(cat @ w1.T + isa.target.bias)).squeeze(-1)
            assert torch.allclose(out[b, c], torch.softmax(f, 0) @ x, atol=1e-5)
    # the pooled history depends on the candidate (the point of ISA), and gradients reach the target
    assert not torch.allclose(out[1, 0], out[1, 1])
    target.requires_grad_(True)
    isa(target, fused, pad).sum().backward()
    assert target.grad.abs().sum() > 0


def test_group_prototype_attention_eq10_12():
    torch.manual_seed(0)
    gpa = GroupPrototypeAttention(4, groups=3, max_len=5)
    seq, protos = torch.randn(2, 5, 4), torch.randn(3, 4)
    pad = torch.zeros(2, 5, dtype=torch.bool)
    pad[0, :2] = True
    out = gpa(seq, pad, protos)
    assert out.shape == (2, 4)
    # by hand for user 0
    s = seq[0].masked_fill(pad[0].unsqueeze(-1), 0)
    c = gpa.relevance(gpa.pool @ s).squeeze(-1)  # Eq. 10
    g = gpa.mlp(gpa.cross(protos.unsqueeze(0), seq[:1], pad[:1]))[0]  # Eq. 11
    assert torch.allclose(out[0], (torch.softmax(c, 0).unsqueeze(-1) * g).sum(0), atol=1e-5)  # Eq. 12 + pooling
    seq2 = seq.clone()
    seq2[0, :2] = 50.0
    assert torch.allclose(gpa(seq2, pad, protos)[0], out[0], atol=1e-5)


def test_disentanglement_eq13_hand_computed():
    g = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    # squared distances: |g0-g1|^2 = 25, |g0-g2|^2 = 1, |g1-g2|^2 = 9 + 9 = 18
    assert disentanglement(g, 0.1, normalize=False).item() == pytest.approx(-0.1 * 44)
    unit = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])  # directions (1,0), (0,1), (-1,0)
    assert disentanglement(unit, 1.0, normalize=True).item() == pytest.approx(-(2 + 4 + 2))
    g = g.clone().requires_grad_(True)
    disentanglement(g, 1.0, normalize=False).backward()
    # minimising pushes prototypes apart: the gradient on g1 points towards the others (descent moves it away)
    assert torch.dot(g.grad[1], g[1] - g[0]).item() < 0


def test_masked_mean_skips_padding():
    x = torch.tensor([[[1.0], [2.0], [4.0]]])
    assert masked_mean(x, torch.tensor([[True, False, False]])).item() == pytest.approx(3.0)
