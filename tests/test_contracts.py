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


# --------------------------------------------------------------------------- the Run protocol


def run_members() -> dict[str, object]:
    """What ``mtrec.components.Run`` declares, by name: properties and methods."""
    from mtrec.components import Run

    return {name: member for name, member in vars(Run).items() if not name.startswith("_")}


def test_run_declares_what_components_use_each_with_a_docstring():
    members = run_members()
    for name in ("dataset", "config", "device", "plugins", "identifier", "target_domains", "build_encoder",
                 "train_stage", "evaluate", "log_metrics", "run_id"):
        assert name in members, f"Run does not declare {name}"
    for name, member in members.items():
        doc = (member.fget if isinstance(member, property) else member).__doc__
        assert doc and doc.strip(), f"Run.{name} has no docstring"


def test_the_engines_run_context_satisfies_run(tmp_path):
    import torch

    from mtrec.config import resolve
    from mtrec.engine import load_run_dataset
    from mtrec.run_context import RunContext

    plugins = Plugins().load()
    resolved = resolve(plugins.catalogue, "sasrec", overrides=["dataset=amazon-mini"])
    dataset = load_run_dataset(resolved, plugins, progress=False)
    run = RunContext(resolved, dataset, plugins, torch.device("cpu"), tmp_path, progress=False)
    for name, member in run_members().items():
        assert hasattr(run, name), f"RunContext lacks Run.{name}"
        if isinstance(member, property):
            continue
        mine = inspect.signature(getattr(run, name))
        declared = inspect.signature(member)
        assert list(mine.parameters) == list(declared.parameters)[1:], f"RunContext.{name}{mine} != Run.{name}{declared}"
    assert run.dataset is dataset and run.device == torch.device("cpu") and run.run_dir == tmp_path
    assert run.plugins.catalogue is plugins.catalogue
    assert run.all_domains == list(range(len(dataset.domains))) and run.target_domains
    assert run.decoder is not None and run.seed == resolved.config.seed


def _run_attributes(source: str) -> set[str]:
    """Attributes read off a name or attribute called ``run`` (``run.x``, ``self.run.x``) in ``source``."""
    import ast

    used = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "run") or (isinstance(owner, ast.Attribute) and owner.attr == "run"):
                used.add(node.attr)
    return used


def test_the_example_plugin_and_the_scaffold_use_only_what_run_declares():
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    sources = sorted((repo / "examples" / "third-party-plugin" / "src").rglob("*.py"))
    templates = sorted((repo / "core" / "scaffold" / "templates").glob("*.py.tmpl"))
    assert sources and templates
    declared = set(run_members())
    seen = set()
    for path in sources + templates:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".tmpl":  # ${class_name}Params -> x_class_nameParams: a valid identifier
            text = re.sub(r"\$\{(\w+)\}", r"x_\1", text)
        used = _run_attributes(text)
        seen |= used
        assert used <= declared, f"{path.relative_to(repo)} uses run.{', run.'.join(sorted(used - declared))}, which Run does not declare"
    assert {"dataset", "config"} <= seen  # the check does see their uses


def test_plugins_doc_documents_every_member_of_run():
    doc = _plugins_doc()
    run_part = doc[doc.index("## Run reference"):doc.index("## Hook reference")]
    for name in run_members():
        assert f"* `run.{name}" in run_part, f"Run.{name} is missing from docs/plugins.md"
