"""Answer ``mtrec recommend`` from a finished run's registered artifacts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtrec.config import validate
from mtrec.data.load import load_dataset
from mtrec.data.spec import DatasetSpec
from mtrec.errors import UserError
from mtrec.plugins import Plugins
from mtrec.run_context import RunContext
from mtrec.training.device import pick_device


@dataclass
class Recommendation:
    item: str
    title: str
    score: float | None


def load_run(registry: Any, run_id: str, plugins: Plugins, device: str = "cpu") -> tuple[RunContext, dict]:
    record = registry.get_run(run_id)
    if record.get("status") != "finished":
        raise UserError(f"run {record['id']} is {record.get('status')}; only finished runs can recommend")
    resolved = validate(plugins.catalogue, record["config"])
    spec = DatasetSpec.model_validate({k: v for k, v in record["dataset_spec"].items() if k != "base_dir"})
    dataset = load_dataset(spec, plugins.formats, progress=False)
    models_dir = registry.artifact_path(record["id"], "models")
    run = RunContext(resolved, dataset, plugins, pick_device(device), models_dir.parent, progress=False)
    identifier = run.build("identifier")
    identifier.load(registry.artifact_path(record["id"], "identifier"))
    run.identifier = identifier
    strategy = run.build("transfer")
    models = strategy.load(run, models_dir)
    return run, models


@torch.no_grad()
def recommend(run: RunContext, models: dict, domain: str, history: list[str], k: int = 10) -> list[Recommendation]:
    dataset = run.dataset
    d = dataset.domain_index(domain)
    lookup = dataset.raw_item_lookup
    ids = []
    by_raw: dict[str, list[int]] = {}
    for (dom, raw), idx in lookup.items():
        by_raw.setdefault(raw, []).append(idx)
    for raw in history:
        key = (domain, raw)
        if key in lookup:
            ids.append(lookup[key])
        elif raw in by_raw and len(by_raw[raw]) == 1:
            ids.append(by_raw[raw][0])  # an item of another domain: part of the cross-domain history
        else:
            raise UserError(f"--history: unknown item {raw!r} (not in any domain of dataset {dataset.name})")
    max_len = run.config.data.max_len
    items = np.asarray(ids, dtype=np.int64)
    single = items[dataset.item_domain[items] == d][-max_len:]
    cross = items[-max_len:]

    def pad(row: np.ndarray) -> torch.Tensor:
        out = torch.zeros(1, max_len, dtype=torch.long)
        if row.size:
            out[0, max_len - row.size :] = torch.as_tensor(row)
        return out.to(run.device)

    batch = {
        "history": pad(single),
        "history_cross": pad(cross),
        "target": torch.zeros(1, dtype=torch.long, device=run.device),
        "domain": torch.tensor([d], device=run.device),
        "user": torch.zeros(1, dtype=torch.long, device=run.device),
    }
    candidates = torch.as_tensor(dataset.domain_items[d], device=run.device)
    model = models[d].eval()
    ranking = run.decoder.rank(model, batch, candidates, k)
    titles = dataset.item_fields.get("title") or dataset.item_text
    if ranking.scores is not None:
        scores = ranking.scores[0].float()
        top = torch.topk(scores, min(k, scores.numel()))
        picks = [(int(candidates[i]), float(s)) for s, i in zip(top.values, top.indices)]
    else:
        picks = [(int(i), None) for i in ranking.topk[0].tolist() if i > 0][:k]
    return [Recommendation(dataset.item_raw_id[i], titles[i] or dataset.item_text[i], s) for i, s in picks]


def recommendations_json(recs: list[Recommendation]) -> str:
    return json.dumps([r.__dict__ for r in recs], indent=2)
