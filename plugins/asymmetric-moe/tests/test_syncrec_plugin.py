"""Registration, the recipe and its Table 5 switches, config errors, and a training run."""

from __future__ import annotations

import json

import pytest
import torch

from mtrec.config import resolve
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins
from mtrec.training.stage import Stage
from mtrec_asymmetric_moe import plugin as plugin_module
from mtrec_asymmetric_moe.ntg import NTGWeighting
from mtrec_asymmetric_moe.recipes import ABLATIONS
from syncrec_helpers import fake_run, tiny_dataset, tiny_model


@pytest.fixture(scope="module")
def plugins():
    p = Plugins().load()
    if "asymmetric-moe" not in p.infos:  # not installed as a distribution: register the module directly
        p.register_module(plugin_module, "asymmetric-moe", "mtrec-asymmetric-moe")
    return p


def test_components_and_recipe_are_registered(plugins):
    cat = plugins.catalogue
    assert "task-losses" in cat.get("encoder", "syncrec").provides
    assert cat.get("transfer", "ntg-weighting").requires == {"encoder": frozenset({"task-losses"})}
    recipe = cat.recipe("syncrec")
    assert recipe.description and recipe.quick
    cfg = resolve(cat, "syncrec-paper").config  # syncrec is CPU-sized (test_syncrec_recipes_scale.py)
    assert cfg.encoder.params["hidden"] == 128 and cfg.encoder.params["experts"] == 4
    assert cfg.data.max_len == 128 and cfg.training.batch_size == 128
    assert resolve(cat, "syncrec", quick=True).config.training.epochs == 2


@pytest.mark.parametrize("variant", sorted(ABLATIONS))
def test_table5_ablations_are_config_switches(plugins, variant):
    resolved = resolve(plugins.catalogue, "syncrec", quick=True, overrides=ABLATIONS[variant])
    enc, tr = resolved.params["encoder"], resolved.params["transfer"]
    assert (enc.sc_mim, enc.stop_gradient, tr.correction) == {
        "w/o LC-NTG": (True, True, False), "w/o SC-MIM": (False, True, True), "w/o ACMoE": (True, False, True),
    }[variant]


def test_cross_trained_experts_default_to_the_official_ratio_and_the_old_reading_is_a_switch(plugins):
    default = resolve(plugins.catalogue, "syncrec").params["encoder"]
    assert (default.experts, default.n_cross_experts) == (4, 3)  # int(4 * 0.8)
    paper = resolve(plugins.catalogue, "syncrec-paper").params["encoder"]
    assert (paper.experts, paper.n_cross_experts) == (4, 3)
    old = resolve(plugins.catalogue, "syncrec", overrides=["encoder.params.cross_expert_ratio=0.2"])
    assert old.params["encoder"].n_cross_experts == 1  # §4.2's j = 0.2 K, at least one
    quick = resolve(plugins.catalogue, "syncrec", quick=True).params["encoder"]
    assert (quick.experts, quick.n_cross_experts) == (2, 1)


def test_ntg_temperature_is_fixed_by_default(plugins):
    tr = resolve(plugins.catalogue, "syncrec").params["transfer"]
    assert (tr.temperature, tr.learn_temperature, tr.learnable) == (1.0, False, True)


@pytest.mark.parametrize("override,key", [
    ("encoder.params.cross_experts=4", "cross_experts"),
    ("encoder.params.cross_expert_ratio=1", "cross_expert_ratio"),
    ("encoder.params.cross_expert_ratio=0", "encoder.params.cross_expert_ratio"),
    ("encoder.params.experts=1", "encoder.params.experts"),
    ("encoder.params.eta=0", "encoder.params.eta"),
    ("transfer.params.temperature=0", "transfer.params.temperature"),
    ("encoder.params.gates=sequence", "encoder.params.gates"),
])
def test_bad_config_names_the_key(plugins, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve(plugins.catalogue, "syncrec", overrides=[override])


def test_ntg_weighting_refuses_an_encoder_without_task_losses(plugins):
    with pytest.raises(ConfigError, match="ntg-weighting.*task-losses"):
        resolve(plugins.catalogue, "syncrec", overrides=["encoder.name=sasrec"])


def test_training_with_ntg_weighting_lowers_the_loss():
    ds = tiny_dataset([[1, 5, 2, 6, 3, 7, 4, 8] * 2, [7, 8, 4, 5, 1, 6, 2] * 2, [2, 3, 6, 7, 1, 8] * 2])
    model = tiny_model(ds, max_len=8, hidden=16)
    batch = model.train_tensors(fake_run(ds, 8), [0, 1])
    comb = NTGWeighting(ds.domains, task_weight=model.task_weight)
    opt = torch.optim.Adam(list(model.parameters()) + list(comb.parameters()), lr=2e-2)
    torch.manual_seed(0)
    seen = []
    for _ in range(30):
        loss = comb(model.loss(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen.append(float(loss.detach()))
    assert sum(seen[-10:]) / 10 < 0.7 * sum(seen[:10]) / 10
    assert abs(comb.current()["A"] - comb.current()["B"]) > 0  # the relative NTG moved off uniform
    assert isinstance(Stage("s", [0, 1], combine=comb).combine, torch.nn.Module)


@pytest.mark.slow
def test_quick_run_on_the_bundled_dataset(plugins, tmp_path):
    from mtrec.engine import execute_run

    resolved = resolve(plugins.catalogue, "syncrec", quick=True, overrides=[
        "training.threads=1", "training.epochs=1", "training.max_train_examples=300",
        "evaluation.valid_max_users=30", "encoder.params.hidden=16"])
    outcome = execute_run(resolved, plugins, registry=None, progress=False, output_root=tmp_path)
    assert set(outcome.test.counts) == {"Scientific", "Arts", "Office", "average"}
    assert outcome.test.counts["average"] == sum(v for k, v in outcome.test.counts.items() if k != "average")
    assert all(0.0 <= v <= 1.0 for row in outcome.test.metrics.values() for v in row.values())
    assert [s["name"] for s in outcome.stages] == ["joint-ntg"]
    assert (outcome.run_dir / "models" / "models.json").is_file()
    # the final LC-NTG weights per domain, where benchmarks/syncrec_seeds.py reads them
    ntg = json.loads((outcome.run_dir / "models" / "ntg.json").read_text())
    assert set(ntg["relative_ntg"]) == {"Scientific", "Arts", "Office"} and ntg["correction"] is True
    assert sum(ntg["relative_ntg"].values()) == pytest.approx(1.0)
