"""The plugin manager calls hooks through pluggy (its order, its wrappers) and names a plugin that raises."""

from __future__ import annotations

import dataclasses

import pytest

from mtrec import hookimpl
from mtrec.components import Component, Params
from mtrec.errors import PluginError
from mtrec.plugins import PluginInfo, Plugins


class Listener:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    @hookimpl
    def mtrec_on_run_end(self, run, status, metrics):
        self.calls.append(f"{self.name}:{status}")


class Wrapper:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    @hookimpl(wrapper=True)
    def mtrec_on_run_end(self, run, status, metrics):
        self.calls.append("wrapper:before")
        result = yield
        self.calls.append("wrapper:after")
        return result


def _fail_deep(message: str) -> None:
    raise RuntimeError(message)


class Raising:
    @hookimpl
    def mtrec_on_run_end(self, run, status, metrics):
        _fail_deep("the integration is down")  # raised in a helper, not in the hook itself


def test_notify_calls_through_pluggy_in_its_order_with_its_wrappers():
    calls: list[str] = []
    plugins = Plugins()
    plugins.register_module(Listener("first", calls), "first")
    plugins.register_module(Wrapper(calls), "wrapper")
    plugins.register_module(Listener("second", calls), "second")
    plugins.notify("mtrec_on_run_end", run=None, status="finished", metrics={})
    # pluggy calls the last registered first, and a wrapper around all of them
    assert calls == ["wrapper:before", "second:finished", "first:finished", "wrapper:after"]


def test_notify_names_the_plugin_that_raises():
    calls: list[str] = []
    plugins = Plugins()
    plugins.register_module(Listener("quiet", calls), "quiet")
    plugins.register_module(Raising(), "boom-plugin")
    with pytest.raises(PluginError, match=r"plugin 'boom-plugin' raised inside mtrec_on_run_end: RuntimeError: "
                                          r"the integration is down") as caught:
        plugins.notify("mtrec_on_run_end", run=None, status="failed", metrics={})
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_registration_hooks_run_through_pluggy_one_plugin_at_a_time():
    seen: list[str] = []

    class Registers:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def mtrec_register_components(self, register):
            seen.append(self.name)
            register(Component(kind="decoder", name=f"dec-{self.name}", factory=lambda p, r: None, params=Params))

    class WrapsItsOwn(Registers):
        @hookimpl(wrapper=True)
        def mtrec_register_components(self, register):  # a wrapper of this plugin alone
            seen.append(f"{self.name}:wrapped")
            return (yield)

    plugins = Plugins()
    plugins.register_module(Registers("a"), "a")
    plugins.register_module(WrapsItsOwn("b"), "b")
    catalogue = plugins.catalogue
    assert set(catalogue.components["decoder"]) == {"dec-a"}  # b only wraps: pluggy ran its wrapper, nothing else
    assert catalogue.components["decoder"]["dec-a"].plugin == "a"
    assert seen == ["a", "b:wrapped"]


def test_plugin_info_declares_its_traceback():
    assert "traceback" in {f.name for f in dataclasses.fields(PluginInfo)}
    assert PluginInfo("x", "", "", "").traceback is None
