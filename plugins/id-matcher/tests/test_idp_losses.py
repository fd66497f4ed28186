"""CDIM's contrastive losses (Eq. 5-7) against hand computation, and the matchers' training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtrec_id_matcher.matcher import HeadMatcher, contrastive_losses, fit_matcher

TAU = 0.5


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_text_loss_is_eq5_by_hand():
    anchor = unit([1.0, 0.0], [0.0, 1.0])
    view = unit([0.8, 0.6], [0.6, 0.8])
    text, behavior = contrastive_losses(anchor, view, None, None, None, TAU)
    # row 0: positive s(t0, t'0) = 0.8, negative s(t0, t'1) = 0.6; row 1: positive 0.8, negative 0.6
    expected = -math.log(math.exp(0.8 / TAU) / (math.exp(0.8 / TAU) + math.exp(0.6 / TAU)))
    assert text.tolist() == pytest.approx([expected, expected], abs=1e-6)
    assert behavior.tolist() == [0.0, 0.0]


def test_behavior_loss_is_eq6_by_hand_and_excludes_in_batch_positives():
    anchor = unit([1.0, 0.0], [0.0, 1.0], [0.6, 0.8])
    view = unit([0.8, 0.6], [0.6, 0.8], [1.0, 0.0])
    # item 0 has two positives (vectors p, q); item 1 one positive and a padding slot; item 2 none.
    p, q, r = [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]
    positives = torch.stack([unit(p, q), unit(r, r), unit(r, r)])
    valid = torch.tensor([[True, True], [True, False], [False, False]])
    in_batch = torch.tensor([[False, True, False], [False, False, False], [False, False, False]])  # item 1 is a positive of 0
    _, behavior = contrastive_losses(anchor, view, positives, valid, in_batch, TAU)
    a = anchor.numpy()
    v = view.numpy()
    s = lambda x, y: float(np.dot(x, y)) / TAU  # noqa: E731
    # anchor 0: numerator over {p, q}; denominator = own view + views of items not among its positives (item 2)
    num0 = math.exp(s(a[0], unit(p)[0])) + math.exp(s(a[0], unit(q)[0]))
    den0 = math.exp(s(a[0], v[0])) + math.exp(s(a[0], v[2]))
    # anchor 1: one valid positive; denominator over every view
    num1 = math.exp(s(a[1], unit(r)[0]))
    den1 = sum(math.exp(s(a[1], v[k])) for k in range(3))
    assert behavior[0].item() == pytest.approx(-math.log(num0 / den0), abs=1e-5)
    assert behavior[1].item() == pytest.approx(-math.log(num1 / den1), abs=1e-5)
    assert behavior[2].item() == 0.0  # no positive: no behaviour term


def test_gradients_reach_anchor_view_and_positives():
    anchor = unit([1.0, 0.2], [0.1, 1.0]).requires_grad_()
    view = unit([0.9, 0.3], [0.3, 0.9]).requires_grad_()
    positives = unit([0.5, 0.5], [0.2, 0.9]).view(2, 1, 2).requires_grad_()
    text, behavior = contrastive_losses(anchor, view, positives, torch.ones(2, 1, dtype=torch.bool), None, TAU)
    (text.mean() + behavior.mean()).backward()
    for t in (anchor, view, positives):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_head_matcher_starts_as_the_sentence_encoder():
    base = torch.randn(6, 8)
    matcher = HeadMatcher(base, dropout=0.1).eval()
    items = torch.arange(1, 6)
    assert torch.allclose(matcher.encode(items), F.normalize(base[1:6], dim=-1), atol=1e-6)
    matcher.train()
    a, b = matcher(items), matcher(items)
    assert not torch.allclose(a, b)  # dropout makes two different views


def _clustered_base(seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(21, 16, generator=g), dim=-1)  # 20 items + padding row


def test_behavior_loss_pulls_behavioural_positives_together():
    base = _clustered_base()
    items = torch.arange(1, 21)
    # items 2k+1 and 2k+2 are behavioural twins with unrelated texts
    twins = torch.tensor([i + 1 if i % 2 == 1 else i - 1 for i in range(1, 21)]).unsqueeze(1)

    def twin_similarity(m):
        v = m.encode(torch.arange(0, 21))
        return float((v[items] * v[twins[:, 0]]).sum(-1).mean())

    tuned = HeadMatcher(base, dropout=0.1)
    before = twin_similarity(tuned)
    fit_matcher(tuned, items, twins, epochs=25, batch_size=10, lr=3e-2, temperature=0.1, behavior_weight=1.0, seed=0)
    text_only = HeadMatcher(base, dropout=0.1)
    fit_matcher(text_only, items, twins, epochs=25, batch_size=10, lr=3e-2, temperature=0.1, behavior_weight=0.0, seed=0)
    assert twin_similarity(tuned) > before + 0.2
    assert twin_similarity(tuned) > twin_similarity(text_only) + 0.2


def test_fit_matcher_respects_max_steps_and_only_tunes_the_head():
    base = _clustered_base(1)
    matcher = HeadMatcher(base, dropout=0.1)
    stats = fit_matcher(matcher, torch.arange(1, 21), None, epochs=10, batch_size=4, lr=1e-3, temperature=0.05,
                        behavior_weight=1.0, max_steps=7)
    assert stats["steps"] == 7
    assert torch.equal(matcher.base, F.normalize(base, dim=-1))  # the sentence vectors stay frozen
    assert not torch.equal(matcher.linear.weight, torch.eye(16))


@pytest.mark.slow
def test_full_matcher_fine_tunes_its_own_copy_of_the_sentence_encoder():
    from mtrec.text import DEFAULT_TEXT_MODEL, load_text_model, resolve_text_model
    from mtrec_id_matcher.matcher import FullMatcher

    texts = ["", "red wool yarn", "blue wool yarn", "steel scissors", "ballpoint pen", "paper notebook", "desk lamp"]
    matcher = FullMatcher(resolve_text_model(DEFAULT_TEXT_MODEL), texts, max_tokens=16, device=torch.device("cpu"))
    shared = load_text_model()  # the core's cached instance must not be the one we tune
    assert matcher.st is not shared
    items = torch.arange(1, 7)
    matcher.train()
    a, b = matcher(items), matcher(items)
    assert torch.allclose(a.norm(dim=-1), torch.ones(6), atol=1e-5) and not torch.allclose(a, b)  # dropout views
    before = matcher.encode(items)
    expected = torch.as_tensor(shared.encode(texts[1:], normalize_embeddings=True))
    assert torch.allclose(before, expected, atol=1e-4)  # untuned: the sentence encoder itself
    weights = {n: p.detach().clone() for n, p in matcher.named_parameters()}
    positives = torch.tensor([[2], [1], [0], [5], [4], [0]])
    stats = fit_matcher(matcher, items, positives, epochs=1, batch_size=6, lr=1e-4, temperature=0.05,
                        behavior_weight=1.0, max_steps=1)
    assert stats["steps"] == 1
    changed = [n for n, p in matcher.named_parameters() if not torch.equal(p, weights[n])]
    assert any("encoder.layer.0." in n for n in changed)  # the bottom transformer layer trains too
    assert not torch.allclose(matcher.encode(items), before)
