"""The extension contract of mtrec: every hook a plugin may implement.

A plugin is any importable module or object with functions named like the hooks below,
decorated with :data:`hookimpl`, and advertised in the ``mtrec.plugins`` entry-point group::

    # pyproject.toml of a plugin distribution
    [project.entry-points."mtrec.plugins"]
    my_plugin = "my_plugin.plugin"

    # my_plugin/plugin.py
    from mtrec import hookimpl

    @hookimpl
    def mtrec_register_components(register):
        register(Component(kind="encoder", name="my-gru", factory=build_my_gru, params=MyGRUParams))

Registration hooks receive a ``register`` callback (in the style of simonw/llm and datasette) and
return nothing; the built-in components are registered through the very same hooks by
:mod:`mtrec.builtins`.  Lifecycle hooks are called by the engine during ``mtrec run`` and are meant
for integrations (loggers, notifiers); their return values are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from mtrec.components import Component, Recipe, Run
    from mtrec.data.formats import DatasetFormat

hookspec = pluggy.HookspecMarker("mtrec")
hookimpl = pluggy.HookimplMarker("mtrec")


@hookspec
def mtrec_register_components(register: Callable[["Component"], None]) -> None:
    """Register item identifiers, encoders, transfer strategies and decoders.

    Called once, when the plugin manager first builds the component catalogue (before any
    configuration is resolved).  Call ``register`` once per component with a
    :class:`mtrec.components.Component`; its ``kind`` is one of ``"identifier"``, ``"encoder"``,
    ``"transfer"`` or ``"decoder"``, its ``name`` is unique within the kind, and its ``params``
    is a pydantic model (extra keys forbidden) that validates ``<kind>.params`` of a run config.

    Example::

        @hookimpl
        def mtrec_register_components(register):
            register(Component(kind="encoder", name="my-gru", factory=build_my_gru,
                               params=MyGRUParams, provides=frozenset({"scores"}),
                               description="GRU over the history, softmax over the domain's items"))
    """


@hookspec
def mtrec_register_recipes(register: Callable[["Recipe"], None]) -> None:
    """Register recipes: named default combinations of the four component kinds.

    Called once, after all components are registered.  A :class:`mtrec.components.Recipe` has a
    ``name`` (what ``mtrec run --plugin NAME`` selects), a ``config`` mapping with the paper's
    defaults, and a ``quick`` mapping of overrides applied by ``--quick`` (a tiny profile that lets
    the recipe finish in about a minute on a 2-core CPU; every recipe must provide one).

    Example::

        @hookimpl
        def mtrec_register_recipes(register):
            register(Recipe(name="my-gru", config={"encoder": {"name": "my-gru"}},
                            quick={"training": {"epochs": 2}}))
    """


@hookspec
def mtrec_register_dataset_formats(register: Callable[["DatasetFormat"], None]) -> None:
    """Register dataset importers (``format:`` values in a dataset spec).

    Called once, when a dataset spec is first resolved.  Call ``register`` with a
    :class:`mtrec.data.formats.DatasetFormat`: a ``name``, a ``reader(path, *, domain, options)``
    returning :class:`mtrec.data.formats.ImportedSource`, and optionally ``detect(path) -> bool``
    so a bare folder of that format can be passed to ``--dataset``.

    Example::

        @hookimpl
        def mtrec_register_dataset_formats(register):
            register(DatasetFormat(name="my-csv", reader=read_my_csv, description="user,item,ts rows"))
    """


@hookspec
def mtrec_on_run_start(run: "Run") -> None:
    """Called after the config is resolved and the dataset loaded, before any training.

    ``run`` gives the resolved config (``run.config``), the dataset (``run.dataset``), the device and
    the run's id in the registry (``run.run_id``).  Example: start an external experiment tracker.
    """


@hookspec
def mtrec_on_stage_end(run: "Run", stage: str, metrics: dict[str, Any]) -> None:
    """Called when a training stage ends (after its best checkpoint is restored).

    ``run`` is the :class:`mtrec.components.Run` of the run in progress; ``stage`` is the
    stage's name (e.g. ``"joint"``, ``"lora:Arts"``); ``metrics`` holds ``best_epoch``,
    ``best_value`` (the best validation ``training.select_metric``) and ``seconds``.

    Example::

        @hookimpl
        def mtrec_on_stage_end(run, stage, metrics):
            print(f"{run.run_id} {stage}: best epoch {metrics['best_epoch']}")
    """


@hookspec
def mtrec_on_run_end(run: "Run", status: str, metrics: dict[str, Any]) -> None:
    """Called once when a run ends: finished, failed (an exception) or interrupted (Ctrl-C, SIGTERM).

    ``run`` is the run's :class:`mtrec.components.Run`; ``status`` is ``"finished"``,
    ``"failed"`` or ``"interrupted"``; ``metrics`` holds the test metrics of a finished run (keys
    like ``"test/average/ndcg@10"``) and is empty otherwise.  The hook runs before the exception
    of a failed or interrupted run propagates.  The engine turns SIGTERM into an interruption
    itself, so ``"interrupted"`` arrives with or without a registry (``--no-registry``).  A run
    refused by the checks made before it starts (an unknown domain, an unwritable run folder)
    never started: no hook hears of it.
    """
