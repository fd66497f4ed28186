"""Shared helpers of the format readers: option checking, line-precise UTF-8 reading, JSON.

Every problem is reported as :class:`mtrec.errors.DataError` naming the file and, where there is
one, the 1-based line number.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mtrec.errors import DataError


class ReaderOptions(BaseModel):
    """Base of a format's option model: unknown keys are refused and types are strict (a string
    is never read as a list of letters, a number never as a file name)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _option_fields(defaults: dict[str, Any] | type[BaseModel]) -> list[str]:
    return list(defaults.model_fields) if isinstance(defaults, type) else list(defaults)


def check_options(
    fmt: str,
    options: dict | None,
    defaults: dict[str, Any] | type[BaseModel],
    *,
    path: Path | str,
    key_prefix: str = "",
) -> dict[str, Any]:
    """Merge ``options`` over ``defaults``; an unknown key or a value of the wrong type is a
    :class:`DataError` naming the key.

    ``defaults`` is a dict of default values (unchecked types) or a pydantic model (see
    :class:`ReaderOptions`) whose fields declare each option's type and default.  With
    ``key_prefix`` (e.g. ``sources[0].options.``) keys are named as in the dataset spec.
    """
    if options is None:
        options = {}
    if not isinstance(options, dict):
        where = key_prefix.rstrip(".") or f"the options of format {fmt!r}"
        raise DataError(f"{where}: expected a mapping of option: value, got {options!r}", path=path)
    options = dict(options)
    fields = _option_fields(defaults)
    unknown = sorted((k for k in options if k not in fields), key=str)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        where = f"{key_prefix}{unknown[0]}: " if key_prefix else ""
        raise DataError(
            f"{where}unknown option(s) {', '.join(map(repr, unknown))} for format {fmt!r} (known options: {known})",
            path=path,
        )
    if isinstance(defaults, type):
        try:
            model = defaults.model_validate(options)
        except ValidationError as exc:
            raise DataError(_option_error(fmt, exc, key_prefix), path=path) from None
        return {name: getattr(model, name) for name in fields}
    merged = dict(defaults)
    merged.update(options)
    return merged


def _option_error(fmt: str, exc: ValidationError, key_prefix: str) -> str:
    """One problem per wrong option value, naming the key (``text_columns``, ``domain_files.Arts``)."""
    seen: dict[str, str] = {}
    for err in exc.errors():
        # a union type reports one error per member, with the member's type in the location
        loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and _is_type_word(p))]
        key = ".".join(loc)
        if key in seen:
            continue
        value = err.get("input")
        msg = err["msg"]
        if isinstance(value, str) and "valid list" in msg:
            msg += f" (write [{value}] for a list of one)"
        label = f"{key_prefix}{key}" if key_prefix else f"option {key!r} of format {fmt!r}"
        seen[key] = f"{label}: {msg}, got {value!r}"
    return "; ".join(seen.values())


def _is_type_word(part: str) -> bool:
    return part in {"str", "int", "float", "bool", "none", "[key]"} or part.startswith(("list[", "dict[", "literal["))



def require_file(path: Path, what: str) -> Path:
    if path.is_dir():
        raise DataError(f"expected a file ({what}), found a folder", path=path)
    if not path.is_file():
        raise DataError(f"missing required file ({what})", path=path)
    return path


# Characters no id may hold: ASCII control characters (NUL, a stray line break or tab from a
# broken quote, ...) and the byte-order mark U+FEFF (a second file pasted after the first).
_BAD_ID_CHAR = re.compile("[\x00-\x1f\x7f\ufeff]")


def check_id(raw: str, what: str, *, path: Path, line: int | None) -> str:
    """``raw`` unchanged, or a :class:`DataError` if it holds a control character or a BOM."""
    bad = _BAD_ID_CHAR.search(raw)
    if bad is not None:
        char = bad.group()
        name = "NUL byte" if char == "\x00" else ("byte-order mark U+FEFF" if char == "\ufeff" else f"control character U+{ord(char):04X}")
        raise DataError(f"{what} {raw!r} contains a {name} (binary data or a corrupt file?)", path=path, line=line)
    return raw


def _open_binary(path: Path):
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _utf8_error(data: bytes, pos: int, col: int, first_line: bool) -> str:
    if first_line and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "not valid UTF-8: the file starts with a UTF-16 byte-order mark; save it as UTF-8"
    return f"not valid UTF-8 (byte 0x{data[pos]:02x} at column {col})"


