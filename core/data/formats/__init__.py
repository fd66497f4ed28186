"""Dataset importers: one reader per on-disk format.

A reader turns one source (a file or folder) into an :class:`ImportedSource`: raw item ids with
their text fields, and each user's chronological sequence of (domain, raw item id).  Everything
after that -- id assignment, k-core, splits, caching -- is shared and lives in
:mod:`mtrec.data.assemble`, so a new format is one function (register it with the
``mtrec_register_dataset_formats`` hook).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol


@dataclass
class ImportedSource:
    """What a format reader returns.

    ``items[domain][raw_item_id]`` holds the item's text fields (missing fields may be absent).
    ``sequences[raw_user_id]`` is the user's chronological list of ``(domain, raw_item_id)``.
    ``roles`` is present when the files ship their own split: for each user, one role per
    interaction (0 train, 1 valid, 2 test), aligned with ``sequences``.
    """

    items: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    sequences: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    roles: dict[str, list[int]] | None = None


class FormatReader(Protocol):
    def __call__(self, path: Path, *, domain: str | None, options: dict) -> ImportedSource:
        """Read the source at ``path``.

        ``domain`` is the domain name the spec gives a single-domain source (readers of
        multi-domain formats name their domains themselves).  ``options`` are the source's
        format-specific options from the spec; unknown options should raise ``DataError``.
        Bad input raises :class:`mtrec.errors.DataError` naming the file and line.
        """
        ...


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    reader: Callable[..., ImportedSource]
    description: str = ""
    detect: Callable[[Path], bool] | None = None  # True when a folder looks like this format
    plugin: str = ""
    # A pydantic model of the reader's options (see ``_io.ReaderOptions``): when given, a spec's
    # options are checked against it -- unknown keys, wrong types -- before any file is read.
    options: type | None = None

