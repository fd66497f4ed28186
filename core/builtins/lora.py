"""``unified-then-lora`` (GMC §3.4-3.5): one model on all domains, then one LoRA adapter per domain.

Stages:

1. ``unified``: the whole encoder trains on the source domains (``domains.sources``, default all; early-stopped on the targets'
   average validation metric);
2. ``mode: lora`` (default): for each domain ``D``, a peft LoRA adapter named after ``D`` is
   injected into the unified model's attention projections; the base stays frozen and stage
   ``lora:D`` trains only that adapter on ``D``'s data (``lora_lr``, ``lora_batch_size``,
   early-stopped on ``D``'s validation).  One model object holds the base and every adapter; the
   model returned for domain ``D`` is a thin view that activates adapter ``D`` before every call.
   ``mode: full`` fine-tunes a full copy of the unified model per domain (stages ``finetune:D``);
   ``mode: none`` uses the unified model for every domain (Table 4's "w/o LoRA").  Each
   per-domain stage first scores the unified model it starts from (epoch 0) and keeps it when no
   epoch beats it on ``D``'s validation; that score is the unified stage's own validation of ``D``
   at its best epoch whenever it is the same computation (``reusable_validation``), so it is free.

The unified stage reads none of the per-domain params (``per_domain_params``: ``mode``, the LoRA
shape, ``lora_*``), so a run that differs from another only in those takes that run's identifier and
unified stage with ``transfer.from_run`` and trains only its per-domain stages (:mod:`mtrec.training.reuse`).

``loss_weighting`` borrows another strategy's loss combiner for the unified stage: any registered
transfer that provides ``loss-weighting`` (e.g. SyNCRec's ``ntg-weighting``), given as
``{name, params}``.  Its requirements on the other parts are checked with the config, before any
work (``ntg-weighting`` needs an encoder with ``task-losses``: ``seq2seq`` with ``task_losses: true``);
what the combiner learnt (its ``summary()``) is saved with the models as ``loss-weighting.json``.

Adapters: ``target_modules`` default to what the encoder declares (``lora_target_modules``), else
to the first known attention naming found among its linear layers (T5 ``q``/``v``, the built-in
transformer block's ``qkv``/``out``, ``q_proj``/``v_proj``, ``query``/``value``), so the
strategy works for discriminative encoders as well.  ``r`` 14 on T5 ``q``/``v`` of the default
seq2seq (12 attention modules) gives 172k parameters per domain, the paper's ~0.17M.

Saved as ``base.pt`` (the unified weights, in the plain encoder's key names), one
``adapter-<name>.pt`` per domain (peft's adapter state dict) and ``transfer.json`` (mode, LoRA
config, domain -> adapter); modes ``full``/``none`` save like ``joint`` (``models.json``).
"""

from __future__ import annotations

import json
import re
import warnings
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, Field, ValidationError
from torch import nn

from mtrec.builtins.transfer import ModelSetStrategy
from mtrec.components import Catalogue, Component, Params
from mtrec.errors import ConfigError, UserError
from mtrec.files import atomic_torch_save, atomic_write_text
from mtrec.training.checkpoint import UnsafeFileError, load_tensors, member, read_json
from mtrec.training.stage import (
    LOSS_WEIGHTING,
    Stage,
    StageResult,
    combine_by_count,
    combine_equally,
    reusable_validation,
)

if TYPE_CHECKING:
    from mtrec.components import Run

KNOWN_TARGETS = (("q", "v"), ("qkv", "out"), ("q_proj", "v_proj"), ("query", "value"))


class UnifiedThenLoRAParams(Params):
    mode: Literal["lora", "full", "none"] = Field(
        "lora", description="Per-domain step: LoRA adapters, full fine-tuning of a copy, or none (unified only)."
    )
    r: int = Field(14, ge=1, description="LoRA rank.")
    alpha: float = Field(28.0, gt=0, description="LoRA alpha (scale alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | None = Field(
        None, description="Module name suffixes to adapt (default: the encoder's attention projections)."
    )
    lora_lr: float = Field(5e-4, gt=0, description="Learning rate of the per-domain stages.")
    lora_batch_size: int = Field(512, ge=1)
    lora_epochs: int | None = Field(None, ge=1, description="Per-domain stage epochs (default: training.epochs).")
    lora_patience: int | None = Field(
        None, ge=1, description="Per-domain stage patience, in validations (default: training.patience)."
    )
    lora_lr_decay_patience: int | None = Field(
        None, ge=1, description="Per-domain stage, lr_schedule=plateau: validations without a new best before each "
                                "lr decay (default: training.lr_decay_patience).",
    )
    domain_weighting: Literal["examples", "equal"] = Field(
        "examples", description="Unified stage: every example weighs the same, or every domain does."
    )
    loss_weighting: "StrategyRef | None" = Field(
        None, description="Unified stage: the loss combiner of another transfer that provides `loss-weighting` "
                          "({name, params}, e.g. ntg-weighting) instead of domain_weighting."
    )


