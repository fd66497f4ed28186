"""Dataset format readers: the real shared datasets, hand-made fixtures and malformed input."""

from __future__ import annotations

import re

import gzip
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from mtrec.data.assemble import assemble
from mtrec.data.formats import ImportedSource
from mtrec.data.formats.builtin import ALL_FORMATS
from mtrec.data.load import detect_format
from mtrec.data.model import TEST, TRAIN, VALID
from mtrec.data.spec import spec_from_mapping
from mtrec.errors import DataError
from malformed_cases import MALFORMED, MALFORMED_CASES, MALFORMED_DATASET_CASES

FORMATS = {f.name: f for f in ALL_FORMATS}
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.is_dir():
        pytest.skip(f"shared dataset {rel} not available at {path} (the real-data checks need ../shared/datasets)")
    return path


@lru_cache(maxsize=None)
def _read_cached(fmt: str, path: str, domain: str | None) -> ImportedSource:
    return FORMATS[fmt].reader(Path(path), domain=domain, options={})


def read(fmt: str, path: Path, domain: str | None = None, **options) -> ImportedSource:
    if options:
        return FORMATS[fmt].reader(path, domain=domain, options=options)
    return _read_cached(fmt, str(path), domain)


def counts(src: ImportedSource) -> tuple[int, int, int]:
    """users, distinct items occurring in sequences, interactions."""
    used = {x for seq in src.sequences.values() for x in seq}
    return len(src.sequences), len(used), sum(len(s) for s in src.sequences.values())


def assembled(fmt: str, path: Path, src: ImportedSource, *, split: str = "leave-one-out", domain: str | None = None):
    source = {"format": fmt, "path": str(path)}
    if domain:
        source["domain"] = domain
    spec = spec_from_mapping({"name": path.name, "split": split, "sources": [source]})
    return assemble(spec, [(str(path), src)])


def test_builtin_formats_are_complete():
    assert sorted(FORMATS) == sorted(["recbole", "unisrec", "lcrec", "c2dsr", "syncrec", "amazon2018", "csv"])
    assert len(FORMATS) == len(ALL_FORMATS)
    for fmt in ALL_FORMATS:
        assert fmt.description and callable(fmt.reader) and callable(fmt.detect)


# --------------------------------------------------------------------------------------------
# Real shared datasets: the counts are those of shared/datasets/README.md


@pytest.mark.parametrize(
    ("rel", "domain", "users", "items", "interactions"),
    [
        ("Scientific/lcrec", "Scientific", 8317, 4344, 58492),
        ("Microlens", "Microlens", 13210, 5312, 78255),
    ],
)
def test_lcrec_real(rel, domain, users, items, interactions):
    path = shared(rel)
    src = read("lcrec", path)
    assert counts(src) == (users, items, interactions)
    assert list(src.items) == [domain]  # the domain defaults to the file prefix
    assert len(src.items[domain]) == items
    assert all(fields["title"].strip() for fields in src.items[domain].values())
    assert set(next(iter(src.items[domain].values()))) == {"title", "description", "brand", "categories"}
    assert src.roles is None
    ds = assembled("lcrec", path, src)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (users, items, interactions)
    assert ds.domains == [domain]
    # every user has >= 4 items, so leave-one-out gives each user one valid and one test target
    assert int((ds.inter_role == TEST).sum()) == users == int((ds.inter_role == VALID).sum())
    assert all(ds.item_text[1:])


def test_lcrec_real_keeps_order_and_text():
    path = shared("Scientific/lcrec")
    src = read("lcrec", path)
    assert src.sequences["0"][:3] == [("Scientific", "0"), ("Scientific", "1"), ("Scientific", "2")]
    item = src.items["Scientific"]["9"]
    assert item["title"].startswith("Anderson Metals Brass Tube Fitting, Half-Union")
    assert item["brand"] == "Anderson Metals"
    assert item["categories"].startswith("Industrial & Scientific,Hydraulics")


