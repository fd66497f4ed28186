"""``mtrec plugins new NAME``: write a new plugin distribution from the templates beside this file.

The scaffold is the smallest plugin that is complete: a ``pyproject.toml`` advertising the
``mtrec.plugins`` entry point, ``src/<package>/plugin.py`` registering one working encoder (mean
pooling of the history's item embeddings) and a recipe with a ``quick`` profile, one test file
and a README.  It installs with ``pip install -e`` and shows in ``mtrec plugins list`` at once,
so an author starts from something that runs and replaces the encoder with their own.

Templates are :class:`string.Template` files (``${name}`` placeholders) shipped as package data.
"""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from string import Template

from mtrec.errors import UserError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

# Template file (under templates/) -> path in the new distribution; placeholders allowed in paths.
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "init.py.tmpl": "src/${package}/__init__.py",
    "plugin.py.tmpl": "src/${package}/plugin.py",
    "encoder.py.tmpl": "src/${package}/encoder.py",
    "test_plugin.py.tmpl": "tests/test_${package}.py",
}


@dataclass(frozen=True)
class ScaffoldNames:
    """Every name the new plugin uses, derived from the one the author typed."""

    name: str  # entry-point, encoder and recipe name, e.g. "mean-pool"
    distribution: str  # "mtrec-mean-pool"
    package: str  # "mtrec_mean_pool"
    class_name: str  # "MeanPool"


def plugin_names(name: str) -> ScaffoldNames:
    """Validate NAME (lowercase words joined by hyphens) and derive the plugin's names.

    A leading ``mtrec-`` is accepted and dropped from the short name: ``mtrec-foo`` and ``foo``
    give the same plugin.
    """
    short = name[len("mtrec-"):] if name.startswith("mtrec-") else name
    if not NAME_PATTERN.fullmatch(short) or short == "mtrec":
        raise UserError(
            f"plugin name {name!r}: use lowercase letters and digits in words joined by single hyphens, "
            "starting with a letter (e.g. 'mean-pool' or 'mtrec-mean-pool')"
        )
    package = "mtrec_" + short.replace("-", "_")
    class_name = "".join(part.capitalize() for part in short.split("-"))
    if keyword.iskeyword(package) or not class_name.isidentifier():
        raise UserError(f"plugin name {name!r} does not make a valid Python package name")
    return ScaffoldNames(name=short, distribution="mtrec-" + short, package=package, class_name=class_name)


def render(names: ScaffoldNames, mtrec_version: str) -> dict[str, str]:
    """Relative path -> text of every file of the new distribution."""
    values = asdict(names) | {"mtrec_version": mtrec_version}
    templates = resources.files("mtrec.scaffold") / "templates"
    files = {}
    for template_name, target in LAYOUT.items():
        text = (templates / template_name).read_text(encoding="utf-8")
        files[Template(target).substitute(values)] = Template(text).substitute(values)
    return files


def create_plugin(name: str, parent: Path, *, taken: set[str] = frozenset(), mtrec_version: str = "0.1.0") -> Path:
    """Write the plugin distribution ``parent/NAME`` and return its folder.

    ``taken`` holds encoder and recipe names already registered: the new plugin would collide
    with them when it loads, so they are refused now.  Nothing is written when any check fails,
    and the folder appears whole or not at all (written aside, then renamed).
    """
    names = plugin_names(name)
    if names.name in taken:
        raise UserError(
            f"plugin name {name!r}: an encoder or recipe named {names.name!r} is already registered "
            "(`mtrec components list`); choose another name"
        )
    target = Path(parent) / name
    if target.exists():
        raise UserError(f"{target} already exists; choose another NAME or --path (nothing was written)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    except OSError as exc:
        raise UserError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    try:
        for relative, text in render(names, mtrec_version).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
