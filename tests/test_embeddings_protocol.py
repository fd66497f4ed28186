"""mtrec.embeddings: where an encoder keeps its item ID embeddings (the `embeddings` capability)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtrec.embeddings import (
    has_plain_item_embedding, item_embedding_rows, item_embedding_width, write_item_embeddings,
)
from mtrec.errors import ConfigError


class Plain(nn.Module):
    """Way 1: one table over global ids (items 1..5)."""

    def __init__(self) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(6, 2, padding_idx=0)
        with torch.no_grad():
            self.item_embedding.weight.copy_(torch.arange(12, dtype=torch.float32).view(6, 2))


class TwoTables(nn.Module):
    """Way 2: a global table over ids 1..5, and a local table holding items 4 and 5 (rows 1, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.global_items = nn.Embedding(6, 2, padding_idx=0)
        self.local_items = nn.Embedding(3, 2, padding_idx=0)
        for t in (self.global_items, self.local_items):
            nn.init.zeros_(t.weight)

    def item_embedding_rows(self, items):
        local = torch.tensor([0, 0, 0, 0, 1, 2])[items]
        return [(self.global_items, items, items > 0), (self.local_items, local, local > 0)]


class Nothing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(6, 2)


def test_a_plain_item_embedding_is_the_global_id_table():
    model = Plain()
    [entry] = item_embedding_rows(model, np.array([3, 0, 5]))
    assert entry.table is model.item_embedding
    assert entry.rows.tolist() == [3, 0, 5] and entry.held.tolist() == [True, False, True]  # padding is no item
    assert has_plain_item_embedding(model) and item_embedding_width(model, [1]) == 2


def test_write_changes_exactly_the_given_rows_of_a_plain_table():
    model = Plain()
    before = model.item_embedding.weight.detach().clone()
    write_item_embeddings(model, np.array([4, 2]), np.array([[-1.0, -2.0], [7.0, 8.0]], dtype=np.float32))
    after = model.item_embedding.weight.detach()
    assert after[4].tolist() == [-1.0, -2.0] and after[2].tolist() == [7.0, 8.0]
    keep = [0, 1, 3, 5]
    assert torch.equal(after[keep], before[keep])


def test_the_method_wins_and_every_table_holding_an_item_is_written():
    model = TwoTables()
    assert not has_plain_item_embedding(model)
    entries = item_embedding_rows(model, torch.tensor([2, 5]))
    assert [e.table for e in entries] == [model.global_items, model.local_items]
    assert entries[1].held.tolist() == [False, True] and entries[1].rows[1].item() == 2
    write_item_embeddings(model, torch.tensor([2, 5]), torch.tensor([[1.0, 1.0], [3.0, 4.0]]))
    g, loc = model.global_items.weight.detach(), model.local_items.weight.detach()
    # hand-computed: global rows 2 and 5; local row 2 (item 5); nothing else
    expected_g = torch.zeros(6, 2)
    expected_g[2], expected_g[5] = torch.tensor([1.0, 1.0]), torch.tensor([3.0, 4.0])
    expected_l = torch.zeros(3, 2)
    expected_l[2] = torch.tensor([3.0, 4.0])
    assert torch.equal(g, expected_g) and torch.equal(loc, expected_l)


def test_writing_is_not_recorded_by_autograd():
    model = Plain()
    write_item_embeddings(model, [1], [[5.0, 5.0]])
    assert model.item_embedding.weight.grad_fn is None and model.item_embedding.weight.requires_grad


def test_a_model_without_tables_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"encoder 'toy' keeps no item ID embeddings.*item_embedding_rows"):
        item_embedding_rows(Nothing(), [1], what="encoder 'toy'")
    with pytest.raises(ConfigError, match="encoder Nothing"):
        write_item_embeddings(Nothing(), [1], [[0.0, 0.0]])


def test_width_and_coverage_mismatches_are_errors():
    with pytest.raises(ValueError, match="3-d but.*2-d"):
        write_item_embeddings(Plain(), [1], [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"items \[0\] are held by none"):
        write_item_embeddings(Plain(), [0], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="shape"):
        write_item_embeddings(Plain(), [1, 2], [[0.0, 0.0]])


def test_a_failed_write_leaves_every_table_as_it_was():
    model = TwoTables()
    model.local_items = nn.Embedding(3, 3, padding_idx=0)  # a second table of another width
    before = model.global_items.weight.detach().clone()
    with pytest.raises(ValueError, match="2-d but.*3-d"):
        write_item_embeddings(model, [5], [[1.0, 1.0]])
    assert torch.equal(model.global_items.weight.detach(), before)  # the global table was not half-written
    with pytest.raises(ValueError, match=r"widths \[2, 3\]"):
        item_embedding_width(model, [5])
