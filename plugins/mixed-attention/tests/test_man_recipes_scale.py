"""``man`` (CPU-sized default) and ``man-paper`` (§4.1.3, Amazon) differ only in scale."""

from __future__ import annotations


from mtrec.config import config_differences, flat_config, resolve

# The only keys the two recipes may differ in: batch size, the epoch budget and the validation sample.
SCALE_KEYS = {"training.batch_size", "training.epochs", "training.patience", "evaluation.valid_max_users"}


def test_default_and_paper_recipes_differ_only_in_scale(plugins):
    small = flat_config(resolve(plugins.catalogue, "man").config)
    paper = flat_config(resolve(plugins.catalogue, "man-paper").config)
    assert config_differences(small, paper) == SCALE_KEYS
    # Fewer, larger steps and a smaller validation sample; still an early-stopped training.
    assert small["training.batch_size"] > paper["training.batch_size"]
    assert small["training.epochs"] < paper["training.epochs"] and small["training.patience"] < paper["training.patience"]
    assert small["evaluation.valid_max_users"] < paper["evaluation.valid_max_users"]
    assert small["training.epochs"] >= 3 and small["training.patience"] >= 2


def test_paper_recipe_has_the_papers_numbers(plugins):
    # papers/man.md §4.1.3: "The initial learning rate for Adam is 0.001 ... The batch size is set as
    # 200 and 20, respectively, for the Micro Video dataset and Amazon dataset. The embedding sizes ...
    # 40 and 20 ... MLPs with layer size [100, 64] and [20, 10] ... Item sequence length of 250 is set
    # for the Micro Video dataset, and 20 is set for the Amazon" (we follow Amazon).
    paper = flat_config(resolve(plugins.catalogue, "man-paper").config)
    assert paper["training.batch_size"] == 20 and paper["training.lr"] == 1e-3
    assert paper["encoder.params.hidden"] == 20 and paper["encoder.params.mlp"] == [20, 10]
    assert paper["data.max_len"] == 20
    # Not in the paper (plugin README): at most 200 epochs, patience 10.
    assert paper["training.epochs"] == 200 and paper["training.patience"] == 10


def test_quick_profiles_are_the_same_run(plugins):
    """--quick overrides every scale key, so both recipes give the same tiny run."""
    small = flat_config(resolve(plugins.catalogue, "man", quick=True).config)
    paper = flat_config(resolve(plugins.catalogue, "man-paper", quick=True).config)
    assert config_differences(small, paper) == set()
    assert small["data.max_len"] == 10 and small["training.max_train_examples"] == 6000