def test_unisrec_real_and_shipped_split():
    path = shared("Scientific")
    src = read("unisrec", path)
    assert counts(src) == (8442, 4385, 59427)
    assert list(src.items) == ["Scientific"]
    table = src.items["Scientific"]
    assert len(table) == 4385 and all(f["text"] for f in table.values())
    assert table["B0000223SI"]["text"].startswith("PORTER-CABLE 740000801")
    # users are reviewer ids, items ASINs
    assert "ABW8NXS7SV55K" in src.sequences
    assert src.sequences["ABW8NXS7SV55K"][0] == ("Scientific", "B00TNNWMXI")
    # the shipped split: exactly one valid and one test target per user, the last two items
    assert src.roles is not None and set(src.roles) == set(src.sequences)
    for user, roles in src.roles.items():
        assert len(roles) == len(src.sequences[user]) >= 5
        assert roles[-2:] == [VALID, TEST] and set(roles[:-2]) == {TRAIN}

    ds = assembled("unisrec", path, src, split="shipped")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (8442, 4385, 59427)
    per_user = np.diff(ds.user_offsets)
    assert per_user.min() == 5 and per_user.max() == 80
    test_users = ds.inter_user[ds.inter_role == TEST]
    valid_users = ds.inter_user[ds.inter_role == VALID]
    assert np.array_equal(np.bincount(test_users, minlength=ds.n_users), np.ones(ds.n_users))
    assert np.array_equal(np.bincount(valid_users, minlength=ds.n_users), np.ones(ds.n_users))
    # the single text field still yields item text after assembly (text_fields lack "text")
    assert all(t.startswith("text: ") for t in ds.item_text[1:])
    # leave-one-out on the rebuilt sequences gives the same split as the shipped files
    loo = assembled("unisrec", path, src)
    assert np.array_equal(loo.inter_role, ds.inter_role)


def test_unisrec_rebuild_matches_test_rows():
    """Each user's test row (history <= 50) equals the rebuilt sequence minus its last item."""
    path = shared("Scientific")
    src = read("unisrec", path)
    asin = dict(line.split("\t") for line in (path / "Scientific.item2index").read_text().split("\n") if line)
    asin = {idx: a for a, idx in asin.items()}
    reviewer = dict(line.split("\t")[::-1] for line in (path / "Scientific.user2index").read_text().split("\n") if line)
    checked = 0
    for line in (path / "Scientific.test.inter").read_text().split("\n")[1:]:
        if not line:
            continue
        user, history, target = line.split("\t")
        seq = [raw for _, raw in src.sequences[reviewer[user]]]
        assert seq[-1] == asin[target]
        assert seq[:-1][-50:] == [asin[i] for i in history.split()]
        checked += 1
    assert checked == 8442


def test_c2dsr_real():
    path = shared("ArtsOffice")
    src = read("c2dsr", path)
    assert counts(src) == (9577, 34419, 208541)
    assert {d: len(t) for d, t in src.items.items()} == {"Arts": 18639, "Office": 19757}
    assert all(int(i) < 18639 for i in src.items["Arts"]) and all(int(i) >= 18639 for i in src.items["Office"])
    per_domain = Counter(d for seq in src.sequences.values() for d, _ in seq)
    assert per_domain == {"Arts": 110877, "Office": 97664}
    item = src.items["Arts"]["2"]
    assert item == {
        "title": "clover wonder clips red 50 pack",
        "categories": "arts crafts sewing sewing sewing notions supplies clover",
    }
    # user 0: shared history, then line 1's target (Office 22212), then line 2's (Arts 9)
    seq0 = src.sequences["0"]
    assert len(seq0) == 16 and seq0[:2] == [("Arts", "0"), ("Office", "28442")]
    assert seq0[-2:] == [("Office", "22212"), ("Arts", "9")]
    # the shipped split is by user: train 0-7999, test 8000-8999, valid 9000-9576
    role_of_user = {u: set(r[-2:]) for u, r in src.roles.items()}
    assert all(set(r[:-2]) <= {TRAIN} for r in src.roles.values())
    assert Counter(frozenset(v) for v in role_of_user.values()) == {
        frozenset({TRAIN}): 8000,
        frozenset({TEST}): 1000,
        frozenset({VALID}): 577,
    }
    assert role_of_user["8000"] == {TEST} and role_of_user["9576"] == {VALID} and role_of_user["7999"] == {TRAIN}

    ds = assembled("c2dsr", path, src)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (9577, 34419, 208541)
    assert ds.domains == ["Arts", "Office"]
    stats = {row["domain"]: row for row in ds.stats()}
    assert stats["Arts"]["interactions"] == 110877 and stats["Office"]["interactions"] == 97664
    assert stats["Arts"]["test_targets"] == 9577
    shipped = assembled("c2dsr", path, src, split="shipped")
    assert int((shipped.inter_role == TEST).sum()) == 2000 and int((shipped.inter_role == VALID).sum()) == 1154


