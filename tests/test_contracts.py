"""The extension contract stays documented: every hook and every built-in component."""

from __future__ import annotations

import inspect

from mtrec import hookspecs
from mtrec.plugins import Plugins


def test_every_hook_documents_when_it_is_called_and_has_an_example_or_arguments():
    hooks = [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("mtrec_")]
    assert len(hooks) >= 6
    for hook in hooks:
        doc = inspect.getdoc(hook) or ""
        assert "Called" in doc, f"{hook.__name__}: say when the hook is called"
        for arg in inspect.signature(hook).parameters:
            assert f"``{arg}``" in doc or arg in doc, f"{hook.__name__}: document argument {arg}"


def test_every_builtin_component_and_recipe_is_described():
    catalogue = Plugins().load().catalogue
    for kind, components in catalogue.components.items():
        for component in components.values():
            if component.plugin == "mtrec":
                assert component.description, f"{kind} {component.name} has no description"
                for field_name, field in component.params.model_fields.items():
                    assert field_name.isidentifier()
    for recipe in catalogue.recipes.values():
        if recipe.plugin == "mtrec":
            assert recipe.description and recipe.quick, f"recipe {recipe.name}: description and quick profile"


# --------------------------------------------------------------------------- docs/plugins.md

def _plugins_doc() -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")


def test_plugins_doc_reference_sections_match_the_code():
    from mtrec.plugin_docs import stale_sections

    stale = stale_sections(_plugins_doc())
    assert not stale, f"docs/plugins.md is out of date ({', '.join(stale)}): run python -m mtrec.plugin_docs docs/plugins.md"


def test_plugins_doc_documents_every_hook_and_every_builtin_component():
    from mtrec.plugin_docs import builtin_catalogue, hook_functions

    doc = _plugins_doc()
    hooks_part = doc[doc.index("## Hook reference"):doc.index("## Built-in components")]
    for hook in hook_functions():
        assert f"### `{hook.__name__}(" in hooks_part, f"hook {hook.__name__} is missing from docs/plugins.md"
    builtins_part = doc[doc.index("## Built-in components"):]
    catalogue = builtin_catalogue()
    for kind, components in catalogue.components.items():
        for name in components:
            assert f"| {kind} | `{name}` |" in builtins_part, f"built-in {kind} {name} is missing from docs/plugins.md"
    for name in catalogue.recipes:
        assert f"| `{name}` |" in builtins_part, f"built-in recipe {name} is missing from docs/plugins.md"


def test_plugins_doc_generator_renders_examples_as_code_and_detects_drift():
    from mtrec import plugin_docs

    assert plugin_docs.rst_to_markdown("Use :class:`a.B` and ``x``.  Example::\n\n    f(1)\n    g(2)\n\nEnd.") == (
        "Use `a.B` and `x`.  Example:\n\n```python\nf(1)\ng(2)\n```\n\nEnd.")
    doc = _plugins_doc()
    tampered = doc.replace("### `mtrec_on_run_end(", "### `mtrec_on_run_finished(")
    assert plugin_docs.stale_sections(tampered) == ["hooks"]
    assert plugin_docs.stale_sections(plugin_docs.updated(tampered)) == []


def test_plugins_doc_walkthrough_names_the_real_commands():
    """The guide's commands exist: `plugins new`, `runs compare` and the generator's entry point."""
    from click.testing import CliRunner

    from mtrec.cli import main

    doc = _plugins_doc()
    for command in (["plugins", "new"], ["runs", "compare"], ["runs", "show"], ["components", "list"]):
        assert "mtrec " + " ".join(command) in doc
        assert CliRunner().invoke(main, command + ["--help"]).exit_code == 0, command
