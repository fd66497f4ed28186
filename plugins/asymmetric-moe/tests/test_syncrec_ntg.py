"""LC-NTG: the relative NTG update (Eq. 11), the corrected loss (Eq. 12, 18), gradients, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mtrec.errors import ConfigError
from mtrec.training.stage import DomainLoss
from mtrec_asymmetric_moe.ntg import NTGWeighting


def losses(values: dict[str, float], extra: float = 0.3) -> DomainLoss:
    return DomainLoss({k: torch.tensor(v, requires_grad=True) for k, v in values.items()},
                      {k: 1 for k in values}, {"aux": torch.tensor(extra)})


VALUES = {"single/A": 1.0, "cross/A": 0.5, "single/B": 0.2, "cross/B": 0.6}


def softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_relative_ntg_update_and_corrected_loss_by_hand():
    comb = NTGWeighting(["A", "B"], task_weight=0.9)
    phi = [1.0 - 0.5, 0.2 - 0.6]  # Eq. 10: single - cross
    lam1 = softmax(phi)  # lambda starts at 0, alpha = beta = delta = 1
    total = comb(losses(VALUES))
    want = 0.9 * (1.2 + 2 * lam1[0] * 0.5 + 2 * lam1[1] * 0.6) + 0.3
    assert float(total.detach()) == pytest.approx(want, rel=1e-6)
    assert list(comb.current().values()) == pytest.approx(lam1, rel=1e-6)
    lam2 = softmax([lam1[0] + phi[0], lam1[1] + phi[1]])  # second batch carries lambda
    total2 = comb(losses(VALUES))
    assert float(total2.detach()) == pytest.approx(0.9 * (1.2 + 2 * lam2[0] * 0.5 + 2 * lam2[1] * 0.6) + 0.3, rel=1e-6)
    # the domain whose cross-domain loss is worse than its single-domain one (B) weighs less
    assert lam2[1] < lam2[0]


def test_temperature_flattens_the_weights():
    sharp = NTGWeighting(["A", "B"], temperature=0.5)
    flat = NTGWeighting(["A", "B"], temperature=10.0)
    sharp(losses(VALUES)), flat(losses(VALUES))
    gap = lambda c: abs(c.current()["A"] - c.current()["B"])  # noqa: E731
    assert gap(flat) < gap(sharp)


def test_gradients_reach_alpha_and_beta_but_not_through_the_gap():
    comb = NTGWeighting(["A", "B"], task_weight=0.9)
    comb(losses(VALUES))  # first batch: lambda becomes non-zero
    loss = losses(VALUES)
    total = comb(loss)
    total.backward()
    assert comb.alpha.grad != 0 and comb.beta.grad != 0
    assert {name for name, _ in comb.named_parameters()} == {"alpha", "beta"}  # delta is no parameter
    # phi is detached: a single-domain loss only gets its own eta, never a path through lambda
    assert float(loss.losses["single/A"].grad) == pytest.approx(0.9)
    lam = comb.current()
    assert float(loss.losses["cross/B"].grad) == pytest.approx(0.9 * 2 * lam["B"], rel=1e-6)


def _step(comb: NTGWeighting) -> None:
    """One Adam step on everything the combiner offers an optimiser, after a batch that sets lambda."""
    comb(losses(VALUES))  # first batch: lambda becomes non-zero, so alpha gets a gradient next
    opt = torch.optim.Adam(comb.parameters(), lr=0.1)
    comb(losses(VALUES)).backward()
    opt.step()


def test_default_temperature_is_fixed_while_alpha_and_beta_learn():
    # Eq. 11: "alpha and beta are learnable parameters"; delta is the softmax's temperature, a fixed
    # hyper-parameter (the official code's --temperature, default 1).  0.5 so that a drift shows.
    comb = NTGWeighting(["A", "B"], temperature=0.5)
    _step(comb)
    assert comb.temperature.item() == pytest.approx(0.5, abs=1e-7)
    assert comb.alpha.item() != pytest.approx(1.0, abs=1e-3) and comb.beta.item() != pytest.approx(1.0, abs=1e-3)
    assert comb.summary()["temperature"] == pytest.approx(0.5, abs=1e-7)
    assert "log_temperature" in comb.state_dict()  # saved with the combiner, same key as when learnt


def test_learning_the_temperature_is_an_opt_in():
    comb = NTGWeighting(["A", "B"], temperature=0.5, learn_temperature=True)
    _step(comb)
    assert comb.temperature.item() != pytest.approx(0.5, abs=1e-3)
    assert comb.summary()["learn_temperature"] is True


def test_without_correction_every_weight_is_one_and_nothing_is_learnt():
    comb = NTGWeighting(["A", "B"], task_weight=0.9, correction=False, learnable=False)
    total = comb(losses(VALUES))
    assert float(total.detach()) == pytest.approx(0.9 * (1.0 + 0.5 + 0.2 + 0.6) + 0.3)
    assert comb.current() == {"A": 0.0, "B": 0.0}
    assert not any(p.requires_grad for p in comb.parameters())


def test_a_domain_missing_from_one_task_has_a_zero_gap():
    comb = NTGWeighting(["A", "B"])
    comb(losses({"single/A": 1.0, "cross/A": 0.5, "cross/B": 0.6}))
    assert list(comb.current().values()) == pytest.approx(softmax([0.5, 0.0]), rel=1e-6)


def test_losses_without_tasks_are_a_clear_error():
    comb = NTGWeighting(["Arts", "Office"])
    with pytest.raises(ConfigError, match=r"'single/<domain>'.*returned Arts, Office"):
        comb(DomainLoss({"Arts": torch.tensor(1.0), "Office": torch.tensor(1.0)}, {"Arts": 1, "Office": 1}))


@pytest.mark.parametrize("correction", [True, False])
def test_the_final_weights_reach_ntg_json(tmp_path, correction):
    # benchmarks/syncrec_seeds.py reads each run's lambda per domain from models/ntg.json
    from mtrec_asymmetric_moe.ntg import NTGWeightingParams, NTGWeightingStrategy

    strategy = NTGWeightingStrategy(NTGWeightingParams(correction=correction))
    strategy.ntg = NTGWeighting(["A", "B"], correction=correction)
    strategy.ntg(losses(VALUES))
    strategy.ntg(losses(VALUES))
    strategy.save({0: torch.nn.Linear(1, 1)}, tmp_path)
    saved = json.loads((tmp_path / "ntg.json").read_text())
    assert saved["correction"] is correction and set(saved) >= {"alpha", "beta", "temperature"}
    assert saved["relative_ntg"] == pytest.approx(strategy.ntg.current())
    assert sum(saved["relative_ntg"].values()) == pytest.approx(1.0 if correction else 0.0)  # a softmax, or unused