def test_c2dsr_reviewer_ids():
    path = shared("ArtsOffice")
    src = read("c2dsr", path, user_ids="reviewer")
    assert len(src.sequences) == 9577
    assert all(not u.isdigit() for u in src.sequences)


def test_syncrec_real():
    path = shared("SyNCRec-sample")
    src = read("syncrec", path)
    users, items, interactions = counts(src)
    assert (users, interactions) == (500, 16123)
    assert items == 14853
    assert sorted(src.items) == ["Books", "Clothing_Shoes_and_Jewelry", "Sports_and_Outdoors", "Toys_and_Games", "Video_Games"]
    per_domain = Counter(d for seq in src.sequences.values() for d, _ in seq)
    assert per_domain == {
        "Books": 4846,
        "Clothing_Shoes_and_Jewelry": 4765,
        "Sports_and_Outdoors": 2505,
        "Toys_and_Games": 2563,
        "Video_Games": 1444,
    }
    assert src.sequences["A2NQ50LAQCKXPR"][0][1] == "0136627501"
    # sequences are sorted by time (stable)
    times = {}
    for line in (path / "amazon_seq.txt").read_text().split("\n")[1:]:
        if line:
            cells = line.split("\t")
            times[cells[1]] = sorted(zip(map(int, cells[4].split(",")), range(10**6), cells[2].split(",")))
    for user, seq in src.sequences.items():
        assert [raw for _, raw in seq] == [item for _, _, item in times[user]]
    ds = assembled("syncrec", path, src)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (500, 14853, 16123)
    assert len(ds.domains) == 5


def test_recbole_real():
    path = shared("ml-100k")
    src = read("recbole", path)
    assert counts(src) == (943, 1682, 100000)
    assert list(src.items) == ["ml-100k"]
    toy = src.items["ml-100k"]["1"]
    assert toy == {"title": "Toy Story", "release_year": "1995", "class": "Animation Children's Comedy"}
    # sorted by timestamp, file order on ties
    events: dict[str, list] = {}
    for line in (path / "ml-100k.inter").read_text().split("\n")[1:]:
        if line:
            user, item, _, ts = line.split("\t")
            events.setdefault(user, []).append((float(ts), len(events.get(user, [])), item))
    for user, seq in src.sequences.items():
        assert [raw for _, raw in seq] == [item for *_, item in sorted(events[user])]
    ds = assembled("recbole", path, src)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100000)
    assert ds.domains == ["ml-100k"]
    assert ds.item_text[ds.raw_item_lookup[("ml-100k", "1")]].startswith("title: Toy Story")
    renamed = read("recbole", path, domain="MovieLens", title_field="movie_title")
    assert list(renamed.items) == ["MovieLens"]


@pytest.mark.parametrize(
    ("rel", "fmt"),
    [
        ("Scientific", "unisrec"),
        ("Scientific/lcrec", "lcrec"),
        ("Microlens", "lcrec"),
        ("ArtsOffice", "c2dsr"),
        ("SyNCRec-sample", "syncrec"),
        ("ml-100k", "recbole"),
    ],
)
def test_detect_real(rel, fmt):
    path = shared(rel)
    assert detect_format(path, FORMATS) == fmt
    assert [f.name for f in ALL_FORMATS if f.detect(path)] == [fmt]


