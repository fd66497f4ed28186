"""Amazon Review Data 2018 raw files: reviews + metadata, one JSON object per line.

* Reviews: ``<Category>.json`` / ``<Category>.json.gz`` (or the 5-core ``<Category>_5.json(.gz)``),
  one object per line with at least ``reviewerID``, ``asin`` and ``unixReviewTime``.
* Metadata: ``meta_<Category>.json(.gz)``, one object per line with ``asin`` and, when known,
  ``title``, ``brand``, ``category`` (a list), ``description`` (a list or a string).

``path`` is a folder.  By default every ``meta_<Category>`` file in it is paired with the reviews
file of the same category, and each category is one domain named after it (a single category may
be renamed with the spec's ``domain``; with several categories ``domain`` is ignored and the
spec's ``domains`` selects / renames them).  Options ``reviews`` / ``meta`` name the two files
explicitly (one category).  A user's interactions over all categories are sorted by
``unixReviewTime`` (stable).

Kept item fields: ``title``, ``brand``, ``categories`` (``category`` joined with ``", "``; the
leading entry, the top-level category name, is kept), ``description`` (joined with a space).

The real 2018 metadata repeats some products and the reviews mention products without
metadata; by default both are errors, ``duplicate_meta: first`` keeps the first record and
``missing_meta: drop`` drops such reviews (``missing_meta: empty`` keeps them with no text).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from mtrec.data.formats import DatasetFormat, ImportedSource
from mtrec.data.formats._io import (
    ReaderOptions,
    as_text,
    check_id,
    check_options,
    iter_lines,
    parse_json_line,
    require_file,
    unknown_item,
)
from mtrec.errors import DataError


class Options(ReaderOptions):
    reviews: str | None = None
    meta: str | None = None
    duplicate_meta: Literal["error", "first"] = "error"
    missing_meta: Literal["error", "drop", "empty"] = "error"
    min_rating: float | None = None  # keep only reviews with overall >= this


DEFAULTS = Options().model_dump()
META_RE = re.compile(r"^meta_(?P<cat>.+?)\.json(\.gz)?$")


def _category_of_reviews(name: str) -> str:
    stem = re.sub(r"\.json(\.gz)?$", "", name)
    return stem[:-2] if stem.endswith("_5") else stem


def _pairs(path: Path, opts: dict) -> list[tuple[str, Path, Path]]:
    """(category, reviews file, meta file) for each category of the source."""
    if opts["reviews"] or opts["meta"]:
        if not (opts["reviews"] and opts["meta"]):
            raise DataError("options reviews and meta go together: name both files", path=path)
        reviews = require_file(path / opts["reviews"], "Amazon reviews")
        meta = require_file(path / opts["meta"], "Amazon metadata")
        return [(_category_of_reviews(reviews.name), reviews, meta)]
    pairs = []
    metas = sorted(p for p in path.iterdir() if p.is_file() and META_RE.match(p.name))
    if not metas:
        raise DataError(
            "missing required file: no metadata file meta_<Category>.json(.gz) in this folder", path=path
        )
    for meta in metas:
        cat = META_RE.match(meta.name).group("cat")
        candidates = [path / f"{cat}{suffix}" for suffix in (".json.gz", ".json", "_5.json.gz", "_5.json")]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise DataError(
                f"missing required file: no reviews file {cat}.json(.gz) or {cat}_5.json(.gz) for {meta.name}",
                path=path,
            )
        if len(found) > 1:
            raise DataError(
                f"several reviews files for {cat} ({', '.join(f.name for f in found)}); "
                "choose one with the options reviews and meta",
                path=path,
            )
        pairs.append((cat, found[0], meta))
    return pairs


def _read_meta(file: Path, duplicate: str, wanted: set[str]) -> dict[str, dict[str, str]]:
    """Text fields of the ``wanted`` products (every record is still checked for duplicates)."""
    table: dict[str, dict[str, str]] = {}
    first_line: dict[str, int] = {}
    for lineno, text in iter_lines(file):
        if not text.strip():
            continue
        obj = parse_json_line(text, path=file, line=lineno)
        if not isinstance(obj, dict):
            raise DataError("expected a JSON object per line", path=file, line=lineno)
        asin = obj.get("asin")
        if not isinstance(asin, str) or not asin.strip():
            raise DataError("record has no asin", path=file, line=lineno)
        asin = check_id(asin.strip(), "asin", path=file, line=lineno)
        if asin in first_line:
            if duplicate == "first":
                continue
            raise DataError(
                f"duplicate item id {asin!r} (first at line {first_line[asin]}); "
                "the source option duplicate_meta: first keeps the first record",
                path=file,
                line=lineno,
            )
        first_line[asin] = lineno
        if asin in wanted:
            table[asin] = {
                "title": as_text(obj.get("title")).strip(),
                "brand": as_text(obj.get("brand")).strip(),
                "categories": as_text(obj.get("category"), ", ").strip(),
                "description": as_text(obj.get("description"), " ").strip(),
            }
    return table


def _read_reviews(file: Path, dom: str, min_rating, events: dict, order: list[int]) -> dict[str, tuple[str, int]]:
    """Append the file's reviews to ``events``; returns asin -> (first reviewer, line)."""
    first: dict[str, tuple[str, int]] = {}
    for lineno, text in iter_lines(file):
        if not text.strip():
            continue
        obj = parse_json_line(text, path=file, line=lineno)
        if not isinstance(obj, dict):
            raise DataError("expected a JSON object per line", path=file, line=lineno)
        missing = [k for k in ("reviewerID", "asin", "unixReviewTime") if k not in obj]
        if missing:
            raise DataError(f"review lacks {', '.join(missing)}", path=file, line=lineno)
        user = check_id(str(obj["reviewerID"]).strip(), "reviewerID", path=file, line=lineno)
        asin = check_id(str(obj["asin"]).strip(), "asin", path=file, line=lineno)
        if not user or not asin:
            raise DataError("empty reviewerID or asin", path=file, line=lineno)
        try:
            if isinstance(obj["unixReviewTime"], bool):
                raise TypeError
            t = float(obj["unixReviewTime"])
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"unixReviewTime {obj['unixReviewTime']!r} is not a number", path=file, line=lineno) from None
        if not math.isfinite(t):
            raise DataError(f"unixReviewTime {obj['unixReviewTime']!r} is not a finite time", path=file, line=lineno)
        if min_rating is not None:
            try:
                if float(obj.get("overall", 0)) < float(min_rating):
                    continue
            except (TypeError, ValueError):
                raise DataError(f"overall {obj.get('overall')!r} is not a number", path=file, line=lineno) from None
        first.setdefault(asin, (user, lineno))
        events.setdefault(user, []).append((t, order[0], (dom, asin)))
        order[0] += 1
    return first


