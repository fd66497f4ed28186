"""The four component kinds, their contracts, and the catalogue of registered components.

Every method is a combination of four parts:

* **identifier** (:class:`ItemIdentifier`): item -> token tuple (atomic, semantic, textual ids);
* **encoder** (:class:`Encoder`): the sequence model, discriminative or generative;
* **transfer** (:class:`TransferStrategy`): which stages run, on which domains, training what;
* **decoder** (:class:`Decoder`): model output -> a ranking over the target domain's items.

Compatibility is declared, not special-cased: a component *provides* capabilities and *requires*
capabilities of the other kinds (for example the ``trie-beam`` decoder requires an encoder that
provides ``generative`` and an identifier that provides ``trie``).  A capability that a params
switch turns on is declared in ``switchable`` (capability -> the boolean param), so a refusal can
say which switch to set.  What capabilities cannot express (a part that names another component
in its params, matching widths) goes in ``check``, called with every chosen part.  The engine runs
all of this before any work starts and names the part that is missing what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Protocol

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

if TYPE_CHECKING:
    from mtrec.config import RunConfig
    from mtrec.data.model import MultiDomainDataset
    from mtrec.evaluation.evaluator import EvalReport
    from mtrec.training.stage import Stage, StageResult

KINDS = ("identifier", "encoder", "transfer", "decoder")
Kind = Literal["identifier", "encoder", "transfer", "decoder"]


class Capability(str, Enum):
    """The capabilities whose contract the core defines, for ``provides`` / ``requires``.

    A member *is* its string (``Capability.SCORES == "scores"``, same hash, prints as ``scores``),
    so components that declare plain strings and components that use these members meet in one
    check.  A plugin's own capabilities (e.g. ``training-free``) stay plain strings of its own.
    """

    TOKENS = "tokens"  # identifier: item_tokens() -> [n_items + 1, L]
    TRIE = "trie"  # identifier: domain_tokens(run, d) for prefix-trie decoding
    DISCRIMINATIVE = "discriminative"  # encoder family: scores candidate items
    GENERATIVE = "generative"  # encoder family: generates identifier tokens (trie-beam)
    SCORES = "scores"  # encoder: score(batch, candidates) -> [B, C] (what topk requires)
    EMBEDDINGS = "embeddings"  # encoder: item ID embeddings others may read/write (mtrec.embeddings)
    TASK_LOSSES = "task-losses"  # encoder: DomainLoss keyed "single/<d>" and "cross/<d>" (training/stage.py)
    LOSS_WEIGHTING = "loss-weighting"  # transfer: combiner(run, model, domains) others may borrow

    def __str__(self) -> str:  # "scores", not "Capability.SCORES" (messages, generated docs)
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


# What a discriminative encoder provides (the built-in sasrec): its family, `scores` (what the
# `topk` decoder requires) and `embeddings`; an encoder that can stand in for sasrec declares it too.
DISCRIMINATIVE_ENCODER: frozenset[str] = frozenset(
    {Capability.DISCRIMINATIVE, Capability.SCORES, Capability.EMBEDDINGS}
)


class Params(BaseModel):
    """Base of every component's params model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Component:
    kind: Kind
    name: str
    factory: Callable[..., Any]
    params: type[BaseModel] = Params
    description: str = ""
    provides: frozenset[str] = frozenset()
    requires: dict[str, frozenset[str]] = field(default_factory=dict)
    # capability -> name of the boolean param that provides it when true (e.g. seq2seq's
    # "task-losses" <- task_losses); the capability counts only when the param is set.
    switchable: dict[str, str] = field(default_factory=dict)
    # check(params, parts, catalogue) -> None, raising ConfigError: compatibility rules beyond
    # capabilities; ``parts`` maps each kind to its (Component, validated params).
    check: Callable[[BaseModel, dict[str, tuple["Component", BaseModel]], "Catalogue"], None] | None = None
    plugin: str = ""  # filled in by the plugin manager: the registering plugin's name
    distribution: str = ""  # ... and its distribution and version, for the registry
    version: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"component kind must be one of {KINDS}, not {self.kind!r}")

    def provided(self, params: BaseModel | None = None) -> frozenset[str]:
        """Capabilities with these params: ``provides`` plus each switchable one whose switch is on."""
        on = {cap for cap, key in self.switchable.items() if params is not None and getattr(params, key, False)}
        return self.provides | on

    def missing(self, needed: frozenset[str] | set[str], params: BaseModel | None, key: str) -> str | None:
        """Why this component (configured at ``key``) lacks ``needed``, or None when it has it all."""
        have = self.provided(params)
        missing = set(needed) - have
        if not missing:
            return None
        provided = ", ".join(sorted(have)) or "nothing"
        text = f"{self.kind} {self.name!r} provides {provided}"
        switches = [f"{key}.params.{self.switchable[c]}=true" for c in sorted(missing) if c in self.switchable]
        if switches and len(switches) == len(missing):
            text += f" (set {', '.join(switches)})"
        return text