# --------------------------------------------------------------------------------------------
# Hand-made fixtures

AMAZON = FIXTURES / "amazon2018"
ARTS, OFFICE = "Arts_Crafts_and_Sewing", "Office_Products"
A = {1: "B00006IFHD", 2: "B000KNKQ0K", 3: "B0010EHZJI", 4: "B001DKG5GQ", 5: "B002BA5XYC", 6: "B00C5ZB7V0"}
O = {1: "B00006IE7F", 2: "B0006HUXTE", 3: "B00006IBQT", 4: "B000J0ECRO", 5: "B001B0CTMU", 6: "B00JRQXB0E"}


def test_amazon2018_fixture():
    src = FORMATS["amazon2018"].reader(AMAZON, domain=None, options={})
    assert sorted(src.items) == [ARTS, OFFICE]
    assert set(src.items[ARTS]) == set(A.values())
    assert set(src.items[OFFICE]) == set(O.values())  # the never-reviewed B07ABCDEF1 is not kept
    assert counts(src) == (12, 12, 36)
    assert Counter(d for s in src.sequences.values() for d, _ in s) == {ARTS: 18, OFFICE: 18}
    seq = src.sequences
    # cross-category order by unixReviewTime (the files are grouped by product, not by time)
    assert seq["A3OXHLG6DIBRW8"] == [(ARTS, A[1]), (OFFICE, O[1]), (ARTS, A[2]), (OFFICE, O[2])]
    assert seq["A2HX2GV4JMT8E1"] == [(OFFICE, O[3]), (OFFICE, O[1]), (OFFICE, O[3])]  # repeats kept
    assert seq["A1F9Z42CFF9IAY"] == [(ARTS, A[3]), (ARTS, A[4]), (ARTS, A[5])]  # tie: file order
    assert seq["A3KJ6JAZPH382D"] == [(ARTS, A[2]), (OFFICE, O[4]), (OFFICE, O[5])]  # tie: Arts file first
    assert seq["AFVQZQ8PW0LCR"] == [(OFFICE, O[2])]
    assert seq["A2XJ13PIXVJFJH"] == [(OFFICE, O[1]), (ARTS, A[5]), (OFFICE, O[3]), (ARTS, A[2])]
    markers = src.items[ARTS][A[1]]
    assert markers == {
        "title": "Crayola Washable Markers, Broad Line, 10 Count",
        "brand": "Crayola",
        "categories": "Arts, Crafts & Sewing, Painting, Drawing & Art Supplies, Drawing, Markers",
        "description": "Washable markers for kids. Colors wash off skin and most clothing.",
    }
    glue = src.items[ARTS][A[6]]  # no brand, no description in the metadata
    assert glue["brand"] == "" and glue["description"] == ""
    assert glue["title"].startswith('Gorilla Hot Glue Sticks, Mini Size, 4" Long')
    assert src.items[ARTS][A[5]]["description"] == "Soft, thick cores for rich color."  # a plain string
    assert src.roles is None


def test_amazon2018_options_and_assembly():
    src = FORMATS["amazon2018"].reader(
        AMAZON, domain="Office", options={"reviews": f"{OFFICE}.json.gz", "meta": f"meta_{OFFICE}.json.gz"}
    )
    assert list(src.items) == ["Office"] and counts(src) == (9, 6, 18)
    rated = FORMATS["amazon2018"].reader(AMAZON, domain=None, options={"min_rating": 2})
    assert counts(rated)[2] == 34  # two 1-star reviews dropped
    # with several categories the domains are the category names, whatever ``domain`` says
    # (a folder given as --dataset always gets domain = the folder name)
    named = FORMATS["amazon2018"].reader(AMAZON, domain="amazon2018", options={})
    assert sorted(named.items) == [ARTS, OFFICE]
    full = FORMATS["amazon2018"].reader(AMAZON, domain=None, options={})
    ds = assembled("amazon2018", AMAZON, full)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (12, 12, 36)
    stats = {row["domain"]: row for row in ds.stats()}
    # users with >= 3 items in a domain: A1F9Z42CFF9IAY and A1LQH6VJQ3Q6ZC (Arts),
    # A2HX2GV4JMT8E1 and A36N7TBPHPSZRA (Office)
    assert stats[ARTS]["test_targets"] == 2 and stats[OFFICE]["test_targets"] == 2
    assert detect_format(AMAZON, FORMATS) == "amazon2018"


