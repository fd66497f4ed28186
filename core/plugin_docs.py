"""Generate the reference sections of docs/plugins.md from the code, so they cannot drift.

Three sections are generated between HTML comment markers, the rest of the page is written by
hand:

* ``run``: every member of :class:`mtrec.components.Run` (what a component may use of the run in
  progress), its type or signature and its docstring;
* ``hooks``: every hook of :mod:`mtrec.hookspecs`, its signature and its docstring (reST
  literal blocks become fenced code, ``:class:`x``` roles become code spans);
* ``builtins``: every component and recipe the built-in plugin registers, with its description,
  params (defaults) and capabilities.

``python -m mtrec.plugin_docs docs/plugins.md`` rewrites the sections in place;
``--check`` exits 1 and names the stale sections instead (tests/test_contracts.py runs the check).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Callable

SECTIONS = ("run", "hooks", "builtins")


def begin_marker(section: str) -> str:
    return f"<!-- generated:{section} start (python -m mtrec.plugin_docs docs/plugins.md) -->"


def end_marker(section: str) -> str:
    return f"<!-- generated:{section} end -->"


# --------------------------------------------------------------------------- the Run protocol


def run_members() -> list[tuple[str, object]]:
    """The members :class:`mtrec.components.Run` declares, in the order they are written."""
    from mtrec.components import Run

    return [(name, member) for name, member in vars(Run).items() if not name.startswith("_")]


def _annotation(text: object) -> str:
    return str(text).strip("'\"")


def run_section() -> str:
    lines = []
    for name, member in run_members():
        if isinstance(member, property):
            function = member.fget
            head = f"`run.{name}` (`{_annotation(function.__annotations__.get('return', 'Any'))}`)"
        else:
            function = member
            signature = inspect.signature(function)
            params = [p for p in signature.parameters.values() if p.name != "self"]
            args = ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in params)
            returns = signature.return_annotation
            head = f"`run.{name}({args})" + ("" if returns is inspect.Signature.empty else f" -> {_annotation(returns)}") + "`"
        doc = " ".join(rst_to_markdown(inspect.getdoc(function) or "").split())
        lines.append(f"* {head}: {doc}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- hooks


def hook_functions() -> list[Callable]:
    """The hook specifications in the order they are written in hookspecs.py."""
    from mtrec import hookspecs

    hooks = [f for name, f in vars(hookspecs).items() if name.startswith("mtrec_") and inspect.isfunction(f)]
    return sorted(hooks, key=lambda f: f.__code__.co_firstlineno)


def rst_to_markdown(doc: str) -> str:
    """The small reST subset of the hook docstrings -> Markdown."""
    doc = re.sub(r":(?:class|func|data|mod|meth|attr):`~?([^`]+)`", r"`\1`", doc)
    doc = doc.replace("``", "`")
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])  # "Example::" -> "Example:"
            i += 1
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            out += ["", "```python", textwrap.dedent("\n".join(block)).strip("\n"), "```", ""]
            continue
        out.append(line)
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def hooks_section() -> str:
    parts = []
    for hook in hook_functions():
        signature = inspect.signature(hook)
        args = ", ".join(signature.parameters)
        parts.append(f"### `{hook.__name__}({args})`\n\n{rst_to_markdown(inspect.getdoc(hook) or '')}")
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- built-in components


def builtin_catalogue():
    """The catalogue of the built-in plugin alone (installed plugins document themselves)."""
    import mtrec
    import mtrec.builtins.plugin as builtin
    from mtrec.plugins import Plugins

    plugins = Plugins()
    plugins.register_module(builtin, "mtrec", "mtrec", mtrec.__version__)
    return plugins.catalogue


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _params(model) -> str:
    fields = []
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        fields.append(f"`{name}`={_cell(default)}")
    return ", ".join(fields) or "none"


def _capabilities(component) -> str:
    parts = []
    if component.provides:
        parts.append("provides " + ", ".join(f"`{c}`" for c in sorted(component.provides)))
    for capability, switch in sorted(component.switchable.items()):
        parts.append(f"provides `{capability}` with `{switch}: true`")
    for kind, needed in sorted(component.requires.items()):
        article = "an" if kind[0] in "aeiou" else "a"
        parts.append(f"requires {article} {kind} with " + ", ".join(f"`{c}`" for c in sorted(needed)))
    return "; ".join(parts) or "-"


def builtins_section() -> str:
    catalogue = builtin_catalogue()
    rows = ["| kind | name | what | params (defaults) | capabilities |", "|---|---|---|---|---|"]
    for kind, by_name in catalogue.components.items():
        for name in sorted(by_name):
            c = by_name[name]
            rows.append(f"| {kind} | `{name}` | {_cell(c.description)} | {_params(c.params)} | {_capabilities(c)} |")
    recipes = ["| recipe | what | components |", "|---|---|---|"]
    for name in sorted(catalogue.recipes):
        r = catalogue.recipes[name]
        parts = ", ".join(f"{k} `{r.config[k]['name']}`" for k in ("identifier", "encoder", "transfer", "decoder")
                          if k in r.config)
        recipes.append(f"| `{name}` | {_cell(r.description)} | {parts} |")
    return "\n".join(rows) + "\n\nBuilt-in recipes:\n\n" + "\n".join(recipes)


GENERATORS: dict[str, Callable[[], str]] = {"run": run_section, "hooks": hooks_section, "builtins": builtins_section}


# --------------------------------------------------------------------------- the page


def _span(text: str, section: str) -> tuple[int, int]:
    begin, end = begin_marker(section), end_marker(section)
    start = text.find(begin)
    stop = text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the page has no generated section {section!r} (markers {begin!r} ... {end!r})")
    return start + len(begin), stop


def updated(text: str) -> str:
    """``text`` with every generated section replaced by what the code says now."""
    for section in SECTIONS:
        start, stop = _span(text, section)
        text = text[:start] + "\n" + GENERATORS[section]() + "\n" + text[stop:]
    return text


def stale_sections(text: str) -> list[str]:
    """Names of the generated sections of ``text`` that differ from what the code says now."""
    fresh = updated(text)
    return [s for s in SECTIONS if text[slice(*_span(text, s))] != fresh[slice(*_span(fresh, s))]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtrec.plugin_docs", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="docs/plugins.md", type=Path)
    parser.add_argument("--check", action="store_true", help="Only report stale sections (exit 1 if any).")
    args = parser.parse_args(argv)
    text = args.path.read_text(encoding="utf-8")
    if args.check:
        stale = stale_sections(text)
        if stale:
            print(f"{args.path}: stale generated sections: {', '.join(stale)}; "
                  f"run python -m mtrec.plugin_docs {args.path}", file=sys.stderr)
        return 1 if stale else 0
    args.path.write_text(updated(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
