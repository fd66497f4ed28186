"""``idgenrec`` (CPU-sized default) and ``idgenrec-paper`` (§3.2) differ only in scale."""

from __future__ import annotations


import pytest

from mtrec.config import config_differences, flat_config, resolve
from mtrec.plugins import Plugins
from mtrec_textual_id import plugin as plugin_module

T5 = ("d_model", "d_ff", "num_layers", "num_decoder_layers", "num_heads", "d_kv")
# The only keys the two recipes may differ in: model and vocabulary sizes, text and ID lengths, the
# history, the epoch budget and the samples of warm-start items and generator examples.  Both train the
# recommender on every example and validate on every user (a sample left the default at chance level).
SCALE_KEYS = {
    *(f"identifier.params.generator.{k}" for k in T5),
    *(f"encoder.params.{k}" for k in T5),
    "identifier.params.max_text_tokens", "identifier.params.max_pieces", "identifier.params.warm_max_items",
    "identifier.params.length_ranges",
    "transfer.params.recommender_epochs", "transfer.params.generator_max_examples",
    "data.max_len", "training.patience",
}


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    p = Plugins().load()
    if "textual-id" not in p.infos:  # not installed as a distribution: register the module directly
        p.register_module(plugin_module, "textual-id", "mtrec-textual-id")
    return p


def test_default_and_paper_recipes_differ_only_in_scale(plugins):
    small = flat_config(resolve(plugins.catalogue, "idgenrec").config)
    paper = flat_config(resolve(plugins.catalogue, "idgenrec-paper").config)
    assert config_differences(small, paper) == SCALE_KEYS
    # Smaller everywhere; every example and validation user in both; alternate training with early stopping.
    assert small["encoder.params.d_model"] < paper["encoder.params.d_model"]
    assert small["identifier.params.generator.d_model"] < paper["identifier.params.generator.d_model"]
    assert small["transfer.params.recommender_epochs"] < paper["transfer.params.recommender_epochs"]
    for scale in (small, paper):
        assert scale["training.max_train_examples"] is None and scale["evaluation.valid_max_users"] is None
    assert paper["identifier.params.max_pieces"] is None and small["identifier.params.max_pieces"] >= 1000
    assert small["transfer.params.rounds"] == 3 and small["transfer.params.schedule"] == "alternate"


def test_paper_recipe_has_the_papers_numbers(plugins):
    # papers/idgenrec.md §3.2: "we set k = 10 as the number of groups for DBS ... If lambda reaches 10
    # ... Initially, the token length is set within the range of [1, 10) ... [10, 20) ... training the ID
    # generator for 1 epoch, followed by training the base recommender for 10 epochs, for a total of 3
    # iterations. The learning rate is set to 1e-3 for training the base recommender"; §2.6: T5 backbones
    # (the tag generator is t5-small; T5-small: d_model 512, d_ff 2048, 6+6 layers, 8 heads of 64).
    paper = flat_config(resolve(plugins.catalogue, "idgenrec-paper").config)
    assert paper["identifier.params.groups"] == 10 and paper["identifier.params.max_penalty"] == 10
    assert paper["identifier.params.length_ranges"] == [[1, 10], [10, 20]]
    assert paper["transfer.params.generator_epochs"] == 1 and paper["transfer.params.recommender_epochs"] == 10
    assert paper["transfer.params.rounds"] == 3 and paper["training.lr"] == 1e-3
    for prefix in ("encoder.params.", "identifier.params.generator."):
        assert {k: paper[prefix + k] for k in T5} == {"d_model": 512, "d_ff": 2048, "num_layers": 6,
                                                       "num_decoder_layers": 6, "num_heads": 8, "d_kv": 64}


def test_quick_profiles_are_the_same_run(plugins):
    """--quick sets every scale key, so both recipes give the same tiny run."""
    small = flat_config(resolve(plugins.catalogue, "idgenrec", quick=True).config)
    paper = flat_config(resolve(plugins.catalogue, "idgenrec-paper", quick=True).config)
    assert config_differences(small, paper) == set()
    assert small["transfer.params.rounds"] == 2 and small["encoder.params.d_model"] == 32
