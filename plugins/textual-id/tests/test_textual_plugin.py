"""Registration through the entry point, the recipe, config errors, the warm-start targets."""

from __future__ import annotations

import pytest

from mtrec.config import resolve
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins
from mtrec_textual_id import plugin as plugin_module
from mtrec_textual_id.recipes import ABLATIONS
from mtrec_textual_id.warmstart import salient_words


@pytest.fixture(scope="module")
def plugins():
    p = Plugins().load()
    if "textual-id" not in p.infos:
        p.register_module(plugin_module, "textual-id", "mtrec-textual-id")
    return p


def test_components_and_recipe_are_registered(plugins):
    cat = plugins.catalogue
    assert cat.components["identifier"]["textual-id"].provides >= {"tokens", "trie", "textual"}
    assert cat.components["encoder"]["idgenrec-seq2seq"].provides == {"generative"}
    assert "idgenrec-alternate" in cat.components["transfer"]
    for quick in (False, True):
        config = resolve(cat, "idgenrec", quick=quick).config
        assert config.decoder.name == "trie-beam" and config.transfer.params["rounds"] >= 1


@pytest.mark.parametrize("variant", sorted(ABLATIONS))
def test_table5_schedules_are_config_switches(plugins, variant):
    config = resolve(plugins.catalogue, "idgenrec", overrides=ABLATIONS[variant]).config
    assert config.transfer.params.get("schedule", "alternate") == variant


@pytest.mark.parametrize("override, key", [
    ("identifier.params.length_ranges=[[3,2]]", "length_ranges"),
    ("transfer.params.schedule=both", "schedule"),
    ("identifier.params.groups=0", "groups"),
])
def test_bad_params_name_the_key(plugins, override, key):
    with pytest.raises(ConfigError, match=key):
        resolve(plugins.catalogue, "idgenrec", overrides=[override])


def test_alternate_training_needs_a_textual_identifier_the_recommender_does_not(plugins):
    if "semantic-id" not in plugins.catalogue.components["identifier"]:
        pytest.skip("semantic-id plugin not installed")
    semantic = ["identifier.name=semantic-id", "identifier.params={}"]
    with pytest.raises(ConfigError, match="idgenrec-alternate.*textual"):
        resolve(plugins.catalogue, "idgenrec", overrides=semantic)
    # the prompt recommender takes any token identifier (tests/test_textual_mixing.py)
    config = resolve(plugins.catalogue, "idgenrec", overrides=[*semantic, "transfer.name=unified-then-lora"]).config
    assert (config.identifier.name, config.encoder.name) == ("semantic-id", "idgenrec-seq2seq")
    assert plugins.catalogue.components["encoder"]["idgenrec-seq2seq"].requires == {"identifier": {"tokens"}}


def test_salient_words_rank_by_tfidf_and_keep_text_order():
    texts = ["title: red apple box; brand: acme", "title: green apple crate; brand: acme",
             "title: blue pear box; brand: zeta"]
    # "title"/"brand" occur everywhere (lowest idf); in text 0 "red" is unique (highest), then
    # "apple", "box" and "acme" each appear in two texts: ties keep the earlier word
    top = salient_words(texts, 2)
    assert top[0] == ["red", "apple"]
    assert top[2] == ["blue", "pear"]
    # a word ruled out by keep() is skipped
    assert salient_words(texts, 2, keep=lambda ws: [w != "red" for w in ws])[0] == ["apple", "box"]


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_zero_shot_targets_refuse_per_domain_finetuning(mode):
    from types import SimpleNamespace

    from mtrec_textual_id.alternate import AlternateParams, AlternateTraining

    run = SimpleNamespace(dataset=SimpleNamespace(domains=["Arts", "Microlens"]), target_domains=[1],
                          source_domains=[0])
    with pytest.raises(ConfigError, match=f"mode='{mode}'.*Microlens"):
        AlternateTraining(AlternateParams(mode=mode)).execute(run)
