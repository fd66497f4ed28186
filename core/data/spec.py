"""Dataset specs: which sources make one multi-domain dataset, and how to preprocess them.

A spec is a YAML (or JSON/TOML) file::

    name: amazon-mini
    kcore: 0                     # k-core per domain (0 = off)
    split: leave-one-out         # or "shipped" to keep the files' own split
    split_users_by_domain: false # true: each user's sequence in each domain becomes its own user
    text_fields: [title, brand, categories]
    sources:
      - format: lcrec
        path: scientific         # relative to the spec file
        domain: Scientific
      - format: c2dsr
        path: artsoffice         # a multi-domain source names its own domains
        domains: {Arts: Arts, Office: Office}   # optional: select / rename them

``--dataset`` also accepts a folder of a known format (its format is detected) or the name of
a bundled dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mtrec.errors import DataError


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str
    path: str
    domain: str | None = Field(None, description="Domain name of a single-domain source.")
    domains: dict[str, str] | None = Field(
        None, description="For multi-domain sources: the format's domain names to keep -> names to use."
    )
    users: Literal["own", "shared"] = Field(
        "own",
        description="'own': this source's user ids are its own (never merged with another source's); "
        "'shared': user ids are global, so equal ids in several sources are one user.",
    )
    options: dict = Field(default_factory=dict, description="Format-specific reader options.")


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sources: list[SourceSpec] = Field(min_length=1)
    kcore: int = Field(0, ge=0, description="Iterative k-core per domain on users and items (0 = off).")
    split: Literal["leave-one-out", "shipped"] = "leave-one-out"
    text_fields: list[str] = Field(default_factory=lambda: ["title", "brand", "categories"])
    max_items_per_user: int | None = Field(
        None, ge=3, description="Keep only each user's most recent N interactions per domain."
    )
    split_users_by_domain: bool = Field(
        False,
        description="Make each user's sequence in each domain a different user (raw id 'USER@DOMAIN'), so no "
        "user overlaps across domains: the non-overlapping variant of a cross-domain dataset.",
    )
    base_dir: str = Field("", exclude=True, description="Folder that relative source paths start from.")

    def source_path(self, source: SourceSpec) -> Path:
        path = Path(source.path).expanduser()
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return path


def _read_mapping(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # the parsers' own messages carry line numbers
        raise DataError(f"cannot parse: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise DataError("expected a mapping at the top level", path=path)
    return data


def load_spec_file(path: Path) -> DatasetSpec:
    data = _read_mapping(path)
    data.setdefault("name", path.stem)
    return spec_from_mapping(data, base_dir=path.parent, origin=str(path))


def spec_from_mapping(data: dict, *, base_dir: Path | str = "", origin: str = "dataset spec") -> DatasetSpec:
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise DataError(_format_validation(exc, origin)) from None
    spec.base_dir = str(base_dir)
    return spec


def _format_validation(exc: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid dataset spec"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)
