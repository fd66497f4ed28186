"""The SyNCRec Amazon sample: ``amazon_seq.txt`` (cross-domain sequences, ids only).

Tab-separated with a header line; the first column is an unnamed row number.  Columns
``user_id``, ``item``, ``type``, ``unix_time`` (and ``list_len``); ``item``, ``type`` and
``unix_time`` are comma-separated lists of equal length: the user's items (ASINs), the domain of
each and its Unix time.  The domains are the ``type`` values.  Each user's interactions are
sorted by time (stable: equal times keep the list order).  Items have no text: every item gets
an empty ``title``.  ``path`` is the folder or the file itself.
"""

from __future__ import annotations

from pathlib import Path

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import ReaderOptions, check_options, iter_lines, parse_time, require_file
from mtrec.errors import DataError

class Options(ReaderOptions):
    file: str = "amazon_seq.txt"


DEFAULTS = Options().model_dump()
REQUIRED = ("user_id", "item", "type", "unix_time")


def read_syncrec(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("syncrec", options, Options, path=path)
    file = path if path.is_file() else require_file(path / opts["file"], "SyNCRec sequences")
    items: dict[str, dict[str, dict[str, str]]] = {}
    sequences: dict[str, list[tuple[str, str]]] = {}
    header: list[str] | None = None
    cols: dict[str, int] = {}
    for lineno, text in iter_lines(file):
        if header is None:
            header = [h.strip() for h in text.split("\t")]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise DataError(
                    f"header lacks column(s) {', '.join(missing)} (expected {', '.join(REQUIRED)})", path=file, line=1
                )
            cols = {c: header.index(c) for c in REQUIRED}
            continue
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != len(header):
            raise DataError(
                f"expected {len(header)} tab-separated columns, found {len(cells)}", path=file, line=lineno
            )
        user = cells[cols["user_id"]].strip()
        seq_items = [x.strip() for x in cells[cols["item"]].split(",")]
        seq_types = [x.strip() for x in cells[cols["type"]].split(",")]
        seq_times = cells[cols["unix_time"]].split(",")
        if not (len(seq_items) == len(seq_types) == len(seq_times)):
            raise DataError(
                f"user {user}: item, type and unix_time lists differ in length "
                f"({len(seq_items)}, {len(seq_types)}, {len(seq_times)})",
                path=file,
                line=lineno,
            )
        if user in sequences:
            raise DataError(f"user {user!r} has a second line", path=file, line=lineno)
        events = []
        for item, typ, t in zip(seq_items, seq_types, seq_times):
            if not item or not typ:
                raise DataError(f"user {user}: empty item id or type", path=file, line=lineno)
            items.setdefault(typ, {}).setdefault(item, {"title": ""})
            events.append((parse_time(t, path=file, line=lineno, column="unix_time"), (typ, item)))
        events.sort(key=lambda e: e[0])
        sequences[user] = [x for _, x in events]
    if header is None:
        raise DataError("empty file: expected a header line", path=file)
    return ImportedSource(items=items, sequences=sequences)


def detect(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / DEFAULTS["file"]).is_file()


FORMAT = DatasetFormat(
    name="syncrec",
    reader=read_syncrec,
    description="SyNCRec sample: amazon_seq.txt with comma lists of items / types (domains) / unix times; no item text",
    detect=detect,
    options=Options,
)
