"""MAN keeps its item ID embeddings in a global and per-domain local tables (mtrec.embeddings)."""

from __future__ import annotations

import pytest
import torch

from man_helpers import make_run
from mtrec.embeddings import has_plain_item_embedding, item_embedding_rows, write_item_embeddings


def _tables(model):
    return {"global": model.global_items.weight.detach().clone(),
            **{f"local{d}": t.weight.detach().clone() for d, t in enumerate(model.local_items)}}


def test_rows_are_global_ids_and_local_indices_within_the_domain(plugins, tmp_path):
    model = make_run(plugins, tmp_path).build_encoder()  # items 1-4: A, 5-7: B, 8-10: C
    assert not has_plain_item_embedding(model)
    entries = item_embedding_rows(model, torch.tensor([2, 6, 10, 0]))
    assert [e.table for e in entries] == [model.global_items, *model.local_items]
    glob, a, b, c = entries
    assert glob.rows.tolist() == [2, 6, 10, 0] and glob.held.tolist() == [True, True, True, False]
    assert a.held.tolist() == [True, False, False, False] and a.rows[0].item() == 2  # item 2 is A's 2nd item
    assert b.held.tolist() == [False, True, False, False] and b.rows[1].item() == 2  # item 6 is B's 2nd item
    assert c.held.tolist() == [False, False, True, False] and c.rows[2].item() == 3  # item 10 is C's 3rd item


def test_writing_through_the_contract_changes_exactly_those_rows(plugins, tmp_path):
    model = make_run(plugins, tmp_path).build_encoder()
    before = _tables(model)
    rows = torch.tensor([[1.0] * 8, [2.0] * 8])
    write_item_embeddings(model, torch.tensor([3, 9]), rows)  # item 3: A's 3rd; item 9: C's 2nd
    after = _tables(model)
    expected = {k: v.clone() for k, v in before.items()}
    expected["global"][3], expected["global"][9] = rows[0], rows[1]
    expected["local0"][3] = rows[0]
    expected["local2"][2] = rows[1]
    for name in expected:
        assert torch.equal(after[name], expected[name]), name
    assert not torch.equal(after["local0"], before["local0"]) and torch.equal(after["local1"], before["local1"])
    # the written rows are what the model embeds: the global table feeds the target, the local one the history
    assert torch.equal(model.local_items[0](model.item_local[torch.tensor([3])]), rows[:1])


@pytest.mark.parametrize("variant,tables", [("single", 3), ("shared", 1)])
def test_variants_list_only_the_tables_they_have(plugins, tmp_path, variant, tables):
    model = make_run(plugins, tmp_path, [f"encoder.params.variant={variant}"]).build_encoder()
    entries = item_embedding_rows(model, torch.tensor([1, 5]))
    assert len(entries) == tables
    write_item_embeddings(model, torch.tensor([1, 5]), torch.ones(2, 8))  # every item is held by some table
