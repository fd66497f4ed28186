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


NEW = ["transfer.params.mode=new-encoder", "transfer.params.pretrain_encoder.name=sasrec"]


@pytest.mark.parametrize("overrides, message", [
    (["transfer.params.mode=new-encoder", "transfer.params.pretrain_encoder.name=nope"],
     r"pretrain_encoder\.name: unknown encoder 'nope'"),
    ([*NEW, "transfer.params.pretrain_encoder.params.hiden=3"], r"pretrain_encoder\.params\.hiden: unknown key"),
    (["transfer.params.pretrain_encoder.name=sasrec", "transfer.params.pretrain_encoder.params.layers=1"],
     "only transfer.params.mode=new-encoder"),
    # widths: sasrec 48-d pre-training, the run's sasrec 64-d; both keys named
    ([*NEW, "transfer.params.pretrain_encoder.params.hidden=48"],
     r"pretrain_encoder\.params\.hidden: .*'sasrec' is 48-d but encoder 'sasrec' \(encoder\.params\.hidden\) is 64-d"),
    ([*NEW, "encoder.name=syncrec"],  # sasrec's default 64 against syncrec's default 128
     r"is 64-d but encoder 'syncrec' \(encoder\.params\.hidden\) is 128-d.*same width"),
    (["transfer.params.mode=zero-shot", "transfer.params.finetune_together=true"], r"finetune_together=true"),
])
def test_pretrain_encoder_and_finetune_together_are_refused_at_config_time(plugins, overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve(plugins.catalogue, "idp", overrides=overrides)


def test_matching_widths_and_a_pretrain_encoder_identical_to_encoder_are_allowed(plugins):
    for overrides in ([*NEW, "encoder.name=syncrec", "encoder.params.hidden=64", "transfer.params.finetune_together=true"],
                      [*NEW, "encoder.name=man", "encoder.params.hidden=64", "decoder.name=pointwise"],
                      ["transfer.params.pretrain_encoder.name=sasrec", "transfer.params.pretrain_encoder.params.loss=bpr"]):
        run = _run_for(plugins, overrides)
        strategy = PretrainMatchFinetune(run.params["transfer"], run)  # also checked when built without resolve
        assert strategy._pretrain is not None and strategy._pretrain[0].name == "sasrec"
