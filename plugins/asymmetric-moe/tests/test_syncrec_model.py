"""ACMoE and the syncrec encoder: distinct experts, the stop-gradient split, gates, losses, scoring."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from mtrec_asymmetric_moe.encoder import SyNCRecParams
from mtrec_asymmetric_moe.losses import bpr
from syncrec_helpers import fake_run, tiny_dataset, tiny_model


@pytest.fixture()
def setup():
    ds = tiny_dataset()
    model = tiny_model(ds)
    batch = model.train_tensors(fake_run(ds), [0, 1])
    return ds, model, batch


def test_experts_are_distinct_modules(setup):
    _, model, _ = setup
    experts = list(model.moe.experts)
    assert len(experts) == 3 and len({id(e) for e in experts}) == 3
    first = [next(e.parameters()) for e in experts]
    assert len({p.data_ptr() for p in first}) == 3
    assert not torch.equal(first[0], first[1])
    assert len(model.moe.gates) == 3 and len(model.moe.towers) == 3  # 2 domains + cross


def test_default_cross_experts_follow_the_official_ratio_and_bad_values_are_refused():
    # official code: cross_expert_num = int(expert_num * cross_expert_ratio), ratio 0.8
    assert SyNCRecParams().cross_expert_ratio == 0.8
    assert SyNCRecParams(experts=4).n_cross_experts == 3  # the recipes' K: 3 of 4 learn the cross task
    assert SyNCRecParams(experts=5).n_cross_experts == 4
    assert SyNCRecParams(experts=10).n_cross_experts == 8
    assert SyNCRecParams(experts=2).n_cross_experts == 1  # int(1.6)
    # the old reading, j = 0.2 K, stays reachable; int(0.8) = 0 is raised to one cross expert
    assert SyNCRecParams(experts=4, cross_expert_ratio=0.2).n_cross_experts == 1
    assert SyNCRecParams(experts=5, cross_expert_ratio=0.6).n_cross_experts == 3  # §5.6's best: 3 of 5
    assert SyNCRecParams(experts=4, cross_expert_ratio=0.01).n_cross_experts == 1
    assert SyNCRecParams(experts=4, cross_expert_ratio=0.2, cross_experts=2).n_cross_experts == 2  # explicit j wins
    with pytest.raises(ValidationError, match="cross_experts"):
        SyNCRecParams(experts=4, cross_experts=4)
    with pytest.raises(ValidationError, match="cross_expert_ratio 1.0 gives cross_experts = 4"):
        SyNCRecParams(experts=4, cross_expert_ratio=1.0)  # no expert left for the single-domain tasks
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValidationError, match="cross_expert_ratio"):
            SyNCRecParams(cross_expert_ratio=bad)


def test_loss_keys_and_counts(setup):
    _, model, batch = setup
    out = model.loss(batch)
    # cross targets: user 0 -> 5 2 6 3, user 1 -> 8 4 5; single: user 0 A 2 3, B 6; user 1 B 8 5
    assert out.counts == {"cross/A": 3, "cross/B": 4, "single/A": 2, "single/B": 3}
    assert set(out.extra) == {"sc_mim"}


def _expert_grads(model, losses) -> list[float]:
    model.zero_grad()
    sum(losses).backward()
    return [sum(float(p.grad.abs().sum()) for p in e.parameters() if p.grad is not None) for e in model.moe.experts]


@pytest.mark.parametrize("ratio,j", [(0.8, 2), (0.2, 1)])  # K = 3: int(2.4) = 2; max(1, int(0.6)) = 1
def test_stop_gradient_split(ratio, j):
    ds = tiny_dataset()
    model = tiny_model(ds, cross_expert_ratio=ratio)
    batch = model.train_tensors(fake_run(ds), [0, 1])
    assert model.moe.cross_experts == j
    out = model.loss(batch)
    cross = _expert_grads(model, [v for k, v in out.losses.items() if k.startswith("cross/")])
    # experts 0..j-1 learn from the cross task only, j..K-1 from the single tasks only
    assert all(g > 0 for g in cross[:j]) and all(g == 0 for g in cross[j:])
    out = model.loss(batch)
    single = _expert_grads(model, [v for k, v in out.losses.items() if k.startswith("single/")])
    assert all(g == 0 for g in single[:j]) and all(g > 0 for g in single[j:])
    # gates sit outside the stop-gradient: a domain gate learns from its single task, the cross gate not
    assert float(model.moe.gates[0].weight.grad.abs().sum()) > 0
    cross_gate = model.moe.gates[2].weight.grad
    assert cross_gate is None or float(cross_gate.abs().sum()) == 0


def test_vanilla_moe_ablation_lets_every_task_train_every_expert():
    ds = tiny_dataset()
    model = tiny_model(ds, stop_gradient=False)
    batch = model.train_tensors(fake_run(ds), [0, 1])
    out = model.loss(batch)
    assert all(g > 0 for g in _expert_grads(model, [v for k, v in out.losses.items() if k.startswith("cross/")]))
    out = model.loss(batch)
    assert all(g > 0 for g in _expert_grads(model, [v for k, v in out.losses.items() if k.startswith("single/")]))


def test_gates_are_distributions_over_experts(setup):
    _, model, batch = setup
    e = model.embed(batch["input"])
    for group in range(3):
        w = model.moe.gate_weights(e, group)
        assert w.shape == (2, 6, 3)
        assert torch.allclose(w.sum(-1), torch.ones(2, 6))


@pytest.mark.parametrize("gate,leaks", [("position", False), ("sequence", True)])
def test_position_gate_is_causal_and_sequence_gate_sees_the_future(gate, leaks):
    ds = tiny_dataset()
    model = tiny_model(ds, gate=gate).eval()
    a = torch.tensor([[0, 1, 5, 2, 6, 3]])
    b = torch.tensor([[0, 1, 5, 2, 6, 4]])  # only the last item differs
    with torch.no_grad():
        ya, yb = model.cross_representation(a), model.cross_representation(b)
    assert torch.allclose(ya[:, :-1], yb[:, :-1]) is not leaks


def test_score_is_the_last_cross_representation_times_item_embeddings(setup):
    ds, model, _ = setup
    model.eval()
    batch = {"history_cross": torch.tensor([[0, 0, 1, 5, 2, 6]]), "history": torch.tensor([[0, 0, 0, 0, 1, 2]])}
    cand = torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        got = model.score(batch, cand)
        want = model.cross_representation(batch["history_cross"])[:, -1] @ model.item_embedding(cand).T
        other = model.score({**batch, "history": torch.zeros_like(batch["history"])}, cand)
    assert torch.allclose(got, want) and torch.equal(got, other)  # the single view is not used


def test_negatives_come_uniformly_from_the_targets_domain(setup):
    ds, model, _ = setup
    torch.manual_seed(1)
    neg = model.negatives(torch.tensor([0] * 400 + [1] * 400))
    assert set(neg[:400].tolist()) == {1, 2, 3, 4} and set(neg[400:].tolist()) == {5, 6, 7, 8}


def test_cross_loss_matches_a_hand_computation(setup):
    _, model, batch = setup
    model.eval()  # no dropout; the loss is still the training loss
    torch.manual_seed(7)
    out = model.loss(batch)
    torch.manual_seed(7)
    target = batch["target"]
    y = model.cross_representation(batch["input"])[target > 0]
    pos = target[target > 0]
    neg = model.negatives(model.item_domain[pos])  # the first random draw of loss()
    per = bpr((y * model.item_embedding(pos)).sum(-1), (y * model.item_embedding(neg)).sum(-1))
    in_a = model.item_domain[pos] == 0
    got = {k: float(v.detach()) for k, v in out.losses.items()}
    assert got["cross/A"] == pytest.approx(float(per[in_a].mean().detach()), rel=1e-5)
    assert got["cross/B"] == pytest.approx(float(per[~in_a].mean().detach()), rel=1e-5)
