"""Sequence views and the honesty rules of the split."""

from __future__ import annotations

import numpy as np

from mtrec.data.assemble import leave_one_out_roles
from mtrec.data.model import MultiDomainDataset
from mtrec.data.views import eval_examples, next_item_windows, train_sequences


def _dataset() -> MultiDomainDataset:
    # Domain A items 1-4, domain B items 5-8.  One user, cross-domain order:
    #   1(A) 5(B) 2(A) 6(B) 3(A) 7(B) 4(A) 8(B)
    item_domain = np.array([-1, 0, 0, 0, 0, 1, 1, 1, 1])
    seq = np.array([1, 5, 2, 6, 3, 7, 4, 8])
    offsets = np.array([0, 8])
    roles = leave_one_out_roles(offsets, item_domain[seq])
    return MultiDomainDataset(
        name="t", domains=["A", "B"], item_domain=item_domain, item_raw_id=[str(i) for i in range(9)],
        item_fields={}, item_text=[""] * 9, user_raw_id=["u"], user_offsets=offsets,
        inter_item=seq, inter_role=roles,
    )


def test_leave_one_out_per_domain():
    ds = _dataset()
    # A: 1 2 | 3 valid | 4 test;  B: 5 6 | 7 valid | 8 test
    assert ds.inter_role.tolist() == [0, 0, 0, 0, 1, 1, 2, 2]


def test_short_sequences_stay_training_data():
    roles = leave_one_out_roles(np.array([0, 2, 5]), np.array([0, 0, 1, 1, 1]))
    assert roles.tolist() == [0, 0, 0, 1, 2]


def test_training_views_hold_only_training_items():
    ds = _dataset()
    single = train_sequences(ds, [0, 1], "single")
    assert [s.tolist() for s in single] == [[1, 2], [5, 6]]
    assert [s.tolist() for s in train_sequences(ds, [0, 1], "cross")] == [[1, 5, 2, 6]]
    assert [s.tolist() for s in train_sequences(ds, [1], "cross")] == [[5, 6]]


def test_validation_history_never_contains_test_targets():
    ds = _dataset()
    ex = eval_examples(ds, "valid", [0, 1], max_len=10)
    # A's valid target 3: history is everything earlier (1 5 2 6); B's valid target 7 comes after
    # A's valid target 3 (allowed) and before A's test target 4.
    assert ex["target"].tolist() == [3, 7]
    assert ex["history_cross"][0][-4:].tolist() == [1, 5, 2, 6]
    assert ex["history_cross"][1][-5:].tolist() == [1, 5, 2, 6, 3]
    assert ex["history"][1][-2:].tolist() == [5, 6] and ex["history"][1][-3] == 0


def test_test_history_is_everything_before():
    ds = _dataset()
    ex = eval_examples(ds, "test", [0, 1], max_len=3)
    assert ex["target"].tolist() == [4, 8]
    assert ex["history_cross"][0].tolist() == [6, 3, 7]  # last 3 before item 4
    assert ex["history_cross"][1].tolist() == [3, 7, 4]
    assert ex["history"][1].tolist() == [5, 6, 7]


def test_windows_cover_every_target_once():
    seq = np.arange(1, 8)  # 6 targets, window 4 -> windows of 4 and 2 targets
    inputs, targets = next_item_windows([seq], max_len=4)
    assert targets.tolist() == [[4, 5, 6, 7], [0, 0, 2, 3]]
    assert inputs.tolist() == [[3, 4, 5, 6], [0, 0, 1, 2]]
    assert sorted(t for row in targets for t in row if t) == list(range(2, 8))
