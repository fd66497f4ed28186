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
    assert {"gmc", "tiger", "gmc-paper", "tiger-paper"} <= set(cat.recipes)
    assert cat.recipe("gmc").quick and cat.recipe("tiger").quick
    gmc = cat.recipe("gmc-paper").config
    assert gmc["training"] == {"epochs": 200, "lr": 2e-3, "batch_size": 1024, "patience": 10}
    tiger = cat.recipe("tiger").config
    assert tiger["identifier"]["params"]["shared_codebooks"] is False
    assert tiger["transfer"]["name"] == "single-domain"


@pytest.mark.parametrize("variant", sorted(ABLATIONS))
def test_ablations_are_config_switches(plugins, variant):
    base = resolve(plugins.catalogue, "gmc", quick=True).config.model_dump()
    varied = resolve(plugins.catalogue, "gmc", quick=True, overrides=ABLATIONS[variant]).config.model_dump()
    for switch in ABLATIONS[variant]:
        key, value = switch.split("=")
        *path, leaf = key.split(".")
        node_base, node_varied = base, varied
        for part in path:
            node_base, node_varied = node_base[part], node_varied[part]
        assert str(node_varied[leaf]).lower() == value and node_base[leaf] != node_varied[leaf]


# The README's "Recipes": (identifier, encoder, transfer, decoder) and whether the RQ-VAE is the
# shared, contrastive one (gmc) or one plain RQ-VAE per domain (tiger).
RECIPE_PARTS = {
    "gmc": (("semantic-id", "seq2seq", "unified-then-lora", "trie-beam"), True),
    "gmc-paper": (("semantic-id", "seq2seq", "unified-then-lora", "trie-beam"), True),
    "tiger": (("semantic-id", "seq2seq", "single-domain", "trie-beam"), False),
    "tiger-paper": (("semantic-id", "seq2seq", "single-domain", "trie-beam"), False),
}


@pytest.mark.parametrize("recipe", sorted(RECIPE_PARTS))
def test_recipes_resolve(plugins, recipe):
    parts, shared = RECIPE_PARTS[recipe]
    for quick in (False, True):
        config = resolve(plugins.catalogue, recipe, quick=quick).config
        assert (config.identifier.name, config.encoder.name, config.transfer.name, config.decoder.name) == parts
        identifier = config.identifier.params
        assert (identifier["shared_codebooks"], identifier["contrastive"]) == (shared, shared)
        assert config.decoder.params["beam_size"] == (10 if quick else 20)  # beam 20; --quick: 10
        assert config.data.max_len == 20
        if shared:
            assert config.transfer.params["mode"] == "lora" and config.transfer.params["lora_lr"] == 5e-4


def test_paper_recipes_differ_from_the_defaults_only_in_scale(plugins):
    """gmc / tiger are CPU-sized; gmc-paper / tiger-paper carry §5.1.4's numbers; the method is the
    same.  The CPU recipes' documented deviations: one encoder position per history item, and an
    optimisation schedule (lr 3e-3 with warm-up and cosine decay, batch 128) that converges in minutes."""
    for name in ("gmc", "tiger"):
        small = resolve(plugins.catalogue, name).config
        paper = resolve(plugins.catalogue, f"{name}-paper").config
        assert paper.training.epochs == 200 and paper.training.batch_size == 1024 and paper.training.lr == 2e-3
        assert paper.encoder.params["d_model"] == 128 and paper.encoder.params["num_layers"] == 4
        assert paper.decoder.params["beam_size"] == small.decoder.params["beam_size"] == 20
        assert small.training.epochs < paper.training.epochs
        assert small.encoder.params["history"] == "items" and paper.encoder.params.get("history", "tokens") == "tokens"
        assert paper.training.lr_schedule == "constant" and small.training.lr_schedule == "cosine"
        assert small.encoder.params["num_layers"] < paper.encoder.params["num_layers"]
        assert small.encoder.params["d_ff"] < paper.encoder.params["d_ff"]
        method = ("levels", "codebook_size", "latent_dim", "beta", "shared_codebooks", "contrastive")
        assert {k: small.identifier.params[k] for k in method} == {k: paper.identifier.params[k] for k in method}
        assert small.transfer.name == paper.transfer.name
    gmc = resolve(plugins.catalogue, "gmc-paper").config
    assert gmc.transfer.params["lora_lr"] == 5e-4 and gmc.transfer.params["lora_batch_size"] == 512


def test_identifier_params_are_validated(plugins):
    with pytest.raises(ConfigError) as exc:
        resolve(plugins.catalogue, "gmc", overrides=["identifier.params.levles=3"])
    # the component, then the misspelt key with its full path (core/config.py's format_errors)
    assert str(exc.value) == "invalid identifier 'semantic-id':\n  identifier.params.levles: unknown key"
