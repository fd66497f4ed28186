"""RecBole atomic files: ``<name>.inter`` (+ optional ``<name>.item``).

Tab-separated, first line a typed header ``field:type`` (``token``, ``token_seq``, ``float``,
``float_seq``).  Interactions need a user and an item column (``user_id`` / ``item_id`` unless the
options say otherwise); a ``timestamp`` column, when present, orders each user's interactions
(stable: equal times keep file order), otherwise file order is kept.

Item text comes from the ``.item`` file's ``token`` / ``token_seq`` columns, each kept under its
own name, except that the title column (``title_field``; by default the first of ``title``,
``movie_title``, ``item_title``, ``name`` present) is stored as ``title``.  Without an ``.item``
file items have no text.  Single domain: the spec's ``domain``, else ``<name>``.
"""

from __future__ import annotations

from pathlib import Path

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import (
    InteractionBuffer,
    ReaderOptions,
    TruncationCheck,
    check_id,
    check_options,
    find_one,
    iter_lines_eol,
    parse_time,
    unknown_item,
)
from mtrec.errors import DataError


class Options(ReaderOptions):
    name: str | None = None  # <name> of <name>.inter when the folder holds several
    user_field: str = "user_id"
    item_field: str = "item_id"
    time_field: str = "timestamp"
    title_field: str | None = None


DEFAULTS = Options().model_dump()
TITLE_CANDIDATES = ("title", "movie_title", "item_title", "name")
TEXT_TYPES = {"token", "token_seq"}


def _header(line: str, *, path: Path) -> list[tuple[str, str]]:
    fields = []
    for col, cell in enumerate(line.split("\t"), 1):
        name, sep, typ = cell.strip().rpartition(":")
        if not sep or not name or not typ:
            raise DataError(
                f"header column {col} is {cell!r}; RecBole headers are name:type (e.g. user_id:token)",
                path=path,
                line=1,
            )
        fields.append((name, typ))
    return fields


def _rows(path: Path, width_columns: set[str]):
    """Yield (line, header, cells) for each data row; the column count is checked, and a last
    line cut off inside its last field (no final line break, and a value that fails its column's
    type or is shorter than every earlier value of an id / time column) is refused."""
    header = truncation = None
    for lineno, text, ended in iter_lines_eol(path):
        if header is None:
            header = _header(text, path=path)
            names, types = [n for n, _ in header], [t for _, t in header]
            widths = set(width_columns) | {n for n, t in header if t == "float"}
            truncation = TruncationCheck(path, names, types, widths)
            continue
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != len(header):
            raise DataError(
                f"expected {len(header)} tab-separated columns ({', '.join(n for n, _ in header)}), found {len(cells)}",
                path=path,
                line=lineno,
            )
        truncation.feed(cells, ended, lineno)
        yield lineno, header, cells
    if header is None:
        raise DataError("empty file: expected a header line name:type", path=path)


def _column(header: list[tuple[str, str]], name: str, *, path: Path, option: str) -> int:
    names = [n for n, _ in header]
    if name not in names:
        raise DataError(
            f"no column {name!r} (columns: {', '.join(names)}); set the source option {option}", path=path, line=1
        )
    return names.index(name)


def read_recbole(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("recbole", options, Options, path=path)
    if path.is_file():
        if path.suffix != ".inter":
            raise DataError("a recbole source is a folder or a <name>.inter file", path=path)
        inter_file, stem = path, path.stem
    else:
        inter_file, stem = find_one(path, ".inter", name=opts["name"], what="RecBole interactions")
    item_file = inter_file.with_name(stem + ".item")
    domain = domain or stem

    table: dict[str, dict[str, str]] | None = None
    if item_file.is_file():
        table = {}
        item_col = text_cols = None
        for lineno, header, cells in _rows(item_file, {opts["item_field"]}):
            if item_col is None:
                item_col = _column(header, opts["item_field"], path=item_file, option="item_field")
                names = [n for n, _ in header]
                title = opts["title_field"]
                if title is not None and title not in names:
                    raise DataError(
                        f"no column {title!r} for title_field (columns: {', '.join(names)})", path=item_file, line=1
                    )
                if title is None:
                    title = next((c for c in TITLE_CANDIDATES if c in names), None)
                text_cols = [
                    (i, "title" if n == title else n)
                    for i, (n, t) in enumerate(header)
                    if i != item_col and t in TEXT_TYPES
                ]
            raw = check_id(cells[item_col].strip(), "item id", path=item_file, line=lineno)
            if not raw:
                raise DataError("empty item id", path=item_file, line=lineno)
            if raw in table:
                raise DataError(f"duplicate item id {raw!r} in the item table", path=item_file, line=lineno)
            table[raw] = {name: cells[i].strip() for i, name in text_cols}

    events = InteractionBuffer()  # compact arrays, not a Python tuple per line: files may be large
    has_time = None
    user_col = item_col = time_col = None
    items_seen: dict[str, dict[str, str]] = {}
    for lineno, header, cells in _rows(inter_file, {opts["user_field"], opts["item_field"], opts["time_field"]}):
        if user_col is None:
            user_col = _column(header, opts["user_field"], path=inter_file, option="user_field")
            item_col = _column(header, opts["item_field"], path=inter_file, option="item_field")
            has_time = opts["time_field"] in [n for n, _ in header]
            time_col = _column(header, opts["time_field"], path=inter_file, option="time_field") if has_time else None
        user = check_id(cells[user_col].strip(), "user id", path=inter_file, line=lineno)
        raw = check_id(cells[item_col].strip(), "item id", path=inter_file, line=lineno)
        if not user or not raw:
            raise DataError("empty user or item id", path=inter_file, line=lineno)
        if table is not None:
            if raw not in table:
                raise unknown_item(raw, user, table=item_file, path=inter_file, line=lineno)
        else:
            items_seen.setdefault(raw, {})
        t = parse_time(cells[time_col], path=inter_file, line=lineno, column=opts["time_field"]) if has_time else 0.0
        events.add(user, domain, raw, t)
    if not len(events):
        raise DataError("no interactions: the file has a header line and no rows", path=inter_file)
    sequences = events.sequences()
    return ImportedSource(items={domain: table if table is not None else items_seen}, sequences=sequences)


def detect(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and len([p for p in path.glob("*.inter") if p.is_file()]) == 1 and not any(
        path.glob("*.train.inter")
    )


FORMAT = DatasetFormat(
    name="recbole",
    reader=read_recbole,
    description="RecBole atomic files: <name>.inter (user_id, item_id[, timestamp]) + optional <name>.item text",
    detect=detect,
    options=Options,
)