class StrategyRef(Params):
    name: str = Field(description="A registered transfer strategy that provides `loss-weighting`.")
    params: dict[str, Any] = Field(default_factory=dict, description="Its params.")


UnifiedThenLoRAParams.model_rebuild()

LOSS_WEIGHTING_KEY = "transfer.params.loss_weighting"


def resolve_loss_weighting(ref: StrategyRef, catalogue: Catalogue) -> tuple[Component, BaseModel]:
    """The borrowed strategy's component and validated params, or a ConfigError naming the key."""
    from mtrec.config import format_errors

    registered = catalogue.components["transfer"]
    able = sorted(n for n, c in registered.items() if LOSS_WEIGHTING in c.provides)
    component = registered.get(ref.name)
    if component is None or LOSS_WEIGHTING not in component.provides:
        what = "unknown transfer" if component is None else "transfer"
        raise ConfigError(
            f"{LOSS_WEIGHTING_KEY}.name: {what} {ref.name!r} has no loss combiner to lend (it does not provide "
            f"{LOSS_WEIGHTING}); transfers that do: {', '.join(able) or 'none registered'}"
        )
    try:
        return component, component.params.model_validate(ref.params)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, prefix=f"{LOSS_WEIGHTING_KEY}.params", what=f"transfer {ref.name!r}")) from None


def check_unified_then_lora(params: BaseModel, parts: dict[str, tuple[Component, BaseModel]],
                            catalogue: Catalogue) -> None:
    """Config-time check: the borrowed combiner exists and the run's parts give it what it needs."""
    ref = getattr(params, "loss_weighting", None)
    if ref is None:
        return
    component, _ = resolve_loss_weighting(ref, catalogue)
    for kind, needed in component.requires.items():
        other, other_params = parts[kind]
        why = other.missing(needed, other_params, kind)
        if why:
            raise ConfigError(
                f"{LOSS_WEIGHTING_KEY}: transfer {component.name!r} needs {'an' if kind[0] in 'aeiou' else 'a'} "
                f"{kind} that provides {', '.join(sorted(set(needed) - other.provided(other_params)))}; {why}"
            )


# --------------------------------------------------------------------------- adapters


def default_target_modules(model: nn.Module) -> list[str]:
    declared = getattr(model, "lora_target_modules", None)
    if declared:
        return list(declared)
    linear = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    for names in KNOWN_TARGETS:
        if set(names) <= linear:
            return list(names)
    mha = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)})
    if mha:
        return mha
    raise ConfigError(
        f"transfer 'unified-then-lora': cannot tell which layers of {type(model).__name__} are attention "
        f"projections; set transfer.params.target_modules (linear layers: {', '.join(sorted(linear)) or 'none'})"
    )


def adapter_names(domains: list[str]) -> list[str]:
    """Module-safe, unique adapter names derived from the domain names."""
    names: list[str] = []
    for i, domain in enumerate(domains):
        name = re.sub(r"\W+", "_", domain).strip("_") or f"domain{i}"
        if name in names or name[0].isdigit():
            name = f"d{i}_{name}"
        names.append(name)
    return names


def add_adapter(model: nn.Module, name: str, config: Any) -> None:
    from peft.functional import inject_adapter_in_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*peft_config.*")  # several adapters are intended
        inject_adapter_in_model(config, model, adapter_name=name)
    for pname, param in model.named_parameters():  # the base stays frozen
        if "lora_" not in pname:
            param.requires_grad_(False)
    model._mtrec_active_adapter = None  # injection may change the active adapter: re-activate on next use


