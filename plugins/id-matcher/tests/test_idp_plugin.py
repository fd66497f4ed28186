"""Registration, the recipe and its variants, domain planning and config errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mtrec.config import resolve
from mtrec.errors import ConfigError
from mtrec_id_matcher.params import IDPParams
from mtrec_id_matcher.recipes import VARIANTS
from mtrec_id_matcher.strategy import NAME, PretrainMatchFinetune, plan_domains

from idp_helpers import load_plugins


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


def test_strategy_and_recipe_are_registered(plugins):
    cat = plugins.catalogue
    comp = cat.get("transfer", NAME)
    assert comp.requires == {"encoder": frozenset({"embeddings"})}
    recipe = cat.recipe("idp")
    assert recipe.quick and recipe.description
    assert recipe.config["encoder"]["params"]["loss"] == "bpr"  # §2.3: BPR pre-training
    assert recipe.config["encoder"]["params"]["hidden"] == 64 and recipe.config["training"]["batch_size"] == 256


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_are_config_switches(plugins, variant):
    resolved = resolve(plugins.catalogue, "idp", quick=True, overrides=VARIANTS[variant])
    assert resolved.config.transfer.name == NAME


def test_an_encoder_without_embeddings_is_refused(plugins):
    cat = plugins.catalogue
    generative = [n for n, c in cat.components["encoder"].items() if "embeddings" not in c.provides]
    if not generative:
        pytest.skip("no encoder without item embeddings is registered")
    with pytest.raises(ConfigError, match="embeddings"):
        resolve(cat, "idp", overrides=[f"encoder.name={generative[0]}"])


@pytest.mark.parametrize("overrides, key", [
    (["transfer.params.mode=zero-shot", "transfer.params.matcher=false"], "transfer.params"),
    (["transfer.params.id_text=true", "transfer.params.matcher=false"], "transfer.params"),
    (["transfer.params.top_m=0"], "transfer.params.top_m"),
    (["transfer.params.index=annoy"], "transfer.params.index"),
])
def test_bad_params_name_the_key(plugins, overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve(plugins.catalogue, "idp", overrides=overrides)


def fake_run(targets, sources, domains=("A", "B", "C")):
    dataset = SimpleNamespace(domains=list(domains))
    return SimpleNamespace(dataset=dataset, target_domains=targets, source_domains=sources)


def test_plan_pretrains_on_sources_that_are_not_targets():
    plan = plan_domains(fake_run([2], [0, 1, 2]), IDPParams())
    assert (plan.pretrain, plan.finetune, plan.deploy) == ([0, 1], [2], [])
    zero = plan_domains(fake_run([2], [0, 1]), IDPParams())  # a target outside the sources is zero-shot
    assert (zero.pretrain, zero.finetune, zero.deploy) == ([0, 1], [], [2])
    forced = plan_domains(fake_run([2], [0, 1, 2]), IDPParams(mode="zero-shot"))
    assert (forced.finetune, forced.deploy) == ([], [2])
    cold = plan_domains(fake_run([1], [0, 1, 2]), IDPParams(mode="cold-start"))
    assert (cold.pretrain, cold.deploy) == ([1], [1])


def test_plan_errors_name_the_domain_keys():
    with pytest.raises(ConfigError, match=r"domains\.targets.*--set 'domains\.targets=\[A\]'"):
        plan_domains(fake_run([0, 1, 2], [0, 1, 2]), IDPParams())
    with pytest.raises(ConfigError, match=r"domains\.sources.*cold-start.*C"):
        plan_domains(fake_run([2], [0, 1]), IDPParams(mode="cold-start"))
    with pytest.raises(ConfigError, match=r"matcher=false.*C"):
        plan_domains(fake_run([2], [0, 1]), IDPParams(matcher=False))


def _run_for(plugins, overrides):
    resolved = resolve(plugins.catalogue, "idp", overrides=overrides)
    return SimpleNamespace(plugins=plugins, config=resolved.config, params=resolved.params)


def test_pretrain_encoder_is_validated_before_training(plugins):
    run = _run_for(plugins, ["transfer.params.mode=new-encoder", "transfer.params.pretrain_encoder.name=nope"])
    with pytest.raises(ConfigError, match=r"pretrain_encoder\.name: unknown encoder 'nope'"):
        PretrainMatchFinetune(run.params["transfer"], run)
    run = _run_for(plugins, ["transfer.params.mode=new-encoder", "transfer.params.pretrain_encoder.name=sasrec",
                             "transfer.params.pretrain_encoder.params.hiden=3"])
    with pytest.raises(ConfigError, match=r"pretrain_encoder\.params\.hiden: unknown key"):
        PretrainMatchFinetune(run.params["transfer"], run)
    run = _run_for(plugins, ["transfer.params.pretrain_encoder.name=sasrec",
                             "transfer.params.pretrain_encoder.params.layers=1"])
    with pytest.raises(ConfigError, match="only transfer.params.mode=new-encoder"):
        PretrainMatchFinetune(run.params["transfer"], run)
    same = _run_for(plugins, ["transfer.params.pretrain_encoder.name=sasrec",
                              "transfer.params.pretrain_encoder.params.loss=bpr"])
    PretrainMatchFinetune(same.params["transfer"], same)  # identical to `encoder`: allowed in every mode
