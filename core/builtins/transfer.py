"""Transfer strategies ``single-domain`` (one model per domain) and ``joint`` (one for all).

Strategies also know how to save and reload the per-domain models they produce, so a finished
run can answer ``mtrec recommend``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from torch import nn

from mtrec.components import Params
from mtrec.errors import UserError
from mtrec.files import atomic_torch_save, atomic_write_text
from mtrec.training.checkpoint import load_tensors, member, read_json
from mtrec.training.stage import Stage, combine_by_count, combine_equally

if TYPE_CHECKING:
    from mtrec.components import Run


class ModelSetStrategy:
    """Saves each distinct model once, with a domain -> file map."""

    def save(self, models: dict[int, nn.Module], directory: Path) -> None:
        files: dict[int, str] = {}
        saved: dict[int, str] = {}
        for domain, model in models.items():
            if id(model) not in saved:
                name = f"model-{len(saved)}.pt"
                atomic_torch_save(model.state_dict(), directory / name)
                saved[id(model)] = name
            files[domain] = saved[id(model)]
        atomic_write_text(directory / "models.json", json.dumps({str(d): f for d, f in files.items()}))

    def load(self, run: "Run", directory: Path) -> dict[int, nn.Module]:
        files = model_files(directory)
        built: dict[str, nn.Module] = {}
        for name in sorted(set(files.values())):
            model = run.build_encoder()
            model.load_state_dict(load_tensors(member(directory, name, directory / "models.json"), run.device))
            built[name] = model.eval()
        return {d: built[f] for d, f in files.items()}


def model_files(directory: Path, listing: str = "models.json") -> dict[int, str]:
    """``domain index -> model file name`` of a saved model set, each name checked to stay in ``directory``."""
    path = directory / listing
    raw = read_json(path, "the saved models' domain -> file map")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of domain index to model file name")
    files: dict[int, str] = {}
    for key, name in raw.items():
        try:
            domain = int(key)
        except (TypeError, ValueError):
            raise UserError(f"{path}: key {key!r} is not a domain index") from None
        member(directory, name, path)
        files[domain] = name
    return files


class SingleDomainParams(Params):
    pass


class SingleDomain(ModelSetStrategy):
    """One model per target domain, each trained and early-stopped on its own domain only."""

    def __init__(self, params: SingleDomainParams, run: "Run | None" = None) -> None:
        self.params = params

    def execute(self, run: "Run") -> dict[int, nn.Module]:
        models = {}
        for d in run.target_domains:
            model = run.build_encoder()
            run.train_stage(model, Stage(name=f"single:{run.dataset.domains[d]}", domains=[d]))
            models[d] = model
        return models


class JointParams(Params):
    domain_weighting: Literal["examples", "equal"] = Field(
        "examples", description="'examples': every training example weighs the same; 'equal': every domain does."
    )


class Joint(ModelSetStrategy):
    """One model trained on the source domains (default: all), early-stopped on the targets' average.

    A target that is not among ``domains.sources`` is zero-shot: the model never sees its training data.
    """

    def __init__(self, params: JointParams, run: "Run | None" = None) -> None:
        self.params = params

    def execute(self, run: "Run") -> dict[int, nn.Module]:
        model = run.build_encoder()
        combine = combine_by_count if self.params.domain_weighting == "examples" else combine_equally
        run.train_stage(model, Stage(name="joint", domains=run.source_domains, validate_on=run.target_domains,
                                     combine=combine))
        return {d: model for d in run.target_domains}
