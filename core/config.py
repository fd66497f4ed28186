"""Run configuration: recipe defaults <- ``--quick`` profile <- config file (<- its ``quick:``) <- ``--set``.

Every layer is a nested mapping merged key by key.  The result is validated twice: the run-level
sections against :class:`RunConfig`, then each component's ``params`` against the params model the
component registered.  When a layer changes a component's ``name``, the params the earlier layers
gave the old component are dropped (they belong to another model), so
``--set encoder.name=gru4rec`` starts from the new encoder's own defaults.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mtrec.components import KINDS, Catalogue, Component
from mtrec.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentChoice(Section):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    from_run: str | None = Field(
        None,
        description="identifier: reuse the identifier an earlier run in the registry fitted. transfer: take the "
        "identifier and shared stages (unified-then-lora's unified stage) of an earlier run, found by its folder "
        "beside this run's, whose config differs only in the name and the strategy's per-domain params.",
    )


class DataConfig(Section):
    max_len: int = Field(20, ge=1, description="Most recent history items a model sees.")


class DomainsConfig(Section):
    """Which domains are targets (evaluated) and which only lend training data."""

    targets: list[str] | None = Field(
        None, description="Domains validated, tested and reported (default: every domain of the dataset)."
    )
    sources: list[str] | None = Field(
        None,
        description="Domains whose training data strategies may use besides the targets (default: every domain). "
        "A target left out of the sources is zero-shot for strategies that honour it.",
    )


class TrainingConfig(Section):
    epochs: int = Field(200, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(256, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(
        10, ge=1,
        description="Validations without gain before stopping.",
    )
    eval_every: int = Field(1, ge=1, description="Validate every N epochs.")
    select_metric: str = Field("ndcg@10", description="Validation metric for early stopping.")
    max_grad_norm: float | None = Field(None, gt=0)
    lr_schedule: Literal["constant", "linear", "cosine", "plateau"] = Field(
        "constant",
        description="Learning rate over a stage's optimizer steps (transformers' schedules): constant, or decaying "
        "linearly / along a half cosine to 0 at the end of the stage's planned epochs (epochs x batches per epoch; "
        "early stopping ends it sooner), or `plateau`: constant until validation stops improving, then multiplied "
        "by lr_decay_factor after every lr_decay_patience epochs without a new best (for stages that train to "
        "early stopping rather than to a planned epoch count).",
    )
    lr_decay_factor: float = Field(0.5, gt=0, lt=1, description="lr_schedule=plateau: the lr's multiplier on a plateau.")
    lr_decay_patience: int = Field(
        1, ge=1, description="lr_schedule=plateau: validations without a new best before each lr decay."
    )
    warmup_steps: int = Field(
        0, ge=0,
        description="Optimizer steps (batches) at the start of every stage over which the learning rate rises "
        "linearly from 0 to lr, before the schedule applies; at most one epoch of the stage (a small domain or a "
        "short fine-tuning stage warms up over its first epoch). 0 with lr_schedule=constant: a fixed lr.",
    )
    length_buckets: bool = Field(
        True,
        description="For encoders that report their examples' lengths (example_lengths): batch examples of similar "
        "length together (sorted within windows of 50 batches, batches shuffled). Off: plain slices of the shuffled order.",
    )
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU).")
    compile: bool = Field(False, description="torch.compile the model on CUDA (ignored on CPU, where it measured "
                                             "slower: docs/benchmarks.md, seq2seq throughput).")
    max_train_examples: int | None = Field(None, ge=1, description="Cap on training examples (tiny profiles).")
    threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (default: torch's choice); 1 helps on a busy shared CPU."
    )


class EvaluationConfig(Section):
    protocol: Literal["full", "sampled"] = "full"
    ks: list[int] = Field(default_factory=lambda: [5, 10])
    negatives: int = Field(99, ge=1, description="Negatives per target under the sampled protocol.")
    batch_size: int = Field(512, ge=1)
    filter_history: bool = Field(False, description="Drop items already in the history from the ranking.")
    valid_max_users: int | None = Field(
        None, ge=1,
        description="Validate on a seeded sample of this many users per domain (speed); the test split always uses every user.",
    )


class RunConfig(Section):
    recipe: str
    name: str | None = None
    dataset: str | None = Field(None, description="Spec file, dataset folder, or bundled dataset name.")
    seed: int = 2024
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    identifier: ComponentChoice
    encoder: ComponentChoice
    transfer: ComponentChoice
    decoder: ComponentChoice
    data: DataConfig = Field(default_factory=DataConfig)
    domains: DomainsConfig = Field(default_factory=DomainsConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    def config_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json", exclude={"name"}), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- layers


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except Exception as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["encoder.params.layers=4", "evaluation.ks=[5,10]"]`` -> nested mapping (YAML values)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set training.epochs=5")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is set to a value and also used as a section")
        node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in layer.items():
        if key in KINDS and isinstance(value, dict) and isinstance(out.get(key), dict):
            old = out[key]
            if "name" in value and value["name"] != old.get("name"):
                old = {k: v for k, v in old.items() if k not in ("params", "from_run")}
            out[key] = merge(old, value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------- resolution


class ResolvedConfig:
    """A validated RunConfig with each component's params model instance."""

    def __init__(self, config: RunConfig, components: dict[str, Component], params: dict[str, BaseModel]):
        self.config = config
        self.components = components
        self.params = params


