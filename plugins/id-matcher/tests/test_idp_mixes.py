"""The IDP mixes end to end through the CLI (``mtrec run --config examples/mixes/idp-init-*.yaml --quick``):
IDP pre-trains SASRec on Scientific, generates Arts and Office item embeddings, and a multi-domain
encoder (SyNCRec, MAN) starts from them and is fine-tuned on both new domains together.

Spies record what was installed where; the run is then reloaded the way ``mtrec recommend`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import mtrec_id_matcher.strategy as strategy_module
from mtrec.cli import main
from mtrec.embeddings import item_embedding_rows
from mtrec.inference import load_run, recommend
from mtrec.plugins import Plugins

MIXES = Path(__file__).resolve().parents[3] / "examples" / "mixes"


class RunFolderRegistry:
    """What `mtrec recommend` asks the registry for, answered from one run folder (the run used --no-registry)."""

    def __init__(self, run) -> None:
        self.run = run

    def get_run(self, run_id: str) -> dict:
        return {"id": run_id, "status": "finished", "config": self.run.config.model_dump(mode="json"),
                "dataset_spec": self.run.dataset.spec}

    def artifact_path(self, run_id: str, kind: str) -> Path:
        return self.run.run_dir / kind


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # amazon-mini is assembled once for both mixes


def run_mix(stem: str, monkeypatch, cache_dir) -> dict:
    monkeypatch.setenv("MTREC_CACHE_DIR", str(cache_dir))
    seen: dict = {"installs": []}
    install, execute = strategy_module.install_rows, strategy_module.PretrainMatchFinetune.execute

    def spy_install(model, items, rows):
        table_before = model.item_embedding.weight.detach().clone() if not seen["installs"] else None
        install(model, items, rows)
        held = [(e.table.weight.detach().clone(), e.rows, e.held) for e in item_embedding_rows(model, items)]
        seen["installs"].append({"model": model, "items": np.asarray(items), "rows": torch.as_tensor(rows).clone(),
                                 "tables": held, "pre_table_before": table_before})

    def spy_execute(self, run):
        seen["run"] = run
        seen["models"] = execute(self, run)
        return seen["models"]

    monkeypatch.setattr(strategy_module, "install_rows", spy_install)
    monkeypatch.setattr(strategy_module.PretrainMatchFinetune, "execute", spy_execute)
    result = CliRunner().invoke(main, ["run", "--config", str(MIXES / f"{stem}.yaml"), "--quick", "--no-registry",
                                       "--no-progress"])
    seen["result"] = result
    return seen


def check_mix(seen: dict, encoder_class: str) -> None:
    result = seen["result"]
    assert result.exit_code == 0, result.output
    run = seen["run"]
    metrics = json.loads((run.run_dir / "metrics.json").read_text())["test"]
    assert set(metrics) == {"Arts", "Office", "average"}  # per-domain metrics of the two new domains
    assert all(0.0 <= v <= 1.0 for row in metrics.values() for v in row.values())
    assert "Arts" in result.output and "Office" in result.output
    report = json.loads((run.run_dir / "idp.json").read_text())
    assert report["mode"] == "new-encoder" and report["finetune_together"] is True
    assert report["pretrain_domains"] == ["Scientific"]
    assert report["finetune_domains"] == ["Arts", "Office"] and report["deploy_domains"] == []
    assert [s.name for s in run.stage_results] == ["pretrain", "finetune"]

    # installs: the generated rows into the pre-trained SASRec, then the same rows into the new encoder
    pre_call, new_call = seen["installs"]
    assert type(pre_call["model"]).__name__ == "SASRec" and type(new_call["model"]).__name__ == encoder_class
    models = seen["models"]
    arts, office = run.dataset.domains.index("Arts"), run.dataset.domains.index("Office")
    assert models[arts] is models[office] is new_call["model"]
    assert torch.equal(new_call["rows"], pre_call["rows"])
    for weight, rows, held in new_call["tables"]:  # every table holding a target item starts from its generated row
        assert torch.equal(weight[rows[held]], new_call["rows"][held])
    # the generated rows are Eq. 9 over the pre-trained rows of the matched Scientific items (models/matches.pt)
    matches = torch.load(run.run_dir / "models" / "matches.pt")
    assert np.array_equal(matches["target_items"].numpy(), new_call["items"])
    pre_rows = pre_call["pre_table_before"][matches["source_items"][matches["neighbors"].clamp(min=0)]]
    expected = torch.einsum("qm,qmh->qh", matches["weights"], pre_rows)
    assert torch.allclose(new_call["rows"], expected, atol=1e-5)
    assert (run.dataset.item_domain[matches["source_items"].numpy()] == run.dataset.domains.index("Scientific")).all()

    # reloaded as `mtrec recommend` does: the same encoder for both domains, the same scores
    reload_run, reloaded = load_run(RunFolderRegistry(run), run.run_id or "run", Plugins().load())
    assert type(reloaded[arts]).__name__ == encoder_class and reloaded[arts] is reloaded[office]
    ex = reload_run.examples("test", [arts])
    batch = {k: torch.as_tensor(v[:4]) for k, v in ex.items()}
    candidates = torch.as_tensor(run.dataset.domain_items[arts])
    with torch.no_grad():
        assert torch.allclose(models[arts].eval().score(batch, candidates), reloaded[arts].score(batch, candidates),
                              atol=1e-5)
    history = [run.dataset.item_raw_id[i] for i in run.dataset.domain_items[arts][:3]]
    recs = recommend(reload_run, reloaded, "Arts", history, k=5)
    assert len(recs) == 5


@pytest.mark.slow
def test_idp_initialises_syncrec(monkeypatch, cache_dir):
    seen = run_mix("idp-init-syncrec", monkeypatch, cache_dir)
    check_mix(seen, "SyNCRec")
    # fine-tuning moved SyNCRec's rows away from the installed ones
    new_call = seen["installs"][1]
    final = new_call["model"].item_embedding.weight.detach()[torch.as_tensor(new_call["items"])]
    assert not torch.allclose(final, new_call["rows"])


@pytest.mark.slow
def test_idp_initialises_man_global_and_local_tables(monkeypatch, cache_dir):
    seen = run_mix("idp-init-man", monkeypatch, cache_dir)
    check_mix(seen, "MAN")
    new_call = seen["installs"][1]
    model = new_call["model"]
    tables = [t for t, _, _ in new_call["tables"]]
    assert len(tables) == 1 + 3  # the global table and Scientific's, Arts' and Office's local tables
    held = [int(h.sum()) for _, _, h in new_call["tables"]]
    run = seen["run"]
    sizes = [len(run.dataset.domain_items[d]) for d in range(3)]
    scientific = run.dataset.domains.index("Scientific")
    assert held[0] == len(new_call["items"]) and held[1 + scientific] == 0
    assert sorted(held[1:]) == sorted([0] + [s for d, s in enumerate(sizes) if d != scientific])
    final = model.global_items.weight.detach()[torch.as_tensor(new_call["items"])]
    assert not torch.allclose(final, new_call["rows"])
