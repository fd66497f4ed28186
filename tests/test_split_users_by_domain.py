"""The dataset-spec option ``split_users_by_domain``: the non-overlapping variant of a dataset."""

from __future__ import annotations

import numpy as np

from mtrec.data.assemble import assemble
from mtrec.data.formats import ImportedSource
from mtrec.data.model import TEST, TRAIN, VALID
from mtrec.data.spec import spec_from_mapping

SOURCE = ImportedSource(
    items={"A": {f"a{i}": {"title": f"a{i}"} for i in range(1, 5)}, "B": {f"b{i}": {"title": f"b{i}"} for i in range(1, 4)}},
    sequences={"u1": [("A", "a1"), ("B", "b1"), ("A", "a2"), ("B", "b2"), ("A", "a3"), ("B", "b3"), ("A", "a4")]},
)


def _dataset(split: bool):
    spec = spec_from_mapping({"name": "t", "split_users_by_domain": split,
                              "sources": [{"format": "csv", "path": "x", "users": "shared"}]})
    return assemble(spec, [("x", SOURCE)])


def _by_user(ds):
    return {ds.user_raw_id[u]: ([ds.item_raw_id[i] for i in ds.user_sequence(u)],
                                ds.inter_role[ds.user_offsets[u]:ds.user_offsets[u + 1]].tolist())
            for u in range(ds.n_users)}


def test_each_domain_sequence_becomes_its_own_user_with_the_same_roles():
    kept, split = _dataset(False), _dataset(True)
    assert kept.n_users == 1
    assert _by_user(split) == {
        "u1@A": (["a1", "a2", "a3", "a4"], [TRAIN, TRAIN, VALID, TEST]),
        "u1@B": (["b1", "b2", "b3"], [TRAIN, VALID, TEST]),
    }
    # the same interactions with the same per-domain roles, only no longer linked by a user
    for d in range(2):
        assert np.array_equal(np.sort(kept.inter_item[kept.inter_domain == d]), np.sort(split.inter_item[split.inter_domain == d]))
        assert sorted(kept.inter_role[kept.inter_domain == d]) == sorted(split.inter_role[split.inter_domain == d])
    users_per_domain = [set(split.inter_user[split.inter_domain == d].tolist()) for d in range(2)]
    assert not users_per_domain[0] & users_per_domain[1]


def test_option_changes_the_cache_fingerprint(tmp_path):
    from mtrec.data.load import fingerprint

    (tmp_path / "data").mkdir()
    base = {"name": "t", "sources": [{"format": "csv", "path": str(tmp_path / "data")}]}
    a = spec_from_mapping(base)
    b = spec_from_mapping({**base, "split_users_by_domain": True})
    assert a.split_users_by_domain is False and b.split_users_by_domain is True
    assert fingerprint(a) != fingerprint(b)