def resolve(
    catalogue: Catalogue,
    recipe_name: str | None,
    *,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    quick: bool = False,
    extra: dict[str, Any] | None = None,
) -> ResolvedConfig:
    """Merge the layers of a run's config and validate the result.

    ``recipe_name`` may be ``None`` when ``config_file`` names the recipe (``recipe: gmc``), as the
    mixes in ``examples/mixes`` do.  A config file may hold a ``quick:`` mapping: its own ``--quick``
    profile, applied over the file when ``quick`` is set (a file that swaps a component needs its
    own small sizes, since the recipe's ``--quick`` params belong to the component it replaced).
    """
    file_layer: dict[str, Any] = {}
    file_quick: dict[str, Any] = {}
    if config_file is not None:
        file_layer = read_config_file(config_file)
        file_quick = file_layer.pop("quick", None) or {}
        if not isinstance(file_quick, dict):
            raise ConfigError(f"{config_file}: `quick` must be a mapping of config keys (the file's --quick profile)")
        if "recipe" in file_quick:
            raise ConfigError(f"{config_file}: quick.recipe: the --quick profile cannot change the recipe")
        named = file_layer.get("recipe")
        if named is not None and recipe_name is not None and named != recipe_name:
            raise ConfigError(f"{config_file}: recipe {named!r} differs from --plugin {recipe_name!r}")
        recipe_name = recipe_name or named
    if recipe_name is None:
        where = f"{config_file} has no `recipe:` key" if config_file is not None else "no recipe given"
        raise ConfigError(f"{where}; give --plugin NAME or put `recipe: NAME` in the config file")
    recipe = catalogue.recipe(recipe_name)
    layers: list[dict[str, Any]] = [{"recipe": recipe.name}, recipe.config]
    if quick:
        layers.append(recipe.quick)
    layers.append(file_layer)
    if quick:
        layers.append(file_quick)
    if extra:
        layers.append(extra)
    layers.append(parse_set(overrides))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer)
    return validate(catalogue, merged)


def validate(catalogue: Catalogue, merged: dict[str, Any]) -> ResolvedConfig:
    try:
        config = RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
    components: dict[str, Component] = {}
    params: dict[str, BaseModel] = {}
    for kind in KINDS:
        choice: ComponentChoice = getattr(config, kind)
        component = catalogue.get(kind, choice.name)
        try:
            params[kind] = component.params.model_validate(choice.params)
        except ValidationError as exc:
            raise ConfigError(format_errors(exc, prefix=f"{kind}.params", what=f"{kind} {choice.name!r}")) from None
        choice.params = params[kind].model_dump(mode="json")
        components[kind] = component
    catalogue.check_compatible(components, params)
    check_identifier_is_used(catalogue, components)
    check_from_run(config)
    for k in config.evaluation.ks:
        if k < 1:
            raise ConfigError(f"evaluation.ks: every k must be >= 1, got {k}")
    check_select_metric(config)
    return ResolvedConfig(config, components, params)


