"""The plugin manager: built-ins first, then the ``mtrec.plugins`` entry-point group.

``MTREC_LOAD_PLUGINS`` (comma-separated entry-point or distribution names) restricts which
installed plugins load; an empty value loads none but the built-ins.  A plugin that fails to
import is remembered with its error (``mtrec plugins list`` shows it) and the others still load.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import traceback
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable

import pluggy

from mtrec import hookspecs
from mtrec.components import Catalogue, Component, Recipe
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


class Plugins:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("mtrec")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._catalogue: Catalogue | None = None
        self._formats: dict[str, DatasetFormat] | None = None

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
            except Exception as exc:  # one broken plugin must not break the others
                info.error = f"{type(exc).__name__}: {exc}"
                info.traceback = traceback.format_exc()  # type: ignore[attr-defined]
            self.infos[ep.name] = info
        return self

    def register_module(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object directly (tests and notebooks); invalidates the catalogue."""
        self.pm.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, distribution or name, version, getattr(plugin, "__name__", name))
        self._catalogue = None
        self._formats = None

    # ------------------------------------------------------------------ collecting
    def _call_each(self, hook_name: str, make_register: Callable[[PluginInfo], Callable]) -> None:
        """Call a registration hook plugin by plugin, so each registration knows who made it."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            info = self.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "", "", "")
            try:
                impl.function(make_register(info))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {info.name!r} ({info.distribution or 'not installed'}) raised inside "
                    f"{hook_name}: {type(exc).__name__}: {exc}"
                ) from exc

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            catalogue = Catalogue()

            def components(info: PluginInfo) -> Callable[[Component], None]:
                return lambda c: catalogue.add_component(
                    replace(c, plugin=info.name, distribution=info.distribution, version=info.version)
                )

            def recipes(info: PluginInfo) -> Callable[[Recipe], None]:
                return lambda r: catalogue.add_recipe(
                    replace(r, plugin=info.name, distribution=info.distribution, version=info.version)
                )

            self._call_each("mtrec_register_components", components)
            self._call_each("mtrec_register_recipes", recipes)
            self._catalogue = catalogue
        return self._catalogue

    @property
    def formats(self) -> dict[str, DatasetFormat]:
        if self._formats is None:
            formats: dict[str, DatasetFormat] = {}

            def add(info: PluginInfo) -> Callable[[DatasetFormat], None]:
                def register(fmt: DatasetFormat) -> None:
                    if fmt.name in formats:
                        raise PluginError(f"dataset format {fmt.name!r} is registered twice")
                    formats[fmt.name] = replace(fmt, plugin=info.name)

                return register

            self._call_each("mtrec_register_dataset_formats", add)
            self._formats = formats
        return self._formats

    # ------------------------------------------------------------------ lifecycle
    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin, naming the plugin that raises."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} raised inside {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc


@lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin manager, loaded on first use."""
    return Plugins().load()
