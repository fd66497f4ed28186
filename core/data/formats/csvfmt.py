"""Plain CSV / TSV interactions, with an optional item table.

``path`` is the interactions file or a folder holding ``interactions.csv`` (or ``.tsv``) and,
optionally, ``items.csv`` (or ``.tsv``).  Both files need a header line.

Interactions: one row per interaction, columns named by the options ``user_column`` (``user``),
``item_column`` (``item``), ``time_column`` (``timestamp``; used when the column exists: numbers
or ISO dates, stable sort) and ``domain_column`` (``domain``; when absent every row belongs to
the spec's ``domain``, else to the file's stem).  Without a time column the file order is the
chronological order.

Items (optional): ``item_id_column`` (``item``) and, if present, ``domain_column``; every other
column (or just ``text_columns`` when given) is a text field kept under its own name.  With an
item table every interaction must name a listed item; without one items have no text.

``delimiter`` defaults to a tab for ``.tsv`` / ``.tab`` files and a comma otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import (
    InteractionBuffer,
    ReaderOptions,
    TruncationCheck,
    check_id,
    check_options,
    iter_csv,
    parse_time,
    require_file,
    unknown_item,
)
from mtrec.errors import DataError


class Options(ReaderOptions):
    interactions: str | None = None  # file name inside the folder (default interactions.csv / .tsv)
    items: str | Literal[False] | None = None  # item table file name (default items.csv / .tsv when present; false = none)
    delimiter: str | None = None
    user_column: str = "user"
    item_column: str = "item"
    time_column: str = "timestamp"
    domain_column: str = "domain"
    item_id_column: str = "item"
    text_columns: list[str] | None = None


DEFAULTS = Options().model_dump()


def _delimiter(file: Path, opt: str | None) -> str:
    if opt is not None:
        if not isinstance(opt, str) or len(opt) != 1:
            raise DataError(f"option delimiter must be one character, got {opt!r}", path=file)
        return opt
    name = file.name[:-3] if file.name.endswith(".gz") else file.name
    return "\t" if name.endswith((".tsv", ".tab")) else ","


def _rows(file: Path, delimiter: str, width_columns: set[str]):
    """(line, header, row) for every data row; the header is required, column counts checked,
    and a last line cut off inside its last field is refused (see :class:`TruncationCheck`)."""
    header = truncation = None
    for lineno, row, ended in iter_csv(file, delimiter):
        if header is None:
            if not row or (len(row) == 1 and not row[0].strip()):
                raise DataError("the first line must be the header naming the columns; it is empty", path=file, line=lineno)
            header = [h.strip() for h in row]
            truncation = TruncationCheck(file, header, width_columns=width_columns)
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise DataError(
                f"expected {len(header)} columns ({', '.join(header)}), found {len(row)}",
                path=file,
                line=lineno,
            )
        truncation.feed(row, ended, lineno)
        yield lineno, header, row
    if header is None:
        raise DataError("empty file: a header line naming the columns is required", path=file)


def _col(header: list[str], name: str, option: str, file: Path) -> int:
    if name not in header:
        raise DataError(
            f"no column {name!r} (columns: {', '.join(header)}); set the source option {option}", path=file, line=1
        )
    return header.index(name)


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".tsv", ".csv.gz", ".tsv.gz"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def read_csv(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("csv", options, Options, path=path)
    if path.is_file():
        inter_file, folder = path, path.parent
    else:
        folder = path
        if opts["interactions"]:
            inter_file = require_file(folder / opts["interactions"], "interactions")
        else:
            found = _find(folder, "interactions")
            if found is None:
                raise DataError("missing required file: no interactions.csv or interactions.tsv in this folder", path=folder)
            inter_file = found
    if opts["items"] is False:
        item_file = None
    elif opts["items"]:
        item_file = require_file(folder / opts["items"], "item table")
    else:
        item_file = _find(folder, "items")
    default_domain = domain or inter_file.name.split(".")[0]

    # ---- item table
    fields_of: dict[tuple[str | None, str], dict[str, str]] | None = None
    item_has_domain = False
    if item_file is not None:
        fields_of = {}
        delim = _delimiter(item_file, opts["delimiter"])
        id_col = dom_col = None
        text_cols: list[tuple[int, str]] = []
        for lineno, header, row in _rows(item_file, delim, {opts["item_id_column"]}):
            if id_col is None:
                id_col = _col(header, opts["item_id_column"], "item_id_column", item_file)
                item_has_domain = opts["domain_column"] in header
                dom_col = header.index(opts["domain_column"]) if item_has_domain else None
                if opts["text_columns"] is not None:
                    text_cols = [(_col(header, c, "text_columns", item_file), c) for c in opts["text_columns"]]
                else:
                    text_cols = [(i, h) for i, h in enumerate(header) if i not in (id_col, dom_col)]
            raw = check_id(row[id_col].strip(), "item id", path=item_file, line=lineno)
            if not raw:
                raise DataError("empty item id", path=item_file, line=lineno)
            key = (row[dom_col].strip() if item_has_domain else None, raw)
            if key in fields_of:
                where = f" in domain {key[0]!r}" if item_has_domain else ""
                raise DataError(f"duplicate item id {raw!r}{where} in the item table", path=item_file, line=lineno)
            fields_of[key] = {name: row[i].strip() for i, name in text_cols}

    # ---- interactions
    delim = _delimiter(inter_file, opts["delimiter"])
    events = InteractionBuffer()  # compact arrays, not a Python tuple per line: files may be large
    items: dict[str, dict[str, dict[str, str]]] = {}
    cols = None
    id_time = {opts["user_column"], opts["item_column"], opts["time_column"]}
    for lineno, header, row in _rows(inter_file, delim, id_time):
        if cols is None:
            cols = {
                "user": _col(header, opts["user_column"], "user_column", inter_file),
                "item": _col(header, opts["item_column"], "item_column", inter_file),
                "time": header.index(opts["time_column"]) if opts["time_column"] in header else None,
                "domain": header.index(opts["domain_column"]) if opts["domain_column"] in header else None,
            }
        user = check_id(row[cols["user"]].strip(), "user id", path=inter_file, line=lineno)
        raw = check_id(row[cols["item"]].strip(), "item id", path=inter_file, line=lineno)
        if not user or not raw:
            raise DataError("empty user or item id", path=inter_file, line=lineno)
        dom = row[cols["domain"]].strip() if cols["domain"] is not None else default_domain
        if not dom:
            raise DataError(f"empty {opts['domain_column']!r}", path=inter_file, line=lineno)
        table = items.setdefault(dom, {})
        if raw not in table:
            if fields_of is None:
                table[raw] = {}
            else:
                key = (dom if item_has_domain else None, raw)
                if key not in fields_of:
                    raise unknown_item(raw, user, table=item_file, path=inter_file, line=lineno)
                table[raw] = fields_of[key]
        t = 0.0
        if cols["time"] is not None:
            t = parse_time(row[cols["time"]], path=inter_file, line=lineno, column=opts["time_column"])
        events.add(user, dom, raw, t)
    if not len(events):
        raise DataError("no interactions: the file has a header line and no rows", path=inter_file)
    if fields_of is not None and item_has_domain:
        empty = sorted({d for d, _ in fields_of if d not in items})
        if empty:
            raise DataError(
                f"domain(s) {', '.join(map(repr, empty))} of the item table have no interactions in "
                f"{inter_file.name}: an empty domain cannot be trained or evaluated; remove its items",
                path=item_file,
            )
    return ImportedSource(items=items, sequences=events.sequences())


def detect(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and _find(path, "interactions") is not None


FORMAT = DatasetFormat(
    name="csv",
    reader=read_csv,
    description="CSV/TSV interactions (user, item[, timestamp][, domain]; header required) + optional items table",
    detect=detect,
    options=Options,
)
