"""Registration through the entry point, the recipes, and the Table 4 ablation switches."""

from __future__ import annotations

import pytest

from mtrec.config import resolve
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins
from mtrec_semantic_id import plugin as plugin_module
from mtrec_semantic_id.recipes import ABLATIONS


@pytest.fixture(scope="module")
def plugins():
    p = Plugins().load()
    if "semantic-id" not in p.infos:  # not installed as a distribution: register the module directly
        p.register_module(plugin_module, "semantic-id", "mtrec-semantic-id")
    return p


def test_identifier_and_recipes_are_registered(plugins):
    cat = plugins.catalogue
    comp = cat.get("identifier", "semantic-id")
    assert comp.provides == frozenset({"tokens", "trie"})
    assert comp.params().levels == 4 and comp.params().codebook_size == 256
    assert {"gmc", "tiger"} <= set(cat.recipes)
    assert cat.recipe("gmc").quick and cat.recipe("tiger").quick
    gmc = cat.recipe("gmc").config
    assert gmc["training"] == {"epochs": 200, "lr": 2e-3, "batch_size": 1024, "patience": 10}
    tiger = cat.recipe("tiger").config
    assert tiger["identifier"]["params"]["shared_codebooks"] is False
    assert tiger["transfer"]["name"] == "single-domain"


def _needs_generative_parts(plugins):
    cat = plugins.catalogue
    missing = [f"{k} {n}" for k, n in (("encoder", "seq2seq"), ("decoder", "trie-beam"),
                                        ("transfer", "unified-then-lora")) if n not in cat.components[k]]
    if missing:
        pytest.skip(f"core components not available yet: {', '.join(missing)}")


@pytest.mark.parametrize("variant", sorted(ABLATIONS))
def test_ablations_are_config_switches(plugins, variant):
    _needs_generative_parts(plugins)
    resolved = resolve(plugins.catalogue, "gmc", quick=True, overrides=ABLATIONS[variant])
    assert resolved.config.identifier.name == "semantic-id"


@pytest.mark.parametrize("recipe", ["gmc", "tiger"])
def test_recipes_resolve(plugins, recipe):
    _needs_generative_parts(plugins)
    for quick in (False, True):
        resolve(plugins.catalogue, recipe, quick=quick)


def test_identifier_params_are_validated(plugins):
    try:
        resolve(plugins.catalogue, "gmc", overrides=["identifier.params.levles=3"])
    except ConfigError as exc:
        assert "levles" in str(exc) or "unknown" in str(exc)
    else:
        pytest.fail("a misspelt identifier param must be an error")
