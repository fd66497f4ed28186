"""One ``mtrec run``, start to finish.

    config resolved ─► dataset loaded (cached) ─► registry run opened ─► identifier fitted
    (or reused from an earlier run) ─► transfer strategy trains its stages (validation only)
    ─► test split scored once ─► models, identifier and metrics recorded ─► report
"""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager, nullcontext
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from mtrec.config import ResolvedConfig
from mtrec.data.load import load_dataset, resolve_spec
from mtrec.data.model import MultiDomainDataset
from mtrec.evaluation.evaluator import EvalReport
from mtrec.paths import data_dir
from mtrec.plugins import Plugins
from mtrec.run_context import RunContext
from mtrec.training.checkpoint import atomic_write_text
from mtrec.training.device import pick_device, seed_everything


@dataclass
class RunOutcome:
    run_id: str | None
    run_dir: Path
    test: EvalReport
    stages: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def load_run_dataset(resolved: ResolvedConfig, plugins: Plugins, progress: bool = True) -> MultiDomainDataset:
    spec = resolve_spec(resolved.config.dataset, plugins.formats)
    return load_dataset(spec, plugins.formats, progress=progress)


def component_rows(resolved: ResolvedConfig) -> list[dict]:
    return [
        {"kind": kind, "name": c.name, "plugin": c.plugin, "distribution": c.distribution, "version": c.version}
        for kind, c in resolved.components.items()
    ]


def new_run_id() -> str:
    import uuid

    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def execute_run(
    resolved: ResolvedConfig,
    plugins: Plugins,
    *,
    registry: Any = None,
    progress: bool = True,
    output_root: Path | None = None,
) -> RunOutcome:
    started = time.perf_counter()
    config = resolved.config
    device = pick_device(config.device)
    dataset = load_run_dataset(resolved, plugins, progress)

    run_id = new_run_id()
    if registry is not None:
        run_id = registry.start_run(
            run_id=run_id, name=config.name, recipe=config.recipe, config=config.model_dump(mode="json"),
            config_hash=config.config_hash(), seed=config.seed, device=str(device),
            dataset_name=dataset.name, dataset_spec=dataset.spec, dataset_fingerprint=dataset.fingerprint,
            components=component_rows(resolved), host=socket.gethostname(),
        )
    run_dir = (output_root or data_dir() / "runs") / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", json.dumps(config.model_dump(mode="json"), indent=2))

    run = RunContext(resolved, dataset, plugins, device, run_dir, registry=registry, run_id=run_id, progress=progress)
    tracker = registry.track(run_id) if registry is not None else nullcontext()
    with tracker, _report_end(plugins, run):
        if config.training.threads:
            torch.set_num_threads(config.training.threads)
        seed_everything(config.seed, device)
        plugins.notify("mtrec_on_run_start", run=run)
        run.identifier = prepare_identifier(run)
        strategy = run.build("transfer")
        models = strategy.execute(run)
        for model in models.values():
            model.eval()
        test = run.evaluate(models, "test")
        run.log_metrics(test.rows(stage="final"))
        save_models(run, strategy, models)
        outcome = RunOutcome(
            run_id=run_id,
            run_dir=run_dir,
            test=test,
            stages=[s.__dict__ for s in run.stage_results],
            seconds=time.perf_counter() - started,
        )
        atomic_write_text(run_dir / "metrics.json", json.dumps(outcome_json(outcome), indent=2))
        if registry is not None:
            registry.set_status(run_id, "finished")
        run.end_metrics = test.flat()
    return outcome


@contextmanager
def _report_end(plugins: Plugins, run: RunContext) -> Iterator[None]:
    """Tell ``mtrec_on_run_end`` hooks how the run ended, whatever ended it."""
    try:
        yield
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into RunInterrupted by the registry
        plugins.notify("mtrec_on_run_end", run=run, status="interrupted", metrics={})
        raise
    except Exception:
        plugins.notify("mtrec_on_run_end", run=run, status="failed", metrics={})
        raise
    plugins.notify("mtrec_on_run_end", run=run, status="finished", metrics=run.end_metrics)


def prepare_identifier(run: RunContext) -> Any:
    """Fit the identifier, or load the one an earlier run saved (``identifier.from_run``)."""
    identifier = run.build("identifier")
    source = run.config.identifier.from_run
    directory = run.run_dir / "identifier"
    if source:
        if run.registry is None:
            from mtrec.errors import ConfigError

            raise ConfigError("identifier.from_run needs the registry (do not pass --no-registry)")
        identifier.load(run.registry.artifact_path(source, "identifier"))
    else:
        identifier.fit(run)
    # Fitted identifiers may report quality (codebook usage, collisions) as registry metric rows.
    if hasattr(identifier, "metric_rows"):
        run.log_metrics(identifier.metric_rows())
    identifier.save(directory)
    run.log_artifact("identifier", directory)
    return identifier


def save_models(run: RunContext, strategy: Any, models: dict[int, torch.nn.Module]) -> None:
    directory = run.run_dir / "models"
    directory.mkdir(parents=True, exist_ok=True)
    strategy.save(models, directory)
    run.log_artifact("models", directory)


def outcome_json(outcome: RunOutcome) -> dict:
    return {
        "run_id": outcome.run_id,
        "test": outcome.test.metrics,
        "counts": outcome.test.counts,
        "stages": outcome.stages,
        "seconds": outcome.seconds,
    }


