"""Bad input that must fail cleanly: one message naming the file and the line (or the spec key),
exit code 2, no traceback, nothing half-written.

``BAD_INPUTS`` (in malformed_cases.py) extends the malformed-dataset corpus of ``tests/fixtures/malformed`` (the older
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
from malformed_cases import BAD_INPUTS, MALFORMED, MALFORMED_CASES, MALFORMED_DATASET_CASES

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
