"""Bad input that must fail cleanly: one message naming the file and the line (or the spec key),
exit code 2, no traceback, nothing half-written.

``BAD_INPUTS`` extends the malformed-dataset corpus of ``tests/fixtures/malformed`` (the older
cases, read straight through a format reader, are ``MALFORMED_CASES`` in test_formats.py and
go through the CLI in test_faults.py).  Each folder listed here holds its own ``dataset.yaml``
(or the file named in the second column) and is loaded the way ``--dataset`` loads it: spec
problems (YAML syntax, duplicate keys, wrong types, unknown formats or options, missing paths)
and data problems (truncated files, NUL bytes, unterminated quotes, wrong encodings, ...) alike.

The remaining tests pin what the fixes accept: long CSV fields, a last line without a line break
that is complete, byte-order marks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mtrec.cli import main
from mtrec.data.formats import _io
from mtrec.data.formats.builtin import FORMATS_BY_NAME
from mtrec.data.load import load_dataset, resolve_spec
from mtrec.errors import DataError
from malformed_cases import MALFORMED, MALFORMED_CASES, MALFORMED_DATASET_CASES

BAD_INPUTS = [
    # (fixture folder, file given to --dataset (None: the folder), file named, line, message fragment)
    # ---- csv
    ("csv_unterminated_quote", None, "interactions.csv", 34, "unterminated quote"),
    ("csv_nul_in_id", None, "interactions.csv", 3, "NUL byte at column 5"),
    ("csv_empty_file", None, "interactions.csv", None, "empty file"),
    ("csv_header_only", None, "interactions.csv", None, "no interactions"),
    ("csv_missing_user_column", None, "interactions.csv", 1, "no column 'user'"),
    ("csv_bad_timestamp", None, "interactions.csv", 3, "'yesterday' is neither a number nor an ISO date"),
    ("csv_text_columns_string", None, "dataset.yaml", None, "sources[0].options.text_columns: Input should be a valid list"),
    ("csv_items_true", None, "dataset.yaml", None, "sources[0].options.items:"),
    ("csv_utf16", None, "interactions.csv", 1, "UTF-16 byte-order mark"),
    ("csv_bom_mid_file", None, "interactions.csv", 6, "contains a byte-order mark"),
    ("csv_carriage_return", None, "interactions.csv", 3, "carriage return"),
    ("csv_truncated_last_line", None, "interactions.csv", 7, "the file looks truncated"),
    # ---- recbole
    ("recbole_truncated_timestamp", None, "shop.inter", 7, "'1700000' (column 'timestamp') is shorter than every"),
    ("recbole_truncated_float", None, "shop.inter", 7, "holds '1.7e', not a number"),
    ("recbole_nul_in_id", None, "shop.inter", 7, "NUL byte"),
    ("recbole_unknown_item", None, "shop.inter", 7, "unknown item id '13' in user '2'"),
    ("recbole_untyped_header", None, "shop.inter", 1, "RecBole headers are name:type"),
    ("recbole_header_only", None, "shop.inter", None, "no interactions"),
    ("recbole_bad_timestamp", None, "shop.inter", 7, "'n/a' is neither a number"),
    ("recbole_missing_column", None, "shop.inter", 1, "no column 'item_id'"),
    # ---- lcrec
    ("lcrec_sequence_not_list", None, "Shop.inter.json", 3, "expected a list of item ids, got str"),
    ("lcrec_float_item_id", None, "Shop.inter.json", 3, "item ids must be integers or strings, got 2.5"),
    ("lcrec_overflowing_id", None, "Shop.inter.json", 3, "item ids must be integers or strings, got inf"),
    ("lcrec_duplicate_user", None, "Shop.inter.json", 4, "duplicate user id '0'"),
    ("lcrec_empty_file", None, "Shop.inter.json", None, "empty file"),
    ("lcrec_nul_in_id", None, "Shop.item.json", 4, "contains a NUL byte"),
    ("lcrec_top_level_list", None, "Shop.inter.json", 1, "expected a JSON object"),
    ("lcrec_item_table_is_folder", None, "Shop.item.json", None, "expected a file (LC-Rec item table), found a folder"),
    ("lcrec_entry_not_object", None, "Shop.item.json", 3, "expected an object of text fields"),
    # ---- c2dsr
    ("c2dsr_missing_header_column", None, "item_listA_F.csv", 1, "header lacks column(s) item_attribute"),
    ("c2dsr_negative_length", None, "valid_F2.txt", 1, "must be a non-negative integer, got '-1'"),
    ("c2dsr_unterminated_quote", None, "item_listA_F.csv", 4, "unterminated quote"),
    ("c2dsr_missing_test_file", None, "test_F2.txt", None, "missing required file"),
    ("c2dsr_single_line_user", None, "train_F2.txt", 1, "user 0 has 1 line(s)"),
    ("c2dsr_bad_split_files_option", None, "dataset.yaml", None, "sources[0].options.split_files.tests:"),
    # ---- amazon2018, syncrec, unisrec
    ("amazon2018_infinite_time", None, "Toys.json", 2, "is not a finite time"),
    ("amazon2018_review_missing_field", None, "Toys.json", 2, "review lacks asin"),
    ("amazon2018_min_rating_string", None, "dataset.yaml", None, "sources[0].options.min_rating: Input should be a valid number"),
    ("syncrec_missing_header_column", None, "amazon_seq.txt", 1, "header lacks column(s) type"),
    ("syncrec_bad_time", None, "amazon_seq.txt", 3, "'soon' is neither a number"),
    ("unisrec_negative_index", None, "Shop.item2index", 2, "index '-2' is not a non-negative integer"),
    # ---- the dataset spec
    ("spec_duplicate_key", None, "dataset.yaml", 6, "duplicate key 'domain' (first given at line 5)"),
    ("spec_wrong_type", None, "dataset.yaml", None, "kcore: Input should be a valid integer"),
    ("spec_unknown_key", None, "dataset.yaml", None, "source: unknown key"),
    ("spec_unknown_format", None, "dataset.yaml", None, "sources[0].format: unknown dataset format 'parquet'"),
    ("spec_missing_path", None, "dataset.yaml", None, "sources[0].path:"),
    ("spec_empty_file", None, "dataset.yaml", None, "empty file"),
    ("spec_invalid_yaml", None, "dataset.yaml", 5, "cannot parse YAML"),
    ("spec_non_utf8", None, "dataset.yaml", 2, "not valid UTF-8"),
    ("spec_options_not_mapping", None, "dataset.yaml", None, "sources[0].options: Input should be a valid dictionary"),
    ("spec_unknown_option", None, "dataset.yaml", None, "sources[0].options.delimeter: unknown option(s) 'delimeter'"),
    ("spec_json_duplicate_key", "dataset.json", "dataset.json", 4, "duplicate key 'name'"),
    ("spec_top_level_list", None, "dataset.yaml", None, "expected a mapping"),
    ("spec_no_sources", None, "dataset.yaml", None, "sources: List should have at least 1 item"),
    ("spec_source_not_a_folder", None, "interactions.csv", None, "a c2dsr source is the folder"),
]
IDS = [c[0] for c in BAD_INPUTS]


def _target(folder: str, file: str | None) -> Path:
    return MALFORMED / folder / file if file else MALFORMED / folder


def test_the_corpus_has_at_least_40_kinds():
    kinds = {c[0] for c in MALFORMED_CASES} | {c[0] for c in MALFORMED_DATASET_CASES} | set(IDS)
    assert len(IDS) == len(set(IDS)) and len(kinds) == len(MALFORMED_CASES) + len(MALFORMED_DATASET_CASES) + len(IDS)
    assert len(kinds) >= 40
    assert all((MALFORMED / folder).is_dir() for folder in IDS)


@pytest.mark.parametrize(("folder", "target", "file", "line", "fragment"), BAD_INPUTS, ids=IDS)
def test_bad_input_is_a_data_error(folder, target, file, line, fragment):
    with pytest.raises(DataError) as info:
        spec = resolve_spec(str(_target(folder, target)), FORMATS_BY_NAME)
        load_dataset(spec, FORMATS_BY_NAME, use_cache=False)
    err, message = info.value, str(info.value)
    assert fragment in message
    assert Path(str(err.path)).name == file and file in message
    assert err.line == line
    if line is not None:
        assert f"line {line}:" in message
    assert "\n" not in message  # one message, one line


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}"


@pytest.mark.parametrize(("folder", "target", "file", "line", "fragment"), BAD_INPUTS, ids=IDS)
def test_bad_input_through_the_cli(folder, target, file, line, fragment, registry_url, tmp_path, monkeypatch):
    cache, home = tmp_path / "cache", tmp_path / "home"
    monkeypatch.setenv("MTREC_CACHE_DIR", str(cache))
    monkeypatch.setenv("MTREC_HOME", str(home))
    monkeypatch.delenv("MTREC_DEBUG", raising=False)
    result = CliRunner().invoke(main, ["run", "--plugin", "sasrec", "--registry", registry_url,
                                       "--dataset", str(_target(folder, target))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output  # one message
    assert fragment in result.output and file in result.output
    if line is not None:
        assert f"{file}, line {line}:" in result.output
    # nothing half-written: no cache entry, no run folder, no registry row
    assert not (cache / "datasets").exists() or not list((cache / "datasets").iterdir())
    assert not home.exists() or not [p for p in home.rglob("*") if p.is_file()]
    from mtrec.registry import open_registry

    with open_registry(registry_url) as reg:
        assert reg.list_runs() == []


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["--debug", "data", "stats", str(MALFORMED / "csv_unterminated_quote")])
    assert isinstance(result.exception, DataError) and "line 34" in str(result.exception)


# --------------------------------------------------------------------------------------------
# What the fixes still accept


def _csv(path: Path, title: str) -> Path:
    (path / "items.csv").write_text(f'item,title\ni1,"{title}"\ni2,short\n', encoding="utf-8")
    (path / "interactions.csv").write_text("user,item,timestamp\nu1,i1,1\nu1,i2,2\nu2,i2,3\n", encoding="utf-8")
    return path


def test_a_csv_field_over_128_kib_is_read(tmp_path):
    long = "x" * 300_000  # the csv module's default limit is 131,072 characters
    src = FORMATS_BY_NAME["csv"].reader(_csv(tmp_path, long), domain="A", options={})
    assert src.items["A"]["i1"]["title"] == long


def test_a_csv_field_over_the_limit_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "CSV_FIELD_LIMIT", 1000)
    with pytest.raises(DataError, match="longer than the 1,000-character limit") as info:
        FORMATS_BY_NAME["csv"].reader(_csv(tmp_path, "y" * 2000), domain="A", options={})
    assert Path(str(info.value.path)).name == "items.csv" and info.value.line == 2


def test_an_unterminated_quote_over_the_field_limit_names_the_opening_line(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "CSV_FIELD_LIMIT", 1000)
    rows = ["item,title", "i1,ok", 'i2,"never closed'] + [f"i{k},{'z' * 50}" for k in range(3, 60)]
    (tmp_path / "items.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "interactions.csv").write_text("user,item\nu1,i1\n", encoding="utf-8")
    with pytest.raises(DataError, match="unterminated quote") as info:
        FORMATS_BY_NAME["csv"].reader(tmp_path, domain="A", options={})
    assert info.value.line == 3


def test_quoted_fields_spanning_lines_keep_their_first_line(tmp_path):
    (tmp_path / "items.csv").write_text('item,title\ni1,"two\nlines"\ni2,x,extra\n', encoding="utf-8")
    (tmp_path / "interactions.csv").write_text("user,item\nu1,i1\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected 2 columns") as info:
        FORMATS_BY_NAME["csv"].reader(tmp_path, domain="A", options={})
    assert info.value.line == 4


RECBOLE = "user_id:token\titem_id:token\ttimestamp:float\n1\t10\t1700000001\n1\t11\t1700000002\n2\t10\t1700000003\n"


def test_recbole_last_line_without_a_line_break_is_fine_when_complete(tmp_path):
    (tmp_path / "s.inter").write_text(RECBOLE + "2\t11\t1700000000", encoding="utf-8")
    src = FORMATS_BY_NAME["recbole"].reader(tmp_path, domain="S", options={})
    assert src.sequences["2"] == [("S", "11"), ("S", "10")]  # the complete last time sorts first


def test_recbole_truncated_timestamp_no_longer_reorders_the_sequence(tmp_path):
    (tmp_path / "s.inter").write_text(RECBOLE + "2\t11\t17000", encoding="utf-8")  # cut inside 1700000004
    with pytest.raises(DataError, match="looks truncated") as info:
        FORMATS_BY_NAME["recbole"].reader(tmp_path, domain="S", options={})
    assert info.value.line == 5
    (tmp_path / "s.inter").write_text(RECBOLE + "2\t11\t17000\n", encoding="utf-8")  # a complete line: accepted
    assert FORMATS_BY_NAME["recbole"].reader(tmp_path, domain="S", options={}).sequences["2"][0] == ("S", "11")


def test_byte_order_marks_are_dropped(tmp_path):
    (tmp_path / "interactions.csv").write_bytes(b"\xef\xbb\xbfuser,item\nu1,i1\nu1,i2\n")
    src = FORMATS_BY_NAME["csv"].reader(tmp_path, domain="A", options={})
    assert src.sequences == {"u1": [("A", "i1"), ("A", "i2")]}
    (tmp_path / "L.item.json").write_bytes(b'\xef\xbb\xbf{"1": {"title": "a"}}')
    (tmp_path / "L.inter.json").write_bytes(b'\xef\xbb\xbf{"0": [1, 1]}')
    assert FORMATS_BY_NAME["lcrec"].reader(tmp_path, domain=None, options={}).sequences == {"0": [("L", "1")] * 2}
    spec = tmp_path / "spec.json"
    spec.write_bytes(b'\xef\xbb\xbf{"sources": [{"format": "csv", "path": "interactions.csv", "options": {"items": false}}]}')
    assert resolve_spec(str(spec), FORMATS_BY_NAME).sources[0].format == "csv"


def test_reader_options_are_type_checked_when_called_directly():
    with pytest.raises(DataError, match=r"option 'text_columns' of format 'csv': Input should be a valid list \(write \[title\]"):
        FORMATS_BY_NAME["csv"].reader(MALFORMED.parent / "csv", domain=None, options={"text_columns": "title"})
    src = FORMATS_BY_NAME["csv"].reader(MALFORMED.parent / "csv", domain=None, options={"text_columns": ["title"]})
    assert all(set(fields) == {"title"} for table in src.items.values() for fields in table.values())
