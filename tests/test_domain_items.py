"""The shared per-domain item lookup tables (mtrec.builtins.domain_items), checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtrec.builtins.domain_items import DomainItemTables, domain_items_buffer_name, registered_domain_items
from mtrec.data.model import MultiDomainDataset


def interleaved() -> MultiDomainDataset:
    """Five items whose domains alternate: A = {2, 4}, B = {1, 3, 5} (padding 0 is -1)."""
    return MultiDomainDataset(
        name="interleaved", domains=["A", "B"], item_domain=np.array([-1, 1, 0, 1, 0, 1], dtype=np.int64),
        item_raw_id=[str(i) for i in range(6)], item_fields={}, item_text=[""] * 6, user_raw_id=["u"],
        user_offsets=np.array([0, 2], dtype=np.int64), inter_item=np.array([1, 2], dtype=np.int64),
        inter_role=np.array([0, 0], dtype=np.int8),
    )


def test_tables_of_a_hand_made_dataset():
    tables = DomainItemTables.from_dataset(interleaved())
    assert tables.item_domain.tolist() == [0, 1, 0, 1, 0, 1]  # padding's -1 -> 0
    # item 1 is B's 1st (0), 2 is A's 1st (0), 3 is B's 2nd (1), 4 is A's 2nd (1), 5 is B's 3rd (2)
    assert tables.item_local.tolist() == [0, 0, 0, 1, 1, 2]
    assert [x.tolist() for x in tables.domain_items] == [[2, 4], [1, 3, 5]]
    assert tables.n_domains == 2 and tables.sizes().tolist() == [2, 3]
    assert all(t.dtype == torch.long for t in (tables.item_domain, tables.item_local, *tables.domain_items))


def test_one_based_local_index_leaves_zero_for_padding():
    tables = DomainItemTables.from_dataset(interleaved(), local_start=1)
    assert tables.item_local.tolist() == [0, 1, 1, 2, 2, 3]
    assert tables.local_start == 1


def test_pool_concatenates_domains_with_their_start_and_size():
    start, size, pool = DomainItemTables.from_dataset(interleaved()).pool()
    assert (start.tolist(), size.tolist(), pool.tolist()) == ([0, 2], [2, 3], [2, 4, 1, 3, 5])
    assert pool[start[1] + 2].item() == 5  # item 2 of domain B


def test_build_takes_tensors_or_arrays_and_an_explicit_item_count():
    from_tensors = DomainItemTables.build(torch.tensor([0, 0, 0, 1]), [torch.tensor([1, 2]), torch.tensor([3])], 3)
    from_lists = DomainItemTables.build([-1, 0, 0, 1], [[1, 2], [3]])
    for tables in (from_tensors, from_lists):
        assert tables.item_domain.tolist() == [0, 0, 0, 1]
        assert tables.item_local.tolist() == [0, 0, 1, 0]
        assert [x.tolist() for x in tables.domain_items] == [[1, 2], [3]]


def test_register_adds_non_persistent_buffers_under_fixed_names():
    tables = DomainItemTables.from_dataset(interleaved())
    module = nn.Module()
    tables.register(module, pool=True)
    assert [name for name, _ in module.named_buffers()] == [
        "item_domain", "item_local", "domain_items_0", "domain_items_1", "domain_start", "domain_size", "domain_pool"]
    assert module.state_dict() == {}  # not saved: a saved model's keys do not depend on them
    assert domain_items_buffer_name(1) == "domain_items_1"
    assert registered_domain_items(module, 1).tolist() == [1, 3, 5]
    assert module.domain_pool.tolist() == [2, 4, 1, 3, 5]

    only = nn.Module()
    tables.register(only, item_local=False, domain_items=False)
    assert [name for name, _ in only.named_buffers()] == ["item_domain"]


def test_sasrec_keeps_the_tables_and_its_saved_keys_do_not_include_them():
    from mtrec.builtins.sasrec import SASRec, SASRecParams

    dataset = interleaved()
    model = SASRec(SASRecParams(hidden=8, layers=1, heads=1), dataset.n_items, torch.as_tensor(dataset.item_domain),
                   [torch.as_tensor(x) for x in dataset.domain_items], 4, dataset.domains)
    assert model.item_domain.tolist() == [0, 1, 0, 1, 0, 1]
    assert model.item_local.tolist() == [0, 0, 0, 1, 1, 2]
    assert model.domain_items(0).tolist() == [2, 4] and model.domain_items(1).tolist() == [1, 3, 5]
    keys = set(model.state_dict())
    assert not {k for k in keys if k.startswith(("item_domain", "item_local", "domain_items_"))}
    assert "item_embedding.weight" in keys


@pytest.mark.parametrize("bad", [[[1, 2], [9]]])
def test_an_item_beyond_n_items_is_an_index_error(bad):
    with pytest.raises(IndexError):
        DomainItemTables.build([-1, 0, 0, 1], bad)
