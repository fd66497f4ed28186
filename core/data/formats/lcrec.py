"""LC-Rec / LETTER / TIGER-style JSON: ``<name>.inter.json`` + ``<name>.item.json``.

* ``<name>.inter.json``: one object ``{"<user>": [item, item, ...], ...}``; every list is the
  user's chronological sequence (no timestamps).
* ``<name>.item.json``: one object ``{"<item>": {"title": ..., "description": ..., "brand": ...,
  "categories": ...}, ...}``.  Every string field is kept under its own name (list values are
  joined with ``", "``); empty strings mark missing fields.

Single domain: the spec's ``domain``, else ``<name>``.  ``path`` is the folder holding the two
files or the ``.inter.json`` file itself.
"""

from __future__ import annotations

from pathlib import Path

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import ReaderOptions, as_text, check_id, check_options, find_one, json_key_line, read_json, require_file, unknown_item
from mtrec.errors import DataError

INTER_SUFFIX = ".inter.json"
ITEM_SUFFIX = ".item.json"
class Options(ReaderOptions):
    name: str | None = None  # <name> of <name>.inter.json when the folder holds several


DEFAULTS = Options().model_dump()


def _files(path: Path, name: str | None) -> tuple[Path, Path, str]:
    if path.is_file():
        if not path.name.endswith(INTER_SUFFIX):
            raise DataError(f"an lcrec source is a folder or a *{INTER_SUFFIX} file", path=path)
        stem = path.name[: -len(INTER_SUFFIX)]
        return path, require_file(path.with_name(stem + ITEM_SUFFIX), "LC-Rec item table"), stem
    inter, stem = find_one(path, INTER_SUFFIX, name=name, what="LC-Rec interactions")
    return inter, require_file(path / f"{stem}{ITEM_SUFFIX}", "LC-Rec item table"), stem


def _check_key(key: str, what: str, file: Path) -> None:
    """An object key used as an id must be non-empty and free of control characters."""
    if not key.strip():
        raise DataError(f"empty {what}", path=file, line=json_key_line(file, key))
    try:
        check_id(key, what, path=file, line=None)
    except DataError:  # report it again with its line (finding it re-reads the file)
        check_id(key, what, path=file, line=json_key_line(file, key))
        raise


def read_lcrec(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("lcrec", options, Options, path=path)
    inter_file, item_file, stem = _files(path, opts["name"])
    domain = domain or stem

    raw_items = read_json(item_file, what="the item table", key_name="item id")
    if not isinstance(raw_items, dict):
        raise DataError("expected a JSON object {item id: {field: text}} at the top level", path=item_file, line=1)
    table: dict[str, dict[str, str]] = {}
    for key, entry in raw_items.items():
        _check_key(key, "item id", item_file)
        if not isinstance(entry, dict):
            raise DataError(
                f"item {key!r}: expected an object of text fields, got {type(entry).__name__}",
                path=item_file,
                line=json_key_line(item_file, str(key)),
            )
        table[str(key)] = {str(k): as_text(v) for k, v in entry.items()}

    raw_seqs = read_json(inter_file, what="the interactions", key_name="user id")
    if not isinstance(raw_seqs, dict):
        raise DataError("expected a JSON object {user id: [item id, ...]} at the top level", path=inter_file, line=1)
    sequences: dict[str, list[tuple[str, str]]] = {}
    for user, seq in raw_seqs.items():
        _check_key(user, "user id", inter_file)
        if not isinstance(seq, list):
            raise DataError(
                f"user {user!r}: expected a list of item ids, got {type(seq).__name__}",
                path=inter_file,
                line=json_key_line(inter_file, str(user)),
            )
        out = []
        for item in seq:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise DataError(
                    f"user {user!r}: item ids must be integers or strings, got {item!r}",
                    path=inter_file,
                    line=json_key_line(inter_file, str(user)),
                )
            raw = str(item)
            if isinstance(item, str) and raw not in table:
                check_id(raw, f"user {user!r}: item id", path=inter_file, line=json_key_line(inter_file, str(user)))
            if raw not in table:
                line = json_key_line(inter_file, str(user))
                raise unknown_item(raw, str(user), table=item_file, path=inter_file, line=line)
            out.append((domain, raw))
        if out:
            sequences[str(user)] = out
    return ImportedSource(items={domain: table}, sequences=sequences)


def detect(path: Path) -> bool:
    path = Path(path)
    if not path.is_dir():
        return False
    inters = list(path.glob(f"*{INTER_SUFFIX}"))
    return len(inters) == 1 and inters[0].with_name(inters[0].name[: -len(INTER_SUFFIX)] + ITEM_SUFFIX).is_file()


FORMAT = DatasetFormat(
    name="lcrec",
    reader=read_lcrec,
    description="LC-Rec JSON: <name>.inter.json {user: [items]} + "
    "<name>.item.json {item: {title, description, brand, categories}}",
    detect=detect,
    options=Options,
)
