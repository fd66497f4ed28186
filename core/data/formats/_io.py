"""Shared helpers of the format readers: option checking, line-precise UTF-8 reading, JSON.

Every problem is reported as :class:`mtrec.errors.DataError` naming the file and, where there is
one, the 1-based line number.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mtrec.errors import DataError

def check_options(fmt: str, options: dict | None, defaults: dict[str, Any], *, path: Path) -> dict[str, Any]:
    """Merge ``options`` over ``defaults``; an unknown key is a :class:`DataError` naming it."""
    options = dict(options or {})
    unknown = sorted(k for k in options if k not in defaults)
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise DataError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for format {fmt!r} (known options: {known})",
            path=path,
        )
    merged = dict(defaults)
    merged.update(options)
    return merged


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"missing required file ({what})", path=path)
    return path


def _open_binary(path: Path):
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from None


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for every line of a (possibly gzipped) UTF-8 file.

    The line end (``\\n`` or ``\\r\\n``) is removed; a UTF-8 byte-order mark on the first line is
    dropped.  Lines are decoded one by one so that a non-UTF-8 byte is reported with its line, and
    the file is streamed, never read whole.
    """
    with _open_binary(path) as fh:
        lineno = 0
        try:
            for raw in fh:
                lineno += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                        path=path,
                        line=lineno,
                    ) from None
                if lineno == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                if text.endswith("\n"):
                    text = text[:-1]
                    if text.endswith("\r"):
                        text = text[:-1]
                yield lineno, text
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"cannot read (corrupt or truncated file?): {exc}", path=path, line=lineno + 1) from None


def read_text(path: Path) -> str:
    """The whole (possibly gzipped) file as text; non-UTF-8 bytes are reported with their line."""
    with _open_binary(path) as fh:
        try:
            data = fh.read()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"cannot read (corrupt or truncated file?): {exc}", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {col})", path=path, line=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def read_json(path: Path, *, what: str, key_name: str = "key") -> Any:
    """Parse a whole JSON file; syntax errors and duplicate object keys name the line.

    A key repeated in the top-level object is reported as a duplicate ``key_name`` (e.g. "item
    id"); a key repeated inside a nested object as a duplicate field.
    """
    text = read_text(path)
    duplicates: list[tuple[str, dict]] = []  # (key, the object that holds it twice)

    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        repeated = []
        for key, value in pairs:
            if key in out:
                repeated.append(key)
            out[key] = value
        duplicates.extend((key, out) for key in repeated)
        return out

    try:
        data = json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        hint = " -- the file ends early (truncated?)" if exc.pos >= len(text.rstrip()) else ""
        raise DataError(
            f"invalid JSON in {what}: {exc.msg} (column {exc.colno}){hint}", path=path, line=exc.lineno
        ) from None
    if duplicates:
        top = [key for key, obj in duplicates if obj is data]
        if top:
            line = _find_key_line(text, top[0], occurrence=2)
            raise DataError(f"duplicate {key_name} {top[0]!r} in {what}", path=path, line=line)
        key = duplicates[0][0]
        line = _find_key_line(text, key, occurrence=2)
        raise DataError(f"duplicate field {key!r} inside an entry of {what}", path=path, line=line)
    return data


def _find_key_line(text: str, key: str, occurrence: int = 1) -> int | None:
    """Line of the ``occurrence``-th ``"key":`` in ``text`` (best effort, for error messages)."""
    needle = json.dumps(key)
    pos, seen = text.find(needle), 0
    while pos >= 0:
        if text[pos + len(needle) :].lstrip().startswith(":"):
            seen += 1
            if seen == occurrence:
                return text.count("\n", 0, pos) + 1
        pos = text.find(needle, pos + 1)
    return None


def json_key_line(path: Path, key: str) -> int | None:
    """Line of the object key ``key`` in a JSON file (re-reads the file; only for error messages)."""
    try:
        return _find_key_line(read_text(path), key)
    except DataError:
        return None


