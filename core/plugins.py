"""The plugin manager: built-ins first, then the ``mtrec.plugins`` entry-point group.

``MTREC_LOAD_PLUGINS`` (comma-separated entry-point or distribution names) restricts which
installed plugins load; an empty value loads none but the built-ins.

An installed plugin is isolated from the others: one that fails to import (an exception, or even
``sys.exit``), or whose registration hook (``mtrec_register_components``, ``_recipes``,
``_dataset_formats``) raises or registers a name another plugin already has, is skipped whole --
none of its components, recipes, formats or lifecycle hooks are used -- with a one-line warning
on stderr naming it; ``mtrec plugins list`` shows it ``FAILED`` with the error, and every other
plugin keeps working.  The built-ins, and plugins registered by hand with
:meth:`Plugins.register_module` (tests, notebooks), are not isolated: their failure is an error.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
import traceback
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import pluggy

from mtrec import hookspecs
from mtrec.components import Catalogue
from mtrec.data.formats import DatasetFormat
from mtrec.errors import PluginError

ENTRY_POINT_GROUP = "mtrec.plugins"
BUILTIN_PLUGINS = ("mtrec.builtins.plugin",)


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    error: str | None = None
    traceback: str | None = None  # the formatted traceback behind ``error``, for debugging


class Plugins:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("mtrec")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._catalogue: Catalogue | None = None
        self._formats: dict[str, DatasetFormat] | None = None
        self._isolated: set[str] = set()  # installed plugins: a failure skips them, not the command

    # ------------------------------------------------------------------ loading
    def load(self) -> "Plugins":
        import importlib

        import mtrec

        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            self.pm.register(module, name="mtrec")
            self.infos["mtrec"] = PluginInfo("mtrec", "mtrec", mtrec.__version__, module_name)

        allow = os.environ.get("MTREC_LOAD_PLUGINS")
        allowed = None if allow is None else {p.strip() for p in allow.split(",") if p.strip()}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else ""
            version = ep.dist.version if ep.dist is not None else ""
            if allowed is not None and ep.name not in allowed and dist not in allowed:
                continue
            if ep.name in self.infos:
                continue
            info = PluginInfo(ep.name, dist, version, ep.value)
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
                self._isolated.add(ep.name)
            except (Exception, SystemExit) as exc:  # one broken plugin must not break the others
                what = f"SystemExit({exc.code!r}) at import" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
                self._fail(info, what, traceback.format_exc())
            self.infos[ep.name] = info
        return self

    def _fail(self, info: PluginInfo, error: str, tb: str) -> None:
        """Record that the isolated plugin ``info`` is skipped, and say so once on stderr."""
        info.error = error
        info.traceback = tb
        if self.pm.has_plugin(info.name):
            self.pm.unregister(name=info.name)
        self._isolated.discard(info.name)
        where = f" ({info.distribution})" if info.distribution else ""
        sys.stderr.write(f"warning: plugin {info.name!r}{where} is skipped: {error} "
                         "(`mtrec plugins list` shows it; MTREC_LOAD_PLUGINS can leave it out)\n")

    def register_module(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object directly (tests and notebooks); invalidates the catalogue."""
        self.pm.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, distribution or name, version, getattr(plugin, "__name__", name))
        self._catalogue = None
        self._formats = None

    # ------------------------------------------------------------------ collecting
    def _one_plugins_hook(self, hook_name: str, plugin_name: str) -> Any:
        """A hook caller for ``hook_name`` that calls only ``plugin_name``'s implementations,
        through pluggy (its wrappers and ordering apply) rather than around it."""
        others = [plugin for name, plugin in self.pm.list_name_plugin() if name != plugin_name]
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    def _registrations(self, hook_name: str, name: str, info: PluginInfo) -> list[Any]:
        """What plugin ``name``'s registration hook registers (raising PluginError naming it)."""
        registered: list[Any] = []
        try:
            self._one_plugins_hook(hook_name, name)(register=registered.append)
        except PluginError:
            raise
        except (Exception, SystemExit) as exc:
            what = f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
            raise PluginError(
                f"plugin {info.name!r} ({info.distribution or 'not installed'}) raised inside {hook_name}: {what}"
            ) from exc
        return registered

    def _collect(self) -> None:
        """Build the catalogue and the formats, plugin by plugin (registration order: built-ins first).

        Each plugin's registrations are gathered from all three hooks and added only when the
        plugin got through all of them; an isolated plugin that fails is skipped whole.
        """
        catalogue = Catalogue()
        formats: dict[str, DatasetFormat] = {}
        hooks = ("mtrec_register_components", "mtrec_register_recipes", "mtrec_register_dataset_formats")
        impls: dict[str, dict[str, Any]] = {}
        for hook_name in hooks:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                impls.setdefault(impl.plugin_name, {})[hook_name] = impl
        order = [name for name, _ in self.pm.list_name_plugin() if name in impls]  # registration order
        for name in order:
            info = self.infos.get(name) or PluginInfo(name, "", "", "")
            snapshot = ({k: dict(v) for k, v in catalogue.components.items()}, dict(catalogue.recipes), dict(formats))
            try:
                for hook_name in hooks:
                    if hook_name not in impls[name]:
                        continue
                    for item in self._registrations(hook_name, name, info):
                        self._add(hook_name, item, info, catalogue, formats)
            except PluginError as exc:
                if name not in self._isolated:
                    raise
                catalogue.components, catalogue.recipes, formats = snapshot
                self._fail(info, str(exc).replace(f"plugin {name!r} ({info.distribution or 'not installed'}) ", ""),
                           traceback.format_exc())
        self._catalogue, self._formats = catalogue, formats

    @staticmethod
    def _add(hook_name: str, item: Any, info: PluginInfo, catalogue: Catalogue,
             formats: dict[str, DatasetFormat]) -> None:
        who = f"plugin {info.name!r} ({info.distribution or 'not installed'})"
        try:
            if hook_name == "mtrec_register_components":
                catalogue.add_component(replace(item, plugin=info.name, distribution=info.distribution,
                                                version=info.version))
            elif hook_name == "mtrec_register_recipes":
                catalogue.add_recipe(replace(item, plugin=info.name, distribution=info.distribution,
                                             version=info.version))
            else:
                if item.name in formats:
                    raise ValueError(f"dataset format {item.name!r} is registered twice")
                formats[item.name] = replace(item, plugin=info.name)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"{who} raised inside {hook_name}: {type(exc).__name__}: {exc}") from exc

    def check_registrations(self) -> None:
        """Run the registration hooks now (``mtrec plugins list``: a plugin whose hook fails is FAILED)."""
        if self._catalogue is None or self._formats is None:
            self._collect()

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._collect()
        assert self._catalogue is not None
        return self._catalogue

    @property
    def formats(self) -> dict[str, DatasetFormat]:
        if self._formats is None:
            self._collect()
        assert self._formats is not None
        return self._formats

    # ------------------------------------------------------------------ lifecycle
    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin through pluggy (its order, its wrappers), naming
        the plugin that raises."""
        hook = getattr(self.pm.hook, hook_name)
        try:
            hook(**kwargs)
        except Exception as exc:
            who = _raising_plugin(exc, hook.get_hookimpls())
            name = f"plugin {who!r}" if who else "a plugin"
            raise PluginError(f"{name} raised inside {hook_name}: {type(exc).__name__}: {exc}") from exc


def _raising_plugin(exc: BaseException, impls: list[Any]) -> str | None:
    """The name of the plugin whose hook implementation ``exc`` was raised in (or went through):
    the outermost frame of the traceback that runs one of ``impls``."""
    by_code = {}
    for impl in impls:
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            by_code.setdefault(code, impl.plugin_name)
    tb = exc.__traceback__
    while tb is not None:
        name = by_code.get(tb.tb_frame.f_code)
        if name is not None:
            return name
        tb = tb.tb_next
    return None


@lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin manager, loaded on first use."""
    return Plugins().load()
