"""UniSRec / VQ-Rec processed Amazon files (RecBole-style, pre-split).

Files (``<name>`` e.g. ``Scientific``), tab-separated:

* ``<name>.train.inter``, ``<name>.valid.inter``, ``<name>.test.inter`` -- header
  ``user_id:token  item_id_list:token_seq  item_id:token``: a user index, the space-separated
  history of item indices (truncated to the most recent 50) and the target item index.
  ``train`` holds one row per prefix (written longest history first), ``valid`` and ``test`` one
  row per user.
* ``<name>.item2index`` -- ``ASIN<TAB>index`` (no header); required.
* ``<name>.text`` -- header ``item_id:token  text:token_seq``, then ``ASIN<TAB>text``; optional
  (items without a row get an empty text).
* ``<name>.user2index`` -- ``reviewerID<TAB>index``; optional.

Full sequences are rebuilt as: the history of the user's shortest row + every target in order
of increasing history length (train rows, then the valid row, then the test row).  Each row's
history is checked to be a suffix of the sequence rebuilt so far.  ``roles`` carry the shipped
split: the valid target is role 1, the test target role 2, everything else role 0.

Raw ids: items are ASINs; users are reviewerIDs when ``<name>.user2index`` exists (else the
files' user index).  Item text is the single field ``text``.  Single domain: the spec's
``domain``, else ``<name>``.
"""

from __future__ import annotations

from pathlib import Path

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import ReaderOptions, check_options, find_one, iter_lines, require_file, unknown_item
from mtrec.errors import DataError

class Options(ReaderOptions):
    name: str | None = None  # <name> of <name>.train.inter when the folder holds several


DEFAULTS = Options().model_dump()
SPLITS = (("train", 0), ("valid", 1), ("test", 2))


def _pairs(path: Path, *, what: str):
    """Rows ``key<TAB>value`` of a header-less two-column file."""
    for lineno, text in iter_lines(path):
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != 2:
            raise DataError(f"expected 2 tab-separated columns ({what}), found {len(cells)}", path=path, line=lineno)
        yield lineno, cells[0].strip(), cells[1].strip()


def _read_index(path: Path, *, what: str) -> dict[str, str]:
    """index -> raw id (from a ``raw<TAB>index`` file); duplicates are errors."""
    out: dict[str, str] = {}
    raws: set[str] = set()
    for lineno, raw, idx in _pairs(path, what=what):
        if not idx.isdigit():
            raise DataError(f"index {idx!r} is not a non-negative integer", path=path, line=lineno)
        idx = str(int(idx))
        if raw in raws:
            raise DataError(f"duplicate id {raw!r}", path=path, line=lineno)
        if idx in out:
            raise DataError(f"duplicate index {idx} (also used by {out[idx]!r})", path=path, line=lineno)
        raws.add(raw)
        out[idx] = raw
    return out


def _read_split(path: Path, role: int, rows: dict[str, list], index_of_item: dict[str, str], item_table: Path):
    header_seen = False
    for lineno, text in iter_lines(path):
        if not header_seen:
            header_seen = True
            if text.split("\t")[0].startswith("user_id"):
                continue
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != 3:
            raise DataError(
                f"expected 3 tab-separated columns (user_id, item_id_list, item_id), found {len(cells)}",
                path=path,
                line=lineno,
            )
        user = cells[0].strip()
        history = cells[1].split()
        target = cells[2].strip()
        for item in history + [target]:
            if item not in index_of_item:
                raise unknown_item(item, user, table=item_table, path=path, line=lineno)
        # sort key: role, then history length; ties (truncated histories) by reversed file order
        rows.setdefault(user, []).append((role, len(history), -lineno, history, target, path, lineno))


def read_unisrec(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("unisrec", options, Options, path=path)
    if not path.is_dir():
        raise DataError("a unisrec source is the folder holding <name>.{train,valid,test}.inter", path=path)
    train_file, stem = find_one(path, ".train.inter", name=opts["name"], what="UniSRec training rows")
    domain = domain or stem
    item2index = require_file(path / f"{stem}.item2index", "UniSRec item index")
    split_files = [(require_file(path / f"{stem}.{s}.inter", f"UniSRec {s} rows"), r) for s, r in SPLITS]

    asin_of = _read_index(item2index, what="ASIN, index")
    text_of: dict[str, str] = {}
    text_file = path / f"{stem}.text"
    if text_file.is_file():
        for lineno, text in iter_lines(text_file):
            if lineno == 1 and text.startswith("item_id"):
                continue
            if not text.strip():
                continue
            cells = text.split("\t")
            if len(cells) != 2:
                raise DataError(
                    f"expected 2 tab-separated columns (item_id, text), found {len(cells)}", path=text_file, line=lineno
                )
            asin = cells[0].strip()
            if asin in text_of:
                raise DataError(f"duplicate item id {asin!r} in the item text table", path=text_file, line=lineno)
            text_of[asin] = cells[1].strip()
    table = {asin: {"text": text_of.get(asin, "")} for asin in asin_of.values()}

    user_of: dict[str, str] = {}
    user_file = path / f"{stem}.user2index"
    if user_file.is_file():
        user_of = _read_index(user_file, what="reviewerID, index")

    rows: dict[str, list] = {}
    for file, role in split_files:
        _read_split(file, role, rows, asin_of, item2index)

    sequences: dict[str, list[tuple[str, str]]] = {}
    roles: dict[str, list[int]] = {}
    for user, user_rows in rows.items():
        user_rows.sort(key=lambda r: r[:3])
        seq: list[str] = list(user_rows[0][3])
        seq_roles = [0] * len(seq)
        for role, _, _, history, target, file, lineno in user_rows:
            if not history or seq[len(seq) - len(history) :] != history:
                raise DataError(
                    f"user {user}: this row's history is not a suffix of the sequence rebuilt from the user's "
                    "shorter rows (inconsistent split files)",
                    path=file,
                    line=lineno,
                )
            seq.append(target)
            seq_roles.append(role)
        if seq_roles.count(1) > 1 or seq_roles.count(2) > 1:
            raise DataError(f"user {user} has more than one valid or test row", path=path)
        raw_user = user_of.get(user, user) if user_of else user
        if user_of and user not in user_of:
            raise DataError(f"user index {user} is not in {user_file.name}", path=user_file)
        sequences[raw_user] = [(domain, asin_of[i]) for i in seq]
        roles[raw_user] = seq_roles
    return ImportedSource(items={domain: table}, sequences=sequences, roles=roles)


def detect(path: Path) -> bool:
    path = Path(path)
    if not path.is_dir():
        return False
    trains = list(path.glob("*.train.inter"))
    return len(trains) == 1 and trains[0].with_name(trains[0].name[: -len(".train.inter")] + ".item2index").is_file()


FORMAT = DatasetFormat(
    name="unisrec",
    reader=read_unisrec,
    description="UniSRec/VQ-Rec files: <name>.{train,valid,test}.inter + .item2index + .text (ships a split)",
    detect=detect,
    options=Options,
)