def test_amazon2018_fixture_is_gzipped_json_lines():
    with gzip.open(AMAZON / f"{ARTS}.json.gz", "rt", encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 18


CSV = FIXTURES / "csv"


def test_csv_fixture_folder():
    src = FORMATS["csv"].reader(CSV, domain=None, options={})
    assert sorted(src.items) == ["Books", "Movies"]
    assert src.sequences == {
        "u1": [("Movies", "m1"), ("Books", "b2"), ("Books", "b1")],
        # ISO dates are UTC: 2023-11-14T22:13:20 == 1700000000; equal times keep file order
        "u2": [("Books", "b1"), ("Movies", "m2"), ("Movies", "m1")],
        "u3": [("Books", "b3"), ("Movies", "m1")],
    }
    assert src.items["Books"]["b2"] == {"title": "Dune, 50th Anniversary Edition", "brand": "Ace"}
    assert src.items["Movies"]["m2"] == {"title": 'Arrival "Deluxe"', "brand": "Paramount"}
    assert src.items["Movies"]["m1"] == {"title": "Solaris", "brand": ""}
    assert "b1" not in src.items["Movies"]  # listed, but nobody watched it
    only_title = FORMATS["csv"].reader(CSV, domain=None, options={"text_columns": ["title"]})
    assert only_title.items["Books"]["b1"] == {"title": "The Left Hand of Darkness"}
    assert detect_format(CSV, FORMATS) == "csv"


def test_csv_fixture_tsv_file():
    opts = {"user_column": "user_id", "item_column": "movie_id", "items": False}
    src = FORMATS["csv"].reader(CSV / "ratings.tsv", domain="MovieLens", options=opts)
    assert src.sequences == {"7": [("MovieLens", "31"), ("MovieLens", "12")], "8": [("MovieLens", "31")]}
    assert src.items == {"MovieLens": {"31": {}, "12": {}}}
    unnamed = FORMATS["csv"].reader(CSV / "ratings.tsv", domain=None, options=opts)
    assert list(unnamed.items) == ["ratings"]  # the file stem
    with pytest.raises(DataError, match="no column 'user'"):
        FORMATS["csv"].reader(CSV / "ratings.tsv", domain=None, options={"items": False})


# --------------------------------------------------------------------------------------------
# Malformed input: every problem is a DataError naming the file (and the line where there is one)

@pytest.mark.parametrize(("folder", "fmt", "file", "line", "fragment"), MALFORMED_CASES, ids=[c[0] for c in MALFORMED_CASES])
def test_malformed(folder, fmt, file, line, fragment):
    with pytest.raises(DataError) as info:
        FORMATS[fmt].reader(MALFORMED / folder, domain=None, options={})
    err = info.value
    message = str(err)
    assert fragment in message
    assert Path(str(err.path)).name == file and file in message
    if line is not None:
        assert err.line == line and f"line {line}:" in message


@pytest.mark.parametrize(("folder", "fmt", "fragment"), MALFORMED_DATASET_CASES, ids=[c[0] for c in MALFORMED_DATASET_CASES])
def test_malformed_dataset(folder, fmt, fragment):
    from mtrec.data.load import load_dataset
    from mtrec.data.spec import spec_from_mapping

    spec = spec_from_mapping({"name": folder, "sources": [{"format": fmt, "path": str(MALFORMED / folder)}]})
    with pytest.raises(DataError, match=re.escape(fragment)):
        load_dataset(spec, FORMATS, use_cache=False)


def test_malformed_corpus_is_covered():
    from malformed_cases import BAD_INPUTS  # the cases loaded through their own dataset.yaml

    cases = [c[0] for c in MALFORMED_CASES] + [c[0] for c in MALFORMED_DATASET_CASES] + [c[0] for c in BAD_INPUTS]
    assert sorted(p.name for p in MALFORMED.iterdir() if p.is_dir()) == sorted(cases)


def test_amazon2018_lenient_options(tmp_path):
    folder = MALFORMED / "amazon2018_duplicate_item"
    src = FORMATS["amazon2018"].reader(folder, domain=None, options={"duplicate_meta": "first"})
    assert src.items["Toys_and_Games"]["B000000001"]["title"] == "Jigsaw 500"  # the first record wins
    # the same reviews with metadata for B000000001 only: reviews of B000000002 lack metadata
    (tmp_path / "Toys_and_Games.json").write_bytes((folder / "Toys_and_Games.json").read_bytes())
    first = (folder / "meta_Toys_and_Games.json").read_text(encoding="utf-8").split("\n")[0]
    (tmp_path / "meta_Toys_and_Games.json").write_text(first + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown item id 'B000000002' in user 'A1'") as info:
        FORMATS["amazon2018"].reader(tmp_path, domain=None, options={})
    assert info.value.line == 2
    dropped = FORMATS["amazon2018"].reader(tmp_path, domain=None, options={"missing_meta": "drop"})
    assert counts(dropped) == (2, 1, 2)
    kept = FORMATS["amazon2018"].reader(tmp_path, domain=None, options={"missing_meta": "empty"})
    assert counts(kept) == (2, 2, 3) and kept.items["Toys_and_Games"]["B000000002"]["title"] == ""


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_unknown_option_is_named(fmt, tmp_path):
    with pytest.raises(DataError, match="no_such_option"):
        FORMATS[fmt].reader(tmp_path, domain=None, options={"no_such_option": 1})


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_empty_folder_is_a_data_error(fmt, tmp_path):
    with pytest.raises(DataError) as info:
        FORMATS[fmt].reader(tmp_path, domain=None, options={})
    assert str(tmp_path) in str(info.value)
    assert not any(f.detect(tmp_path) for f in ALL_FORMATS)


# --------------------------------------------------------------------------------------------
# The shared benchmark spec of docs/data-formats.md, end to end through load_dataset

BENCHMARK_SPEC = """
name: amazon-benchmark
kcore: 0
split: leave-one-out
text_fields: [title, brand, categories]
sources:
  - format: lcrec
    path: Scientific/lcrec
    domain: Scientific
  - format: c2dsr
    path: ArtsOffice
    domains: {Arts: Arts, Office: Office}
  - format: lcrec
    path: Microlens
    domain: Microlens
"""


def test_benchmark_spec_end_to_end(tmp_path):
    from mtrec.data.load import load_dataset
    from mtrec.data.spec import load_spec_file

    shared("ArtsOffice"), shared("Microlens"), shared("Scientific/lcrec")
    spec_file = tmp_path / "benchmark.yaml"
    spec_file.write_text(BENCHMARK_SPEC.replace("path: ", f"path: {SHARED}/"), encoding="utf-8")
    spec = load_spec_file(spec_file)
    ds = load_dataset(spec, FORMATS, use_cache=False)
    assert ds.domains == ["Scientific", "Arts", "Office", "Microlens"]
    assert ds.n_users == 8317 + 9577 + 13210
    assert ds.n_items == 4344 + 34419 + 5312
    assert ds.n_interactions == 58492 + 208541 + 78255
    stats = {row["domain"]: row for row in ds.stats()}
    assert stats["Microlens"]["test_targets"] == 13210 and stats["Office"]["test_targets"] == 9573
    # Microlens items have a title only; Office items title + categories
    assert all(ds.item_text[i].startswith("title: ") for i in ds.domain_items[3][:100])


def test_detected_folder_loads_end_to_end():
    from mtrec.data.load import load_dataset, resolve_spec

    spec = resolve_spec(AMAZON, FORMATS)
    assert [s.format for s in spec.sources] == ["amazon2018"]
    ds = load_dataset(spec, FORMATS, use_cache=False)
    assert ds.domains == [ARTS, OFFICE] and ds.n_interactions == 36
