"""Resolve ``--dataset``, read its sources, and cache the processed result on disk.

The cache key (the dataset's *fingerprint*) covers the spec, the content of every input file and
:data:`PROCESSING_VERSION`, so a changed file or option never reuses a stale cache.  Cache entries
are written to a temporary folder and renamed into place, so an interrupted run leaves nothing
half-written behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from mtrec.data.assemble import assemble
from mtrec.data.formats import DatasetFormat
from mtrec.data.model import MultiDomainDataset
from mtrec.data.spec import DatasetSpec, load_spec_file, spec_from_mapping
from mtrec.errors import DataError
from mtrec.files import atomic_path
from mtrec.paths import cache_dir

PROCESSING_VERSION = "1"
SPEC_SUFFIXES = {".yaml", ".yml", ".json", ".toml"}


def bundled_root() -> Path:
    import mtrec.bundled

    return Path(mtrec.bundled.__file__).parent


def bundled_datasets() -> dict[str, Path]:
    """Name -> spec file of every dataset shipped inside the package."""
    root = bundled_root()
    return {p.parent.name: p for p in sorted(root.glob("*/dataset.yaml"))}


DEFAULT_DATASET = "amazon-mini"


def resolve_spec(dataset: str | Path | None, formats: dict[str, DatasetFormat]) -> DatasetSpec:
    """``dataset`` is a spec file, a folder of a detectable format, or a bundled dataset's name."""
    if dataset is None:
        dataset = DEFAULT_DATASET
    bundled = bundled_datasets()
    if isinstance(dataset, str) and dataset in bundled:
        return load_spec_file(bundled[dataset])
    path = Path(dataset).expanduser()
    if not path.exists():
        names = ", ".join(bundled) or "none"
        raise DataError(f"no such dataset file or folder (bundled datasets: {names})", path=path)
    if path.is_file():
        if path.suffix not in SPEC_SUFFIXES:
            raise DataError(f"a dataset spec must be one of {sorted(SPEC_SUFFIXES)}", path=path)
        return load_spec_file(path)
    if (path / "dataset.yaml").is_file():
        return load_spec_file(path / "dataset.yaml")
    fmt = detect_format(path, formats)
    return spec_from_mapping(
        {"name": path.name, "sources": [{"format": fmt, "path": str(path.resolve()), "domain": path.name}]},
        origin=str(path),
    )


def detect_format(path: Path, formats: dict[str, DatasetFormat]) -> str:
    for name, fmt in formats.items():
        detector = getattr(fmt, "detect", None)
        if detector is not None and detector(path):
            return name
    raise DataError(
        "cannot tell the format of this folder; write a dataset spec (see docs/data-formats.md)", path=path
    )


def fingerprint(spec: DatasetSpec) -> str:
    digest = hashlib.sha256()
    digest.update(PROCESSING_VERSION.encode())
    digest.update(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    for source in spec.sources:
        path = spec.source_path(source)
        # A file source's readers also read siblings (an .item table beside an .inter file).
        folder = path if path.is_dir() else path.parent
        files = sorted(p for p in (folder.rglob("*") if path.is_dir() else folder.iterdir()) if p.is_file())
        for file in files:
            digest.update(file.name.encode())
            digest.update(_file_digest(file))
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=path) from None
    return h.digest()


def load_dataset(
    spec: DatasetSpec, formats: dict[str, DatasetFormat], *, use_cache: bool = True, progress: bool = False
) -> MultiDomainDataset:
    check_sources(spec, formats)
    key = fingerprint(spec)
    entry = cache_dir("datasets") / key
    if use_cache and (entry / "meta.json").is_file():
        try:
            dataset = _read_cache(entry)
            dataset.spec = absolute_spec(spec)
            return dataset
        except Exception:  # a corrupt entry is rebuilt, never trusted
            shutil.rmtree(entry, ignore_errors=True)
    imported = []
    for source in spec.sources:
        path = spec.source_path(source)
        reader = formats[source.format].reader
        imported.append((str(path), reader(path, domain=source.domain, options=dict(source.options))))
    dataset = assemble(spec, imported)
    dataset.fingerprint = key
    dataset.spec = absolute_spec(spec)
    if use_cache:
        _write_cache(entry, dataset)
    return dataset


def check_sources(spec: DatasetSpec, formats: dict[str, DatasetFormat]) -> None:
    """Every source's format is known, its path exists and its options fit the format's option
    model: checked before any file is read, each problem named by its key in the spec."""
    from mtrec.data.formats._io import check_options

    where = spec.origin or spec.name
    for i, source in enumerate(spec.sources):
        if source.format not in formats:
            raise DataError(
                f"sources[{i}].format: unknown dataset format {source.format!r}; known: {', '.join(sorted(formats))}",
                path=where,
            )
        path = spec.source_path(source)
        if not path.exists():
            raise DataError(f"sources[{i}].path: {path} does not exist (no such file or folder)", path=where)
        model = getattr(formats[source.format], "options", None)
        if model is not None:
            check_options(source.format, source.options, model, path=where, key_prefix=f"sources[{i}].options.")


def absolute_spec(spec: DatasetSpec) -> dict:
    """The spec as JSON with absolute source paths, so it can be reloaded from anywhere."""
    data = spec.model_dump(mode="json")
    for source, raw in zip(spec.sources, data["sources"]):
        raw["path"] = str(spec.source_path(source).resolve())
    return data


def _read_cache(entry: Path) -> MultiDomainDataset:
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    with np.load(entry / "arrays.npz") as arrays:
        return MultiDomainDataset.from_parts(dict(arrays), meta)


def _write_cache(entry: Path, dataset: MultiDomainDataset) -> None:
    staged = False
    try:
        # existing_wins: another process that won the race wrote an identical entry
        with atomic_path(entry, directory=True, existing_wins=True) as tmp:
            staged = True
            np.savez(tmp / "arrays.npz", **dataset.to_arrays())
            (tmp / "meta.json").write_text(json.dumps(dataset.to_meta()), encoding="utf-8")
    except OSError as exc:
        if staged:
            raise
        raise DataError(
            f"cannot write the dataset cache ({exc.strerror}); set MTREC_CACHE_DIR to a writable folder",
            path=entry.parent,
        ) from None