def read_amazon2018(path: Path, *, domain: str | None = None, options: dict | None = None) -> ImportedSource:
    path = Path(path)
    opts = check_options("amazon2018", options, Options, path=path)
    if opts["duplicate_meta"] not in ("error", "first"):
        raise DataError(f"option duplicate_meta must be 'error' or 'first', got {opts['duplicate_meta']!r}", path=path)
    if opts["missing_meta"] not in ("error", "drop", "empty"):
        raise DataError(
            f"option missing_meta must be 'error', 'drop' or 'empty', got {opts['missing_meta']!r}", path=path
        )
    if not path.is_dir():
        raise DataError(
            "an amazon2018 source is the folder holding <Category>.json(.gz) and meta_<Category>.json(.gz)", path=path
        )
    pairs = _pairs(path, opts)
    if len(pairs) > 1:
        # several categories name their own domains (a spec selects / renames them with
        # ``domains``); ``domain`` -- which a detected folder always gets -- renames one only
        domain = None
    items: dict[str, dict[str, dict[str, str]]] = {}
    events: dict[str, list[tuple[float, int, tuple[str, str]]]] = {}
    order = [0]  # file order across all reviews files: the tie-breaker of equal times
    for cat, reviews, meta in pairs:
        dom = domain or cat
        first = _read_reviews(reviews, dom, opts["min_rating"], events, order)
        table = _read_meta(meta, opts["duplicate_meta"], set(first))
        missing = [a for a in first if a not in table]
        if missing:
            if opts["missing_meta"] == "error":
                asin = min(missing, key=lambda a: first[a][1])
                user, lineno = first[asin]
                raise unknown_item(asin, user, table=meta, path=reviews, line=lineno)
            if opts["missing_meta"] == "drop":
                gone = set(missing)
                for user in list(events):
                    kept = [e for e in events[user] if not (e[2][0] == dom and e[2][1] in gone)]
                    if kept:
                        events[user] = kept
                    else:
                        del events[user]
            else:  # "empty": keep the reviews, the products have no text
                for asin in missing:
                    table[asin] = {"title": "", "brand": "", "categories": "", "description": ""}
        items[dom] = {a: table[a] for a in sorted(table)}
    sequences = {}
    for user, ev in events.items():
        ev.sort(key=lambda e: (e[0], e[1]))
        sequences[user] = [x for _, _, x in ev]
    return ImportedSource(items=items, sequences=sequences)


def detect(path: Path) -> bool:
    path = Path(path)
    if not path.is_dir():
        return False
    for meta in path.iterdir():
        m = META_RE.match(meta.name)
        if m and any((path / f"{m.group('cat')}{s}").is_file() for s in (".json.gz", ".json", "_5.json.gz", "_5.json")):
            return True
    return False


FORMAT = DatasetFormat(
    name="amazon2018",
    reader=read_amazon2018,
    description="Amazon Review Data 2018: <Category>.json(.gz) reviews + meta_<Category>.json(.gz), one domain per category",
    detect=detect,
    options=Options,
)
