"""Capabilities: core members of ``Capability`` and a third-party plugin's plain strings are one thing."""

from __future__ import annotations

import json

import pytest

from mtrec.components import DISCRIMINATIVE_ENCODER, Capability, Catalogue, Component, Params
from mtrec.errors import ConfigError
from mtrec.training.stage import LOSS_WEIGHTING, TASK_LOSSES


def test_a_member_is_its_string():
    assert Capability.SCORES == "scores" and hash(Capability.SCORES) == hash("scores")
    assert "scores" in frozenset({Capability.SCORES}) and Capability.SCORES in frozenset({"scores"})
    assert (str(Capability.TASK_LOSSES), f"{Capability.TASK_LOSSES}") == ("task-losses", "task-losses")
    assert json.dumps(sorted({Capability.TRIE, "textual"})) == '["textual", "trie"]'
    assert Capability("trie") is Capability.TRIE
    # the loss contracts of training/stage.py are the same capabilities
    assert (Capability.TASK_LOSSES, Capability.LOSS_WEIGHTING) == (TASK_LOSSES, LOSS_WEIGHTING)
    assert DISCRIMINATIVE_ENCODER == {"discriminative", "scores", "embeddings"}


def _encoder(name: str, provides) -> Component:
    return Component(kind="encoder", name=name, factory=object, params=Params, provides=frozenset(provides))


def _decoder(requires) -> Component:
    return Component(kind="decoder", name="d", factory=object, params=Params,
                     requires={"encoder": frozenset(requires)})


@pytest.mark.parametrize("provides, requires", [
    ({"scores"}, {Capability.SCORES}),  # a plain-string plugin meets a core part declaring members
    ({Capability.SCORES}, {"scores"}),  # ... and the other way round
    (DISCRIMINATIVE_ENCODER, {"embeddings", "scores"}),
])
def test_plain_strings_and_members_satisfy_each_other(provides, requires):
    chosen = {"encoder": _encoder("e", provides), "decoder": _decoder(requires)}
    Catalogue().check_compatible(chosen)


def test_a_missing_capability_is_named_as_its_string():
    chosen = {"encoder": _encoder("e", {Capability.SCORES}), "decoder": _decoder({Capability.GENERATIVE, "scores"})}
    with pytest.raises(ConfigError) as err:
        Catalogue().check_compatible(chosen)
    assert str(err.value) == "decoder 'd' needs an encoder that provides generative; encoder 'e' provides scores"


def test_builtins_declare_the_same_strings_as_before():
    from mtrec.plugins import Plugins

    catalogue = Plugins().load().catalogue
    assert catalogue.get("encoder", "sasrec").provides == {"discriminative", "scores", "embeddings"}
    assert catalogue.get("identifier", "atomic").provides == {"tokens", "trie"}
    assert catalogue.get("decoder", "topk").requires == {"encoder": {"scores"}}
    assert catalogue.get("decoder", "trie-beam").requires == {"encoder": {"generative"}, "identifier": {"trie"}}
    assert catalogue.get("encoder", "seq2seq").switchable == {"task-losses": "task_losses"}
