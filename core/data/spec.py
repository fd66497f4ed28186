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
    origin: str = Field("", exclude=True, description="Where the spec came from (its file), for error messages.")

    def source_path(self, source: SourceSpec) -> Path:
        path = Path(source.path).expanduser()
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return path


def _yaml_loader():
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let PyYAML report it
                break
            if first is not None:
                raise DataError(
                    f"duplicate key {key!r} (first given at line {first})", path=loader.name, line=key_node.start_mark.line + 1
                )
            seen[key] = key_node.start_mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def _read_mapping(path: Path) -> dict:
    from mtrec.data.formats._io import read_json, read_text

    if path.is_dir():
        raise DataError("expected a dataset spec file, found a folder", path=path)
    if path.suffix == ".json":
        data = read_json(path, what="the dataset spec")  # duplicate keys and syntax errors name their line
    else:
        text = read_text(path)  # UTF-8 (a byte-order mark is dropped); a bad byte names its line
        if not text.strip():
            raise DataError("empty file: expected a dataset spec (name:, sources: ...)", path=path)
        if path.suffix in {".yaml", ".yml"}:
            import yaml

            try:
                loader = _yaml_loader()(text)
                loader.name = str(path)
                try:
                    data = loader.get_single_data()
                finally:
                    loader.dispose()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                problem = " ".join(x for x in (exc.context, exc.problem) if x)
                raise DataError(
                    f"cannot parse YAML: {problem}" + (f" (column {mark.column + 1})" if mark else ""),
                    path=path,
                    line=mark.line + 1 if mark else None,
                ) from None
            except yaml.YAMLError as exc:
                raise DataError(f"cannot parse YAML: {exc}", path=path) from None
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                import re

                found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
                raise DataError(
                    f"cannot parse TOML: {exc}", path=path, line=int(found.group(1)) if found else None
                ) from None
    if not isinstance(data, dict):
        raise DataError(
            f"expected a mapping (name:, sources: ...) at the top level, found {type(data).__name__}", path=path
        )
    return data


def load_spec_file(path: Path) -> DatasetSpec:
    data = _read_mapping(path)
    data.setdefault("name", path.stem)
    return spec_from_mapping(data, base_dir=path.parent, origin=str(path))


def spec_from_mapping(data: dict, *, base_dir: Path | str = "", origin: str = "dataset spec") -> DatasetSpec:
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise DataError(_format_validation(exc), path=origin) from None
    spec.base_dir = str(base_dir)
    spec.origin = origin
    return spec


def spec_key(loc: tuple | list) -> str:
    """``('sources', 0, 'options', 'x')`` -> ``sources[0].options.x``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format_validation(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        key = spec_key(err["loc"])
        msg = {"extra_forbidden": "unknown key", "missing": "required key missing"}.get(err["type"], err["msg"])
        problem = f"{key}: {msg}" if key else msg
        if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            problem += f", got {err['input']!r}"
        problems.append(problem)
    return "invalid dataset spec: " + "; ".join(problems)
