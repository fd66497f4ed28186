"""The default ``idp`` recipe is the paper's scale (it finishes in ~6 min on a 2-core CPU).

Unlike syncrec / man (``*-paper`` recipes for a GPU, CPU-sized defaults), IDP needs one scale only:
the README's "Default run" records the measured time.  This keeps the default from shrinking
silently, which would make that measurement and the paper comparison wrong.
"""

from __future__ import annotations

import pytest

from mtrec.config import resolve

from idp_helpers import load_plugins


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


def test_default_recipe_has_the_papers_numbers(plugins):
    # papers/idp.md §3.2: "The embedding sizes of items are set to 64 and the batch size is 256 for all
    # methods ... Adam ... early stop strategy with a patience of 20 epochs ... random negative
    # sampling strategy with 1 sampling number."
    config = resolve(plugins.catalogue, "idp").config
    assert config.encoder.params["hidden"] == 64 and config.encoder.params["loss"] == "bpr"
    assert config.training.batch_size == 256 and config.training.patience == 20
    assert config.training.epochs == 200 and config.training.lr == 1e-3
    assert config.data.max_len == 20
    # Full scale: no sample of the training examples or validation users in the default.
    assert config.training.max_train_examples is None and config.evaluation.valid_max_users is None


def test_quick_profile_is_smaller(plugins):
    quick = resolve(plugins.catalogue, "idp", quick=True).config
    assert quick.encoder.params["hidden"] < 64 and quick.training.patience < 20
    assert quick.transfer.params["pretrain_epochs"] == 3 and quick.evaluation.valid_max_users == 300
