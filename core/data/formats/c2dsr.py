"""C2DSR / URLLM-style cross-domain text files (the Amazon Arts + Office dataset).

Files:

* ``item_listA_F.csv`` and ``item_listO_AA_F.csv`` -- comma-separated, header
  ``idBefore,item_title,idAfter,item_attribute``; ``idAfter`` is the global item id used by the
  sequence files.  An item's domain is the list that holds it: the first file is domain ``Arts``,
  the second ``Office`` (names and files can be changed with the ``domain_files`` option).
  Fields: ``title`` = ``item_title``, ``categories`` = ``item_attribute`` (category path + brand).
* ``train_F2.txt``, ``valid_F2.txt``, ``test_F2.txt`` -- tab-separated, no header:
  ``user<TAB>L<TAB>i_0|0|0<TAB>...<TAB>i_L|L|L<TAB>``; the last element is the target, the
  others the chronological history.  Each user has two consecutive lines with the same history
  and different targets.

One sequence per user: the shared history, then the first line's target, then the second
line's target (file order; in the shipped data the first target is usually an Office item and
the second always an Arts item, so per-domain leave-one-out is unaffected by this choice for
almost every user).  ``roles`` carry the shipped split by user: users of the test file have
both targets as test targets (2), users of the valid file both as validation targets (1),
everything else is training (0).

Users are the files' user index (``user_ids: reviewer`` uses ``Dualuser_dict.json``, a JSON list
of reviewer ids indexed by user index).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import ReaderOptions, check_id, check_options, iter_csv, iter_lines, read_json, require_file, unknown_item
from mtrec.errors import DataError


class Options(ReaderOptions):
    domain_files: dict[str, str] = Field(
        default_factory=lambda: {"Arts": "item_listA_F.csv", "Office": "item_listO_AA_F.csv"}, min_length=1
    )
    split_files: dict[Literal["train", "valid", "test"], str] = Field(
        default_factory=lambda: {"train": "train_F2.txt", "valid": "valid_F2.txt", "test": "test_F2.txt"}
    )
    user_ids: Literal["index", "reviewer"] = "index"  # "reviewer" needs users_file
    users_file: str = "Dualuser_dict.json"


DEFAULTS = Options().model_dump()
ITEM_HEADER = ["idBefore", "item_title", "idAfter", "item_attribute"]
SPLIT_ROLE = {"train": 0, "valid": 1, "test": 2}


def _read_items(file: Path, domain: str, owner: dict[str, tuple[str, Path, int]]) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    reader = iter_csv(file)  # records with the line each starts on; quotes and field sizes checked
    first = next(reader, None)
    if first is None:
        raise DataError(f"empty file: expected the header {','.join(ITEM_HEADER)}", path=file)
    header = [h.strip() for h in first[1]]
    missing = [h for h in ("item_title", "idAfter", "item_attribute") if h not in header]
    if missing:
        raise DataError(f"header lacks column(s) {', '.join(missing)} (expected {','.join(ITEM_HEADER)})", path=file, line=1)
    col_id, col_title, col_attr = header.index("idAfter"), header.index("item_title"), header.index("item_attribute")
    for lineno, row, _ in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise DataError(
                f"expected {len(header)} comma-separated columns ({','.join(header)}), found {len(row)}",
                path=file,
                line=lineno,
            )
        raw = check_id(row[col_id].strip(), "item id", path=file, line=lineno)
        if not raw:
            raise DataError("empty idAfter", path=file, line=lineno)
        if raw in owner:
            _, prev_file, prev_line = owner[raw]
            where = f"at line {prev_line}" if prev_file == file else f"in {prev_file.name}, line {prev_line}"
            where = f" (first listed {where})"
            raise DataError(f"duplicate item id {raw!r}{where}", path=file, line=lineno)
        owner[raw] = (domain, file, lineno)
        table[raw] = {"title": row[col_title].strip(), "categories": row[col_attr].strip()}
    return table


def _read_split(file: Path, role: int, owner: dict, items_desc: str, out: dict) -> None:
    pending: dict | None = None  # user, history, target, line of the user's first line

    def flush(p):
        user = p["user"]
        if user in out:
            raise DataError(f"user {user} appears again (first seen in {out[user][2]})", path=file, line=p["line"])
        if len(p["targets"]) != 2:
            raise DataError(
                f"user {user} has {len(p['targets'])} line(s); expected exactly two consecutive lines "
                "(same history, two targets)",
                path=file,
                line=p["line"],
            )
        seq = p["history"] + p["targets"]
        out[user] = (seq, role, f"{file.name}, line {p['line']}")

    for lineno, text in iter_lines(file):
        if not text.strip():
            continue
        cells = text.rstrip("\t").split("\t")
        if len(cells) < 3:
            raise DataError(
                f"expected user<TAB>L<TAB>item|k|k ... (at least 3 columns), found {len(cells)}", path=file, line=lineno
            )
        user, length = cells[0].strip(), cells[1].strip()
        if not length.isdigit():
            raise DataError(f"second column L must be a non-negative integer, got {length!r}", path=file, line=lineno)
        elements = cells[2:]
        if len(elements) != int(length) + 1:
            raise DataError(
                f"L = {length} announces {int(length) + 1} items, found {len(elements)} (wrong column count)",
                path=file,
                line=lineno,
            )
        ids = []
        for k, el in enumerate(elements):
            raw = el.split("|", 1)[0].strip()
            if not raw:
                raise DataError(f"empty item id in column {k + 3}", path=file, line=lineno)
            if raw not in owner:
                raise unknown_item(raw, user, table=items_desc, path=file, line=lineno)
            ids.append(raw)
        history, target = ids[:-1], ids[-1]
        if pending is not None and pending["user"] == user:
            if history != pending["history"]:
                raise DataError(
                    f"user {user}: the history differs from the user's previous line {pending['line']}",
                    path=file,
                    line=lineno,
                )
            pending["targets"].append(target)
            continue
        if pending is not None:
            flush(pending)
        pending = {"user": user, "history": history, "targets": [target], "line": lineno}
    if pending is not None:
        flush(pending)


def read_c2dsr(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("c2dsr", options, Options, path=path)
    if not path.is_dir():
        raise DataError("a c2dsr source is the folder holding item_list*.csv and *_F2.txt", path=path)
    if not isinstance(opts["domain_files"], dict) or not opts["domain_files"]:
        raise DataError("option domain_files must map domain names to item csv files", path=path)
    split_files = opts["split_files"]
    if not isinstance(split_files, dict) or set(split_files) - set(SPLIT_ROLE):
        raise DataError("option split_files must map train/valid/test to file names", path=path)
    if opts["user_ids"] not in ("index", "reviewer"):
        raise DataError(f"option user_ids must be 'index' or 'reviewer', got {opts['user_ids']!r}", path=path)

    owner: dict[str, tuple[str, Path, int]] = {}
    items: dict[str, dict[str, dict[str, str]]] = {}
    for dom, name in opts["domain_files"].items():
        items[dom] = _read_items(require_file(path / name, f"item list of domain {dom}"), dom, owner)
    items_desc = " / ".join(opts["domain_files"].values())

    per_user: dict[str, tuple[list[str], int, str]] = {}
    for split, name in split_files.items():
        _read_split(require_file(path / name, f"{split} sequences"), SPLIT_ROLE[split], owner, items_desc, per_user)

    reviewer = None
    if opts["user_ids"] == "reviewer":
        users_file = require_file(path / opts["users_file"], "reviewer ids (user_ids: reviewer)")
        reviewer = read_json(users_file, what="the reviewer id list")
        if not isinstance(reviewer, list):
            raise DataError("expected a JSON list of reviewer ids", path=users_file, line=1)

    sequences: dict[str, list[tuple[str, str]]] = {}
    roles: dict[str, list[int]] = {}
    for user, (seq, role, where) in per_user.items():
        raw_user = user
        if reviewer is not None:
            if not user.isdigit() or int(user) >= len(reviewer):
                raise DataError(f"user index {user} ({where}) has no entry in {opts['users_file']}", path=path)
            raw_user = str(reviewer[int(user)])
        sequences[raw_user] = [(owner[i][0], i) for i in seq]
        roles[raw_user] = [0] * (len(seq) - 2) + [role, role]
    return ImportedSource(items=items, sequences=sequences, roles=roles)


def detect(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and all((path / f).is_file() for f in DEFAULTS["domain_files"].values()) and (
        path / DEFAULTS["split_files"]["train"]
    ).is_file()


FORMAT = DatasetFormat(
    name="c2dsr",
    reader=read_c2dsr,
    description="C2DSR/URLLM Arts+Office files: item_listA_F.csv, item_listO_AA_F.csv, "
    "{train,valid,test}_F2.txt (ships a split)",
    detect=detect,
    options=Options,
)
