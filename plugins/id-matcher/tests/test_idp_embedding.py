"""Writing generated rows, the ID+text input, and the held-out training data of cold start."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtrec.data.model import TEST, TRAIN, VALID, MultiDomainDataset
from mtrec.errors import ConfigError
from mtrec_id_matcher.embedding import (
    IdPlusText, add_text, install_rows, item_table, pick_cold_items, training_data_from, without_training_items,
)


class Toy(nn.Module):
    def __init__(self, n=6, h=4):
        super().__init__()
        self.item_embedding = nn.Embedding(n + 1, h, padding_idx=0)
        self.seen = None

    def train_tensors(self, run, domains):
        self.seen = run.dataset
        return {}


def toy_dataset():
    # user 0: items 1 2 3 4 (train, train, valid, test); user 1: items 5 1 6 2 (train, train, valid, test)
    return MultiDomainDataset(
        name="toy", domains=["A", "B"], item_domain=np.array([-1, 0, 0, 0, 0, 1, 1]),
        item_raw_id=[""] + [str(i) for i in range(1, 7)], item_fields={}, item_text=[""] + ["t"] * 6,
        user_raw_id=["u0", "u1"], user_offsets=np.array([0, 4, 8]),
        inter_item=np.array([1, 2, 3, 4, 5, 1, 6, 2]),
        inter_role=np.array([TRAIN, TRAIN, VALID, TEST, TRAIN, TRAIN, VALID, TEST], dtype=np.int8),
        fingerprint="toy",
    )


def test_install_rows_overwrites_only_the_given_items():
    model = Toy()
    before = model.item_embedding.weight.detach().clone()
    install_rows(model, np.array([2, 5]), np.ones((2, 4), dtype=np.float32))
    after = model.item_embedding.weight.detach()
    assert torch.equal(after[[2, 5]], torch.ones(2, 4))
    keep = [0, 1, 3, 4, 6]
    assert torch.equal(after[keep], before[keep])


def test_install_rows_refuses_a_width_mismatch_naming_the_key():
    with pytest.raises(ConfigError, match="pretrain_encoder.*same width"):
        install_rows(Toy(h=4), np.array([1]), np.zeros((1, 8), dtype=np.float32))


def test_an_encoder_without_an_id_table_is_refused():
    with pytest.raises(ConfigError, match="item_embedding"):
        item_table(nn.Linear(2, 2), "pre-training encoder")


def test_id_plus_text_adds_a_frozen_text_vector():
    model = Toy()
    text = torch.zeros(7, 4)
    text[3] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    ids = model.item_embedding
    add_text(model, text)
    assert isinstance(model.item_embedding, IdPlusText) and item_table(model) is ids
    items = torch.tensor([[3, 1]])
    out = model.item_embedding(items)
    assert torch.allclose(out[0, 0], ids.weight[3] + text[3]) and torch.allclose(out[0, 1], ids.weight[1])
    out.sum().backward()
    assert ids.weight.grad[3].abs().sum() > 0
    assert not model.item_embedding.text.requires_grad  # a buffer: never trained
    assert "item_embedding.text" in model.state_dict()  # saved with the model
    assert torch.allclose(model.item_embedding.weight, ids.weight + text)


def test_without_training_items_drops_only_training_interactions_of_held_out_items():
    ds = toy_dataset()
    out = without_training_items(ds, np.array([1, 4]))
    # user 0 loses item 1 (train); item 4 is a test target and stays; user 1 loses item 1 (train)
    assert out.inter_item.tolist() == [2, 3, 4, 5, 6, 2]
    assert out.user_offsets.tolist() == [0, 3, 6]
    assert out.inter_role.tolist() == [TRAIN, VALID, TEST, TRAIN, VALID, TEST]
    assert out.user_sequence(1).tolist() == [5, 6, 2]
    assert out.fingerprint != ds.fingerprint  # caches keyed by fingerprint never mix the two


def test_training_data_from_swaps_the_dataset_only_while_active():
    model, ds, other = Toy(), toy_dataset(), toy_dataset()
    run = type("Run", (), {"dataset": ds, "config": "cfg"})()
    keys = set(model.state_dict())
    with training_data_from(model, other):
        model.train_tensors(run, [0])
        assert model.seen is other
    model.train_tensors(run, [0])
    assert model.seen is ds and set(model.state_dict()) == keys


def test_cold_items_are_a_seeded_fraction_of_each_domain():
    ds = toy_dataset()
    a = pick_cold_items(ds, [0, 1], 0.5, seed=3)
    assert len(a) == 2 + 1 and np.array_equal(a, pick_cold_items(ds, [0, 1], 0.5, seed=3))
    assert set(a) <= set(range(1, 7)) and (ds.item_domain[a] == 0).sum() == 2