def iter_lines_eol(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Like :func:`iter_lines`, with a third value: whether the line ended with a line break
    (only the last line of a file can lack one -- a file cut off mid-line, or just a missing
    final newline)."""
    with _open_binary(path) as fh:
        lineno = 0
        try:
            for raw in fh:
                lineno += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(_utf8_error(raw, exc.start, exc.start + 1, lineno == 1), path=path, line=lineno) from None
                if "\x00" in text:
                    raise DataError(
                        f"NUL byte at column {text.index(chr(0)) + 1}: text files must not contain NUL bytes "
                        "(binary data, a corrupt file or UTF-16 text?)",
                        path=path,
                        line=lineno,
                    )
                if lineno == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                ended = text.endswith("\n")
                if ended:
                    text = text[:-1]
                    if text.endswith("\r"):
                        text = text[:-1]
                yield lineno, text, ended
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"cannot read (corrupt or truncated file?): {exc}", path=path, line=lineno + 1) from None


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for every line of a (possibly gzipped) UTF-8 file.

    The line end (``\\n`` or ``\\r\\n``) is removed; a UTF-8 byte-order mark on the first line is
    dropped.  Lines are decoded one by one so that a non-UTF-8 byte (or a NUL byte) is reported
    with its line, and the file is streamed, never read whole.
    """
    for lineno, text, _ in iter_lines_eol(path):
        yield lineno, text


# The largest CSV field accepted (the csv module's default is 128 KiB, less than some real item
# descriptions); a longer field is reported with its file and line.
CSV_FIELD_LIMIT = 16 * 1024 * 1024
# Fed after a CSV file's last line: read back inside a field, it shows that a quote never closed.
_CSV_EOF = "\ue000mtrec:end-of-file\ue000"


def iter_csv(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str], bool]]:
    """Yield ``(line, row, ended)`` for every CSV record of ``path`` (streamed, UTF-8).

    ``line`` is the line the record starts on (a quoted field may span lines); ``ended`` tells
    whether the record's last line ended with a line break.  A quote that never closes is
    reported at the line where it opened; a field over :data:`CSV_FIELD_LIMIT` and any other
    CSV syntax error with its line.
    """
    state = {"line": 0, "ended": True}

    def lines() -> Iterator[str]:
        for lineno, text, ended in iter_lines_eol(path):
            state["line"], state["ended"] = lineno, ended
            yield text + "\n"
        yield _CSV_EOF + "\n"

    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(lines(), delimiter=delimiter)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                if state["line"] > start:
                    raise DataError(
                        f"a quoted field opening on this line is still open at line {state['line']} and longer than "
                        f"the {CSV_FIELD_LIMIT:,}-character field limit: an unterminated quote?",
                        path=path,
                        line=start,
                    ) from None
                raise DataError(
                    f"a field is longer than the {CSV_FIELD_LIMIT:,}-character limit", path=path, line=start
                ) from None
            if "new-line character" in str(exc):
                raise DataError(
                    "a carriage return (\\r) inside a line, outside quotes: old Mac line ends or a stray \\r?",
                    path=path,
                    line=state["line"],
                ) from None
            raise DataError(f"malformed CSV: {exc}", path=path, line=state["line"]) from None
        if row == [_CSV_EOF]:
            return
        if row and _CSV_EOF in row[-1]:
            raise DataError(
                f"unterminated quote: a quoted field opens on this line and never closes (it runs to the end of "
                f"the file, line {state['line']})",
                path=path,
                line=start,
            )
        yield start, row, state["ended"]
        start = reader.line_num + 1


class TruncationCheck:
    """Spots a file cut off inside its last field.

    A last line without a line break is normal (a missing final newline) unless its fields do
    not fit their columns: a value that fails the column's type (``float`` columns of a typed
    header), or a last field shorter than every earlier value of its column -- for the columns
    named in ``width_columns`` (ids and times, whose values have a steady width; free text does
    not).  Such a line is refused: a cut-off timestamp would silently reorder a user's sequence.
    """

    def __init__(
        self, path: Path, names: list[str], types: list[str] | None = None, width_columns: set[str] | None = None
    ) -> None:
        self.path, self.names, self.types = path, names, types
        self.checked = [i for i, n in enumerate(names) if width_columns and n in width_columns]
        self.min_width: dict[int, int] = {}
        self.rows = 0

    def add(self, cells: list[str]) -> None:
        """Record a complete row (one that ended with a line break)."""
        self.rows += 1
        mins = self.min_width
        for i in self.checked:
            n = len(cells[i].strip())
            if n < mins.get(i, n + 1):
                mins[i] = n

    def feed(self, cells: list[str], ended: bool, line: int) -> None:
        """Record a complete row, or check the unterminated last one (``ended`` false)."""
        if ended:
            self.add(cells)
        else:
            self.check_last(cells, line)

    def check_last(self, cells: list[str], line: int) -> None:
        """Refuse the unterminated last line ``cells`` if it looks cut off."""
        hint = "the file ends inside this line (no final line break)"
        for i, cell in enumerate(cells):
            typ = self.types[i] if self.types else None
            if typ in ("float", "float_seq"):
                for token in cell.split() if typ == "float_seq" else [cell.strip()]:
                    try:
                        float(token)
                    except ValueError:
                        raise DataError(
                            f"{hint} and column {self.names[i]!r} ({typ}) holds {cell.strip()!r}, not a number: "
                            "the file looks truncated",
                            path=self.path,
                            line=line,
                        ) from None
        last_col = len(cells) - 1
        last = cells[last_col].strip()
        width = self.min_width.get(last_col)
        if self.rows >= 2 and width is not None and len(last) < width:
            raise DataError(
                f"{hint} and its last field {last!r} (column {self.names[last_col]!r}) is shorter than every "
                f"earlier value of that column ({width}+ characters): the file looks truncated; if the line is "
                "complete, end the file with a line break",
                path=self.path,
                line=line,
            )


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
        raise DataError(_utf8_error(data, exc.start, col, line == 1), path=path, line=line) from None
    return text[1:] if text.startswith("\ufeff") else text


def read_json(path: Path, *, what: str, key_name: str = "key") -> Any:
    """Parse a whole JSON file; syntax errors and duplicate object keys name the line.

    A key repeated in the top-level object is reported as a duplicate ``key_name`` (e.g. "item
    id"); a key repeated inside a nested object as a duplicate field.
    """
    text = read_text(path)
    if not text.strip():
        raise DataError(f"empty file: expected {what} as JSON", path=path)
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
