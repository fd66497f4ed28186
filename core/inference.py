"""Answer ``mtrec recommend`` from a finished run's registered artifacts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtrec.config import validate
from mtrec.data.load import load_dataset
from mtrec.data.spec import DatasetSpec
from mtrec.engine import load_identifier
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
    check_same_data(record, dataset, models_dir.parent, plugins)
    run = RunContext(resolved, dataset, plugins, pick_device(device), models_dir.parent, progress=False)
    identifier = run.build("identifier")
    load_identifier(identifier, registry.artifact_path(record["id"], "identifier"), f"the identifier of run {record['id']}")
    run.identifier = identifier
    strategy = run.build("transfer")
    models = strategy.load(run, models_dir)
    return run, models


def check_same_data(record: dict, dataset: Any, run_dir: Path, plugins: Plugins) -> None:
    """Refuse to answer from a model trained on other data.

    A saved model's rows are item indices of the dataset it was trained on; once the dataset's
    files change (rows reordered, an item added or removed, other text) the same index may name
    another item, and the answers would be silently wrong.  The data is the same when the dataset
    fingerprint recorded with the run is the fingerprint now -- computed from the spec as the run
    resolved it (``dataset`` of its config), since the fingerprint covers the spec's paths as
    written -- or, for runs that recorded it in ``run.json``, when every item index still names
    the same item (same domain, raw id and text, in the same order): then only interactions
    changed, which a saved model does not depend on.
    """
    from mtrec.data.load import fingerprint, resolve_spec
    from mtrec.engine import items_digest
    from mtrec.training.checkpoint import read_json

    recorded = record.get("dataset_fingerprint")
    if recorded == dataset.fingerprint:
        return
    try:
        if fingerprint(resolve_spec(record["config"].get("dataset"), plugins.formats)) == recorded:
            return
    except UserError:  # the spec as the run named it is gone or moved: judge by the items below
        pass
    info_path = run_dir / "run.json"
    info = read_json(info_path, "the run's dataset fingerprint") if info_path.is_file() else {}
    saved_items = info.get("items") if isinstance(info, dict) else None
    if saved_items is not None and saved_items == items_digest(dataset):
        return
    raise UserError(
        f"run {record['id']} was trained on dataset {record.get('dataset_name')!r} with fingerprint {recorded}; "
        f"its data files now give fingerprint {dataset.fingerprint}"
        + (" and other items (rows reordered, items added or removed, other text?)" if saved_items else "")
        + ": the saved model's item indices would name other items. Restore the data the run used, or train a "
        "new run on the current data."
    )


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
