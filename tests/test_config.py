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
