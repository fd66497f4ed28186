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
