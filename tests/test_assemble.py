"""Assembly of imported sources: leave-one-out roles, k-core, and the bundled dataset."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtrec.data.assemble import assemble, leave_one_out_roles
from mtrec.data.formats import ImportedSource
from mtrec.data.formats.builtin import ALL_FORMATS
from mtrec.data.load import load_dataset
from mtrec.data.model import TEST, TRAIN, VALID
from mtrec.data.spec import load_spec_file, spec_from_mapping
from mtrec.errors import DataError

FORMATS = {f.name: f for f in ALL_FORMATS}
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "examples" / "data"
MINI = BUNDLED / "amazon-mini"
SHARED = ROOT.parent / "shared" / "datasets"


def _spec(**extra):
    data = {"name": "tiny", "sources": [{"format": "csv", "path": "tiny", "users": "shared"}]}
    data.update(extra)
    return spec_from_mapping(data)


def _items(**domains: list[str]) -> dict:
    return {d: {raw: {"title": f"{d} item {raw}"} for raw in raws} for d, raws in domains.items()}


def _roles_by_user(ds) -> dict[str, list[int]]:
    return {
        ds.user_raw_id[u]: ds.inter_role[ds.user_offsets[u] : ds.user_offsets[u + 1]].tolist() for u in range(ds.n_users)
    }


def _seq_by_user(ds) -> dict[str, list[str]]:
    return {ds.user_raw_id[u]: [ds.item_raw_id[i] for i in ds.user_sequence(u)] for u in range(ds.n_users)}


# ------------------------------------------------------------------------------ leave-one-out

TINY = ImportedSource(
    items=_items(A=["a1", "a2", "a3", "a4", "a5"], B=["b1", "b2", "b3", "b4"]),
    sequences={
        # A: a1 a2 a3 a4 -> train train valid test;  B: b1 b2 b3 -> train valid test
        "u1": [("A", "a1"), ("B", "b1"), ("A", "a2"), ("B", "b2"), ("A", "a3"), ("B", "b3"), ("A", "a4")],
        # A: one item, B: two items -> too short for a valid and a test target: training only
        "u2": [("B", "b4"), ("A", "a5"), ("B", "b1")],
        # A only, exactly three items (a repeat included)
        "u3": [("A", "a2"), ("A", "a1"), ("A", "a2")],
    },
)
TINY_ROLES = {
    "u1": [TRAIN, TRAIN, TRAIN, VALID, VALID, TEST, TEST],
    "u2": [TRAIN, TRAIN, TRAIN],
    "u3": [TRAIN, VALID, TEST],
}


def test_leave_one_out_roles_hand_computed():
    ds = assemble(_spec(), [("tiny", TINY)])
    assert ds.domains == ["A", "B"]
    assert ds.user_raw_id == ["u1", "u2", "u3"]  # users: shared keeps raw ids
    assert _roles_by_user(ds) == TINY_ROLES
    assert _seq_by_user(ds) == {u: [raw for _, raw in seq] for u, seq in TINY.sequences.items()}
    # global ids: padding 0, then domain by domain in catalogue order
    assert ds.item_raw_id == ["", "a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3", "b4"]
    assert ds.item_domain.tolist() == [-1, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert ds.item_text[1] == "title: A item a1" and ds.item_text[0] == ""
    stats = {row["domain"]: row for row in ds.stats()}
    assert (stats["A"]["users"], stats["A"]["interactions"], stats["A"]["test_targets"]) == (3, 8, 2)
    assert (stats["B"]["users"], stats["B"]["interactions"], stats["B"]["test_targets"]) == (2, 5, 1)


def test_leave_one_out_roles_arrays():
    # two users; domains per interaction: user 0 = 0 1 0 0 1 1, user 1 = 1 1
    offsets = np.array([0, 6, 8])
    domains = np.array([0, 1, 0, 0, 1, 1, 1, 1])
    assert leave_one_out_roles(offsets, domains).tolist() == [TRAIN, TRAIN, VALID, TEST, VALID, TEST, TRAIN, TRAIN]


def test_shipped_split_keeps_source_roles():
    roles = {u: [TRAIN] * (len(s) - 1) + [TEST] for u, s in TINY.sequences.items()}
    shipped = ImportedSource(items=TINY.items, sequences=TINY.sequences, roles=roles)
    with pytest.raises(DataError, match="ships no split"):
        assemble(_spec(split="shipped"), [("tiny", TINY)])
    ds = assemble(_spec(split="shipped"), [("tiny", shipped)])
    assert _roles_by_user(ds)["u2"] == [TRAIN, TRAIN, TEST]


def test_own_users_are_namespaced_per_source():
    one = ImportedSource(items=_items(A=["a1", "a2", "a3"]), sequences={"u": [("A", "a1"), ("A", "a2"), ("A", "a3")]})
    two = ImportedSource(items=_items(B=["b1", "b2", "b3"]), sequences={"u": [("B", "b1"), ("B", "b2"), ("B", "b3")]})
    spec = spec_from_mapping(
        {"name": "two", "sources": [{"format": "csv", "path": "one"}, {"format": "csv", "path": "two"}]}
    )
    assert assemble(spec, [("one", one), ("two", two)]).n_users == 2
    shared = spec_from_mapping(
        {
            "name": "two",
            "sources": [{"format": "csv", "path": p, "users": "shared"} for p in ("one", "two")],
        }
    )
    ds = assemble(shared, [("one", one), ("two", two)])
    assert ds.n_users == 1 and _roles_by_user(ds)["u"] == [TRAIN, VALID, TEST, TRAIN, VALID, TEST]


# ------------------------------------------------------------------------------ k-core

KCORE = ImportedSource(
    items=_items(D=["i1", "i2", "i3", "i4", "i5"], E=["e1", "e2", "e3", "e9"]),
    sequences={
        "u1": [("D", "i1"), ("E", "e1"), ("D", "i2"), ("E", "e2"), ("D", "i3"), ("E", "e3")],
        "u2": [("D", "i1"), ("E", "e9"), ("D", "i2")],
        "u3": [("E", "e1"), ("D", "i2"), ("D", "i3"), ("E", "e2"), ("D", "i4"), ("E", "e3")],
        "u4": [("D", "i4"), ("D", "i5")],
    },
)


def test_kcore_hand_computed():
    """2-core, iterated: i5 (1 user) and e9 (1 user) go first; u4 is left with only i4, fewer
    than 2 items in D, so u4 goes; then i4 has a single user (u3) and goes too."""
    ds = assemble(_spec(kcore=2), [("tiny", KCORE)])
    assert _seq_by_user(ds) == {
        "u1": ["i1", "e1", "i2", "e2", "i3", "e3"],
        "u2": ["i1", "i2"],
        "u3": ["e1", "i2", "i3", "e2", "e3"],
    }
    assert sorted(ds.item_raw_id[1:]) == ["e1", "e2", "e3", "i1", "i2", "i3"]
    # leave-one-out after the k-core: u1 has 3 items in D and in E, u3 only in E
    assert _roles_by_user(ds) == {
        "u1": [TRAIN, TRAIN, VALID, VALID, TEST, TEST],
        "u2": [TRAIN, TRAIN],
        "u3": [TRAIN, TRAIN, TRAIN, VALID, TEST],  # D kept only i2 i3: training only
    }
    # without the k-core everything stays
    assert assemble(_spec(), [("tiny", KCORE)]).n_interactions == 17
    # a 3-core keeps only i2 (3 users), then every user has < 3 items left: nothing survives
    with pytest.raises(DataError, match="no interactions left after 3-core"):
        assemble(_spec(kcore=3), [("tiny", KCORE)])


# ------------------------------------------------------------------------------ the bundled dataset


def _mini():
    spec = load_spec_file(MINI / "dataset.yaml")
    return spec, load_dataset(spec, FORMATS, use_cache=False)


def test_bundled_package_files():
    assert (BUNDLED / "__init__.py").is_file()
    assert (MINI / "SOURCE.md").is_file() and (ROOT / "examples" / "tools" / "make_amazon_mini.py").is_file()
    # The data stay small; the shipped text embeddings (float16, one row per item) are sized by the data.
    size = sum(p.stat().st_size for p in MINI.rglob("*") if p.is_file() and "embeddings" not in p.parts)
    assert size <= 5 * 1024 * 1024, f"amazon-mini is {size} bytes"
    shipped = list((MINI / "embeddings").glob("*.f16.npy"))
    assert len(shipped) == 1 and shipped[0].stat().st_size <= 18684 * 384 * 2 + 4096


def test_bundled_dataset_assembles():
    spec, ds = _mini()
    assert spec.name == "amazon-mini" and spec.split == "leave-one-out"
    assert spec.text_fields == ["title", "brand", "categories"]
    assert ds.domains == ["Scientific", "Arts", "Office"]
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2900, 18684, 40726)
    stats = {row["domain"]: row for row in ds.stats()}
    expected = {"Scientific": (1500, 3532, 10604), "Arts": (1400, 8336, 15957), "Office": (1400, 6816, 14165)}
    for name, (users, items, inters) in expected.items():
        row = stats[name]
        assert (row["users"], row["items"], row["interactions"]) == (users, items, inters)
        # every user of every domain has >= 3 interactions there: one test and one valid target each
        assert row["test_targets"] == row["valid_targets"] == users
    assert all(ds.item_text[1:]), "every item has text"
    scientific = ds.domain_items[0]
    assert all(ds.item_text[i].startswith("title: ") for i in scientific)
    assert all("brand: " in ds.item_text[i] for i in scientific[:50] if ds.item_fields["brand"][i])


@pytest.mark.skipif(
    not (SHARED / "Scientific" / "lcrec").is_dir() or not (SHARED / "ArtsOffice").is_dir(),
    reason="needs ../shared/datasets (beside the checkout) to rebuild amazon-mini",
)
def test_bundled_dataset_is_reproducible(tmp_path):
    out = tmp_path / "amazon-mini"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tools" / "make_amazon_mini.py"), str(SHARED), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    for sub in ("scientific", "artsoffice"):
        files = sorted(p.name for p in (MINI / sub).iterdir())
        assert files == sorted(p.name for p in (out / sub).iterdir())
        match, mismatch, errors = filecmp.cmpfiles(MINI / sub, out / sub, files, shallow=False)
        assert not mismatch and not errors, (sub, mismatch, errors)


def test_formats_registered_and_bundled_resolves():
    """Through the plugin system: the built-in formats are registered and amazon-mini resolves."""
    pytest.importorskip("mtrec.bundled", reason="mtrec is not installed (pip install -e .)")
    from mtrec.data.load import bundled_datasets, resolve_spec
    from mtrec.plugins import get_plugins

    formats = get_plugins().formats
    assert set(FORMATS) <= set(formats)
    assert "amazon-mini" in bundled_datasets()
    spec = resolve_spec("amazon-mini", formats)
    assert spec.name == "amazon-mini" and [s.format for s in spec.sources] == ["lcrec", "c2dsr"]
    assert spec.source_path(spec.sources[0]) == MINI / "scientific"
