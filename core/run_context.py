"""RunContext: what the engine hands to components while a run is in progress.

It implements :class:`mtrec.components.Run`, the contract components, plugins and hooks are typed
against (what they may use of it); the rest (``resolved``, ``registry``, ``stage_results``,
``end_metrics``) is the engine's own.

Transfer strategies drive a run through it (``build_encoder``, ``train_stage``, ``evaluate``);
encoders read the dataset, the identifier and the config from it; lifecycle hooks receive it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mtrec.config import ResolvedConfig, RunConfig
from mtrec.data.model import MultiDomainDataset
from mtrec.data.views import eval_examples
from mtrec.evaluation.evaluator import EvalReport, evaluate
from mtrec.training.stage import Stage, StageResult

if TYPE_CHECKING:
    from mtrec.components import Run
    from mtrec.plugins import Plugins


class RunContext:
    def __init__(
        self,
        resolved: ResolvedConfig,
        dataset: MultiDomainDataset,
        plugins: "Plugins",
        device: torch.device,
        run_dir: Path,
        *,
        registry: Any = None,
        run_id: str | None = None,
        progress: bool = True,
    ) -> None:
        self.resolved = resolved
        self.config: RunConfig = resolved.config
        self.components = resolved.components
        self.params = resolved.params
        self.dataset = dataset
        self.plugins = plugins
        self.device = device
        self.run_dir = run_dir
        self.registry = registry
        self.run_id = run_id
        self.progress = progress
        self.identifier: Any = None
        self.stage_results: list[StageResult] = []
        self._examples: dict[tuple[str, tuple[int, ...]], dict[str, np.ndarray]] = {}
        self._stages = 0
        self._decoder: Any = None
        self.end_metrics: dict[str, float] = {}
        self.target_domains = self._domain_indices("targets", self.config.domains.targets)
        self.source_domains = self._domain_indices("sources", self.config.domains.sources)

    # ------------------------------------------------------------------ properties
    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def autocast(self) -> bool:
        return self.device.type == "cuda" and self.config.training.amp

    @property
    def all_domains(self) -> list[int]:
        return list(range(len(self.dataset.domains)))

    def _domain_indices(self, key: str, names: list[str] | None) -> list[int]:
        if names is None:
            return self.all_domains
        known = self.dataset.domains
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            from mtrec.errors import ConfigError

            what = f"unknown domain(s) {', '.join(map(repr, unknown))}" if unknown else "empty list"
            raise ConfigError(f"domains.{key}: {what}; dataset {self.dataset.name!r} has {', '.join(known)}")
        return sorted({known.index(n) for n in names})

    @property
    def decoder(self) -> Any:
        if self._decoder is None:
            self._decoder = self.build("decoder")
        return self._decoder

    # ------------------------------------------------------------------ building
    def build(self, kind: str) -> Any:
        """Instantiate the configured component of ``kind`` with its validated params."""
        return self.components[kind].factory(self.params[kind], self)

    def build_encoder(self) -> nn.Module:
        return self.build("encoder").to(self.device)

    # ------------------------------------------------------------------ training
    def stage_counter(self) -> int:
        self._stages += 1
        return self._stages

    def checkpoint_path(self, stage: str) -> Path:
        return self.run_dir / "checkpoints" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", stage) + ".pt")

    def train_stage(self, model: nn.Module, stage: Stage) -> StageResult:
        """Train ``model`` through ``stage`` (under torchrun: DDP on every rank; on resume: a
        finished stage is loaded, an interrupted one continues after its last epoch)."""
        from mtrec.training.trainer import train_stage

        result = train_stage(self, model, stage)
        self.stage_results.append(result)
        best = {"best_epoch": result.best_epoch, "best_value": result.best_value, "seconds": result.seconds}
        self.notify("mtrec_on_stage_end", run=self, stage=stage.name, metrics=best)
        return result

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; under torchrun only rank 0 does, so integrations report once."""
        from mtrec.training.distributed import is_main

        if is_main():
            self.plugins.notify(hook_name, **kwargs)

    # ------------------------------------------------------------------ evaluation
    def examples(self, split: str, domains: list[int] | None = None) -> dict[str, np.ndarray]:
        domains = self.target_domains if domains is None else sorted(domains)
        key = (split, tuple(domains))
        if key not in self._examples:
            ev = self.config.evaluation
            self._examples[key] = eval_examples(
                self.dataset, split, domains, self.config.data.max_len, max_users=ev.valid_max_users if split == "valid" else None, seed=self.seed
            )
        return self._examples[key]

    def evaluate(
        self, models: dict[int, nn.Module], split: str, domains: list[int] | None = None
    ) -> EvalReport:
        ev = self.config.evaluation
        return evaluate(
            self.dataset,
            models,
            self.decoder,
            self.examples(split, domains),
            split=split,
            ks=ev.ks,
            protocol=ev.protocol,
            negatives=ev.negatives,
            batch_size=ev.batch_size,
            device=self.device,
            seed=self.seed,
            filter_history=ev.filter_history,
            progress=self.progress,
            autocast=self.autocast,
        )

    # ------------------------------------------------------------------ registry
    def log_metrics(self, rows: list[dict]) -> None:
        if self.registry is not None and self.run_id is not None and rows:
            self.registry.log_metrics(self.run_id, rows)

    def log_artifact(self, kind: str, path: Path) -> None:
        if self.registry is not None and self.run_id is not None:
            self.registry.log_artifact(self.run_id, kind, path)


if TYPE_CHECKING:

    def _implements_run(run: RunContext) -> Run:  # a type checker verifies RunContext satisfies Run
        return run
