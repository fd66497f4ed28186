"""The two-view windows: single-domain views are the split of the same cross-domain window."""

from __future__ import annotations

import numpy as np

from mtrec_asymmetric_moe.data import two_view_windows, user_train_sequences
from syncrec_helpers import ITEM_DOMAIN, SEQUENCES, tiny_dataset


def windows(max_len: int, sequences=SEQUENCES):
    ds = tiny_dataset(sequences)
    return two_view_windows(user_train_sequences(ds, [0, 1]), ds.item_domain, 2, max_len)


def test_hand_built_windows():
    w = windows(6)
    # user 0: A1 B5 A2 B6 A3 -> cross inputs 1 5 2 6, targets 5 2 6 3 (left-padded to 6)
    assert w["input"][0].tolist() == [0, 0, 1, 5, 2, 6]
    assert w["target"][0].tolist() == [0, 0, 5, 2, 6, 3]
    assert w["single_input"][0, 0].tolist() == [0, 0, 0, 0, 1, 2]
    assert w["single_target"][0, 0].tolist() == [0, 0, 0, 0, 2, 3]
    assert w["single_pos"][0, 0].tolist() == [-1, -1, -1, -1, 2, 4]
    assert w["single_input"][0, 1].tolist() == [0, 0, 0, 0, 0, 5]
    assert w["single_target"][0, 1].tolist() == [0, 0, 0, 0, 0, 6]
    # user 1: B7 B8 A4 B5 -> one A item only: no single-domain A example
    assert not w["single_target"][1, 0].any()
    assert w["single_input"][1, 1].tolist() == [0, 0, 0, 0, 7, 8]
    assert w["single_target"][1, 1].tolist() == [0, 0, 0, 0, 8, 5]
    assert w["user"].tolist() == [0, 1]


def test_every_cross_target_once_and_views_aligned():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 9, size=int(rng.integers(2, 15))).tolist() for _ in range(20)]
    w = windows(4, seqs)
    got = sorted(w["target"][w["target"] > 0].tolist())
    assert got == sorted(x for s in seqs for x in s[1:])
    valid = w["single_pos"] >= 0
    b = np.broadcast_to(np.arange(len(w["user"]))[:, None, None], valid.shape)
    # the single view's input at each position is the cross view's input at single_pos
    assert (w["single_input"][valid] == w["input"][b[valid], w["single_pos"][valid]]).all()
    assert ((w["single_input"] > 0) == valid).all()
    for d in (0, 1):
        targets = w["single_target"][:, d]
        assert (ITEM_DOMAIN[targets[targets > 0]] == d).all()
        inputs = w["single_input"][:, d]
        assert (ITEM_DOMAIN[inputs[inputs > 0]] == d).all()