@dataclass(frozen=True)
class Recipe:
    name: str
    config: dict[str, Any]
    quick: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    plugin: str = ""
    distribution: str = ""
    version: str = ""


# --------------------------------------------------------------------------- the run


class PluginManager(Protocol):
    """What ``run.plugins`` offers components: the catalogue of every registered component."""

    @property
    def catalogue(self) -> "Catalogue": ...


class Run(Protocol):
    """The run in progress, as components, plugins and lifecycle hooks see it.

    Factories receive it (``factory(params, run)``), ``Encoder.train_tensors``, ``TransferStrategy``
    and identifiers get it, and the lifecycle hooks are called with it.  The engine's
    :class:`mtrec.run_context.RunContext` implements it; a component uses only what is declared
    here, so it runs unchanged under any other implementation (a test double, a future engine).
    Domains are indices into ``run.dataset.domains``.
    """

    @property
    def config(self) -> "RunConfig":
        """The resolved run config (``run.config.data.max_len``, ``run.config.training``, ...)."""
        ...

    @property
    def params(self) -> dict[str, BaseModel]:
        """Each kind's validated params model, by kind (``run.params["encoder"]``)."""
        ...

    @property
    def dataset(self) -> "MultiDomainDataset":
        """The loaded multi-domain dataset: ``domains``, ``n_items``, ``item_domain``, splits, item text."""
        ...

    @property
    def device(self) -> torch.device:
        """The device models train and evaluate on."""
        ...

    @property
    def plugins(self) -> PluginManager:
        """The plugin manager; ``run.plugins.catalogue`` looks up other registered components."""
        ...

    @property
    def identifier(self) -> Any:
        """The run's fitted item identifier (an ``ItemIdentifier``); set before the transfer runs."""
        ...

    @property
    def run_dir(self) -> Path:
        """The run's folder (checkpoints, artifacts)."""
        ...

    @property
    def run_id(self) -> str | None:
        """The run's id in the registry, or None without one (``--no-registry``)."""
        ...

    @property
    def progress(self) -> bool:
        """Whether progress bars are shown."""
        ...

    @property
    def seed(self) -> int:
        """The run's seed (``config.seed``)."""
        ...

    @property
    def autocast(self) -> bool:
        """Whether mixed precision is on (CUDA with ``training.amp``)."""
        ...

    @property
    def target_domains(self) -> list[int]:
        """Indices of the domains the run is evaluated on (``domains.targets``)."""
        ...

    @property
    def source_domains(self) -> list[int]:
        """Indices of the domains the run may learn from (``domains.sources``)."""
        ...

    @property
    def all_domains(self) -> list[int]:
        """Indices of every domain of the dataset."""
        ...

    @property
    def decoder(self) -> Any:
        """The configured decoder (a ``Decoder``), built on first use."""
        ...

    def build(self, kind: str) -> Any:
        """Instantiate the configured component of ``kind`` with its validated params."""
        ...

    def build_encoder(self) -> nn.Module:
        """A new instance of the configured encoder, on ``run.device``."""
        ...

    def train_stage(self, model: nn.Module, stage: "Stage") -> "StageResult":
        """Train ``model`` through ``stage`` (early stopping on validation; resumable)."""
        ...

    def evaluate(self, models: dict[int, nn.Module], split: str, domains: list[int] | None = None) -> "EvalReport":
        """Score ``models`` (one per domain index) on ``split`` (``"valid"`` or ``"test"``)."""
        ...

    def examples(self, split: str, domains: list[int] | None = None) -> dict[str, Any]:
        """The evaluation examples of ``split`` for ``domains`` (default: the targets), as arrays."""
        ...

    def log_metrics(self, rows: list[dict]) -> None:
        """Record metric rows in the registry (a no-op without one)."""
        ...

    def log_artifact(self, kind: str, path: Path) -> None:
        """Record a file or folder of the run as an artifact of ``kind`` (a no-op without a registry)."""
        ...

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook of every plugin (on rank 0 only under torchrun)."""
        ...

    def stage_counter(self) -> int:
        """The next stage's 1-based index (the trainer's: names its resume files)."""
        ...

    def checkpoint_path(self, stage: str) -> Path:
        """Where the trainer keeps the best weights of ``stage``."""
        ...


# --------------------------------------------------------------------------- contracts


class ItemIdentifier(Protocol):
    """Turns items into the tokens a model sees.

    The engine builds it (``factory(params, run)``), then either calls ``fit(run)`` and
    ``save(directory)``, or ``load(directory)`` (a resumed run, ``identifier.from_run``, other
    ranks under torchrun, ``mtrec recommend``); it then becomes ``run.identifier``.

    Required of every identifier: ``vocab_size``, ``fit``, ``item_tokens``, ``save``, ``load``.
    Required of identifiers that provide ``trie``: ``domain_tokens``.  Optional (the engine and
    the decoders probe for them with ``hasattr`` / ``getattr``): ``version``, ``metric_rows``.
    :data:`CONTRACT_MEMBERS` lists which is which; ``tests/test_contracts.py`` checks every
    registered identifier against these signatures.  Implement it without subclassing (a subclass
    would inherit the optional members' empty stubs, and the engine would find and call them).
    """

    vocab_size: int
    """Bound on the token ids: every id in ``item_tokens()`` is below it (read after ``fit``/``load``)."""

    version: int
    """Optional.  Bumped whenever the item tokens change after ``fit`` (a regeneration during
    training); the ``trie-beam`` decoder rebuilds its tries when it changes.  Absent means 0."""

    def fit(self, run: "Run") -> None:
        """Called once per run by the engine (rank 0), before the transfer, unless the identifier
        is loaded instead; ``run`` is the run in progress (``run.dataset``, ``run.device``)."""
        ...

    def item_tokens(self) -> torch.Tensor:
        """``[n_items + 1, L]`` token ids (row 0 is padding); every item's row is unique within its
        domain.  Called by encoders after ``fit``/``load``."""
        ...

    def domain_tokens(self, run: "Run", domain: int) -> torch.Tensor:
        """Required of identifiers that provide ``trie``.  ``[n_domain_items, L]``, row ``i`` the
        tokens of ``run.dataset.domain_items[domain][i]``.  Called by the ``trie-beam`` decoder with
        the run and a domain index, once per domain (and again after ``version`` changes)."""
        ...

    def metric_rows(self) -> list[dict[str, Any]]:
        """Optional.  Quality rows of the fitted identifier (codebook usage, collisions), in the
        registry's metric-row form (``stage``, ``split``, ``domain``, ``name``, ``k``, ``value``).
        Called by the engine, when present, after ``fit``/``load``, and logged with ``run.log_metrics``."""
        ...

    def save(self, directory: Path) -> None:
        """Write the fitted identifier into ``directory`` (the run's ``identifier`` artifact).
        Called by the engine right after ``fit``."""
        ...

    def load(self, directory: Path) -> None:
        """Read what ``save`` wrote in ``directory`` into this freshly built identifier; raise
        ``ConfigError`` when it does not fit this run's dataset.  Called instead of ``fit``."""
        ...


class Encoder(nn.Module):
    """Base class of sequence models.

    Subclasses set ``family`` and implement:

    * ``train_tensors(run, domains) -> dict[str, Tensor]``: the training examples of the given
      domains as tensors sharing their first dimension; the trainer shuffles and slices them;
    * ``loss(batch) -> dict[str, Tensor]``: one scalar loss per domain name (keys may carry a task
      prefix, e.g. ``"cross/Arts"``) so transfer strategies can reweight them without knowing the
      model;
    * discriminative encoders: ``score(batch, candidates) -> [B, C]`` for candidates ``[C]`` shared
      by the batch or ``[B, C]`` per example;
    * generative encoders: whatever their decoders require (see the decoder's docstring).

    Evaluation batches are dicts with ``history`` (single-domain view, ``[B, T]`` left-padded),
    ``history_cross`` (cross-domain view), ``target`` ``[B]``, ``domain`` ``[B]`` and ``user`` ``[B]``.
    """

    family: ClassVar[str] = "discriminative"

    def train_tensors(self, run: "Run", domains: list[int]) -> dict[str, torch.Tensor]:
        """The training examples of ``domains``; called by the trainer at the start of each stage."""
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One scalar loss per domain name; called by the trainer on each slice of ``train_tensors``."""
        raise NotImplementedError

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        """Required of encoders that provide ``scores``: ``[B, C]``; called by the ``topk`` decoder."""
        raise NotImplementedError


@dataclass
class Ranking:
    """A decoder's answer for a batch: exactly one of the two fields is set.

    ``scores`` ``[B, C]`` aligns with the candidates passed in (exact ranks follow from it);
    ``topk`` ``[B, K]`` holds global item ids best first (0 pads short lists) for decoders that
    only produce a list (beam search, approximate indexes); a target absent from it is a miss.
    """

    scores: torch.Tensor | None = None
    topk: torch.Tensor | None = None


class Decoder(Protocol):
    def rank(self, model: nn.Module, batch: dict[str, torch.Tensor], candidates: torch.Tensor, k: int) -> Ranking:
        """Rank ``candidates`` (``[C]`` shared or ``[B, C]`` per example) for each example.

        ``k`` is the longest list the evaluation needs; decoders that return ``topk`` return at
        least ``k`` items where the domain has that many.
        """
        ...


class TransferStrategy(Protocol):
    """Which stages run, on which domains, training what; and how the resulting models are kept.

    ``execute``, ``save`` and ``load`` are required.  The engine calls ``execute(run)`` then ``save(models,
    directory)``; ``mtrec recommend`` builds the strategy again and calls ``load(run, directory)``.
    """

    per_domain_params: ClassVar[frozenset]
    """Optional.  Names of the strategy's params that only its per-domain stages read (a class
    attribute).  Declaring them lets a run with ``transfer.from_run: RUN_ID`` take the stages this
    strategy marks ``Stage(reusable=True)`` -- finished, with the identifier -- from that earlier run
    when the two configs differ in these params alone (:mod:`mtrec.training.reuse`).  Read by the
    engine off the factory class before a run is recorded.  Absent or empty: no stage is shared, and
    ``transfer.from_run`` is refused."""

    def execute(self, run: "Run") -> dict[int, nn.Module]:
        """Plan and run the training stages; return the model to use for each domain index.
        Called once per run by the engine, after the identifier is fitted (``run.identifier``)."""
        ...

    def save(self, models: dict[int, nn.Module], directory: Path) -> None:
        """Write ``models`` (what ``execute`` returned: domain index -> model, one model possibly
        shared by several domains) into ``directory`` (the run's ``models`` folder, created).
        Called by the engine right after ``execute``, on the same strategy object."""
        ...

    def load(self, run: "Run", directory: Path) -> dict[int, nn.Module]:
        """Rebuild the models ``save`` wrote in ``directory`` (``run.build_encoder()``, on
        ``run.device``): domain index -> model.  Called by ``mtrec recommend`` on a freshly built
        strategy of a finished run."""
        ...


#: The members of each kind's contract: name -> None when every component must have it, a
#: capability when components providing it must, or ``"optional"`` when the engine probes for it.
CONTRACT_MEMBERS: dict[str, dict[str, str | None]] = {
    "identifier": {"vocab_size": None, "fit": None, "item_tokens": None, "save": None, "load": None,
                   "domain_tokens": Capability.TRIE, "version": "optional", "metric_rows": "optional"},
    "encoder": {"family": None, "train_tensors": None, "loss": None, "score": Capability.SCORES},
    "transfer": {"execute": None, "save": None, "load": None, "per_domain_params": "optional"},
    "decoder": {"rank": None},
}


def contract(kind: str) -> type:
    """The class declaring ``kind``'s contract (a protocol, or ``Encoder`` for encoders)."""
    return {"identifier": ItemIdentifier, "encoder": Encoder, "transfer": TransferStrategy, "decoder": Decoder}[kind]


# --------------------------------------------------------------------------- catalogue


class Catalogue:
    """Registered components by kind and name, and recipes by name."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.recipes: dict[str, Recipe] = {}

    def add_component(self, component: Component) -> None:
        existing = self.components[component.kind].get(component.name)
        if existing is not None:
            raise ValueError(
                f"{component.kind} {component.name!r} is registered twice "
                f"(by {existing.plugin} and {component.plugin})"
            )
        self.components[component.kind][component.name] = component

    def add_recipe(self, recipe: Recipe) -> None:
        existing = self.recipes.get(recipe.name)
        if existing is not None:
            raise ValueError(f"recipe {recipe.name!r} is registered twice (by {existing.plugin} and {recipe.plugin})")
        self.recipes[recipe.name] = recipe

    def get(self, kind: str, name: str) -> Component:
        from mtrec.errors import ConfigError

        try:
            return self.components[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.components[kind])) or "none"
            raise ConfigError(f"{kind}.name: unknown {kind} {name!r}; registered: {known}") from None

    def recipe(self, name: str) -> Recipe:
        from mtrec.errors import ConfigError

        try:
            return self.recipes[name]
        except KeyError:
            known = ", ".join(sorted(self.recipes)) or "none"
            raise ConfigError(
                f"unknown recipe {name!r} (--plugin selects a recipe); registered: {known}. "
                "`mtrec plugins list` shows which plugins loaded."
            ) from None

    def check_compatible(self, chosen: dict[str, Component], params: dict[str, BaseModel] | None = None) -> None:
        """Raise ConfigError naming the first part whose requirements another part does not meet,
        then run each part's own ``check``."""
        from mtrec.errors import ConfigError

        params = params or {}
        for kind, component in chosen.items():
            for other_kind, needed in component.requires.items():
                other = chosen[other_kind]
                why = other.missing(needed, params.get(other_kind), other_kind)
                if why:
                    article = "an" if other_kind[0] in "aeiou" else "a"
                    missing = set(needed) - other.provided(params.get(other_kind))
                    raise ConfigError(
                        f"{kind} {component.name!r} needs {article} {other_kind} that provides "
                        f"{', '.join(sorted(missing))}; {why}"
                    )
        parts = {kind: (component, params.get(kind)) for kind, component in chosen.items()}
        for kind, component in chosen.items():
            if component.check is not None and params.get(kind) is not None:
                component.check(params[kind], parts, self)