def adapter_parameters(model: nn.Module, name: str) -> list[nn.Parameter]:
    marker = f".{name}."
    return [p for n, p in model.named_parameters() if "lora_" in n and marker in n]


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapted model's base weights under the plain encoder's key names."""
    return {
        key.replace(".base_layer.", "."): value
        for key, value in model.state_dict().items()
        if "lora_" not in key
    }


class AdapterView(nn.Module):
    """A domain's model: the shared adapted encoder with adapter ``adapter`` active for every call.

    The trainer, evaluator and decoders use it like the encoder itself: ``train_tensors``,
    ``loss``, ``score`` and any other encoder attribute (``encode``, ``step``, ...) are looked up on
    the shared encoder and called after activating the adapter.
    """

    def __init__(self, shared: nn.Module, adapter: str) -> None:
        super().__init__()
        self.shared = shared
        self.adapter = adapter

    def activate(self) -> nn.Module:
        shared = self._modules["shared"]
        if getattr(shared, "_mtrec_active_adapter", None) != self.adapter:
            from peft.functional import set_adapter

            set_adapter(shared, self.adapter)
            shared._mtrec_active_adapter = self.adapter
        return shared

    def train_tensors(self, run: "Run", domains: list[int]) -> dict[str, torch.Tensor]:
        return self.activate().train_tensors(run, domains)

    def loss(self, batch: dict[str, torch.Tensor]) -> Any:
        return self.activate().loss(batch)

    def score(self, batch: dict[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        return self.activate().score(batch, candidates)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.activate()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            pass
        shared = self._modules["shared"]
        value = getattr(shared, name)
        if callable(value) and not isinstance(value, nn.Module):

            @wraps(value)
            def call(*args: Any, **kwargs: Any) -> Any:
                self.activate()
                return value(*args, **kwargs)

            return call
        return value


# --------------------------------------------------------------------------- strategy


class UnifiedThenLoRA(ModelSetStrategy):
    # Read by the per-domain stages only: runs that differ in these alone share the unified stage
    # (transfer.from_run, mtrec.training.reuse).  A subclass whose stage 1 reads one of them, or
    # refits the identifier, must narrow this (or set it empty to share nothing).
    per_domain_params: ClassVar[frozenset[str]] = frozenset({
        "mode", "r", "alpha", "dropout", "target_modules", "lora_lr", "lora_batch_size", "lora_epochs",
        "lora_patience", "lora_lr_decay_patience",
    })

    def __init__(self, params: UnifiedThenLoRAParams, run: "Run | None" = None) -> None:
        self.params = params
        self.combiner: Any = None  # the borrowed loss combiner of the unified stage, if any
        self.unified_result: StageResult | None = None  # the unified stage's, once trained

    def unified_combiner(self, run: "Run", model: nn.Module) -> Any:
        """How the unified stage turns per-domain losses into one: ``domain_weighting``, or the
        combiner borrowed through ``loss_weighting``."""
        ref = self.params.loss_weighting
        if ref is None:
            return combine_by_count if self.params.domain_weighting == "examples" else combine_equally
        component, params = resolve_loss_weighting(ref, run.plugins.catalogue)
        self.combiner = component.factory(params, run).combiner(run, model, run.source_domains)
        return self.combiner

    def _write_combiner_summary(self, directory: Path) -> None:
        summary = getattr(self.combiner, "summary", None)
        if callable(summary):
            atomic_write_text(directory / "loss-weighting.json",
                              json.dumps({"name": self.params.loss_weighting.name, **summary()}, indent=2))

    def lora_config(self, model: nn.Module) -> Any:
        from peft import LoraConfig

        p = self.params
        return LoraConfig(
            r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, bias="none",
            target_modules=list(p.target_modules) if p.target_modules else default_target_modules(model),
        )

    def _domain_stage(self, run: "Run", name: str, d: int, parameters: Any = None) -> Stage:
        """A per-domain stage (``lora:D``, ``finetune:D``): it starts from the unified model (a fresh
        LoRA adapter has B = 0, so the adapted model equals the base), which is scored as epoch 0
        and kept when no epoch on ``D`` beats it.  That score is the unified stage's own validation
        of ``D`` at its best epoch when it is exactly the same computation (``reusable_validation``)."""
        p = self.params
        start = reusable_validation(run, self.unified_result, d) if self.unified_result is not None else None
        return Stage(name=name, domains=[d], parameters=parameters, lr=p.lora_lr, batch_size=p.lora_batch_size,
                     epochs=p.lora_epochs, patience=p.lora_patience, lr_decay_patience=p.lora_lr_decay_patience,
                     score_start=True, start_validation=start)

    def train_unified(self, run: "Run") -> nn.Module:
        """Stage 1: one model on the source domains (subclasses change how, e.g. IDGenRec's rounds;
        one that sets ``unified_result`` to its last stage's result lets the per-domain stages reuse
        its validation as their epoch 0)."""
        model = run.build_encoder()
        self.unified_result = run.train_stage(
            model, Stage(name="unified", domains=run.source_domains, validate_on=run.target_domains,
                         combine=self.unified_combiner(run, model), reusable=True))
        return model

    def execute(self, run: "Run") -> dict[int, nn.Module]:
        domains = run.dataset.domains
        zero_shot = [domains[d] for d in run.target_domains if d not in run.source_domains]
        if zero_shot and self.params.mode != "none":
            from mtrec.errors import ConfigError

            raise ConfigError(
                f"transfer.params.mode={self.params.mode!r} fine-tunes on each target's data, but "
                f"{', '.join(zero_shot)} is not among domains.sources; use mode=none for zero-shot targets"
            )
        model = self.train_unified(run)
        if self.params.mode == "none":
            return {d: model for d in run.target_domains}
        if self.params.mode == "full":
            unified = {k: v.detach().clone() for k, v in model.state_dict().items()}
            models = {}
            for d in run.target_domains:
                copy = run.build_encoder()
                copy.load_state_dict(unified)
                run.train_stage(copy, self._domain_stage(run, f"finetune:{domains[d]}", d))
                models[d] = copy
            return models
        config = self.lora_config(model)
        names = adapter_names(domains)
        views = {}
        for d in run.target_domains:
            add_adapter(model, names[d], config)
            model.to(run.device)
            view = AdapterView(model, names[d])
            view.activate()
            run.train_stage(
                view,
                self._domain_stage(run, f"lora:{domains[d]}", d, lambda m, name=names[d]: adapter_parameters(m, name)),
            )
            views[d] = view
        return views

    # ------------------------------------------------------------------ artifacts
    def save(self, models: dict[int, nn.Module], directory: Path) -> None:
        if self.combiner is not None:
            self._write_combiner_summary(directory)
        views = list(models.values())
        if not views or not all(isinstance(v, AdapterView) for v in views):
            atomic_write_text(directory / "transfer.json", json.dumps({"mode": self.params.mode}))
            return super().save(models, directory)
        from peft.functional import get_peft_model_state_dict

        shared = views[0].shared
        if any(v.shared is not shared for v in views):
            raise ValueError("unified-then-lora: adapter views of different base models cannot be saved together")
        atomic_torch_save(base_state_dict(shared), directory / "base.pt")
        adapters: dict[str, str] = {}
        for d, view in models.items():
            atomic_torch_save(get_peft_model_state_dict(shared, adapter_name=view.adapter),
                              directory / f"adapter-{view.adapter}.pt")
            adapters[str(d)] = view.adapter
        config = shared.peft_config[views[0].adapter]
        meta = {
            "mode": "lora",
            "lora": {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                     "target_modules": sorted(config.target_modules)},
            "adapters": adapters,
        }
        atomic_write_text(directory / "transfer.json", json.dumps(meta, indent=2))

    def load(self, run: "Run", directory: Path) -> dict[int, nn.Module]:
        meta_path = directory / "transfer.json"
        meta = read_json(meta_path, "how the models were saved")
        if not isinstance(meta, dict) or "mode" not in meta:
            raise UserError(f"{meta_path}: expected a mapping with a 'mode' key")
        if meta["mode"] != "lora":
            return super().load(run, directory)
        from peft import LoraConfig
        from peft.functional import set_peft_model_state_dict

        adapters = meta.get("adapters")
        if not isinstance(adapters, dict):
            raise UserError(f"{meta_path}: expected an 'adapters' mapping (domain -> adapter name)")
        for name in adapters.values():  # each names a file: checked before anything is read
            if not isinstance(name, str) or not re.fullmatch(r"\w+", name):
                raise UnsafeFileError(f"{meta_path}: adapter name {name!r} is not a plain name; refusing to read it")
            member(directory, f"adapter-{name}.pt", meta_path)
        lora = meta["lora"]
        config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], bias="none",
                            target_modules=lora["target_modules"])
        model = run.build_encoder()
        model.load_state_dict(load_tensors(member(directory, "base.pt", meta_path), run.device))
        views: dict[int, nn.Module] = {}
        for d, name in sorted(adapters.items(), key=lambda kv: int(kv[0])):
            add_adapter(model, name, config)
            state = load_tensors(member(directory, f"adapter-{name}.pt", meta_path), run.device)
            result = set_peft_model_state_dict(model, state, adapter_name=name)
            if getattr(result, "unexpected_keys", None):
                raise ValueError(f"{directory}/adapter-{name}.pt: keys not in the model: {result.unexpected_keys[:5]}")
            views[int(d)] = AdapterView(model, name)
        model.to(run.device).eval()
        return {d: v.eval() for d, v in views.items()}
