"""The extension contract stays documented: every hook and every built-in component."""

from __future__ import annotations

import inspect

import pytest

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


# --------------------------------------------------------------------------- component contracts


def _declared_members(kind: str) -> dict[str, inspect.Signature | None]:
    """What ``contract(kind)`` declares: method name -> its signature (without ``self``), data member -> None."""
    from mtrec.components import contract

    cls = contract(kind)
    members: dict[str, inspect.Signature | None] = {name: None for name in getattr(cls, "__annotations__", {})}
    for name, value in vars(cls).items():
        if inspect.isfunction(value) and not name.startswith("_"):
            sig = inspect.signature(value)
            members[name] = sig.replace(parameters=list(sig.parameters.values())[1:])
    return members


def _member_type(kind: str, name: str) -> type:
    """The type ``contract(kind)`` annotates data member ``name`` with (``ClassVar[str]`` -> ``str``)."""
    import typing

    from mtrec.components import contract

    hint = typing.get_type_hints(contract(kind))[name]
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.ClassVar else hint


def _signature_problem(method: object, declared: inspect.Signature, unbound: bool) -> str | None:
    """Why ``method`` cannot be called the way ``declared`` is (positionally, with those names), or None."""
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return None  # a builtin or C method: nothing to compare
    params = list(sig.parameters.values())[1 if unbound else 0:]
    want = list(declared.parameters)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in positional[:len(want)]]
    if names != want:
        return f"takes ({', '.join(p.name for p in positional)}), the contract says ({', '.join(want)})"
    extra = [p.name for p in positional[len(want):] if p.default is p.empty]
    extra += [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if extra:
        return f"also requires {', '.join(extra)}, which the engine does not pass"
    return None


def contract_problems(kind: str, component, subject: object) -> list[str]:
    """Each way ``subject`` (an instance the factory built, or the class it returns) breaks ``kind``'s contract."""
    from mtrec.components import CONTRACT_MEMBERS

    unbound = inspect.isclass(subject)
    provided = component.provided(component.params())
    problems = []
    declared = _declared_members(kind)
    for name, rule in CONTRACT_MEMBERS[kind].items():
        required = rule is None or (rule != "optional" and rule in provided)
        label = f"{kind} {component.name!r} ({component.plugin}): {name}"
        present = hasattr(subject, name) or (unbound and name in getattr(subject, "__annotations__", {}))
        if not present:
            if required:
                problems.append(f"{label} is missing" + (f" (it provides {rule})" if rule else ""))
            continue
        sig = declared[name]
        if sig is None:  # a data member: of the declared type, where read off a built component
            want = _member_type(kind, name)
            value = getattr(subject, name, None)
            if (not unbound or isinstance(subject.__dict__.get(name), want)) and not isinstance(value, want):
                problems.append(f"{label} should be {want.__name__}, not {type(value).__name__}")
            continue
        member = getattr(subject, name)
        if not callable(member):
            problems.append(f"{label} should be a method")
            continue
        why = _signature_problem(member, sig, unbound)
        if why:
            problems.append(f"{label} {why}")
    return problems


def _returned_class(factory) -> type:
    """The class a factory function returns, from its return annotation."""
    annotation = inspect.signature(factory).return_annotation
    if isinstance(annotation, str):
        annotation = eval(annotation, factory.__globals__)  # noqa: S307 -- the factory's own module
    assert inspect.isclass(annotation), f"{factory.__qualname__}: annotate the class the factory returns"
    return annotation


@pytest.fixture(scope="module")
def contract_run(tmp_path_factory):
    """Every installed plugin, plus the example third-party plugin (from its source folder when it
    is not installed), and a run on ``amazon-mini`` to build components with."""
    import importlib
    import sys
    from pathlib import Path

    import torch

    from mtrec.config import resolve
    from mtrec.engine import load_run_dataset
    from mtrec.run_context import RunContext

    plugins = Plugins().load()
    if not any(c.name == "no-training" for c in plugins.catalogue.components["transfer"].values()):
        src = str(Path(__file__).resolve().parents[1] / "examples" / "third-party-plugin" / "src")
        sys.path.insert(0, src)
        try:
            plugins.register_module(importlib.import_module("classic_baselines.plugin"), "classic-baselines")
        finally:
            sys.path.remove(src)
    resolved = resolve(plugins.catalogue, "sasrec", overrides=["dataset=amazon-mini"])
    dataset = load_run_dataset(resolved, plugins, progress=False)
    return plugins, RunContext(resolved, dataset, plugins, torch.device("cpu"), tmp_path_factory.mktemp("run"), progress=False)


def test_every_contract_member_is_classified_and_documented():
    from mtrec.components import CONTRACT_MEMBERS, KINDS, contract

    assert set(CONTRACT_MEMBERS) == set(KINDS)
    for kind in KINDS:
        declared = _declared_members(kind)
        assert set(CONTRACT_MEMBERS[kind]) == set(declared) - ({"forward"} if kind == "encoder" else set()), kind
        for name, sig in declared.items():
            if sig is not None:
                doc = inspect.getdoc(getattr(contract(kind), name)) or ""
                assert doc.strip(), f"{contract(kind).__name__}.{name} has no docstring"
                if CONTRACT_MEMBERS[kind][name] == "optional":
                    assert doc.startswith("Optional"), f"{contract(kind).__name__}.{name}: say it is optional"
    engine_calls = {"identifier": {"domain_tokens": ["run", "domain"], "load": ["directory"], "save": ["directory"],
                                   "fit": ["run"], "metric_rows": []},
                    "transfer": {"execute": ["run"], "save": ["models", "directory"], "load": ["run", "directory"]}}
    for kind, calls in engine_calls.items():
        for name, args in calls.items():
            assert list(_declared_members(kind)[name].parameters) == args, f"{kind}.{name}"


def test_every_registered_component_meets_its_contract(contract_run):
    """Identifiers, transfer strategies and decoders are built as the engine builds them
    (``factory(params, run)``, default params); encoders, whose building needs a fitted identifier,
    are checked through the class their factory returns."""
    plugins, run = contract_run
    assert not [i.name for i in plugins.infos.values() if i.error], "a plugin failed to load"
    problems, checked = [], 0
    for kind, components in plugins.catalogue.components.items():
        for component in components.values():
            if kind == "encoder":
                from mtrec.components import Encoder

                subject = component.factory if inspect.isclass(component.factory) else _returned_class(component.factory)
                if not issubclass(subject, Encoder):
                    problems.append(f"encoder {component.name!r}: {subject.__name__} does not subclass mtrec.components.Encoder")
            else:
                subject = component.factory(component.params(), run)
            problems += contract_problems(kind, component, subject)
            checked += 1
    assert checked >= 20 and not problems, "\n".join(problems)


def test_the_contract_check_catches_a_wrong_signature(contract_run):
    from mtrec.builtins.atomic import AtomicIdentifier

    plugins, run = contract_run
    component = plugins.catalogue.get("identifier", "atomic")

    class OldStyle(AtomicIdentifier):
        version = "v1"

        def domain_tokens(self, domain):  # the pre-contract (d) form
            return super().domain_tokens(run, domain)

        def metric_rows(self, run):
            return []

    problems = contract_problems("identifier", component, OldStyle(component.params(), run))
    assert len(problems) == 3, problems
    assert "domain_tokens takes (domain)" in problems[0] + problems[1] + problems[2]