# The identifier that is the item index itself: nothing to fit, and every encoder that embeds
# item ids consumes it implicitly.  Any other identifier must be used by a part that declares it.
ITEM_INDEX_IDENTIFIER = "atomic"


def check_identifier_is_used(catalogue: Catalogue, components: dict[str, Component]) -> None:
    """Refuse an identifier that would be fitted and then ignored.

    A part consumes the identifier when it declares so: ``requires={"identifier": ...}`` (e.g.
    the ``seq2seq`` encoder needs its ``tokens``, ``trie-beam`` its ``trie``).  When no part does,
    the encoder reads item indices and only the item-index identifier makes sense.
    """
    identifier = components["identifier"]
    if identifier.name == ITEM_INDEX_IDENTIFIER:
        return
    if any("identifier" in components[kind].requires for kind in KINDS if kind != "identifier"):
        return
    users = sorted(c.name for c in catalogue.components["encoder"].values() if "identifier" in c.requires)
    hint = f", or choose an encoder that consumes identifier tokens ({', '.join(users)})" if users else ""
    raise ConfigError(
        f"identifier.name: identifier {identifier.name!r} would be fitted and then ignored: encoder "
        f"{components['encoder'].name!r} reads item indices (it requires nothing of the identifier), and neither "
        f"transfer {components['transfer'].name!r} nor decoder {components['decoder'].name!r} uses one; "
        f"set identifier.name={ITEM_INDEX_IDENTIFIER}{hint}"
    )


# The kinds whose from_run means something (mtrec.engine, mtrec.training.reuse); an encoder's or a
# decoder's trained weights come with the stages transfer.from_run takes.
FROM_RUN_KINDS = ("identifier", "transfer")


def check_from_run(config: RunConfig) -> None:
    """Refuse a ``from_run`` that nothing would read rather than ignore it."""
    for kind in KINDS:
        if kind not in FROM_RUN_KINDS and getattr(config, kind).from_run:
            raise ConfigError(
                f"{kind}.from_run: only identifier.from_run (a fitted identifier) and transfer.from_run (an earlier "
                f"run's shared stages, with its trained {kind}) exist; remove {kind}.from_run"
            )


def validation_metrics(config: RunConfig) -> list[str]:
    """The metric names a validation pass reports (what ``training.select_metric`` may name)."""
    ev = config.evaluation
    names = [f"{m}@{k}" for m in ("ndcg", "recall") for k in sorted(set(ev.ks))] + ["mrr"]
    if ev.protocol == "sampled":
        names += ["auc", "pooled_auc", "gauc"]
    return names


def check_select_metric(config: RunConfig) -> None:
    known = validation_metrics(config)
    metric = config.training.select_metric
    if metric not in known:
        raise ConfigError(
            f"training.select_metric: {metric!r} is not a metric validation reports; choose one of "
            f"{', '.join(known)} (evaluation.ks sets the @K values, evaluation.protocol=sampled adds the AUCs)"
        )


def flat_config(config: BaseModel | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of a (resolved) run config, component params included."""
    tree = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(a: BaseModel | dict[str, Any], b: BaseModel | dict[str, Any],
                       ignore: tuple[str, ...] = ("recipe", "name")) -> set[str]:
    """Dotted keys whose values differ between two configs (e.g. a recipe and its -paper twin)."""
    fa, fb = flat_config(a), flat_config(b)
    return {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)} - set(ignore)


def format_errors(exc: ValidationError, prefix: str = "", what: str = "config") -> str:
    lines = [f"invalid {what}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        key = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        got = "" if err["type"] in ("extra_forbidden", "missing") else f" (got {err.get('input')!r})"
        lines.append(f"  {key}: {msg}{got}")
    return "\n".join(lines)
