"""The dataset formats mtrec ships (registered through the ``mtrec_register_dataset_formats`` hook)."""

from __future__ import annotations

from mtrec.data.formats import DatasetFormat
from mtrec.data.formats import amazon2018, c2dsr, csvfmt, lcrec, recbole, syncrec, unisrec

# Order matters for folder detection: the more specific layouts come first (a UniSRec folder also
# holds *.inter files; the csv layout is the most generic).
ALL_FORMATS: list[DatasetFormat] = [
    unisrec.FORMAT,
    c2dsr.FORMAT,
    lcrec.FORMAT,
    syncrec.FORMAT,
    amazon2018.FORMAT,
    recbole.FORMAT,
    csvfmt.FORMAT,
]

FORMATS_BY_NAME: dict[str, DatasetFormat] = {f.name: f for f in ALL_FORMATS}
