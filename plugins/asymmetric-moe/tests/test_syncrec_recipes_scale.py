"""``syncrec`` (CPU-sized default) and ``syncrec-paper`` (§5.2.3) differ only in scale."""

from __future__ import annotations


import pytest

from mtrec.config import config_differences, flat_config, resolve
from mtrec.plugins import Plugins
from mtrec_asymmetric_moe import plugin as plugin_module

# The only keys the two recipes may differ in: sizes, history length and the epoch budget.
SCALE_KEYS = {"encoder.params.hidden", "data.max_len", "training.epochs", "training.patience"}


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    p = Plugins().load()
    if "asymmetric-moe" not in p.infos:  # not installed as a distribution: register the module directly
        p.register_module(plugin_module, "asymmetric-moe", "mtrec-asymmetric-moe")
    return p


def test_default_and_paper_recipes_differ_only_in_scale(plugins):
    small = flat_config(resolve(plugins.catalogue, "syncrec").config)
    paper = flat_config(resolve(plugins.catalogue, "syncrec-paper").config)
    assert config_differences(small, paper) == SCALE_KEYS
    # CPU-sized means smaller on every one of them, while still a real (early-stopped) training.
    assert all(small[k] < paper[k] for k in SCALE_KEYS)
    assert small["training.epochs"] >= 10 and small["training.patience"] >= 2


def test_paper_recipe_has_the_papers_numbers(plugins):
    # papers/syncrec.md §5.2.3: "The size of the embedding (r), training batch, and maximum sequence
    # length (T) were all set to 128. The number of experts in ACMOE is set to four for the Amazon
    # dataset ... two single-head attention blocks ... the Adam optimizer."
    paper = flat_config(resolve(plugins.catalogue, "syncrec-paper").config)
    assert paper["encoder.params.hidden"] == 128 and paper["training.batch_size"] == 128
    assert paper["data.max_len"] == 128
    assert paper["encoder.params.experts"] == 4
    assert paper["encoder.params.layers"] == 2 and paper["encoder.params.heads"] == 1
    # Not in the paper (plugin README): at most 200 epochs, patience 10.
    assert paper["training.epochs"] == 200 and paper["training.patience"] == 10


def test_quick_profiles_are_the_same_run(plugins):
    """--quick overrides every scale key, so both recipes give the same tiny run."""
    small = flat_config(resolve(plugins.catalogue, "syncrec", quick=True).config)
    paper = flat_config(resolve(plugins.catalogue, "syncrec-paper", quick=True).config)
    assert config_differences(small, paper) == set()
    assert small["training.epochs"] == 2 and small["encoder.params.hidden"] == 32