def parse_json_line(text: str, *, path: Path, line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " -- the line ends early (truncated?)" if exc.pos >= len(text.rstrip()) else ""
        raise DataError(f"invalid JSON: {exc.msg} (column {exc.colno}){hint}", path=path, line=line) from None


def parse_time(value: str, *, path: Path, line: int, column: str) -> float:
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number != number or number in (float("inf"), float("-inf")):
            raise DataError(f"column {column!r}: {value!r} is not a finite time", path=path, line=line)
        return number
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DataError(
            f"column {column!r}: {value!r} is neither a number nor an ISO date/time", path=path, line=line
        ) from None
    if moment.tzinfo is None:  # naive dates are UTC, never the machine's local time
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def sort_by_time(events: list[tuple[float, tuple[str, str]]]) -> list[tuple[str, str]]:
    """Stable sort by time: equal times keep file order."""
    return [x for _, x in sorted(events, key=lambda e: e[0])]


def find_one(folder: Path, suffix: str, *, name: str | None, what: str) -> tuple[Path, str]:
    """``folder/<name><suffix>``; without ``name`` the single file ending in ``suffix``."""
    if name:
        return require_file(folder / f"{name}{suffix}", what), name
    matches = sorted(p for p in folder.glob(f"*{suffix}") if p.is_file())
    if not matches:
        raise DataError(f"missing required file: no *{suffix} file ({what}) in this folder", path=folder)
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise DataError(
            f"several *{suffix} files ({names}); choose one with the source option name: <prefix>",
            path=folder,
        )
    return matches[0], matches[0].name[: -len(suffix)]


def unknown_item(raw: str, user: str, *, table: Path | str, path: Path, line: int | None = None) -> DataError:
    name = table.name if isinstance(table, Path) else str(table)
    return DataError(
        f"unknown item id {raw!r} in user {user!r}: it is not in the item table {name}",
        path=path,
        line=line,
    )


def as_text(value: Any, sep: str = ", ") -> str:
    """A metadata value as one string: lists are joined, ``None`` is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return sep.join(as_text(v, sep) for v in value if v is not None and as_text(v, sep) != "")
    return str(value)


class InteractionBuffer:
    """Interactions collected as compact arrays while a large file streams by.

    A reader calls :meth:`add` once per interaction; users, domains and items are coded as
    integers in arrays (about 16 bytes per interaction) instead of a Python tuple, float and
    strings per line (about 250 bytes).  :meth:`sequences` then orders each user's interactions
    by time (stable: equal times keep file order) and hands out one shared ``(domain, item)``
    tuple per distinct item, so the result costs a list slot per interaction.
    """

    def __init__(self) -> None:
        from array import array

        self._users: dict[str, int] = {}
        self._pairs: dict[tuple[str, str], int] = {}
        self._pair_list: list[tuple[str, str]] = []
        self._user_code = array("i")
        self._pair_code = array("i")
        self._time = array("d")

    def __len__(self) -> int:
        return len(self._time)

    def add(self, user: str, domain: str, item: str, time: float = 0.0) -> None:
        u = self._users.get(user)
        if u is None:
            u = self._users[user] = len(self._users)
        key = (domain, item)
        p = self._pairs.get(key)
        if p is None:
            p = self._pairs[key] = len(self._pair_list)
            self._pair_list.append(key)
        self._user_code.append(u)
        self._pair_code.append(p)
        self._time.append(time)

    def sequences(self) -> dict[str, list[tuple[str, str]]]:
        """Each user's ``(domain, item)`` list in time order, users in order of first appearance."""
        import numpy as np

        users = np.frombuffer(self._user_code, dtype=np.int32)
        pairs = np.frombuffer(self._pair_code, dtype=np.int32)
        times = np.frombuffer(self._time, dtype=np.float64)
        order = np.lexsort((np.arange(users.size), times, users))  # user, then time, then file order
        bounds = np.searchsorted(users[order], np.arange(len(self._users) + 1))
        shared = np.empty(len(self._pair_list), dtype=object)  # one tuple per distinct item, referenced
        for i, pair in enumerate(self._pair_list):
            shared[i] = pair
        ordered = shared[pairs[order]]
        del order
        return {name: ordered[bounds[u] : bounds[u + 1]].tolist() for name, u in self._users.items()}
