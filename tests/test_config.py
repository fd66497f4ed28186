"""Config layering and validation: unknown keys, wrong types, incompatible combinations."""

from __future__ import annotations

import pytest

from mtrec.components import Component, Params
from mtrec.config import parse_set, resolve
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins


@pytest.fixture(scope="module")
def catalogue():
    return Plugins().load().catalogue


def test_layers_apply_in_order(catalogue, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  epochs: 7\n  lr: 0.01\nencoder:\n  params:\n    layers: 3\n")
    resolved = resolve(catalogue, "sasrec", config_file=cfg, overrides=["training.lr=0.005"], quick=True)
    c = resolved.config
    assert c.training.epochs == 7  # file over --quick
    assert c.training.lr == 0.005  # --set over file
    assert c.encoder.params["layers"] == 3
    assert c.encoder.params["hidden"] == 32  # from --quick, kept
    assert resolved.params["encoder"].layers == 3


def test_set_parses_yaml_values():
    assert parse_set(["a.b=3", "a.c=[5, 10]", "d=true", "e=x"]) == {"a": {"b": 3, "c": [5, 10]}, "d": True, "e": "x"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["training.epochs"])


def test_unknown_key_is_named(catalogue):
    with pytest.raises(ConfigError, match=r"training\.epoch: unknown key"):
        resolve(catalogue, "sasrec", overrides=["training.epoch=3"])
    with pytest.raises(ConfigError, match=r"encoder\.params\.hiden: unknown key"):
        resolve(catalogue, "sasrec", overrides=["encoder.params.hiden=3"])


def test_wrong_type_is_named(catalogue):
    with pytest.raises(ConfigError, match=r"training\.epochs: .*integer.*'many'"):
        resolve(catalogue, "sasrec", overrides=["training.epochs=many"])


def test_unknown_component_and_recipe(catalogue):
    with pytest.raises(ConfigError, match=r"encoder.name: unknown encoder 'nope'; registered: (.*, )?sasrec"):
        resolve(catalogue, "sasrec", overrides=["encoder.name=nope"])
    with pytest.raises(ConfigError, match="unknown recipe 'gmcx'"):
        resolve(catalogue, "gmcx")


def test_changing_a_component_drops_the_old_params(catalogue):
    resolved = resolve(catalogue, "sasrec", overrides=["transfer.name=joint"])
    assert resolved.config.transfer.params == {"domain_weighting": "examples"}


def test_incompatible_combination_names_the_parts():
    plugins = Plugins().load()
    catalogue = plugins.catalogue

    class P(Params):
        pass

    catalogue.add_component(Component(kind="encoder", name="gen", factory=object, params=P,
                                      provides=frozenset({"generative"})))
    with pytest.raises(ConfigError, match="decoder 'topk' needs an encoder that provides scores; encoder 'gen' provides generative"):
        resolve(catalogue, "sasrec", overrides=["encoder.name=gen"])


def test_config_hash_ignores_name_but_not_values(catalogue):
    a = resolve(catalogue, "sasrec", overrides=["name=a"]).config
    b = resolve(catalogue, "sasrec", overrides=["name=b"]).config
    c = resolve(catalogue, "sasrec", overrides=["seed=1"]).config
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_config_file_names_its_recipe_and_carries_its_own_quick_profile(catalogue, tmp_path):
    cfg = tmp_path / "mix.yaml"
    cfg.write_text("recipe: sasrec\ntraining:\n  epochs: 7\nquick:\n  training:\n    epochs: 2\n"
                   "  encoder:\n    params:\n      layers: 1\n")
    full = resolve(catalogue, None, config_file=cfg).config
    assert (full.recipe, full.training.epochs, full.encoder.params["layers"]) == ("sasrec", 7, 2)
    quick = resolve(catalogue, None, config_file=cfg, quick=True).config
    assert quick.training.epochs == 2 and quick.encoder.params["layers"] == 1
    assert quick.encoder.params["hidden"] == 32  # the recipe's --quick still applies beneath the file
    over = resolve(catalogue, None, config_file=cfg, quick=True, overrides=["training.epochs=3"]).config
    assert over.training.epochs == 3  # --set stays last
    assert "quick" not in full.model_dump()


def test_config_file_recipe_errors_name_the_file(catalogue, tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("training:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"bare.yaml has no `recipe:` key; give --plugin NAME"):
        resolve(catalogue, None, config_file=bare)
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: sasrec\nquick:\n  recipe: gmc\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: quick.recipe"):
        resolve(catalogue, None, config_file=bad, quick=True)
    listy = tmp_path / "listy.yaml"
    listy.write_text("recipe: sasrec\nquick: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"listy.yaml: `quick` must be a mapping"):
        resolve(catalogue, None, config_file=listy)


def test_switchable_capability_names_the_switch_and_check_runs_with_every_part():
    plugins = Plugins().load()
    catalogue = plugins.catalogue

    class Switch(Params):
        extra: bool = False

    seen = {}

    def check(params, parts, cat):
        seen.update(params=params, kinds=sorted(parts), catalogue=cat)

    catalogue.add_component(Component(kind="encoder", name="switchy", factory=object, params=Switch,
                                      provides=frozenset({"scores"}), switchable={"special": "extra"}))
    catalogue.add_component(Component(kind="decoder", name="picky", factory=object, params=Params,
                                      requires={"encoder": frozenset({"scores", "special"})}, check=check))
    with pytest.raises(ConfigError, match=r"decoder 'picky' needs an encoder that provides special; encoder "
                                          r"'switchy' provides scores \(set encoder.params.extra=true\)"):
        resolve(catalogue, "sasrec", overrides=["encoder.name=switchy", "decoder.name=picky"])
    assert not seen  # the capability check comes first
    resolved = resolve(catalogue, "sasrec", overrides=["encoder.name=switchy", "encoder.params.extra=true",
                                                       "decoder.name=picky"])
    assert resolved.components["encoder"].provided(resolved.params["encoder"]) == {"scores", "special"}
    assert seen["kinds"] == ["decoder", "encoder", "identifier", "transfer"] and seen["catalogue"] is catalogue


def test_config_differences_lists_dotted_keys(catalogue):
    from mtrec.config import config_differences, flat_config

    assert flat_config({"a": {"b": 1, "c": {"d": [2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [2], "e": {}}
    base = resolve(catalogue, "sasrec").config
    other = resolve(catalogue, "sasrec", overrides=["training.epochs=3", "encoder.params.layers=4", "name=x"]).config
    assert config_differences(base, other) == {"training.epochs", "encoder.params.layers"}
    assert config_differences(base, base) == set()
